"""``palavra preprocess``: tokenise and normalise a corpus into the cached file training reads; prints its stats."""

from __future__ import annotations

import shutil
from pathlib import Path

import typer

from pipelines.runs.config_io import load_toml_config
from pipelines.runs.progress import Progress
from pipelines.text.normalize import NormalizeConfig
from pipelines.text.preprocess import PreparedCorpus, prepare_corpus
from services.cli.app import app
from services.cli.output import emit_json, warn
from services.factories import open_catalog
from services.settings import Settings, get_settings


class _TenthsReporter:
    """Progress on stderr, one line per tenth of the input read."""

    def __init__(self) -> None:
        self.last = -1

    def __call__(self, progress: Progress) -> None:
        tenth = int((progress.fraction or 0.0) * 10)
        if tenth > self.last:
            self.last = tenth
            warn(f"preprocess: {tenth * 10}% {progress.message or ''}".rstrip())


def preprocess(
    specs: list[str],
    config: NormalizeConfig,
    *,
    settings: Settings,
    output: Path | None = None,
    text_field: str = "text",
    workers: int = 2,
    quiet: bool = False,
) -> PreparedCorpus:
    """Resolve ``specs`` (paths or catalogue names), prepare them, copy the result to ``output`` if given."""
    catalog = open_catalog(settings)
    sources = [path for spec in specs for path in catalog.resolve(spec)]
    prepared = prepare_corpus(
        sources,
        config,
        cache_dir=settings.cache_dir,
        workers=workers,
        progress=None if quiet else _TenthsReporter(),
        text_field=text_field,
        limits=settings.corpus_limits,
    )
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(prepared.path, output)
    return prepared


@app.command("preprocess")
def preprocess_cli(
    corpus: list[str] = typer.Option(
        ..., "--corpus", help="A file, folder or catalogue name (see `palavra data list`); repeat for more."
    ),
    config: Path | None = typer.Option(None, "--config", help="A TOML file of normalisation settings."),
    output: Path | None = typer.Option(None, "--output", help="Also copy the prepared file here."),
    text_field: str = typer.Option("text", "--text-field", help="JSON field / CSV column holding the text."),
    workers: int = typer.Option(2, "--workers", min=1, help="Processes to use."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress lines on stderr."),
) -> None:
    """Tokenise + normalise a corpus (one sentence per line, cached); print its stats as JSON."""
    cfg = load_toml_config(config, NormalizeConfig) if config is not None else NormalizeConfig()
    prepared = preprocess(
        corpus,
        cfg,
        settings=get_settings(),
        output=output,
        text_field=text_field,
        workers=workers,
        quiet=quiet,
    )
    emit_json(
        {
            "path": str(output or prepared.path),
            "cache_path": str(prepared.path),
            "n_tokens": prepared.n_tokens,
            "n_sentences": prepared.n_sentences,
            "n_docs": prepared.n_docs,
            "skipped": prepared.skipped,
            "skipped_files": list(prepared.skipped_files),
            "data_hash": prepared.data_hash,
            "cache_hit": prepared.cache_hit,
            "seconds": round(prepared.seconds, 3),
            "normalize": cfg.model_dump(mode="json"),
        }
    )
