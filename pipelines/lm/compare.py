"""Comparison runs of language models: one network per cell of a grid over the run config, on one prepared corpus.

The grid's keys are the run's (:class:`~pipelines.lm.config.LMRun`), dotted like the classifier's: ``model.context``,
``model.activation``, ``model.hidden``, ``model.dim``, ``model.dropout``, ``model.max_vocab``, ``model.min_count``,
``training.optimizer``, ``training.lr``, ``training.epochs``, ``training.batch_size``, ``training.patience``,
``training.seed``; the bare name (``lr``, ``context``) is accepted too. The corpus is prepared and split once; cells
that agree on the vocabulary and the context share its encoding. Writes ``report.md`` (a table whose columns are
the keys that vary, then final and best validation perplexity and time), ``perplexity_curves.png`` (every cell's
train and validation perplexity overlaid) and ``results.json``. A cell that diverges is reported as diverged, with
its epoch; a cell that fails is reported as failed; the other cells go on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from models.errors import InvalidConfig, InvalidInput, PalavraError
from pipelines.classifier.plots import plot_loss_curves
from pipelines.classifier.train import torch_threads
from pipelines.lm.config import MODEL_KEYS, TRAINING_KEYS, LMActivation, LMOptimizer, LMRun
from pipelines.lm.train import Encoded, encode_lines, fit_lm, load_lines
from pipelines.reading.corpus import CorpusLimits
from pipelines.reading.datasets import DataCatalog
from pipelines.runs.config_io import validation_message
from pipelines.runs.grid import (
    GridAxis,
    GridKeys,
    cells,
    check_axes,
    check_names,
    finite,
    format_seconds,
    format_value,
    labels,
    leaves,
    legend_name,
    save_interrupted,
    train_cells,
    varying,
    write_results,
)
from pipelines.runs.progress import Progress, ProgressCallback, ignore_progress

log = logging.getLogger(__name__)

ACTIVATIONS: tuple[str, ...] = LMActivation.__args__  # type: ignore[attr-defined]
OPTIMIZERS: tuple[str, ...] = LMOptimizer.__args__  # type: ignore[attr-defined]
CURVES_PNG = "perplexity_curves.png"
RESULT_COLUMNS = (
    "status",
    "epochs",
    "best_epoch",
    "final_perplexity",
    "best_perplexity",
    "time/epoch",
    "time",
)


@cache
def lm_keys() -> GridKeys:
    """The language model's keys a grid may vary: ``model.*`` and ``training.*``, or their bare names."""
    flat = dict(leaves(LMRun))
    fields = {f"model.{k}": flat[k] for k in MODEL_KEYS} | {f"training.{k}": flat[k] for k in TRAINING_KEYS}
    aliases = {key.split(".", 1)[1]: key for key in fields}
    return GridKeys(fields, aliases)


def parse_axis(text: str) -> GridAxis:
    """One ``--grid KEY=V1,V2,...`` option over a language model's keys (:func:`pipelines.runs.grid.parse_axis`)."""
    return lm_keys().parse_axis(text)


def grid_axes(
    *,
    optimizers: Sequence[str] | None = None,
    activations: Sequence[str] | None = None,
    grid: Sequence[GridAxis] = (),
) -> list[GridAxis]:
    """The ``optimizers`` / ``activations`` shorthands (each only when given), then ``grid``.

    Raises:
        InvalidConfig: an unknown optimizer or activation, a key given twice, or too many cells.
    """
    axes: list[GridAxis] = []
    if optimizers is not None:
        check_names("optimizer", optimizers, OPTIMIZERS)
        axes.append(lm_keys().axis("training.optimizer", list(optimizers)))
    if activations is not None:
        check_names("activation", activations, ACTIVATIONS)
        axes.append(lm_keys().axis("model.activation", list(activations)))
    return check_axes([*axes, *grid])


def apply(run: LMRun, assignment: Mapping[str, Any]) -> LMRun:
    """``run`` with each grid key of ``assignment`` set, validated as a whole.

    Raises:
        InvalidConfig: the combination does not validate.
    """
    spec = run.model_dump(exclude={"ngram"})  # a comparison trains networks alone: no n-gram order to check
    for key, value in assignment.items():
        spec[key.split(".", 1)[1]] = value
    try:
        return LMRun.model_validate(spec)
    except ValidationError as exc:
        raise InvalidConfig(validation_message(exc, source="this cell")) from None


