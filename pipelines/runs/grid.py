"""Grids over a run config: ``training.lr=0.1,0.01`` x ``model.hidden=64|256,64`` -> one run per cell.

Shared by every comparison (classifiers, language models). A grid axis is one config key (dotted) and the values it
takes. Which keys a grid may vary, and their types and bounds, come from a :class:`GridKeys` built from the run
config's pydantic models; values are checked one by one against the key's own type and bounds when the grid is read,
so a typo stops everything before training starts.

Text syntax (the CLI's ``--grid``): ``KEY=V1,V2,...``. For list keys (``model.hidden``) values are separated by
``|`` and a value's items by ``,`` (``64|256,64``; ``[]`` or nothing is the empty list). ``none`` (or ``null``,
``off``) is the null value of keys that take one (``training.patience=none,2``).
"""

from __future__ import annotations

import difflib
import itertools
import json
import math
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import annotated_types
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from models.errors import InvalidConfig
from pipelines.runs.progress import Progress, ProgressCallback

NONE_WORDS = ("none", "null", "off")
#: the most runs one comparison may train: grids multiply, so a few short axes can ask for millions of cells
MAX_CELLS = 1000


@dataclass(frozen=True)
class GridAxis:
    """One config key and the values the grid gives it (already of the key's type)."""

    key: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class _Field:
    annotation: Any
    info: FieldInfo

    @property
    def adapter(self) -> TypeAdapter[Any]:
        meta = [m for m in self.info.metadata if m is not None]
        target: Any = Annotated[(self.annotation, *meta)] if meta else self.annotation
        return TypeAdapter(target)


