"""``palavra train classifier``: a labelled CSV / JSONL file -> a registered text classifier."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from models.errors import InvalidConfig
from models.registry import ModelVersion
from pipelines.classifier.label_names import parse_label_names
from services.cli.app import train_app
from services.cli.dataset_specs import path_resolver
from services.cli.output import emit_json
from services.cli.overrides import classifier_run, set_option
from services.cli.progress_bars import ProgressBars
from services.factories import open_registry
from services.settings import get_settings


def _hidden(value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        return [int(part) for part in value.split(",") if part.strip()]
    except ValueError as exc:
        raise InvalidConfig(
            f"--hidden takes comma-separated sizes such as 64 or 128,64, not {value!r}"
        ) from exc


def summary(version: ModelVersion) -> dict[str, Any]:
    """What the command prints: the reference and the headline validation metrics."""
    meta = version.metadata
    out = {
        "model": version.ref,
        "path": str(version.path),
        "classes": meta.get("classes"),
        "label_names": meta.get("label_names"),
        "skipped_empty_texts": meta.get("skipped_empty_texts"),
        **meta.get("metrics", {}),
    }
    metrics_file = version.path / "metrics.json"
    baseline = (
        json.loads(metrics_file.read_text(encoding="utf-8")).get("baseline")
        if metrics_file.is_file()
        else None
    )
    if (
        baseline
    ):  # --baseline: the TF-IDF + logistic regression peer on the same validation texts, beside the model
        out["baseline"] = {k: baseline.get(k) for k in ("name", "accuracy", "macro_f1", "train_seconds")}
    return out


@train_app.command("classifier")
def train_classifier_cli(
    train: str | None = typer.Option(None, "--train", help="CSV / TSV / JSONL file or data set name."),
    name: str | None = typer.Option(None, "--name", help="Registry name of the model."),
    validation: str | None = typer.Option(
        None, "--validation", help="Validation file (default: 10% of train)."
    ),
    text_column: str | None = typer.Option(None, "--text-column", help="Column / field with the text."),
    label_column: str | None = typer.Option(None, "--label-column", help="Column / field with the label."),
    embeddings: str | None = typer.Option(None, "--embeddings", help="A registered word2vec/fasttext model."),
    label_names: str | None = typer.Option(
        None,
        "--label-names",
        help="Names the model answers with, e.g. 0=nao_toxico,1=toxico (default: the catalogue's, or the labels).",
    ),
    freeze: bool | None = typer.Option(
        None, "--freeze-embeddings/--tune-embeddings", help="Keep word vectors fixed."
    ),
    activation: str | None = typer.Option(None, "--activation", help="sigmoid, tanh, relu or leaky_relu."),
    leaky_slope: float | None = typer.Option(None, "--leaky-slope", help="Negative slope of leaky_relu."),
    hidden: str | None = typer.Option(
        None, "--hidden", help="Hidden layer sizes, e.g. 64 or 128,64 ('' = none)."
    ),
    dropout: float | None = typer.Option(None, "--dropout", help="Dropout rate."),
    pooling: str | None = typer.Option(None, "--pooling", help="mean, max or mean_max."),
    optimizer: str | None = typer.Option(
        None, "--optimizer", help="sgd, momentum, adagrad, rmsprop or adam."
    ),
    lr: float | None = typer.Option(None, "--lr", help="Learning rate (default depends on the optimizer)."),
    momentum: float | None = typer.Option(None, "--momentum", help="Coefficient of the momentum optimizer."),
    epochs: int | None = typer.Option(None, "--epochs", help="Maximum epochs."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Mini-batch size."),
    target_error: float | None = typer.Option(
        None, "--target-error", help="Stop at this validation error rate."
    ),
    patience: int | None = typer.Option(
        None, "--patience", help="Early-stopping patience in epochs (0 = off)."
    ),
    class_weights: str | None = typer.Option(None, "--class-weights", help="none or balanced."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed (same seed, same model)."),
    threads: int | None = typer.Option(None, "--threads", help="torch threads while training (default 1)."),
    baseline: bool | None = typer.Option(
        None, "--baseline/--no-baseline", help="Also train TF-IDF + LogReg."
    ),
    strict: bool | None = typer.Option(
        None, "--strict/--skip-empty", help="Refuse rows with an empty text (default: skip and count them)."
    ),
    config: Path | None = typer.Option(None, "--config", help="A TOML run config (see docs/classifier.md)."),
    overrides: list[str] | None = set_option("training.weight_decay=0.0001"),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Train a text classifier on labelled data, register it, print its reference and validation metrics."""
    run = classifier_run(
        config,
        {
            "name": name,
            "train": train,
            "validation": validation,
            "text_column": text_column,
            "label_column": label_column,
            "embeddings": embeddings,
            "label_names": parse_label_names(label_names) if label_names is not None else None,
            "baseline": baseline,
            "strict": strict,
            "model": {
                "freeze_embeddings": freeze,
                "activation": activation,
                "leaky_slope": leaky_slope,
                "hidden": _hidden(hidden),
                "dropout": dropout,
                "pooling": pooling,
            },
            "training": {
                "optimizer": optimizer,
                "lr": lr,
                "momentum": momentum,
                "epochs": epochs,
                "batch_size": batch_size,
                "target_error": target_error,
                "patience": patience,
                "class_weights": class_weights,
                "seed": seed,
                "threads": threads,
            },
        },
        overrides,
    )
    from pipelines.classifier.train import train_classifier  # torch and scikit-learn: only when training

    settings = get_settings()
    bars = ProgressBars(disable=quiet)
    try:
        version = train_classifier(
            run, registry=open_registry(settings), resolve_path=path_resolver(settings), progress=bars
        )
    finally:
        bars.close()
    emit_json(summary(version))
