"""``palavra train encoder``: a text encoder over a registered word-vector model (pooled, or trained on pairs)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from pydantic import Field, ValidationError, create_model

from models.errors import DatasetError, InvalidConfig, InvalidInput
from pipelines.runs.config_io import validation_message
from pipelines.text_encoder.build import pooling_model, register_encoder
from pipelines.text_encoder.pairs import read_pairs, without
from services.cli.app import train_app
from services.cli.dataset_specs import path_resolver
from services.cli.output import emit_json
from services.cli.overrides import run_data, set_option
from services.cli.progress_bars import ProgressBars
from services.factories import open_catalog, open_registry
from services.settings import Settings, get_settings

if TYPE_CHECKING:  # torch: imported when an encoder is trained
    from pipelines.text_encoder.train import EncoderTraining

MAX_SAMPLE_LINES = 100_000


def sample_texts(paths: list[Path]) -> list[str]:
    """Texts to estimate the common component on: both sentences of pairs files, else lines of text files (a
    folder: its ``.txt`` files), at most MAX_SAMPLE_LINES."""
    files = [f for p in paths for f in (sorted(p.rglob("*.txt")) if p.is_dir() else [p])]
    out: list[str] = []
    for path in files:
        if path.suffix.lower() in (".xml", ".csv", ".jsonl"):
            out.extend(s for p in read_pairs(path) for s in (p.sentence1, p.sentence2))
            continue
        with path.open(encoding="utf-8", errors="replace") as fh:
            out.extend(line.strip() for line in fh if line.strip())
        if len(out) >= MAX_SAMPLE_LINES:
            break
    if not out:
        raise DatasetError("the --sample input holds no text")
    return out[:MAX_SAMPLE_LINES]


def training_config(flags: dict[str, Any], overrides: Sequence[str]) -> EncoderTraining:
    """The siamese network's settings: its defaults, then the flags, then ``--set training.KEY=VALUE``.

    Raises:
        InvalidConfig: a ``--set`` key that is not ``training.<one of its keys>``, or a value out of range.
    """
    from pipelines.text_encoder.train import EncoderTraining

    options = create_model(
        "EncoderOptions", training=(EncoderTraining, Field(default_factory=EncoderTraining))
    )
    data = run_data(options, flags={"training": flags}, overrides=overrides)
    try:
        return options.model_validate(data).training  # type: ignore[attr-defined,no-any-return]
    except ValidationError as exc:
        raise InvalidConfig(validation_message(exc, source="encoder training")) from exc


def train_encoder(
    *,
    settings: Settings,
    name: str,
    words: str,
    kind: str | None,
    pairs: str | None,
    validation: str | None,
    sample: str | None,
    exclude: str | None = None,
    quiet: bool = False,
    sif_a: float,
    components: int,
    training: dict[str, Any],
    overrides: Sequence[str] = (),
) -> dict[str, Any]:
    """Build (``mean``, ``sif``) or train (``--pairs``) an encoder and register it; returns a summary."""
    if pairs is None and overrides:
        raise InvalidInput("--set changes the training of an encoder trained on pairs; give --pairs too")
    if pairs is None and exclude is not None:
        raise InvalidInput("--exclude removes pairs from --pairs; give --pairs too")
    registry = open_registry(settings)
    resolve = path_resolver(settings)
    if pairs is not None:
        if kind not in (None, "trained"):
            raise InvalidInput(f"--pairs trains an encoder; it cannot be combined with --kind {kind}")
        from pipelines.text_encoder.train import train_siamese

        cfg = training_config(training, overrides)
        train_pairs = read_pairs(resolve(pairs))
        removed = 0
        if exclude is not None:  # pairs of the set the encoder will be scored on
            train_pairs, removed = without(train_pairs, read_pairs(resolve(exclude)))
        val_pairs = read_pairs(resolve(validation)) if validation else None
        bars = ProgressBars(disable=quiet)
        try:
            model, report = train_siamese(
                registry,
                words,
                train_pairs,
                val_pairs,
                cfg=cfg,
                sif_a=sif_a,
                components=components,
                progress=bars,
            )
        finally:
            bars.close()
        data = {"pairs": pairs, "validation": validation, "excluded": exclude, "excluded_pairs": removed}
        metadata = {"data": data, **report}
    else:
        texts = sample_texts(open_catalog(settings).resolve(sample)) if sample else None
        model, estimated = pooling_model(
            registry, words, pooling=kind or "sif", sif_a=sif_a, components=components, sample=texts
        )
        metadata = {"estimated": {**estimated, "sample": sample}}
    version = register_encoder(registry, name, model, metadata=metadata)
    return {
        "model": version.ref,
        "pooling": model.encoder.spec.pooling,
        "words": model.encoder.spec.words,
        "dim": model.dim,
        **{k: v for k, v in metadata.items() if k != "history"},
    }


@train_app.command("encoder")
def train_encoder_cli(
    words: str = typer.Option(
        ..., "--words", help="The word-vector model to pool (NAME, NAME@VERSION, NAME@ALIAS)."
    ),
    name: str = typer.Option(..., "--name", help="Register the encoder under this name."),
    kind: str = typer.Option(None, "--kind", help="mean or sif (default sif); --pairs trains one instead."),
    pairs: str = typer.Option(
        None,
        "--pairs",
        help="Train on sentence pairs with scores: assin2-train, or an XML / CSV / JSONL file.",
    ),
    validation: str = typer.Option(
        None, "--validation", help="Pairs for early stopping (default: a held-out slice of --pairs)."
    ),
    exclude: str = typer.Option(
        None,
        "--exclude",
        help="Trained: leave out the pairs that also occur here (the set you will score on: assin2-dev).",
    ),
    sample: str = typer.Option(
        None,
        "--sample",
        help="Texts to estimate SIF's common component on (pairs or a .txt; default: the vocabulary).",
    ),
    sif_a: float = typer.Option(1e-3, "--sif-a", help="SIF smoothing a in a / (a + p(w))."),
    components: int = typer.Option(1, "--components", help="Common components removed (0: none)."),
    hidden: str = typer.Option(None, "--hidden", help="Trained: hidden layer sizes, e.g. 512,256."),
    activation: str = typer.Option(None, "--activation", help="Trained: sigmoid, tanh, relu or leaky_relu."),
    optimizer: str = typer.Option(
        None, "--optimizer", help="Trained: sgd, momentum, adagrad, rmsprop or adam."
    ),
    epochs: int = typer.Option(None, "--epochs", help="Trained: maximum epochs."),
    lr: float = typer.Option(None, "--lr", help="Trained: learning rate."),
    patience: int = typer.Option(
        None, "--patience", help="Trained: epochs without a better validation loss."
    ),
    seed: int = typer.Option(None, "--seed", help="Trained: same seed, same model."),
    overrides: list[str] | None = set_option("training.weight_decay=0.0001 (with --pairs)"),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Register a text encoder; prints JSON (its reference and how it was built)."""
    training: dict[str, Any] = {
        "hidden": [int(h) for h in hidden.split(",") if h.strip()] if hidden is not None else None,
        "activation": activation,
        "optimizer": optimizer,
        "epochs": epochs,
        "lr": lr,
        "patience": patience,
        "seed": seed,
    }
    emit_json(
        train_encoder(
            settings=get_settings(),
            name=name,
            words=words,
            kind=kind,
            pairs=pairs,
            validation=validation,
            sample=sample,
            exclude=exclude,
            quiet=quiet,
            sif_a=sif_a,
            components=components,
            training=training,
            overrides=overrides or (),
        )
    )