@dataclass
class LMCell:
    """One trained configuration of the grid: its values and what happened."""

    values: dict[str, Any]
    status: str = "ok"
    diverged_at: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0
    vocabulary: int | None = None
    error: str = ""

    def row(self) -> dict[str, Any]:
        best = next((h for h in self.history if h["epoch"] == self.best_epoch), None)
        last = self.history[-1] if self.history else {}
        epochs = len(self.history)
        ok = self.status == "ok"
        return {
            "cell": dict(self.values),
            "status": self.status,
            "diverged_at": self.diverged_at,
            "epochs": epochs,
            "best_epoch": self.best_epoch if ok else None,
            "final_perplexity": last.get("val_perplexity") if ok else None,
            "best_perplexity": best.get("val_perplexity") if ok and best else None,
            "vocabulary": self.vocabulary,
            "seconds": round(self.seconds, 2),
            "seconds_per_epoch": round(self.seconds / epochs, 3) if epochs else None,
            "error": self.error,
        }


def _status(cell: LMCell) -> str:
    return f"diverged at epoch {cell.diverged_at}" if cell.status == "diverged" else cell.status


class _EncodedCache:
    """The corpus's encodings, one per (vocabulary size, minimum count, context) the cells ask for."""

    def __init__(self, train_lines: list[str], held_lines: list[str]) -> None:
        self.train_lines, self.held_lines = train_lines, held_lines
        self.done: dict[tuple[int, int, int], Encoded] = {}

    def get(self, run: LMRun) -> Encoded:
        key = (run.max_vocab, run.min_count, run.context)
        if key not in self.done:
            self.done[key] = encode_lines(run, self.train_lines, self.held_lines)
        return self.done[key]


def _train_cell(
    values: dict[str, Any], base: LMRun, data: _EncodedCache, progress: ProgressCallback = ignore_progress
) -> LMCell:
    """One cell, never raising for what the cell's own values cause: the grid goes on."""
    cell = LMCell(values)
    started = time.perf_counter()
    try:
        run = apply(base, values)
        encoded = data.get(run)
        cell.vocabulary = len(encoded.vocab.tokens)
        started = time.perf_counter()  # the time of training, not of the encoding cells share
        with torch_threads(run.threads):
            fit = fit_lm(run, encoded, progress=progress)
    except InvalidInput as exc:
        cell.status, cell.error = "failed", exc.detail
    except (PalavraError, RuntimeError, ValueError, MemoryError) as exc:  # torch raises RuntimeError
        log.warning("grid cell %s failed", values, exc_info=True)
        cell.status, cell.error = "failed", f"{type(exc).__name__}: {exc}"
    else:
        cell.history, cell.best_epoch = fit.history, fit.best_epoch
        if fit.diverged_at is not None:
            last = fit.history[-1]
            cell.status, cell.diverged_at = "diverged", fit.diverged_at
            cell.error = (
                f"train loss {last.get('train_loss')} at epoch {fit.diverged_at} "
                f"(with {run.optimizer} at lr {run.lr:g})"
            )
    cell.seconds = time.perf_counter() - started
    return cell


