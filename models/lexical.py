"""A collection's words: each document's terms (ids into one vocabulary) and the BM25 index (bm25s) built from them.

Both are written with the collection and read memory-mapped, so every serving worker shares one copy and a first
search does not tokenise the collection again. The terms are what an add or a delete rebuilds the index from
(only new documents are tokenised).

    terms.json          the vocabulary, a JSON list: term id i is its i-th string
    terms.npy           every document's term ids, concatenated (int32)
    term_offsets.npy    document i's terms are terms[term_offsets[i]:term_offsets[i + 1]] (int64, documents + 1)
    bm25/               the bm25s index (its own files) and documents.json
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

VOCAB_FILE = "terms.json"
TERMS_FILE = "terms.npy"
OFFSETS_FILE = "term_offsets.npy"
FILES = (VOCAB_FILE, TERMS_FILE, OFFSETS_FILE)
# the most postings :meth:`Bm25._floor` reads to find a lower bound of the k-th best score
FLOOR_BUDGET = 50_000
FLOOR_TERMS = 8
SIZE_FILE = "documents.json"  # in a bm25-<tag>/ folder: {"documents", "empty"}

IntArray = npt.NDArray[np.int64]


def _quiet_bm25s() -> Any:
    import bm25s

    # bm25s sets its own logger to DEBUG on import, which would print index-building chatter on every build
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


class Terms:
    """Each document's term ids over one vocabulary (compressed rows: ``ids`` cut at ``offsets``)."""

    def __init__(self, vocab: list[str], ids: npt.NDArray[np.int32], offsets: IntArray) -> None:
        self.vocab = vocab
        self.ids = ids
        self.offsets = offsets

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @classmethod
    def empty(cls) -> Terms:
        return cls([], np.zeros(0, np.int32), np.zeros(1, np.int64))

    @classmethod
    def of(cls, tokens: Sequence[Sequence[str]]) -> Terms:
        return cls.empty().extend(tokens)

    def extend(self, tokens: Sequence[Sequence[str]]) -> Terms:
        """These documents followed by ``tokens`` (new terms are appended to the vocabulary)."""
        vocab = list(self.vocab)
        index = {t: i for i, t in enumerate(vocab)}
        ids: list[int] = []
        lengths = np.zeros(len(tokens), np.int64)
        for n, toks in enumerate(tokens):
            for tok in toks:
                i = index.get(tok)
                if i is None:
                    i = index[tok] = len(vocab)
                    vocab.append(tok)
                ids.append(i)
            lengths[n] = len(toks)
        offsets = np.concatenate([self.offsets, self.offsets[-1] + np.cumsum(lengths)])
        return Terms(vocab, np.concatenate([self.ids, np.asarray(ids, np.int32)]), offsets)

    def take(self, rows: Sequence[int] | IntArray) -> Terms:
        """The documents at ``rows``, in that order (the vocabulary is kept as it is)."""
        rows = np.asarray(rows, np.int64)
        starts, ends = self.offsets[rows], self.offsets[rows + 1]
        lengths = ends - starts
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        if not len(rows) or not offsets[-1]:
            return Terms(self.vocab, np.zeros(0, np.int32), offsets)
        # the position of every kept term in ``ids``: each row's start, then +1 along the row
        shift = np.repeat(starts - offsets[:-1], lengths)
        return Terms(self.vocab, np.asarray(self.ids[np.arange(offsets[-1]) + shift], np.int32), offsets)

    def rows(self) -> list[list[int]]:
        """Each document's term ids as a list."""
        flat = np.asarray(self.ids).tolist()
        bounds = np.asarray(self.offsets).tolist()
        return [flat[bounds[i] : bounds[i + 1]] for i in range(len(self))]

    def write(self, folder: Path) -> None:
        """Write the three files into ``folder``."""
        (folder / VOCAB_FILE).write_text(json.dumps(self.vocab, ensure_ascii=False), "utf-8")
        np.save(folder / TERMS_FILE, np.ascontiguousarray(self.ids, np.int32), allow_pickle=False)
        np.save(folder / OFFSETS_FILE, np.ascontiguousarray(self.offsets, np.int64), allow_pickle=False)

    @classmethod
    def read(cls, folder: Path) -> Terms:
        """The terms written in ``folder`` (the id arrays memory-mapped)."""
        vocab = json.loads((folder / VOCAB_FILE).read_text(encoding="utf-8"))
        ids = np.load(folder / TERMS_FILE, mmap_mode="r", allow_pickle=False)
        offsets = np.load(folder / OFFSETS_FILE, mmap_mode="r", allow_pickle=False)
        return cls(vocab, ids, offsets)

    def problem(self) -> str | None:
        """What makes these rows impossible (offsets that do not start at 0, go down, or end elsewhere than the
        last term id; a term id outside the vocabulary), in words, or None."""
        offsets = np.asarray(self.offsets)
        if offsets.ndim != 1 or not len(offsets) or int(offsets[0]) != 0 or int(offsets[-1]) != len(self.ids):
            return f"does not cut the {len(self.ids):,} term ids into documents (from 0 to the last)"
        if np.any(offsets[1:] < offsets[:-1]):
            return "holds a document that ends before it starts"
        ids = np.asarray(self.ids)
        if len(ids) and (int(ids.min()) < 0 or int(ids.max()) >= len(self.vocab)):
            return f"holds a term id outside the vocabulary of {len(self.vocab):,} terms"
        return None

    @staticmethod
    def present(folder: Path) -> bool:
        return all((folder / f).is_file() for f in FILES)


