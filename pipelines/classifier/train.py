"""``train_classifier``: a :class:`ClassifierRun` in, a registered classifier version out.

    read + check data -> fit feature space -> build network (random or pretrained word rows) -> epoch loop
    (early stopping / target error) -> tune decision biases on validation -> metrics (+ TF-IDF baseline)
    -> with a holdout (no validation file): train again on train + holdout for the chosen number of epochs
    -> artifact (weights, vocab, labels, preprocessing, configs, history + PNG, metrics)

The artifact is staged by the registry and only registered when everything above succeeded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from models.mlp import BagOfFeaturesMLP
from models.registry import ModelVersion, Registry
from pipelines.classifier.artifact import KIND, save_classifier
from pipelines.classifier.config import ClassifierRun, TrainingConfig
from pipelines.classifier.data import LabelledTexts
from pipelines.classifier.evaluate import classification_metrics, named_classes
from pipelines.classifier.hashing import Bags, concat_bags
from pipelines.classifier.label_names import resolve_label_names
from pipelines.classifier.loop import FitResult, Labels, class_weight_tensor, fit, predict_logits, set_seed
from pipelines.classifier.optim import build_optimizers
from pipelines.classifier.predictor import TextClassifier
from pipelines.classifier.prepare import PathResolver, Prepared, class_weights, prepare, read_run_data
from pipelines.classifier.pretrained import Pretrained, apply_pretrained, open_vectors, word_matrix
from pipelines.classifier.stopping import stop_reason
from pipelines.classifier.thresholds import MIN_GAIN, decide, tune_biases
from pipelines.runs.progress import DONE_STAGE, Progress, ProgressCallback, counted, ignore_progress

log = logging.getLogger(__name__)


@dataclass
class Trained:
    """A trained classifier and what happened while training it."""

    classifier: TextClassifier
    fit: FitResult
    seconds: float
    metrics: dict[str, Any]
    decision: dict[str, Any]


def model_shape(run: ClassifierRun, prepared: Prepared, pretrained: Pretrained | None) -> dict[str, Any]:
    """The network's description (``model.json``)."""
    m = run.model
    return {
        "rows": prepared.space.rows,
        "dim": pretrained.dim if pretrained is not None else m.embedding_dim,
        "num_classes": len(prepared.classes),
        "hidden": list(m.hidden),
        "activation": m.activation,
        "leaky_slope": m.leaky_slope,
        "dropout": m.dropout,
        "pooling": m.pooling,
    }


def build_network(
    shape: dict[str, Any], run: ClassifierRun, pretrained: Pretrained | None
) -> BagOfFeaturesMLP:
    """A freshly initialised network (seeded), with pretrained word rows when given."""
    set_seed(run.training.seed)
    model = BagOfFeaturesMLP(
        shape["rows"],
        shape["dim"],
        shape["num_classes"],
        hidden=shape["hidden"],
        activation=shape["activation"],
        leaky_slope=shape["leaky_slope"],
        dropout=shape["dropout"],
        pooling=shape["pooling"],
    )
    if pretrained is not None:
        apply_pretrained(model, pretrained, freeze=run.model.freeze_embeddings)
    return model


def _fit_network(
    model: BagOfFeaturesMLP,
    train: tuple[Bags, Labels],
    validation: tuple[Bags, Labels] | None,
    *,
    weights: list[float] | None,
    cfg: TrainingConfig,
    progress: ProgressCallback,
) -> FitResult:
    bags = train[0]
    return fit(
        model,
        build_optimizers(model, cfg, mean_ids_per_text=bags.ids.shape[0] / max(len(bags), 1)),
        train,
        validation,
        cfg=cfg,
        class_weight=class_weight_tensor(weights),
        progress=progress,
    )


