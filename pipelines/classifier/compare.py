"""Comparison runs: one classifier per cell of a grid over the run config, on the same data, split and seed.

The grid is any set of config keys and their values (:mod:`pipelines.classifier.grid`): the optimizer and
activation, the learning rate, the batch size, the stopping rules, the hidden layers. Writes ``report.md`` (a
markdown table whose columns are the keys that vary), ``loss_curves.png`` (every cell's train and validation
loss overlaid), ``lr_sweep.png`` when the learning rate varies, and ``results.json`` into an output folder.
A cell that diverges is reported as such, with the epoch it diverged at and its history so far; a cell that
fails (a value that clashes with another key, an error while training) is reported as failed, and the other
cells go on.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.errors import InvalidInput, PalavraError
from pipelines.classifier.compare_report import write_report
from pipelines.classifier.config import ClassifierRun
from pipelines.classifier.data import LabelledTexts, check_trainable
from pipelines.classifier.grid import GridAxis, apply, cells, check_axes
from pipelines.classifier.prepare import PathResolver, Prepared, prepare, read_run_data
from pipelines.classifier.train import train_network
from pipelines.runs.grid import finite, save_interrupted, train_cells, write_results
from pipelines.runs.progress import Progress, ProgressCallback, ignore_progress

log = logging.getLogger(__name__)


@dataclass
class Cell:
    """One trained configuration of the grid: its values and what happened."""

    values: dict[str, Any]
    optimizer: str = ""
    activation: str = ""
    lr: float | None = None
    status: str = "ok"
    diverged_at: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    best_epoch: int = 0
    stopped: str = ""
    error: str = ""

    def row(self) -> dict[str, Any]:
        last = self.history[-1] if self.history else {}
        best = next((h for h in self.history if h["epoch"] == self.best_epoch), last)
        epochs = len(self.history)
        return {
            "cell": dict(self.values),
            "optimizer": self.optimizer,
            "activation": self.activation,
            "lr": self.lr,
            "status": self.status,
            "diverged_at": self.diverged_at,
            "epochs": epochs,
            "best_epoch": self.best_epoch,
            "stopped": self.stopped,
            "train_loss": last.get("train_loss"),
            "val_loss": best.get("val_loss"),
            "accuracy": self.metrics.get("accuracy"),
            "macro_f1": self.metrics.get("macro_f1"),
            "seconds": round(self.seconds, 2),
            "seconds_per_epoch": round(self.seconds / epochs, 3) if epochs else None,
            "error": self.error,
        }


def sample_texts(data: LabelledTexts, n: int | None, *, seed: int) -> LabelledTexts:
    """A seeded random ``n`` of ``data``'s texts, in file order (all of them when ``n`` is None or larger)."""
    if n is None or n >= len(data):
        return data
    if n < 1:
        raise InvalidInput(f"sample must be a positive number of texts, not {n}")
    index = np.random.default_rng(seed).choice(len(data), size=n, replace=False)
    return data.subset(sorted(int(i) for i in index))


def _prepare_key(run: ClassifierRun) -> str:
    """What :func:`prepare` reads from the run: cells that agree on it share one feature space."""
    parts = [run.model.features, run.normalize]
    return json.dumps(
        [p.model_dump(mode="json") for p in parts] + [run.training.validation_fraction, run.training.seed]
    )


class _PreparedCache:
    def __init__(self, train: LabelledTexts, validation: LabelledTexts | None) -> None:
        self.train, self.validation = train, validation
        self.done: dict[str, Prepared] = {}

    def get(self, run: ClassifierRun) -> Prepared:
        key = _prepare_key(run)
        if key not in self.done:
            self.done[key] = prepare(run, self.train, self.validation)
        return self.done[key]


def _train_cell(
    values: dict[str, Any],
    base: ClassifierRun,
    data: _PreparedCache,
    progress: ProgressCallback = ignore_progress,
) -> Cell:
    """One cell, never raising for what the cell's own values cause: the grid goes on."""
    cell = Cell(values)
    # what the cell asked for, shown even when its run is refused (the report showed "" for both)
    cell.optimizer = str(values.get("training.optimizer", base.training.optimizer))
    cell.activation = str(values.get("model.activation", base.model.activation))
    started = time.perf_counter()
    try:
        run = apply(base, values)
        cell.optimizer, cell.activation = run.training.optimizer, run.model.activation
        cell.lr = run.training.effective_lr
        prepared = data.get(run)
        started = time.perf_counter()  # the time of training, not of the features cells share
        trained = train_network(run, prepared, progress=progress)
    except InvalidInput as exc:
        if "history" in exc.extra:
            cell.status, cell.error, cell.history = "diverged", exc.detail, list(exc.extra["history"])
            cell.diverged_at = int(cell.history[-1]["epoch"])
        else:
            cell.status, cell.error = "failed", exc.detail
    except (PalavraError, RuntimeError, ValueError, MemoryError) as exc:  # torch raises RuntimeError
        log.warning("grid cell %s failed", values, exc_info=True)
        cell.status, cell.error = "failed", f"{type(exc).__name__}: {exc}"
    else:
        cell.history, cell.metrics = trained.fit.history, trained.metrics
        cell.best_epoch, cell.stopped = trained.fit.best_epoch, trained.fit.stopped
    cell.seconds = time.perf_counter() - started
    return cell


def compare_classifiers(
    run: ClassifierRun,
    *,
    axes: Sequence[GridAxis],
    out_dir: Path,
    sample: int | None = None,
    resolve_path: PathResolver | None = None,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Train one classifier per cell of the ``axes`` grid on ``run``'s data; write the report into ``out_dir``.

    Args:
        run: the configuration every cell starts from (its data, features and seed are shared).
        axes: the grid (:func:`~pipelines.classifier.grid.grid_axes`); no axes trains ``run`` alone.
        sample: train on a seeded random sample of this many training texts (validation stays whole).

    Raises:
        InvalidConfig: a key given twice (before anything trains).
        DatasetError: as for training (the data are read once, before the first cell).
    """
    report = progress or ignore_progress
    if out_dir.exists() and not out_dir.is_dir():
        raise InvalidInput(f"{out_dir} is a file; give --out a folder (it is created when missing)")
    axes = check_axes(axes)
    assignments = cells(axes)
    train, validation = read_run_data(run, resolve_path)
    if sample is not None:
        train = sample_texts(train, sample, seed=run.training.seed)
        check_trainable(train)
    data = _PreparedCache(train, validation)

    def keep(done: list[Cell]) -> None:
        described = _describe_data(data, train, run)
        save_interrupted(
            out_dir,
            done,
            len(assignments),
            described,
            lambda: write_report(run, axes, done, described, out_dir),
            report,
        )

    done: list[Cell] = train_cells(
        assignments, axes, lambda values, progress: _train_cell(values, run, data, progress), report, keep
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    described = _describe_data(data, train, run)
    files = write_report(run, axes, done, described, out_dir)
    report(Progress(stage="compare", fraction=1.0, message=f"report in {out_dir}"))
    rows = write_results(out_dir, described, done)
    return {**files, "runs": finite(rows)}


def _describe_data(data: _PreparedCache, train: LabelledTexts, run: ClassifierRun) -> dict[str, Any]:
    if data.done:
        described: dict[str, Any] = dict(next(iter(data.done.values())).describe())
    else:  # every cell failed before preparing its features
        described = {
            "train_texts": len(train),
            "validation_texts": len(data.validation) if data.validation is not None else 0,
        }
    described["source"] = run.train
    return described
