"""Labelled text files (CSV, TSV, JSON lines) -> texts and labels, with errors that say what to fix.

Labels keep their original values (CSV gives strings such as "0" or "Yes"; JSON lines may give integers), and a
classifier reports predictions by those values.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.errors import DatasetError
from pipelines.text.normalize import is_blank, unicode_problem

Label = str | int
_CSV_SUFFIXES = {".csv": ",", ".tsv": "\t"}
_JSONL_SUFFIXES = {".jsonl", ".ndjson", ".json"}
_SHOW = 5


@dataclass(frozen=True)
class LabelledTexts:
    """Texts with their labels, read from ``source``."""

    texts: list[str]
    labels: list[Label]
    source: str
    skipped_empty: tuple[int, ...] = ()  # line numbers of rows left out because their text was empty

    def __len__(self) -> int:
        return len(self.texts)

    def classes(self) -> list[Label]:
        """The distinct labels, in a stable order (numbers numerically, then strings)."""
        return sort_labels(set(self.labels))

    def subset(self, index: Sequence[int]) -> LabelledTexts:
        return LabelledTexts([self.texts[i] for i in index], [self.labels[i] for i in index], self.source)


def sort_labels(labels: set[Label] | Sequence[Label]) -> list[Label]:
    """Numbers (and numeric strings) by value first, then the rest alphabetically."""

    def key(label: Label) -> tuple[int, float, str]:
        try:
            value = float(label)
        except ValueError:
            return (1, 0.0, str(label))
        return (0, value, str(label)) if math.isfinite(value) else (1, 0.0, str(label))

    return sorted(labels, key=key)


# the same two settings on the CLI and in a config file or an HTTP job's config: a message names both spellings
COLUMN_SETTINGS = "--text-column / --label-column (text_column / label_column in a config or a job)"


def _columns_error(path: Path, missing: list[str], found: Sequence[str]) -> DatasetError:
    shown = ", ".join(repr(c) for c in found if c) or "none"
    what = " and ".join(repr(m) for m in missing)
    named = [c for c in found if c]
    # one column whose name holds every missing one, split by ';': a file separated by semicolons, read as CSV
    split = len(named) == 1 and all(m in named[0].split(";") for m in missing)
    hint = (
        "; the file seems separated by ';': palavra reads .csv separated by ',' and .tsv by tabs"
        if split
        else ""
    )
    return DatasetError(
        f"{path} has no column {what}; its columns are {shown}{hint}. Choose them with {COLUMN_SETTINGS}",
        path=str(path),
        missing=missing,
    )


def _csv_rows(path: Path, delimiter: str, columns: tuple[str, str]) -> Generator[tuple[int, Any, Any]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh, delimiter=delimiter)
        header = reader.fieldnames or []
        if not header:  # not even a header line: said as "its columns are none"
            raise DatasetError(
                f"{path} is empty: a header line naming the columns, then one row per text", path=str(path)
            )
        missing = [c for c in columns if c not in header]
        if missing:
            raise _columns_error(path, missing, header)
        for row in reader:
            yield reader.line_num, row.get(columns[0]), row.get(columns[1])


def _jsonl_rows(path: Path, columns: tuple[str, str]) -> Generator[tuple[int, Any, Any]]:
    seen: set[str] = set()
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(
                    f"{path}, line {number}: not valid JSON ({exc.msg})", path=str(path)
                ) from exc
            if not isinstance(obj, dict):
                raise DatasetError(f"{path}, line {number}: expected a JSON object per line", path=str(path))
            missing = [c for c in columns if c not in obj]
            if missing and all(c in seen for c in missing):  # earlier lines have it: this line is the fault
                what = " and ".join(repr(m) for m in missing)
                raise DatasetError(
                    f"{path}, line {number}: no field {what}, which earlier lines have; give every line both "
                    "the text and the label field",
                    path=str(path),
                    line=number,
                    missing=missing,
                )
            if missing:
                seen.update(obj)
                raise _columns_error(path, missing, sorted(seen))
            seen.update(obj)
            yield number, obj[columns[0]], obj[columns[1]]


def _label(value: Any) -> Label | None:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def check_columns(path: Path, *, text_column: str, label_column: str) -> None:
    """Raise the error :func:`read_labelled` would for a missing text or label column, reading only the header (a
    CSV) or the first record (JSON lines): a job is checked before it is queued, not read whole. A file that is not
    there, cannot be opened or is not text is left to the reading."""
    suffix = path.suffix.lower()
    columns = (text_column, label_column)
    if not path.is_file():
        return
    if suffix in _CSV_SUFFIXES:
        rows = _csv_rows(path, _CSV_SUFFIXES[suffix], columns)
    elif suffix in _JSONL_SUFFIXES:
        rows = _jsonl_rows(path, columns)
    else:
        return
    try:
        next(rows, None)  # a missing column (or a first line that is not JSON) raises DatasetError here
    except (OSError, UnicodeDecodeError, csv.Error):  # not readable, or not text: the job's reading says so
        return
    finally:
        rows.close()


def read_labelled(
    path: Path, *, text_column: str, label_column: str, skip_empty: bool = False
) -> LabelledTexts:
    """Read a labelled dataset; every row needs a label, and a non-empty text unless ``skip_empty``.

    Args:
        skip_empty: leave out rows whose text is empty (or only whitespace / invisible characters) and record
            their line numbers in ``skipped_empty``, as fastText and scikit-learn users expect; otherwise refuse them.

    Raises:
        DatasetError: unknown format, unreadable file, a missing column, or rows with an empty text or label
            (their line numbers are named).
    """
    suffix = path.suffix.lower()
    if not path.is_file():
        raise DatasetError(f"{path}: no such file", path=str(path))
    columns = (text_column, label_column)
    if suffix in _CSV_SUFFIXES:
        rows = _csv_rows(path, _CSV_SUFFIXES[suffix], columns)
    elif suffix in _JSONL_SUFFIXES:
        rows = _jsonl_rows(path, columns)
    else:
        raise DatasetError(
            f"{path}: use a .csv, .tsv or .jsonl file (one JSON object per line)", path=str(path)
        )
    texts: list[str] = []
    labels: list[Label] = []
    empty_text: list[int] = []
    empty_label: list[int] = []
    broken: list[tuple[int, str]] = []
    try:
        for line, text, raw_label in rows:
            label = _label(raw_label)
            if text is None or is_blank(str(text)):
                empty_text.append(line)
                if skip_empty:
                    continue
            elif problem := unicode_problem(str(text)):
                broken.append((line, problem))
            if label is None:
                empty_label.append(line)
            texts.append("" if text is None else str(text))
            labels.append("" if label is None else label)
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path} is not UTF-8 text; convert it (e.g. with iconv)", path=str(path)) from exc
    except csv.Error as exc:
        raise DatasetError(f"{path}: malformed CSV ({exc})", path=str(path)) from exc
    if broken:
        line, problem = broken[0]
        raise DatasetError(
            f"{path}, line {line}: the {text_column!r} text is not valid text ({problem}); "
            f"{len(broken)} row(s) are affected, fix or drop them",
            path=str(path),
            lines=[n for n, _ in broken[:100]],
        )
    if not skip_empty:
        _check_rows(path, empty_text, text_column, "an empty text")
    _check_rows(path, empty_label, label_column, "no label")
    if not texts:
        what = "rows with a text" if empty_text else "rows"
        raise DatasetError(f"{path} has no {what}", path=str(path))
    return LabelledTexts(texts, labels, str(path), skipped_empty=tuple(empty_text) if skip_empty else ())


def _check_rows(path: Path, lines: list[int], column: str, what: str) -> None:
    if not lines:
        return
    shown = ", ".join(str(n) for n in lines[:_SHOW]) + (" ..." if len(lines) > _SHOW else "")
    raise DatasetError(
        f"{path}: {len(lines)} row(s) have {what} in column {column!r} (lines {shown}); remove or fill them",
        path=str(path),
        lines=lines[:100],
    )


def check_trainable(data: LabelledTexts) -> list[Label]:
    """The classes of a training set; at least two, each with at least two examples.

    Raises:
        DatasetError: a single class, two labels that read the same (``1`` and ``"1"``), or a class with one
            example.
    """
    counts = Counter(data.labels)
    if len(counts) < 2:
        only = next(iter(counts))
        raise DatasetError(
            f"{data.source}: every row has the label {only!r}; a classifier needs at least two classes",
            path=data.source,
        )
    # a JSON label column holding 1 and "1": two classes that read the same, refused late and obscurely before
    same: dict[str, list[Label]] = {}
    for label in counts:
        same.setdefault(str(label), []).append(label)
    clash = next((labels for labels in same.values() if len(labels) > 1), None)
    if clash is not None:
        shown = " and ".join(f"{x!r} ({type(x).__name__})" for x in clash)
        raise DatasetError(
            f"{data.source}: the labels {shown} read the same but are different values; write each label one way "
            "(all numbers or all text)",
            path=data.source,
        )
    lonely = [label for label, n in counts.items() if n < 2]
    if lonely:
        raise DatasetError(
            f"{data.source}: classes with a single example: {', '.join(repr(x) for x in sort_labels(lonely))}; "
            "add examples or merge them into another class",
            path=data.source,
        )
    return sort_labels(set(counts))


def check_known_labels(data: LabelledTexts, known: Sequence[Label]) -> None:
    """Raise :class:`DatasetError` when ``data`` has labels outside ``known`` (compared as text)."""
    names = {str(k) for k in known}
    unseen = sort_labels({label for label in data.labels if str(label) not in names})
    if unseen:
        raise DatasetError(
            f"{data.source} has labels the model never saw in training: {', '.join(repr(u) for u in unseen[:10])}"
            f"; the model knows {', '.join(repr(k) for k in known)}",
            path=data.source,
            unseen=[str(u) for u in unseen[:100]],
        )


def label_indices(data: LabelledTexts, classes: Sequence[Label]) -> list[int]:
    """Each row's class index (labels compared as text, so "1" in a CSV matches 1 from JSON lines)."""
    position = {str(c): i for i, c in enumerate(classes)}
    return [position[str(label)] for label in data.labels]