def _refit(
    run: ClassifierRun,
    prepared: Prepared,
    shape: dict[str, Any],
    pretrained: Pretrained | None,
    *,
    epochs: int,
    weights: list[float] | None,
    progress: ProgressCallback,
) -> tuple[BagOfFeaturesMLP, dict[str, Any]]:
    """A fresh network trained on train + holdout for the number of epochs validation chose."""
    if prepared.validation is None:
        raise ValueError("a refit needs the holdout it merges back")
    cfg = run.training.model_copy(update={"epochs": epochs, "patience": None, "target_error": None})
    model = build_network(shape, run, pretrained)
    started = time.perf_counter()

    def relabel(p: Progress) -> None:
        progress(dataclasses.replace(p, stage="refit"))

    everything = (
        concat_bags(prepared.train.bags, prepared.validation.bags),
        np.concatenate([prepared.train.y, prepared.validation.y]),
    )
    result = _fit_network(model, everything, None, weights=weights, cfg=cfg, progress=relabel)
    info = {
        "epochs": epochs,
        "texts": len(everything[1]),
        "seconds": round(time.perf_counter() - started, 3),
        "train_loss": result.history[-1]["train_loss"],
    }
    return model, info


def train_network(
    run: ClassifierRun,
    prepared: Prepared,
    *,
    pretrained: Pretrained | None = None,
    progress: ProgressCallback = ignore_progress,
) -> Trained:
    """Train, tune the decision rule and measure on validation (then refit on train + holdout); writes nothing.

    The validation metrics are those of the network that validation chose; the refit network saw the holdout
    too, so with a refit those metrics estimate the procedure, not the shipped networks exactly.
    """
    with torch_threads(run.training.threads):
        return _train_network(run, prepared, pretrained=pretrained, progress=progress)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's intra-op thread count set to ``n`` for the block, then restored."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _train_network(
    run: ClassifierRun, prepared: Prepared, *, pretrained: Pretrained | None, progress: ProgressCallback
) -> Trained:
    cfg = run.training
    shape = model_shape(run, prepared, pretrained)
    model = build_network(shape, run, pretrained)
    weights = class_weights(cfg, prepared.classes, prepared.train.y)
    val = prepared.validation
    started = time.perf_counter()
    result = _fit_network(
        model,
        (prepared.train.bags, prepared.train.y),
        (val.bags, val.y) if val is not None else None,
        weights=weights,
        cfg=cfg,
        progress=progress,
    )
    biases = None
    decision: dict[str, Any] = {"tuned": False}
    metrics: dict[str, Any] = {}
    if val is not None:
        probs = torch.softmax(predict_logits(model, val.bags), dim=1).numpy()
        if cfg.tune_thresholds:
            biases, before, after = tune_biases(probs, val.y)
            decision = {
                "tuned": biases is not None,
                "macro_f1_argmax": before,
                "macro_f1_with_biases": after,
                "min_gain": MIN_GAIN,
            }
        metrics = classification_metrics(val.y, decide(probs, biases), prepared.classes)
    info: dict[str, Any] = {"model": shape, "class_weights": weights}
    members = [model]
    if cfg.refit != "off" and prepared.validation_from == "holdout":
        refit, info["refit"] = _refit(
            run,
            prepared,
            shape,
            pretrained,
            epochs=max(result.best_epoch, 1),
            weights=weights,
            progress=progress,
        )
        members = [refit] if cfg.refit == "replace" else [model, refit]
    seconds = time.perf_counter() - started
    clf = TextClassifier(prepared.space, members, prepared.classes, biases=biases, info=info)
    return Trained(clf, result, seconds, metrics, decision)


def _baseline(run: ClassifierRun, prepared: Prepared, progress: ProgressCallback) -> dict[str, Any] | None:
    if not run.baseline or prepared.validation is None:
        return None
    from pipelines.classifier.baseline import train_baseline

    progress(Progress(stage="baseline", message="TF-IDF + LogisticRegression baseline"))
    return train_baseline(prepared.train.data, prepared.validation.data, prepared.classes)


