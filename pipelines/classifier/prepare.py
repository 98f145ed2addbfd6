"""From a run's data files to what the network trains on: classes, feature space, encoded train/validation."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from sklearn.model_selection import train_test_split

from models.errors import DatasetError
from pipelines.classifier.config import ClassifierRun, TrainingConfig
from pipelines.classifier.data import (
    Label,
    LabelledTexts,
    check_known_labels,
    check_trainable,
    label_indices,
    read_labelled,
)
from pipelines.classifier.features import Bags, FeatureSpace
from pipelines.classifier.vocab import FIT_STEPS, fit_feature_space
from pipelines.runs.progress import ProgressCallback, counted, ignore_progress

Labels = npt.NDArray[np.int64]
PathResolver = Callable[[str], Path]


@dataclass(frozen=True)
class Split:
    """Texts, their class indices and their encoded bags."""

    data: LabelledTexts
    y: Labels
    bags: Bags


@dataclass(frozen=True)
class Prepared:
    """Everything the network needs, fitted on the training texts only."""

    classes: list[Label]
    space: FeatureSpace
    train: Split
    validation: Split | None
    validation_from: str  # "file", "holdout" or "none"
    data_sha256: str

    def describe(self) -> dict[str, object]:
        out: dict[str, object] = {
            "classes": [str(c) for c in self.classes],
            "train_texts": len(self.train.data),
            "validation_texts": len(self.validation.data) if self.validation else 0,
            "validation_from": self.validation_from,
            "features": self.space.describe(),
            "data_sha256": self.data_sha256,
        }
        return out


def default_resolver(spec: str) -> Path:
    return Path(spec).expanduser()


def read_run_data(
    run: ClassifierRun, resolve_path: PathResolver | None = None
) -> tuple[LabelledTexts, LabelledTexts | None]:
    """The run's train and validation files, read and checked (validation labels must occur in train)."""
    resolve = resolve_path or default_resolver

    def read(spec: str) -> LabelledTexts:
        return read_labelled(
            resolve(spec),
            text_column=run.text_column,
            label_column=run.label_column,
            skip_empty=not run.strict,
        )

    train = read(run.train)
    classes = check_trainable(train)
    validation = None
    if run.validation:
        validation = read(run.validation)
        check_known_labels(validation, classes)
    return train, validation


def holdout(data: LabelledTexts, cfg: TrainingConfig) -> tuple[LabelledTexts, LabelledTexts | None]:
    """A stratified, seeded validation split of ``data`` (none when the fraction is 0 or data too small)."""
    n_classes = len(set(data.labels))
    n_val = round(len(data) * cfg.validation_fraction)
    if cfg.validation_fraction == 0 or n_val < n_classes or len(data) - n_val < n_classes:
        return data, None
    strata = [str(label) for label in data.labels]
    try:
        train_idx, val_idx = train_test_split(
            np.arange(len(data)), test_size=n_val, random_state=cfg.seed, stratify=strata
        )
    except ValueError:  # a class too small to stratify
        train_idx, val_idx = train_test_split(np.arange(len(data)), test_size=n_val, random_state=cfg.seed)
    return data.subset(sorted(train_idx)), data.subset(sorted(val_idx))


def _sha256_texts(parts: Sequence[LabelledTexts | None]) -> str:
    h = hashlib.sha256()
    for part in parts:
        if part is None:
            continue
        for text, label in zip(part.texts, part.labels, strict=True):
            h.update(text.encode("utf-8"))
            h.update(b"\x1f")
            h.update(str(label).encode("utf-8"))
            h.update(b"\x1e")
    return h.hexdigest()


def prepare(
    run: ClassifierRun,
    train: LabelledTexts,
    validation: LabelledTexts | None,
    *,
    progress: ProgressCallback = ignore_progress,
) -> Prepared:
    """Fit the feature space on the training texts and encode both splits.

    Without a validation file, ``training.validation_fraction`` of train is held out (stratified, seeded) for
    early stopping, the target error and the decision thresholds.

    Args:
        progress: receives a ``prepare`` report (steps done of all, what runs next) before each step.

    Raises:
        DatasetError: no text yields a single feature.
    """
    classes = check_trainable(train)
    digest = _sha256_texts([train, validation])
    source = "file"
    if validation is None:
        train, validation = holdout(train, run.training)
        source = "holdout" if validation is not None else "none"
    total = FIT_STEPS + (validation is not None)
    steps = iter(range(total + 1))

    def step(message: str) -> None:
        progress(counted("prepare", next(steps), total, "step", message=message))

    space, bags = fit_feature_space(train.texts, run.model.features, run.normalize, on_step=step)
    if not bags.ids.size:
        raise DatasetError(
            f"{train.source}: no text has a single word or character n-gram after normalisation; "
            "check the text column (--text-column, or text_column in a config or a job) "
            "and the normalisation settings"
        )
    train_split = Split(train, np.asarray(label_indices(train, classes), dtype=np.int64), bags)
    val_split = None
    if validation is not None:
        step(f"encoding {len(validation):,} validation texts")
        val_split = Split(
            validation,
            np.asarray(label_indices(validation, classes), dtype=np.int64),
            space.encode(validation.texts),
        )
    progress(counted("prepare", total, total, "step", message=f"{space.rows:,} feature rows"))
    return Prepared(classes, space, train_split, val_split, source, digest)


def class_weights(cfg: TrainingConfig, classes: Sequence[Label], y: Labels) -> list[float] | None:
    """Loss weight per class: none, inverse frequency ("balanced", as scikit-learn), or given by label.

    Raises:
        DatasetError: a weight given for a label the data does not have.
    """
    if cfg.class_weights == "none":
        return None
    if cfg.class_weights == "balanced":
        counts = np.bincount(y, minlength=len(classes)).astype(np.float64)
        return [float(len(y) / (len(classes) * max(c, 1.0))) for c in counts]
    given = {str(k): float(v) for k, v in cfg.class_weights.items()}
    names = [str(c) for c in classes]
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise DatasetError(
            f"class_weights names labels the data does not have: {', '.join(unknown)} (labels: {', '.join(names)})"
        )
    return [given.get(name, 1.0) for name in names]