class Bm25:
    """BM25 scores for a query's terms (bm25s builds the index; its arrays are memory-mapped when read).

    :meth:`candidates` returns a query's best documents without ranking every document that shares a word with it:
    its rarer words give a lower bound of the k-th best score, and only documents at or above it are ranked (a
    query with ``o`` or ``de`` shares a word with half of a collection). The scores are the ones bm25s gives.
    """

    def __init__(self, index: Any, size: int) -> None:
        self.index = index  # None: no document has a term, every score is 0
        self.size = size
        self.vocab: dict[str, int] = index.vocab_dict if index is not None else {}
        self._bounds: dict[int, float] = {}  # term id -> its largest score (filled as queries use terms)
        if index is not None:
            # plain views of the memory-mapped arrays: slicing a numpy.memmap costs more per call
            self._indices = np.asarray(index.scores["indices"]).view(np.ndarray)
            self._indptr = np.asarray(index.scores["indptr"]).view(np.ndarray)
            self._data = np.asarray(index.scores["data"]).view(np.ndarray)

    @classmethod
    def build(cls, terms: Terms) -> Bm25:
        """The index of ``terms`` (a document without terms scores 0 for every query)."""
        if not len(terms.ids):
            return cls(None, len(terms))
        index = _quiet_bm25s().BM25()
        index.scores = _bm25s_scores(terms, k1=index.k1, b=index.b)
        index.vocab_dict = {t: i for i, t in enumerate(terms.vocab)}
        index.unique_token_ids_set = set(index.vocab_dict.values())
        index.nonoccurrence_array = None  # the "lucene" method has none
        return cls(index, len(terms))

    @classmethod
    def of_tokens(cls, tokens: Sequence[Sequence[str]]) -> Bm25:
        return cls.build(Terms.of(tokens))

    def write(self, folder: Path) -> None:
        """Save the index into the new folder ``folder``."""
        folder.mkdir()
        if self.index is not None:
            self.index.save(folder, show_progress=False)
        meta = {"documents": self.size, "empty": self.index is None}
        (folder / SIZE_FILE).write_text(json.dumps(meta), "utf-8")

    @classmethod
    def read(cls, folder: Path) -> Bm25:
        meta = json.loads((folder / SIZE_FILE).read_text(encoding="utf-8"))
        if meta["empty"]:
            return cls(None, int(meta["documents"]))
        index = _quiet_bm25s().BM25.load(folder, mmap=True, show_progress=False)
        return cls(index, int(meta["documents"]))

    def scores(self, tokens: Sequence[str]) -> npt.NDArray[np.float32]:
        """Each document's BM25 score for the query ``tokens`` (0 where it shares no term with them)."""
        return self._scores([self.vocab[t] for t in tokens if t in self.vocab])

    def _scores(self, ids: list[int]) -> npt.NDArray[np.float32]:
        scores = np.zeros(self.size, np.float32)
        if self.index is None:
            return scores
        for t in (
            ids
        ):  # in query order, as bm25s's get_scores adds them (np.add.at): the same float32 sums, faster
            rows, data = self._column(t)
            scores[rows] += data  # a term's column holds each row once
        return scores

    def candidates(
        self, tokens: Sequence[str], k: int, allowed: npt.NDArray[np.bool_] | None = None
    ) -> tuple[IntArray, npt.NDArray[np.float32]]:
        """(rows, their scores), rows increasing: documents that share a term with ``tokens`` (and are ``allowed``),
        among them every document of the ``k`` best and every tie with the k-th best, each with the score bm25s
        gives it (other documents may be left out)."""
        ids = [self.vocab[t] for t in tokens if t in self.vocab]
        if not ids or self.index is None:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        scores = self._scores(ids)
        floor = self._floor(ids, k, allowed)
        rows = np.flatnonzero(scores >= floor) if floor > 0 else np.flatnonzero(scores > 0)
        if allowed is not None:
            rows = rows[allowed[rows]]
        return rows, scores[rows]

    def _column(self, term: int) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float32]]:
        """The rows holding ``term`` (each once) and its score in each."""
        start, end = int(self._indptr[term]), int(self._indptr[term + 1])
        return self._indices[start:end], self._data[start:end]

    def _bound(self, term: int) -> float:
        bound = self._bounds.get(term)
        if bound is None:
            _, data = self._column(term)
            bound = self._bounds[term] = float(data.max()) if len(data) else 0.0
        return bound

    def _floor(self, ids: list[int], k: int, allowed: npt.NDArray[np.bool_] | None) -> float:
        """A score the k-th best document reaches for sure (0 when none is found cheaply).

        The query's terms are taken by their largest score, highest first, until at least k (allowed) documents
        hold one of them: the k-th best of their scores from those terms alone is a lower bound of the k-th best
        full score (max-score pruning), so no document of the top k scores below it. At most
        :data:`FLOOR_TERMS` terms and :data:`FLOOR_BUDGET` postings are read; a filter that allows no more rows
        than that gets no floor (ranking its rows is cheap).
        """
        if allowed is not None and int(allowed.sum()) <= FLOOR_BUDGET:
            return 0.0
        counts = Counter(ids)  # a repeated word adds its score again
        weight = {t: counts[t] * self._bound(t) for t in counts}
        chosen: list[tuple[int, npt.NDArray[np.int32], npt.NDArray[np.float32]]] = []
        for t in sorted(weight, key=lambda t: -weight[t])[:FLOOR_TERMS]:
            chosen.append((t, *self._column(t)))
            if sum(len(rows) for _, rows, _ in chosen) > FLOOR_BUDGET:
                return 0.0
            rows, where = np.unique(np.concatenate([rows for _, rows, _ in chosen]), return_inverse=True)
            gains = np.concatenate([counts[c] * np.asarray(data, np.float64) for c, _, data in chosen])
            partial = np.bincount(where, weights=gains, minlength=len(rows))
            if allowed is not None:
                partial = partial[allowed[rows]]
            if len(partial) >= k:
                kth = float(np.partition(partial, len(partial) - k)[len(partial) - k])
                # the float32 sum of n terms may fall below the exact one by up to about n units in the last place
                return kth * (1 - (len(ids) + 8) * 2.0**-23)
        return 0.0


