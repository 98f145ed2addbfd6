"""``palavra export word2vec MODEL --output FILE``: a registered model's vectors in the word2vec format."""

from __future__ import annotations

from pathlib import Path

import typer

from pipelines.word2vec.transfer import export_model
from services.cli.app import app
from services.cli.output import emit_json
from services.factories import open_registry
from services.settings import get_settings

export_app = typer.Typer(help="Write registered models in standard formats.", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("word2vec")
def export_word2vec_cli(
    model: str = typer.Argument(..., help="NAME, NAME@VERSION or NAME@ALIAS."),
    output: Path = typer.Option(..., "--output", "-o", help="File to write (replaced atomically)."),
    binary: bool = typer.Option(False, "--binary", help="The binary format instead of text."),
) -> None:
    """Export word vectors (text or binary word2vec format; FastText n-grams are left out)."""
    emit_json(export_model(open_registry(get_settings()), model, output, binary=binary))
