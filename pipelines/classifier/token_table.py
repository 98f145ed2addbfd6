"""Per-token memory of a feature space: each distinct token's integer id, feature rows and hash.

Encoding a batch then costs one dictionary lookup per whitespace-free chunk in Python; everything else
(gathering rows, word n-gram keys, weights) is numpy over the whole batch. Chunks (``Olá,`` before
normalisation) map straight to the ids of their normalised tokens, so tokenising and normalising also run once
per distinct chunk.

A table is bounded: when it is full, the feature space starts a fresh one (frequent tokens come back at once),
so a long-running server keeps a fixed memory. Readers take the table object once per batch; entries are only
ever appended (the id is published last), so a reader never sees a half-written entry.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

IdArray = npt.NDArray[np.int64]


def _grown(array: npt.NDArray[Any], used: int, need: int) -> npt.NDArray[Any]:
    """``array`` with room for ``need`` entries (doubling), its first ``used`` entries kept."""
    if need <= array.shape[0]:
        return array
    out = np.zeros(max(need, 2 * array.shape[0]), dtype=array.dtype)
    out[:used] = array[:used]
    return out


class TokenTable:
    """Distinct tokens -> ids; each id's rows stored end to end (start, length), and its hash."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.index: dict[str, int] = {}
        self.raw: dict[str, tuple[int, ...]] = {}
        self.size = 0
        self.stored = 0
        self.store: IdArray = np.zeros(4096, dtype=np.int64)
        self.starts: IdArray = np.zeros(1024, dtype=np.int64)
        self.lengths: IdArray = np.zeros(1024, dtype=np.int64)
        self.hashes: npt.NDArray[np.uint64] = np.zeros(1024, dtype=np.uint64)
        self.warmed = (0, 0)  # tokens and chunks put in by a warm-up: they do not count toward the limit

    @property
    def full(self) -> bool:
        """Whether ``limit`` tokens or chunks were learnt from traffic (a warm-up's entries are not counted)."""
        return self.size - self.warmed[0] >= self.limit or len(self.raw) - self.warmed[1] >= self.limit

    def add(self, tokens: list[str], flat: IdArray, lengths: IdArray, hashes: list[int]) -> None:
        """Append new tokens, their rows laid end to end in ``flat`` with ``lengths[i]`` rows for token ``i``.

        The caller holds the feature space's lock; the tokens' ids are published last.
        """
        start, end = self.size, self.size + len(tokens)
        store = _grown(self.store, self.stored, self.stored + flat.shape[0])
        store[self.stored : self.stored + flat.shape[0]] = flat
        starts = _grown(self.starts, start, end)
        starts[start:end] = self.stored + np.cumsum(lengths) - lengths
        sizes = _grown(self.lengths, start, end)
        sizes[start:end] = lengths
        hashed = _grown(self.hashes, start, end)
        hashed[start:end] = np.asarray(hashes, dtype=np.uint64)
        self.store, self.starts, self.lengths, self.hashes = store, starts, sizes, hashed
        self.stored += flat.shape[0]
        self.size = end
        for offset, token in enumerate(tokens):
            self.index[token] = start + offset

    def rows_of(self, tids: IdArray) -> tuple[IdArray, IdArray]:
        """The rows of the tokens ``tids`` laid end to end, and each token's row count."""
        lengths = self.lengths[tids]
        starts = self.starts[tids]
        firsts = np.cumsum(lengths) - lengths
        positions = np.repeat(starts - firsts, lengths) + np.arange(int(lengths.sum()), dtype=np.int64)
        return self.store[positions], lengths