def compare_lms(
    run: LMRun,
    *,
    axes: Sequence[GridAxis],
    out_dir: Path,
    catalog: DataCatalog,
    cache_dir: Path,
    limits: CorpusLimits | None = None,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Train one language model per cell of the ``axes`` grid on ``run``'s corpus; write the report into ``out_dir``.

    Nothing is registered: the cells are compared, not kept.

    Raises:
        InvalidConfig: a key given twice or too many cells (before anything is read).
        CorpusError / EmptyCorpus: as for training (the corpus is prepared once, before the first cell).
    """
    report = progress or ignore_progress
    if out_dir.exists() and not out_dir.is_dir():
        raise InvalidInput(f"{out_dir} is a file; give --out a folder (it is created when missing)")
    axes = check_axes(axes)
    assignments = cells(axes)
    train_lines, held_lines, facts = load_lines(
        run, catalog=catalog, cache_dir=cache_dir, report=report, limits=limits
    )
    data = _EncodedCache(train_lines, held_lines)
    described = {
        "corpus": run.corpus,
        "train_lines": len(train_lines),
        "held_out_lines": len(held_lines),
        "sources": facts["sources"],
    }

    def keep(done: list[LMCell]) -> None:
        save_interrupted(
            out_dir,
            done,
            len(assignments),
            described,
            lambda: write_report(run, axes, done, described, out_dir),
            report,
        )

    done: list[LMCell] = train_cells(
        assignments, axes, lambda values, progress: _train_cell(values, run, data, progress), report, keep
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    files = write_report(run, axes, done, described, out_dir)
    report(Progress(stage="compare", fraction=1.0, message=f"report in {out_dir}"))
    rows = write_results(out_dir, described, done)
    return {**files, "runs": finite(rows)}


def table_columns(axes: Sequence[GridAxis]) -> list[str]:
    """The table's columns: the short names of the keys that vary, then the results."""
    return [*labels(varying(axes)).values(), *RESULT_COLUMNS]


def _fmt(value: Any) -> str:
    if value is None or value == "":
        return "–"
    if isinstance(value, float):
        return f"{value:.2f}" if value < 1000 else f"{value:.4g}"
    return str(value)


def markdown_table(cells_: Sequence[LMCell], axes: Sequence[GridAxis]) -> str:
    """One row per cell: the values of the keys that vary, then what happened."""
    keys = varying(axes)
    columns = table_columns(axes)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for cell in cells_:
        row = cell.row()
        epochs = row["epochs"]
        results = {
            **{c: _fmt(row.get(c)) for c in RESULT_COLUMNS},
            "status": _status(cell),
            "time/epoch": format_seconds(cell.seconds / epochs) if epochs else "–",
            "time": format_seconds(cell.seconds),
        }
        values = [format_value(cell.values[k]) for k in keys]
        lines.append("| " + " | ".join([*values, *(results[c] for c in RESULT_COLUMNS)]) + " |")
    return "\n".join(lines)


def write_report(
    run: LMRun, axes: Sequence[GridAxis], cells_: Sequence[LMCell], data: dict[str, Any], out_dir: Path
) -> dict[str, Any]:
    """Write ``report.md`` and ``perplexity_curves.png`` into ``out_dir``; returns their paths and the columns."""
    title = f"{', '.join(run.corpus)} ({data['train_lines']:,} training lines)"
    curves = {legend_name(c.values, axes): c.history for c in cells_}
    diverged = {legend_name(c.values, axes): c.diverged_at for c in cells_ if c.diverged_at is not None}
    plot = out_dir / CURVES_PNG
    plot_loss_curves(
        curves,
        plot,
        title=title,
        diverged=diverged,
        keys=("train_perplexity", "val_perplexity"),
        ylabel="perplexity",
        titles=("train perplexity", "validation perplexity"),
        share_y=False,
    )
    keys = varying(axes)
    fixed = [f"`{a.key}` = {format_value(a.values[0])}" for a in axes if len(a.values) == 1]
    gridded = {a.key.split(".", 1)[1] for a in axes}
    base = ", ".join(
        f"{k} {format_value(getattr(run, k))}" for k in (*MODEL_KEYS, *TRAINING_KEYS) if k not in gridded
    )
    lines = [
        f"# Language-model comparison: {' x '.join(f'`{k}`' for k in keys) or 'one cell'}",
        "",
        f"Corpus: `{', '.join(run.corpus)}` ({data['train_lines']:,} training lines, {data['held_out_lines']:,} "
        f"held out for validation perplexity), prepared once for every cell. Settings the grid does not set: "
        f"{base}. `best_perplexity` is the validation perplexity of the kept (best) epoch, `final_perplexity` "
        "that of the last epoch run.",
    ]
    if fixed:
        lines += ["", "Fixed by the grid: " + ", ".join(fixed) + "."]
    lines += ["", markdown_table(cells_, axes), ""]
    problems = [c for c in cells_ if c.status != "ok"]
    lines += [f"- {legend_name(c.values, axes)}: {_status(c)}: {c.error}" for c in problems]
    if problems:
        lines.append("")
    lines += [f"![perplexity curves]({CURVES_PNG})", ""]
    (out_dir / "report.md").write_text("\n".join(lines), encoding="utf-8")
    return {"report": str(out_dir / "report.md"), "plot": str(plot), "columns": table_columns(axes)}
