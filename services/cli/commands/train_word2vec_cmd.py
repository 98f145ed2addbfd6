"""``palavra train word2vec``: raw text (files, folders or catalogue names) -> registered word vectors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from models.registry import ModelVersion
from pipelines.runs.config_io import read_toml
from pipelines.word2vec.config import Word2VecRun, build_run
from pipelines.word2vec.train import train_word2vec
from services.cli.app import train_app
from services.cli.output import emit_json
from services.cli.overrides import run_data, set_option
from services.cli.progress_bars import ProgressBars
from services.factories import open_catalog, open_registry
from services.settings import Settings, get_settings


def summary(version: ModelVersion) -> dict[str, Any]:
    """What the CLI prints after training: the reference, training figures and the headline metrics."""
    meta = version.metadata
    training = dict(meta.get("training", {}))
    training.pop("epochs", None)
    return {
        "model": version.ref,
        "kind": version.kind,
        "path": str(version.path),
        "corpus": meta.get("corpus"),
        "training": training,
        "epoch_losses": [
            e.get("loss") for e in meta.get("training", {}).get("epochs", []) if e.get("loss") is not None
        ],
        "metrics": headline_metrics(meta.get("metrics")),
    }


def headline_metrics(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    """Analogy accuracies (answered / all questions) and Spearman per evaluation set."""
    if not metrics:
        return None
    out: dict[str, Any] = {}
    for name, res in metrics.get("analogies", {}).items():
        out[name] = {
            "answered": res["answered"],
            "questions": res["questions"],
            **{
                f"{method}{suffix}": round(res[method][key], 4)
                for method in ("3cosadd", "3cosmul")
                for suffix, key in (("", "accuracy"), ("_all", "accuracy_all"))
            },
        }
    for name, res in metrics.get("pairs", {}).items():
        out[name] = {"spearman": res["spearman"], "oov_ratio": round(res["oov_ratio"], 4)}
    echo = metrics.get("neighbours")
    if echo and echo.get("echo") is not None:  # models trained before the measure existed have none
        out["orthographic_echo"] = {"share": round(echo["echo"], 4), "examples": echo["examples"]}
    return out


def train(run: Word2VecRun, *, settings: Settings, quiet: bool = False) -> ModelVersion:
    """Train and register ``run`` with a progress bar on stderr (unless ``quiet``)."""
    bars = ProgressBars(disable=quiet)
    try:
        return train_word2vec(
            run,
            registry=open_registry(settings),
            catalog=open_catalog(settings),
            cache_dir=settings.cache_dir,
            progress=bars,
            limits=settings.corpus_limits,
        )
    finally:
        bars.close()


@train_app.command("word2vec")
def train_word2vec_cli(
    corpus: list[str] = typer.Option(
        None, "--corpus", help="A file, folder or catalogue name (`palavra data list`); repeat for more."
    ),
    name: str | None = typer.Option(
        None, "--name", help="Registry name of the model (or `name` in --config)."
    ),
    config: Path | None = typer.Option(None, "--config", help="A TOML run config (see docs/word2vec.md)."),
    algorithm: str | None = typer.Option(None, "--algorithm", help="word2vec or fasttext."),
    epochs: int | None = typer.Option(None, "--epochs", help="Passes over the corpus."),
    vector_size: int | None = typer.Option(None, "--vector-size", help="Dimensions of the vectors."),
    workers: int | None = typer.Option(None, "--workers", help="Threads (and preprocessing processes)."),
    text_field: str | None = typer.Option(
        None, "--text-field", help="JSON field / CSV column with the text."
    ),
    evaluate: bool | None = typer.Option(
        None, "--evaluate/--no-evaluate", help="Measure analogies and SimLex after training (default: on)."
    ),
    overrides: list[str] | None = set_option("train.min_count=10"),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Train Word2Vec / FastText vectors from raw text, register them, print the reference and metrics."""
    data = run_data(
        Word2VecRun,
        file=read_toml(config) if config is not None else None,
        flags={
            "name": name,
            "corpus": corpus or None,
            "text_field": text_field,
            "evaluate": evaluate,
            "train": {
                "algorithm": algorithm,
                "epochs": epochs,
                "vector_size": vector_size,
                "workers": workers,
            },
        },
        overrides=overrides,
    )
    given = [name, corpus or None, text_field, evaluate, algorithm, epochs, vector_size, workers]
    if config is None:
        source = "command line"
    elif overrides or any(v is not None for v in given):
        # a bad --set or --epochs was reported as the file's ("configs/x.toml: field 'train.epochs'"), a newcomer's run
        source = f"{config} and the command line's options"
    else:
        source = str(config)
    run = build_run(data, source=source)
    emit_json(summary(train(run, settings=get_settings(), quiet=quiet)))