_BM25S_WORK_DTYPE = (np.float64(0.5) + np.zeros(1, np.float32)).dtype  # see _bm25s_scores


def _bm25s_scores(terms: Terms, *, k1: float, b: float) -> dict[str, Any]:
    """The arrays bm25s's ``BM25(method="lucene").index()`` builds from ``terms`` (the same float32 values, in its
    order: a column per term, rows increasing), computed with whole-array numpy operations instead of its loop per
    document: 1,000,000 documents in seconds instead of 44 s, so an add or a delete does not take a minute.

    Each value is, as bm25s computes it in float64 and stores in float32, ``idf * tf / (tf + k1 * (1 - b + b * dl /
    avgdl))`` with ``idf = log(1 + (N - df + 0.5) / (df + 0.5))``. Equal to bm25s's own build
    (tests/models/test_lexical.py).
    """
    n_docs, n_vocab = len(terms), len(terms.vocab)
    offsets = np.asarray(terms.offsets, np.int64)
    lengths = np.diff(offsets)
    avg = lengths.mean()  # bm25s: np.array([len(doc) for doc in docs]).mean()
    doc = np.repeat(np.arange(n_docs, dtype=np.int64), lengths)
    keys, counts = np.unique(
        (np.asarray(terms.ids, np.int64) << 32) | doc, return_counts=True
    )  # (term, doc) sorted
    cols = keys >> 32
    rows = keys & 0xFFFFFFFF
    df = np.bincount(cols, minlength=n_vocab)
    idf = np.zeros(n_vocab, np.float32)  # per term, with Python's math.log as bm25s does
    for t in np.flatnonzero(df).tolist():
        idf[t] = math.log(1 + (n_docs - int(df[t]) + 0.5) / (int(df[t]) + 0.5))
    # bm25s adds its float64 length term (a numpy scalar) to a float32 array of counts: float64 under NumPy 2's
    # promotion, float32 under NumPy 1's value-based casting; the same precision here gives the same values
    work = _BM25S_WORK_DTYPE
    tf = counts.astype(np.float32).astype(work)
    tfc = tf / ((k1 * ((1 - b) + b * lengths[rows].astype(np.float64) / avg)).astype(work) + tf)
    data = (idf[cols].astype(work) * tfc).astype(np.float32)
    indptr = np.zeros(n_vocab + 1, np.int64)
    np.cumsum(df, out=indptr[1:])  # a column per term: its documents are the ones that hold it
    return {"data": data, "indices": rows.astype(np.int32), "indptr": indptr, "num_docs": n_docs}
