"""Every vocabulary word's nearest neighbours, computed once: ``/v1/neighbors`` then answers by reading a row.

A query word that is in the vocabulary always gets the same answer, so searching for it on every request is
wasted work. The table holds, for each row of the unit matrix, the ids and cosines of its ``width`` nearest other
rows (the word itself excluded, as ``/v1/neighbors`` excludes it), best first:

- ``neighbors_ids.npy`` (int32, ``rows x width``) and ``neighbors_scores.npy`` (float32), memory-mapped read-only,
  so the worker processes of a server share their pages like ``vectors_norm.npy``.
- Built by exact search (faiss ``IndexFlatIP``: blocked matrix products and a heap per query) up to
  :data:`EXACT_MAX_ROWS` rows, so its answers have recall 1.0, better than the HNSW index's; above that an exact
  table costs too much (it grows with rows squared) and the HNSW index fills it at its tuned ``ef_search``.
- Queries the table cannot answer (words known only by their subwords, ``k`` above the width) go to the index.

It is built beside the HNSW index (``models/ann.py``): into the artifact at registration (its ``neighbor_table``
component, files named by ``models/vectors.py``), or into the cache at load time for artifacts registered without one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from models.errors import IntegrityError
from models.vectors import TABLE_IDS, TABLE_SCORES

log = logging.getLogger(__name__)

#: Neighbours kept per word; ``/v1/neighbors`` with a larger ``k`` searches the index instead.
DEFAULT_WIDTH = 50
#: Above this many rows the table is filled from the HNSW index instead of by exact search.
EXACT_MAX_ROWS = 400_000
QUERY_BLOCK = 4096


class NeighborTable:
    """Read access to a built table: the ``k`` best neighbours of vocabulary rows, best first."""

    def __init__(self, ids: npt.NDArray[np.int32], scores: npt.NDArray[np.float32]) -> None:
        if ids.shape != scores.shape or ids.ndim != 2:
            raise IntegrityError(f"neighbour table ids {ids.shape} and scores {scores.shape} do not match")
        self.ids = ids
        self.scores = scores

    @property
    def rows(self) -> int:
        return int(self.ids.shape[0])

    @property
    def width(self) -> int:
        return int(self.ids.shape[1])

    def lookup(self, rows: Sequence[int], k: int) -> list[list[tuple[int, float]]] | None:
        """``(row id, cosine)`` pairs of the ``k`` best neighbours of each row, or None when ``k`` is too wide."""
        if k > self.width:
            return None
        out: list[list[tuple[int, float]]] = []
        for r in rows:
            ids = self.ids[r, :k].tolist()
            scores = self.scores[r, :k].tolist()
            out.append([(i, s) for i, s in zip(ids, scores, strict=True) if i >= 0])
        return out

    def write(self, ids_path: Path, scores_path: Path) -> None:
        np.save(ids_path, self.ids, allow_pickle=False)
        np.save(scores_path, self.scores, allow_pickle=False)

    @classmethod
    def checked(cls, ids: npt.NDArray[Any], scores: npt.NDArray[Any], *, rows: int) -> NeighborTable:
        """A table over read (memory-mapped) arrays, refused unless it has one row per vocabulary word."""
        table = cls(ids, scores)
        if table.rows != rows or scores.shape != ids.shape:
            raise IntegrityError(f"the neighbour table has {table.rows} rows, the model has {rows}")
        return table


def _drop_self(ids: npt.NDArray[np.int64], scores: npt.NDArray[np.float32], first: int) -> tuple[Any, Any]:
    """Remove each query row's own id from its ``width + 1`` results (or the last result when it is absent)."""
    n, wide = ids.shape
    own = np.arange(first, first + n)[:, None]
    is_self = ids == own
    drop = np.where(is_self.any(axis=1), is_self.argmax(axis=1), wide - 1)
    keep = np.ones(ids.shape, dtype=bool)
    keep[np.arange(n), drop] = False
    return ids[keep].reshape(n, wide - 1), scores[keep].reshape(n, wide - 1)


def build_table(
    unit: npt.NDArray[Any], width: int, *, index: Any | None = None
) -> tuple[NeighborTable, dict[str, Any]]:
    """The ``width`` nearest other rows of every row of ``unit`` (unit length), and facts for the metadata.

    Exact search up to :data:`EXACT_MAX_ROWS` rows (or when no ``index`` is given); else ``index.search``.
    """
    import faiss

    n = int(unit.shape[0])
    width = max(0, min(width, n - 1))
    if width == 0:
        raise ValueError(f"a neighbour table needs at least 2 rows, got {n}")
    started = time.perf_counter()
    exact = index is None or n <= EXACT_MAX_ROWS
    flat = None
    if exact:
        flat = faiss.IndexFlatIP(int(unit.shape[1]))
        for start in range(0, n, 100_000):
            flat.add(np.ascontiguousarray(unit[start : start + 100_000], dtype=np.float32))
    ids = np.empty((n, width), dtype=np.int32)
    scores = np.empty((n, width), dtype=np.float32)
    for start in range(0, n, QUERY_BLOCK):
        queries = np.ascontiguousarray(unit[start : start + QUERY_BLOCK], dtype=np.float32)
        if flat is not None:
            block_scores, block_ids = flat.search(queries, width + 1)
        else:
            block_ids, block_scores = index.search(queries, width + 1)  # type: ignore[union-attr]
        kept_ids, kept_scores = _drop_self(np.asarray(block_ids, dtype=np.int64), block_scores, start)
        ids[start : start + len(queries)] = kept_ids
        scores[start : start + len(queries)] = kept_scores
    seconds = time.perf_counter() - started
    info = {
        "width": width,
        "method": "exact" if exact else "hnsw",
        "build_s": round(seconds, 2),
        "files": [TABLE_IDS, TABLE_SCORES],
    }
    log.info("neighbour table of %d rows x %d built (%s) in %.1fs", n, width, info["method"], seconds)
    return NeighborTable(ids, scores), info
