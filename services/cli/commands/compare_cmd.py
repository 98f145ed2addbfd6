"""``palavra compare classifier``: train a grid over the run config (optimizer x activation by default) on one
data set and write a report."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer

from pipelines.classifier.config import ACTIVATIONS, OPTIMIZERS
from pipelines.classifier.grid import grid_axes, parse_axis
from services.cli.app import compare_app
from services.cli.dataset_specs import path_resolver
from services.cli.output import echo, emit_json
from services.cli.overrides import classifier_run
from services.cli.progress_bars import ProgressBars
from services.factories import open_catalog
from services.settings import get_settings


def _names(value: str | None) -> list[str] | None:
    return None if value is None else [part.strip() for part in value.split(",") if part.strip()]


@compare_app.command("classifier")
def compare_classifier_cli(
    train: str | None = typer.Option(None, "--train", help="CSV / TSV / JSONL file or data set name."),
    validation: str | None = typer.Option(
        None, "--validation", help="Validation file (default: 10% of train)."
    ),
    text_column: str | None = typer.Option(None, "--text-column", help="Column / field with the text."),
    label_column: str | None = typer.Option(None, "--label-column", help="Column / field with the label."),
    optimizers: str | None = typer.Option(
        None,
        "--optimizers",
        help=f"Comma-separated optimizers ({','.join(OPTIMIZERS)}); every one when no --grid is given.",
    ),
    activations: str | None = typer.Option(
        None,
        "--activations",
        help=f"Comma-separated activations ({','.join(ACTIVATIONS)}); every one when no --grid is given.",
    ),
    grid: list[str] | None = typer.Option(
        None,
        "--grid",
        help="KEY=V1,V2,... over any run-config key (training.lr=0.1,0.01; training.batch_size=1,32,full; "
        "model.hidden='[]|64|256,64'; training.patience=none,2). Repeat to multiply.",
    ),
    sample: int | None = typer.Option(
        None, "--sample", min=1, help="Train on a seeded random sample of this many training texts."
    ),
    lr: float | None = typer.Option(None, "--lr", help="One learning rate for all (default: per optimizer)."),
    epochs: int | None = typer.Option(None, "--epochs", help="Maximum epochs of every run."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Mini-batch size."),
    patience: int | None = typer.Option(None, "--patience", help="Early-stopping patience (0 = off)."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed shared by every run."),
    threads: int | None = typer.Option(None, "--threads", help="torch threads while training (default 1)."),
    config: Path | None = typer.Option(None, "--config", help="A TOML run config for everything else."),
    out: Path | None = typer.Option(None, "--out", help="Report folder (default: runs/compare-<time>)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Train every cell of a grid on the same data and seed; write report.md, loss_curves.png (and lr_sweep.png)."""
    run = classifier_run(
        config,
        {
            "name": "compare",
            "train": train,
            "validation": validation,
            "text_column": text_column,
            "label_column": label_column,
            "training": {
                "lr": lr,
                "epochs": epochs,
                "batch_size": batch_size,
                "patience": patience,
                "seed": seed,
                "threads": threads,
            },
        },
    )
    out_dir = out or Path("runs") / f"compare-{datetime.now():%Y%m%d-%H%M%S}"
    axes = grid_axes(
        optimizers=_names(optimizers),
        activations=_names(activations),
        grid=[parse_axis(text) for text in grid or []],
    )
    from pipelines.classifier.compare import compare_classifiers  # torch: imported by the command that trains

    settings = get_settings()
    bars = ProgressBars(disable=quiet)
    try:
        result = compare_classifiers(
            run,
            axes=axes,
            out_dir=out_dir,
            sample=sample,
            resolve_path=path_resolver(settings),
            progress=bars,
        )
    finally:
        bars.close()
    if quiet:
        emit_json(result)
    else:
        echo((out_dir / "report.md").read_text(encoding="utf-8"))


@compare_app.command("lm")
def compare_lm_cli(
    corpus: list[str] = typer.Option(
        ..., "--corpus", help="A file, folder or catalogue name; repeat for more."
    ),
    grid: list[str] | None = typer.Option(
        None,
        "--grid",
        help="KEY=V1,V2,... over a language model's keys (model.context=3,5; training.lr=0.01,0.001; "
        "model.hidden='128|256,128'; training.patience=none,2; bare names like lr work too). Repeat to multiply.",
    ),
    optimizers: str | None = typer.Option(
        None, "--optimizers", help="Comma-separated optimizers (sgd,momentum,adagrad,rmsprop,adam)."
    ),
    activations: str | None = typer.Option(
        None, "--activations", help="Comma-separated activations (sigmoid,tanh,relu,leaky_relu)."
    ),
    context: int | None = typer.Option(None, "--context", help="Previous tokens the model sees (default 5)."),
    dim: int | None = typer.Option(None, "--dim", help="Embedding width (default 64)."),
    hidden: list[int] = typer.Option(
        None, "--hidden", help="Hidden layer size; repeat for more (default 256)."
    ),
    lr: float | None = typer.Option(None, "--lr", help="Learning rate (default 0.002)."),
    epochs: int | None = typer.Option(None, "--epochs", help="Maximum epochs of every cell (default 5)."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Examples per step (default 512)."),
    patience: int | None = typer.Option(
        None, "--patience", help="Early-stopping patience (default 2; 0 = off)."
    ),
    max_vocab: int | None = typer.Option(None, "--max-vocab", help="Most frequent tokens kept."),
    min_count: int | None = typer.Option(None, "--min-count", help="Occurrences a word needs (default 2)."),
    max_train_tokens: int | None = typer.Option(
        None, "--max-train-tokens", help="Train every cell on at most this many tokens."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Seed shared by every cell."),
    out: Path | None = typer.Option(None, "--out", help="Report folder (default: runs/compare-lm-<time>)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar; print the results as JSON."),
) -> None:
    """Train a language model per cell of a grid on one prepared corpus; write report.md and perplexity_curves.png."""
    from pipelines.lm.compare import compare_lms
    from pipelines.lm.compare import grid_axes as lm_grid_axes
    from pipelines.lm.compare import parse_axis as lm_parse_axis
    from pipelines.lm.config import make_run

    run = make_run(
        {
            "name": "compare",
            "corpus": corpus,
            "context": context,
            "dim": dim,
            "hidden": hidden or None,
            "lr": lr,
            "epochs": epochs,
            "batch_size": batch_size,
            "patience": patience,
            "max_vocab": max_vocab,
            "min_count": min_count,
            "max_train_tokens": max_train_tokens,
            "seed": seed,
        }
    )
    axes = lm_grid_axes(
        optimizers=_names(optimizers),
        activations=_names(activations),
        grid=[lm_parse_axis(text) for text in grid or []],
    )
    out_dir = out or Path("runs") / f"compare-lm-{datetime.now():%Y%m%d-%H%M%S}"
    settings = get_settings()
    bars = ProgressBars(disable=quiet)
    try:
        result = compare_lms(
            run,
            axes=axes,
            out_dir=out_dir,
            catalog=open_catalog(settings),
            cache_dir=settings.cache_dir,
            limits=settings.corpus_limits,
            progress=bars,
        )
    finally:
        bars.close()
    if quiet:
        emit_json(result)
    else:
        echo((out_dir / "report.md").read_text(encoding="utf-8"))
