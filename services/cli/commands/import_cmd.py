"""``palavra import word2vec FILE --name NAME``: register vectors from a word2vec text / binary file."""

from __future__ import annotations

from pathlib import Path

import typer

from pipelines.runs.config_io import load_toml_config
from pipelines.text.normalize import NormalizeConfig
from pipelines.word2vec.transfer import import_model
from services.cli.app import app
from services.cli.output import emit_json
from services.factories import open_registry
from services.settings import get_settings

import_app = typer.Typer(help="Register models from standard formats.", no_args_is_help=True)
app.add_typer(import_app, name="import")


@import_app.command("word2vec")
def import_word2vec_cli(
    file: Path = typer.Argument(..., help="A word2vec text file (or binary with --binary)."),
    name: str = typer.Option(..., "--name", help="Registry name for the imported model."),
    binary: bool = typer.Option(False, "--binary", help="The file is in the binary word2vec format."),
    normalize: Path | None = typer.Option(
        None,
        "--normalize",
        help="TOML normalisation config for query words (default: inferred from the vocabulary).",
    ),
) -> None:
    """Register pre-trained vectors (e.g. NILC's) so they are served and evaluated like trained ones."""
    config = load_toml_config(normalize, NormalizeConfig) if normalize is not None else None
    version = import_model(
        file, name=name, registry=open_registry(get_settings()), binary=binary, normalize=config
    )
    emit_json(
        {
            "model": version.ref,
            "kind": version.kind,
            "path": str(version.path),
            "imported": version.metadata.get("imported"),
        }
    )