def train_classifier(
    run: ClassifierRun,
    *,
    registry: Registry,
    resolve_path: PathResolver | None = None,
    progress: ProgressCallback | None = None,
) -> ModelVersion:
    """Train the classifier ``run`` describes and register it as a new version of ``run.name``.

    Raises:
        DatasetError: missing columns, empty texts, a single class, validation labels unseen in train.
        ModelNotFound: ``run.embeddings`` names no registered model.
        InvalidInput: the embeddings model is not word vectors; training diverged (NaN loss).
    """
    report = progress or ignore_progress
    registry.check_kind(run.name, KIND)  # before the work: the name may hold another kind of model
    pretrained_source = open_vectors(registry, run.embeddings) if run.embeddings else None
    train, validation = read_run_data(run, resolve_path)
    skipped = {
        "train": len(train.skipped_empty),
        "validation": len(validation.skipped_empty) if validation else 0,
    }
    report(
        counted(
            "read",
            len(train),
            len(train),
            "text",
            message=f"{len(train)} training texts from {train.source}{_skipped_note(train, validation)}",
        )
    )
    prepared = prepare(run, train, validation, progress=report)
    names = resolve_label_names(
        prepared.classes, given=run.label_names, train=run.train, label_column=run.label_column
    )
    pretrained = None
    if pretrained_source is not None:
        vectors, ref, normalize = pretrained_source
        pretrained = word_matrix(
            vectors, prepared.space.words, ref=ref, normalize=normalize, seed=run.training.seed
        )
    trained = train_network(run, prepared, pretrained=pretrained, progress=report)
    trained.classifier.names = names
    # the report and the web page show each class as classify and evaluate name it (nao_toxico, not 0)
    trained.metrics = named_classes(trained.metrics, prepared.classes, names)
    baseline = _baseline(run, prepared, report)
    if baseline is not None:
        baseline = named_classes(baseline, prepared.classes, names)
    with registry.create(run.name, KIND) as writer:
        resolved = run.model_dump(mode="json")
        resolved["training"]["lr"] = run.training.effective_lr
        metrics = _metrics_document(trained, prepared, baseline, pretrained)
        save_classifier(
            writer,
            trained.classifier,
            config=resolved,
            history=trained.fit.history,
            metrics=metrics,
            plot=lambda path: _plot(trained, path, title=run.name),
        )
        writer.metadata.update(
            metrics={k: metrics["validation"].get(k) for k in ("accuracy", "macro_f1")}
            if trained.metrics
            else {},
            data_sha256=prepared.data_sha256,
            train=run.train,
            validation=run.validation,
            classes=[str(c) for c in prepared.classes],
            label_names=names,
            skipped_empty_texts=skipped,
        )
    version: ModelVersion = writer.version  # type: ignore[attr-defined]
    report(Progress(stage=DONE_STAGE, fraction=1.0, message=finished_line(run, trained, version), final=True))
    return version


def _skipped_note(train: LabelledTexts, validation: LabelledTexts | None) -> str:
    """``" (2 empty texts skipped: train.csv lines 4, 9)"``, or nothing when no row was skipped."""
    parts = []
    for data in (train, validation):
        if data is not None and data.skipped_empty:
            lines = ", ".join(map(str, data.skipped_empty[:10])) + (
                " ..." if len(data.skipped_empty) > 10 else ""
            )
            parts.append(f"{len(data.skipped_empty)} in {data.source} (lines {lines})")
    if not parts:
        return ""
    note = "; ".join(parts)
    log.warning("empty texts skipped: %s", note)
    return f"; empty texts skipped: {note}"


def finished_line(run: ClassifierRun, trained: Trained, version: ModelVersion) -> str:
    """The run's last line: why training stopped, which epoch was kept, any refit, and where the curves are."""
    parts = [f"training stopped: {stop_reason(trained.fit, run.training)}"]
    refit = trained.classifier.info.get("refit")
    if refit:
        parts.append(
            f"then retrained on train + holdout ({refit['texts']:,} texts) for {refit['epochs']} epochs"
        )
    parts.append(f"registered {version.ref}; curves in {version.path / 'history.png'}")
    return "; ".join(parts)


def _metrics_document(
    trained: Trained, prepared: Prepared, baseline: dict[str, Any] | None, pretrained: Pretrained | None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "validation": trained.metrics,
        "decision": trained.decision,
        "data": prepared.describe(),
        "training": {
            "seconds": round(trained.seconds, 3),
            "epochs": len(trained.fit.history),
            "best_epoch": trained.fit.best_epoch,
            "stopped": trained.fit.stopped,
            "class_weights": trained.classifier.info.get("class_weights"),
            "refit": trained.classifier.info.get("refit"),
        },
    }
    if pretrained is not None:
        out["embeddings"] = pretrained.describe()
    if baseline is not None:
        out["baseline"] = baseline
    return out


def _plot(trained: Trained, path: Any, *, title: str) -> None:
    from pipelines.classifier.plots import plot_history

    plot_history(trained.fit.history, path, title=title)