def leaves(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, _Field]]:
    """Every leaf field of ``model`` (nested models walked), dotted and prefixed."""
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from leaves(annotation, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", _Field(annotation, info)


@dataclass(frozen=True)
class GridKeys:
    """The keys a grid may vary (dotted name -> field) and, optionally, other names for them (``lr`` ->
    ``training.lr``)."""

    fields: dict[str, _Field]
    aliases: dict[str, str] = field(default_factory=dict)

    def name(self, key: str) -> str:
        """``key`` as the grid names it (an alias resolved).

        Raises:
            InvalidConfig: an unknown key, naming the closest and every key.
        """
        key = self.aliases.get(key, key)
        if key in self.fields:
            return key
        close = difflib.get_close_matches(key, [*self.fields, *self.aliases], n=1)
        hint = f" (did you mean {self.aliases.get(close[0], close[0])}?)" if close else ""
        raise InvalidConfig(
            f"unknown grid key {key!r}{hint}; keys are those of the run config: {', '.join(self.fields)}"
        )

    def allowed(self, key: str) -> str:
        return allowed(self, key)

    def coerce(self, key: str, value: Any) -> Any:
        return coerce(self, key, value)

    def parse_axis(self, text: str) -> GridAxis:
        return parse_axis(self, text)

    def axis(self, key: str, values: Sequence[Any]) -> GridAxis:
        return axis(self, key, values)


def _is_list(annotation: Any) -> bool:
    return typing.get_origin(annotation) is list


def _bounds(info: FieldInfo) -> str:
    found: dict[str, Any] = {}
    for meta in info.metadata:
        for attr in ("gt", "ge", "lt", "le"):
            if isinstance(meta, getattr(annotated_types, attr.capitalize())):
                found[attr] = getattr(meta, attr)
    if "ge" in found and "le" in found:
        return f" from {found['ge']} to {found['le']}"
    signs = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
    return "".join(
        f" {signs[a]} {v}" if i == 0 else f" and {signs[a]} {v}" for i, (a, v) in enumerate(found.items())
    )


def allowed(keys: GridKeys, key: str) -> str:
    """What ``key`` accepts, in words (for error messages)."""
    key = keys.name(key)
    field = keys.fields[key]
    options: list[str] = []
    choices: list[str] = []

    def walk(annotation: Any) -> None:
        origin = typing.get_origin(annotation)
        if origin is typing.Literal:
            choices.extend(str(a) for a in typing.get_args(annotation))
        elif origin is Annotated:
            base = typing.get_args(annotation)[0]
            options.append(_kind(base) + _bounds(FieldInfo.from_annotation(annotation)))
        elif annotation is type(None):
            options.append("none")
        elif origin is dict:
            options.append("a table {key: value} (in a JSON or TOML grid)")
        elif origin is not None and origin is not list and typing.get_args(annotation):
            for arg in typing.get_args(annotation):
                walk(arg)
        else:
            options.append(_kind(annotation) + _bounds(field.info))

    walk(field.annotation)
    if choices:
        options.insert(0, ("one of " if len(choices) > 1 else "") + ", ".join(choices))
    return " or ".join(options)


def _kind(annotation: Any) -> str:
    if annotation is bool:
        return "true / false"
    if annotation is int:
        return "an integer"
    if annotation is float:
        return "a number"
    if _is_list(annotation):
        return "lists of integers like 256,64 separated by '|' ([] for none)"
    return "a " + getattr(annotation, "__name__", str(annotation))


def _accepts_none(field: _Field) -> bool:
    try:
        field.adapter.validate_python(None)
    except ValidationError:
        return False
    return True


def _raw_value(field: _Field, text: str) -> Any:
    text = text.strip()
    if text.lower() in NONE_WORDS and not _is_list(field.annotation):
        # null where the key takes it (patience = none); else the word itself (class_weights = "none")
        return None if _accepts_none(field) else text.lower()
    if _is_list(field.annotation):
        inner = text.strip("[]")
        return [part.strip() for part in inner.split(",")] if inner.strip() else []
    return text


def coerce(keys: GridKeys, key: str, value: Any) -> Any:
    """``value`` (a text from the command line or a JSON value) as the type ``key`` takes.

    Raises:
        InvalidConfig: an unknown key, or a value the key does not accept (naming what it accepts).
    """
    key = keys.name(key)
    field = keys.fields[key]
    raw = _raw_value(field, value) if isinstance(value, str) else value
    try:
        return field.adapter.validate_python(raw)
    except ValidationError:
        raise InvalidConfig(f"grid {key}: {value!r} is not allowed; give {allowed(keys, key)}") from None


def _split_values(field: _Field, text: str) -> list[str]:
    if _is_list(field.annotation):
        return text.split("|")
    return text.replace("|", ",").split(",")


def parse_axis(keys: GridKeys, text: str) -> GridAxis:
    """One ``--grid KEY=V1,V2,...`` option.

    Raises:
        InvalidConfig: no ``=``, an unknown key, no value, or a value the key does not accept.
    """
    key, sep, values = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise InvalidConfig(f"--grid {text!r}: write KEY=V1,V2,... (e.g. training.lr=0.1,0.01)")
    key = keys.name(key)
    field = keys.fields[key]
    parts = _split_values(field, values)
    if any(not p.strip() for p in parts):  # 'model.hidden=64|' added a linear cell nobody asked for: write []
        raise InvalidConfig(f"grid {key}: an empty value in {values!r}; give {allowed(keys, key)}")
    return axis(keys, key, parts)


def axis(keys: GridKeys, key: str, values: Sequence[Any]) -> GridAxis:
    """The axis ``key`` over ``values`` (texts or JSON values), each checked; duplicates are refused.

    Raises:
        InvalidConfig: as :func:`coerce`, no value, or a value given twice.
    """
    if isinstance(values, str) or not values:
        raise InvalidConfig(f"grid {key}: give a list of values ({allowed(keys, key)})")
    # a job's JSON grid as the CLI's: "" is not [] (a stray separator, refused)
    if any(isinstance(v, str) and not v.strip() for v in values):
        raise InvalidConfig(f"grid {key}: an empty value; give {allowed(keys, key)}")
    typed = tuple(coerce(keys, key, v) for v in values)
    seen: list[Any] = []
    for value in typed:
        if value in seen:
            raise InvalidConfig(f"grid {key}: the value {format_value(value)} is given twice")
        seen.append(value)
    return GridAxis(key, typed)


def check_axes(axes: Sequence[GridAxis]) -> list[GridAxis]:
    """The axes, refusing a key given twice (two ``--grid`` options, or a shorthand and a ``--grid``) and a grid of
    more than :data:`MAX_CELLS` cells (counted before any cell is built)."""
    keys = [a.key for a in axes]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise InvalidConfig(f"grid key {', '.join(twice)} is given twice; give all its values in one --grid")
    sizes = [len(a.values) for a in axes]
    total = math.prod(sizes)
    if total > MAX_CELLS:
        raise InvalidConfig(
            f"the grid has {total:,} cells ({' x '.join(map(str, sizes))}), more than the {MAX_CELLS:,} runs one "
            "comparison may train; give fewer values, or split the grid over several comparisons"
        )
    return list(axes)


def cells(axes: Sequence[GridAxis]) -> list[dict[str, Any]]:
    """Every combination of the axes' values (the first axis varies slowest), as ``{key: value}``."""
    return [
        dict(zip([a.key for a in axes], combo, strict=True))
        for combo in itertools.product(*(a.values for a in axes))
    ]


def varying(axes: Sequence[GridAxis]) -> list[str]:
    """The keys that take more than one value: the columns of the report."""
    return [a.key for a in axes if len(a.values) > 1]


def labels(keys: Sequence[str]) -> dict[str, str]:
    """Short column names: the last part of each key, or the whole key where two would share one."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: (short if last.count(short) == 1 else k) for k, short in zip(keys, last, strict=True)}


def format_value(value: Any) -> str:
    """A grid value as a user writes it: ``0.001``, ``256,64``, ``[]``, ``none``, ``full``."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(map(str, value)) if value else "[]"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def check_names(what: str, given: Sequence[str], known: Sequence[str]) -> None:
    unknown = [g for g in given if g not in known]
    if unknown or not given:
        raise InvalidConfig(
            f"unknown {what} {', '.join(map(repr, unknown))}; choose from {', '.join(known)}"
            if unknown
            else f"give at least one {what} ({', '.join(known)})"
        )


def legend_name(values: Mapping[str, Any], axes: Sequence[GridAxis]) -> str:
    """``lr=0.01, batch_size=32``: the values of the keys that vary (``run`` for a grid of one cell)."""
    keys = varying(axes)
    short = labels(keys)
    return ", ".join(f"{short[k]}={format_value(values[k])}" for k in keys) or "run"


def format_seconds(seconds: float | None) -> str:
    """A duration as a person reads it, to two significant digits: ``0.42 s``, ``3.4 s``, ``42 s``, ``2 min 05 s``."""
    if seconds is None:
        return "–"
    if seconds < 59.5:
        return f"{float(f'{seconds:.2g}'):g} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float (a diverged run's loss) as None: JSON has no NaN."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def write_results(out_dir: Path, described: Mapping[str, Any], cells: Sequence[Any]) -> list[dict[str, Any]]:
    """Write a comparison's ``results.json`` (the data, then each cell's row and history); returns the rows.

    ``cells`` hold a ``row()`` and a ``history``, as both comparisons' cells do.
    """
    rows: list[dict[str, Any]] = [c.row() for c in cells]
    runs = [{**r, "history": c.history} for r, c in zip(rows, cells, strict=True)]
    (out_dir / "results.json").write_text(
        json.dumps(finite({"data": described, "runs": runs}), ensure_ascii=False, indent=1, default=str),
        encoding="utf-8",
    )
    return rows


def train_cells(
    assignments: Sequence[dict[str, Any]],
    axes: Sequence[GridAxis],
    train: Callable[[dict[str, Any], ProgressCallback], Any],
    report: ProgressCallback,
    interrupted: Callable[[list[Any]], None],
) -> list[Any]:
    """Train every cell of a comparison in turn (``train(values, progress)``), reporting each cell's start and its
    epochs; both comparisons run their grids through it.

    A progress report that fails inside a cell (:class:`ReportFailed`) fails the comparison with its own error.
    Ctrl-C calls ``interrupted`` with the cells that finished (to keep them), then goes on stopping.
    """
    done: list[Any] = []
    count = len(assignments)
    try:
        for i, values in enumerate(assignments):
            name = legend_name(values, axes)
            report(Progress(stage="compare", fraction=i / count, message=f"{i + 1}/{count} {name}"))
            done.append(train(values, cell_progress(report, i, count, name)))
    except ReportFailed as failed:  # the job database or the disk, not a cell: the comparison fails with it
        raise failed.cause from None
    except KeyboardInterrupt:  # Ctrl-C: the cells that finished are kept (they were lost), then it stops
        interrupted(done)
        raise
    return done


class ReportFailed(BaseException):
    """The comparison's own progress report failed inside a cell (the job database, a full disk): not the cell's
    fault, so it passes the cell's error handling (a BaseException) and the comparison raises ``cause``."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


def cell_progress(report: ProgressCallback, index: int, count: int, name: str) -> ProgressCallback:
    """A cell's own training reports passed on as the comparison's: its epochs move the bar inside the cell's share
    (``index`` of ``count``); the bar sat at a cell's start until it ended, for minutes on a real corpus.

    A report that fails raises :class:`ReportFailed`, which the comparison turns back into the error.
    """

    def forward(p: Progress) -> None:
        if p.stage != "train" or p.fraction is None:  # a refit starts again at 0: the bar would go back
            return
        # a cell records its own errors as "failed" and goes on; an error of the report is not its own
        try:
            _forward(p, p.fraction)
        except Exception as exc:
            raise ReportFailed(exc) from exc

    def _forward(p: Progress, fraction: float) -> None:
        report(
            Progress(
                stage="compare",
                fraction=(index + min(1.0, max(0.0, fraction))) / count,
                epoch=p.epoch,
                # no loss: the bar would show it in place of the cell's name (the epoch's message carries it)
                # an epoch's end only: the reports inside an epoch move the bar and add no log line
                message=f"{index + 1}/{count} {name}: {p.message}" if p.message and p.epoch else None,
            )
        )

    return forward


def mark_interrupted(report_md: Path, finished: int, planned: int) -> None:
    """Say at the top of a comparison's ``report.md`` that Ctrl-C cut it short, and how far it got."""
    text = report_md.read_text(encoding="utf-8")
    head, _, rest = text.partition("\n")
    note = (
        f"**Interrupted** (Ctrl-C) after {finished} of {planned} cells: the table holds the cells that finished; "
        "run the comparison again for the rest."
    )
    report_md.write_text(f"{head}\n\n{note}\n{rest}", encoding="utf-8")


def save_interrupted(
    out_dir: Path,
    cells: Sequence[Any],
    planned: int,
    described: Mapping[str, Any],
    write_report: Callable[[], Mapping[str, Any]],
    report: ProgressCallback,
) -> None:
    """After Ctrl-C: the report and results.json of the ``cells`` that finished, marked as cut short (they were
    lost); nothing when none finished. ``write_report`` writes the comparison's own report and returns its paths."""
    if not cells:
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    mark_interrupted(Path(write_report()["report"]), len(cells), planned)
    write_results(out_dir, described, cells)
    message = f"interrupted: the {len(cells)} of {planned} cells that finished are in {out_dir}"
    report(Progress(stage="compare", final=True, message=message))
