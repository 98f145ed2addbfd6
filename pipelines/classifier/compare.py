"""Comparison runs: one classifier per (optimizer, activation) on the same data, split, features and seed.

Writes ``report.md`` (a markdown table), ``loss_curves.png`` (train and validation loss of every run overlaid)
and ``results.json`` into an output folder. A run that diverges is reported as such, with its history so far.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.errors import InvalidConfig, InvalidInput
from pipelines.classifier.config import ACTIVATIONS, OPTIMIZERS, ClassifierRun
from pipelines.classifier.plots import plot_loss_curves
from pipelines.classifier.prepare import PathResolver, Prepared, prepare, read_run_data
from pipelines.classifier.train import train_network
from pipelines.progress import Progress, ProgressCallback, ignore_progress


@dataclass
class Cell:
    """One trained configuration of the grid."""

    optimizer: str
    activation: str
    lr: float
    status: str = "ok"
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    best_epoch: int = 0
    stopped: str = ""
    error: str = ""

    @property
    def name(self) -> str:
        return f"{self.optimizer}/{self.activation}"

    def row(self) -> dict[str, Any]:
        last = self.history[-1] if self.history else {}
        best = next((h for h in self.history if h["epoch"] == self.best_epoch), last)
        return {
            "optimizer": self.optimizer,
            "activation": self.activation,
            "lr": self.lr,
            "status": self.status,
            "epochs": len(self.history),
            "best_epoch": self.best_epoch,
            "stopped": self.stopped,
            "train_loss": last.get("train_loss"),
            "val_loss": best.get("val_loss"),
            "accuracy": self.metrics.get("accuracy"),
            "macro_f1": self.metrics.get("macro_f1"),
            "seconds": round(self.seconds, 2),
            "seconds_per_epoch": round(self.seconds / len(self.history), 2) if self.history else None,
        }


def _check_names(what: str, given: Sequence[str], known: Sequence[str]) -> None:
    unknown = [g for g in given if g not in known]
    if unknown or not given:
        raise InvalidConfig(
            f"unknown {what} {', '.join(map(repr, unknown))}; choose from {', '.join(known)}"
            if unknown
            else f"give at least one {what} ({', '.join(known)})"
        )


def _cell_run(base: ClassifierRun, optimizer: str, activation: str) -> ClassifierRun:
    training = base.training.model_copy(update={"optimizer": optimizer})
    model = base.model.model_copy(update={"activation": activation})
    return base.model_copy(update={"training": training, "model": model})


def _train_cell(run: ClassifierRun, prepared: Prepared, progress: ProgressCallback) -> Cell:
    cell = Cell(run.training.optimizer, run.model.activation, run.training.effective_lr)
    try:
        trained = train_network(run, prepared, progress=progress)
    except InvalidInput as exc:
        if "history" not in exc.extra:
            raise
        cell.status, cell.error, cell.history = "diverged", exc.detail, list(exc.extra["history"])
        return cell
    cell.history, cell.metrics = trained.fit.history, trained.metrics
    cell.seconds, cell.best_epoch, cell.stopped = trained.seconds, trained.fit.best_epoch, trained.fit.stopped
    return cell


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return (
            "NaN"
            if math.isnan(value)
            else f"{value:.4g}"
            if abs(value) < 1e-3 or value >= 100
            else f"{value:.4f}"
        )
    return str(value)


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """The grid as a markdown table (one row per run)."""
    columns = [
        "optimizer",
        "activation",
        "lr",
        "status",
        "epochs",
        "best_epoch",
        "stopped",
        "train_loss",
        "val_loss",
        "accuracy",
        "macro_f1",
        "seconds_per_epoch",
        "seconds",
    ]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def compare_classifiers(
    run: ClassifierRun,
    *,
    optimizers: Sequence[str],
    activations: Sequence[str],
    out_dir: Path,
    resolve_path: PathResolver | None = None,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Train the optimizer x activation grid on ``run``'s data; write the report files into ``out_dir``.

    Raises:
        InvalidConfig: an unknown optimizer or activation name (before anything trains).
        DatasetError: as for training.
    """
    report = progress or ignore_progress
    if out_dir.exists() and not out_dir.is_dir():
        raise InvalidInput(f"{out_dir} is a file; give --out a folder (it is created when missing)")
    _check_names("optimizer", optimizers, OPTIMIZERS)
    _check_names("activation", activations, ACTIVATIONS)
    runs = [_cell_run(run, o, a) for o in optimizers for a in activations]
    train, validation = read_run_data(run, resolve_path)
    prepared = prepare(run, train, validation, progress=report)
    cells = []
    for i, cell_run in enumerate(runs):
        name = f"{cell_run.training.optimizer}/{cell_run.model.activation}"
        report(Progress(stage="compare", fraction=i / len(runs), message=f"{i + 1}/{len(runs)} {name}"))
        cells.append(_train_cell(cell_run, prepared, ignore_progress))
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [c.row() for c in cells]
    plot_loss_curves({c.name: c.history for c in cells}, out_dir / "loss_curves.png", title=f"{run.train}")
    (out_dir / "results.json").write_text(
        json.dumps(
            _finite(
                {"data": prepared.describe(), "runs": [{**c.row(), "history": c.history} for c in cells]}
            ),
            ensure_ascii=False,
            indent=1,
            default=str,
        ),
        encoding="utf-8",
    )
    (out_dir / "report.md").write_text(_report(run, prepared, rows), encoding="utf-8")
    report(Progress(stage="compare", fraction=1.0, message=f"report in {out_dir}"))
    return {
        "report": str(out_dir / "report.md"),
        "plot": str(out_dir / "loss_curves.png"),
        "runs": _finite(rows),
    }


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float (a diverged run's loss) as None: JSON has no NaN."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _report(run: ClassifierRun, prepared: Prepared, rows: list[dict[str, Any]]) -> str:
    info = prepared.describe()
    cfg = run.training
    return "\n".join(
        [
            "# Optimizer x activation comparison",
            "",
            f"Data: `{run.train}` ({info['train_texts']} training texts; validation: {info['validation_texts']} "
            f"texts from {info['validation_from']}). Same features, split and seed ({cfg.seed}) for every run; "
            f"at most {cfg.epochs} epochs, batch {cfg.batch_size}, patience {cfg.patience}. Each optimizer uses "
            "its own default learning rate unless one was given. Metrics are on validation with the tuned "
            "decision rule; `val_loss` is at the kept (best) epoch.",
            "",
            markdown_table(rows),
            "",
            "![loss curves](loss_curves.png)",
            "",
        ]
    )
