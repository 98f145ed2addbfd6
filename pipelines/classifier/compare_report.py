"""The report of a comparison grid: ``report.md`` (the table), ``loss_curves.png`` and, when the learning rate
varies, ``lr_sweep.png`` (the final loss against the rate, on a log axis)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.classifier.config import ClassifierRun
from pipelines.classifier.grid import GridAxis, format_value, labels, varying
from pipelines.classifier.plots import LrPoint, plot_loss_curves, plot_lr_sweep
from pipelines.runs.grid import format_seconds, legend_name

if TYPE_CHECKING:
    from pipelines.classifier.compare import Cell

RESULT_COLUMNS = (
    "status",
    "epochs",
    "best_epoch",
    "stopped",
    "train_loss",
    "val_loss",
    "accuracy",
    "macro_f1",
    "time/epoch",
    "time",
)
LR_KEY = "training.lr"
__all__ = ["format_seconds", "legend_name", "markdown_table", "table_columns", "write_report"]


def _fmt(value: Any) -> str:
    if value is None or value == "":
        return "–"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return f"{value:.4g}" if abs(value) < 1e-3 or value >= 100 else f"{value:.4f}"
    return str(value)


def _status(cell: Cell) -> str:
    if cell.status == "diverged":
        return f"diverged at epoch {cell.diverged_at}"
    return cell.status


def table_columns(axes: Sequence[GridAxis]) -> list[str]:
    """The table's columns: the short names of the keys that vary, then the results."""
    return [*labels(varying(axes)).values(), *RESULT_COLUMNS]


def markdown_table(cells: Sequence[Cell], axes: Sequence[GridAxis]) -> str:
    """One row per cell: the values of the keys that vary, then what happened."""
    keys = varying(axes)
    lines = ["| " + " | ".join(table_columns(axes)) + " |", "|" + "---|" * len(table_columns(axes))]
    for cell in cells:
        row = cell.row()
        epochs = row["epochs"]
        results = {
            **{c: _fmt(row.get(c)) for c in RESULT_COLUMNS},
            "status": _status(cell),
            "time/epoch": format_seconds(cell.seconds / epochs) if epochs else "–",
            "time": format_seconds(cell.seconds),
        }
        if cell.status != "ok":  # a diverged or failed cell has no kept epoch nor validation metrics
            results.update(best_epoch="–", val_loss="–", accuracy="–", macro_f1="–")
        values = [format_value(cell.values[k]) for k in keys]
        lines.append("| " + " | ".join([*values, *(results[c] for c in RESULT_COLUMNS)]) + " |")
    return "\n".join(lines)


def _final_loss(cell: Cell) -> tuple[float | None, str]:
    row = cell.row()
    if row["val_loss"] is not None and cell.status == "ok":
        return float(row["val_loss"]), "validation"
    finite = [h["train_loss"] for h in cell.history if math.isfinite(h["train_loss"])]
    return (float(finite[-1]) if finite else None), "train"


def _lr_points(cells: Sequence[Cell], axes: Sequence[GridAxis]) -> list[LrPoint]:
    others = [a for a in axes if a.key != LR_KEY]
    points = []
    for cell in cells:
        if cell.lr is None:
            continue
        loss, _ = _final_loss(cell)
        points.append(
            LrPoint(
                group=legend_name({k: v for k, v in cell.values.items() if k != LR_KEY}, others),
                lr=cell.lr,
                loss=loss if cell.status == "ok" else None,
                diverged_at=cell.diverged_at,
            )
        )
    return points


def write_report(
    run: ClassifierRun, axes: Sequence[GridAxis], cells: Sequence[Cell], data: dict[str, Any], out_dir: Path
) -> dict[str, Any]:
    """Write ``report.md`` and the pictures into ``out_dir``; returns their paths and the table's columns."""
    title = f"{run.train} ({data['train_texts']} training texts)"
    curves = {legend_name(c.values, axes): c.history for c in cells}
    diverged = {legend_name(c.values, axes): c.diverged_at for c in cells if c.diverged_at is not None}
    plot_loss_curves(curves, out_dir / "loss_curves.png", title=title, diverged=diverged)
    plots = [out_dir / "loss_curves.png"]
    if LR_KEY in varying(axes):
        plot_lr_sweep(_lr_points(cells, axes), out_dir / "lr_sweep.png", title=title)
        plots.append(out_dir / "lr_sweep.png")
    (out_dir / "report.md").write_text(_markdown(run, axes, cells, data, plots), encoding="utf-8")
    return {
        "report": str(out_dir / "report.md"),
        "plot": str(plots[0]),
        "plots": [str(p) for p in plots],
        "columns": table_columns(axes),
    }


def _base_settings(run: ClassifierRun, axes: Sequence[GridAxis]) -> str:
    cfg = run.training
    shown = {
        "training.optimizer": cfg.optimizer,
        "training.lr": cfg.lr if cfg.lr is not None else "the optimizer's default",
        "training.batch_size": cfg.batch_size,
        "training.epochs": cfg.epochs,
        "training.patience": cfg.patience,
        "training.target_error": cfg.target_error,
        "model.hidden": run.model.hidden,
        "model.activation": run.model.activation,
    }
    gridded = {a.key for a in axes}
    return ", ".join(f"{k.split('.')[-1]} {format_value(v)}" for k, v in shown.items() if k not in gridded)


def _markdown(
    run: ClassifierRun,
    axes: Sequence[GridAxis],
    cells: Sequence[Cell],
    data: dict[str, Any],
    plots: list[Path],
) -> str:
    keys = varying(axes)
    fixed = [f"`{a.key}` = {format_value(a.values[0])}" for a in axes if len(a.values) == 1]
    grid = " x ".join(f"`{k}`" for k in keys) or "one cell"
    validation = f" from {data['validation_from']}" if "validation_from" in data else ""
    lines = [
        f"# Comparison: {grid}",
        "",
        f"Data: `{run.train}` ({data['train_texts']} training texts; validation: {data['validation_texts']} texts"
        f"{validation}). Same features, split and seed ({run.training.seed}) for every cell. "
        f"Settings the grid does not set: {_base_settings(run, axes)}. Metrics are on validation with the tuned "
        "decision rule; `val_loss` is at the kept (best) epoch.",
    ]
    if fixed:
        lines += ["", "Fixed by the grid: " + ", ".join(fixed) + "."]
    lines += ["", markdown_table(cells, axes), ""]
    problems = [c for c in cells if c.status != "ok"]
    for cell in problems:
        lines.append(f"- {legend_name(cell.values, axes)}: {_status(cell)}: {cell.error}")
    if problems:
        lines.append("")
    lines += [f"![{p.stem.replace('_', ' ')}]({p.name})" for p in plots]
    return "\n".join([*lines, ""])
