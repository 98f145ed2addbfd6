"""Sentence pairs with similarity scores: ASSIN / ASSIN 2 XML, CSV or JSONL (``sentence1, sentence2, score``)."""

from __future__ import annotations

import csv
import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from models.errors import DatasetError

FIELDS = ("sentence1", "sentence2", "score")


@dataclass(frozen=True)
class Pair:
    """Two sentences, their gold similarity and, where the source has one, the entailment label."""

    sentence1: str
    sentence2: str
    score: float
    entailment: str | None = None


def _score(value: object, where: str) -> float:
    try:
        score = float(str(value))
    except ValueError:
        raise DatasetError(f"{where}: score {value!r} is not a number") from None
    if not math.isfinite(score):
        raise DatasetError(f"{where}: score {value!r} is not a finite number")
    return score


def _xml(path: Path) -> list[Pair]:
    try:
        root = ET.parse(path).getroot()  # noqa: S314  (a local data file the user named, not network input)
    except ET.ParseError as exc:
        raise DatasetError(f"{path}: not well-formed XML ({exc})") from exc
    out = []
    for i, node in enumerate(root.iter("pair"), start=1):
        t, h = node.findtext("t"), node.findtext("h")
        if t is None or h is None or node.get("similarity") is None:
            raise DatasetError(f"{path}: pair {node.get('id', i)} lacks <t>, <h> or a similarity attribute")
        where = f"{path}: pair {node.get('id', i)}"
        out.append(Pair(t.strip(), h.strip(), _score(node.get("similarity"), where), node.get("entailment")))
    return out


def _check(row: dict[str, object], where: str) -> Pair:
    missing = [f for f in FIELDS if row.get(f) in (None, "")]
    if missing:
        raise DatasetError(f"{where}: missing {', '.join(missing)} (pairs need sentence1, sentence2, score)")
    return Pair(str(row["sentence1"]).strip(), str(row["sentence2"]).strip(), _score(row["score"], where))


def _csv(path: Path) -> list[Pair]:
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or not set(FIELDS) <= set(reader.fieldnames):
            raise DatasetError(f"{path}: the header must name sentence1, sentence2 and score")
        return [_check(dict(row), f"{path}: line {n}") for n, row in enumerate(reader, start=2)]


def _jsonl(path: Path) -> list[Pair]:
    out = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}: line {n} is not JSON ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise DatasetError(f"{path}: line {n} is not a JSON object")
            out.append(_check(row, f"{path}: line {n}"))
    return out


def read_pairs(path: Path) -> list[Pair]:
    """Every pair of a ``.xml`` (ASSIN), ``.csv`` or ``.jsonl`` file.

    Raises:
        DatasetError: an unknown extension, a row without a sentence or score, a score that is not a number, or
            a file without pairs.
    """
    readers: dict[str, Callable[[Path], list[Pair]]] = {".xml": _xml, ".csv": _csv, ".jsonl": _jsonl}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise DatasetError(f"{path}: sentence pairs are read from .xml (ASSIN), .csv or .jsonl files")
    pairs = reader(path)
    if not pairs:
        raise DatasetError(f"{path}: no sentence pairs found")
    return pairs


def without(pairs: Sequence[Pair], held_out: Sequence[Pair]) -> tuple[list[Pair], int]:
    """(``pairs`` minus every pair that also occurs in ``held_out``, in either order; how many were removed).

    ASSIN 2's train-only file repeats 401 of the 500 dev pairs: an encoder trained on them and scored on dev is
    partly scored on its own training pairs.

    Raises:
        DatasetError: nothing is left to train on.
    """
    held = {frozenset((p.sentence1, p.sentence2)) for p in held_out}
    kept = [p for p in pairs if frozenset((p.sentence1, p.sentence2)) not in held]
    if not kept:
        raise DatasetError(
            "every training pair also occurs in the excluded pairs; nothing is left to train on"
        )
    return kept, len(pairs) - len(kept)
