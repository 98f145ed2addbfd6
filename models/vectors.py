"""Word vectors as served: a vocabulary, a raw matrix and its row-normalised copy, optional subword n-grams.

Artifact files (written and read through the registry):

    vocab.json           the words, row order of the matrices
    counts.npy           corpus frequency of each word (int64), when known
    vectors.npy          raw vectors (n x d, float32)
    vectors_norm.npy     unit-length rows (n x d, float32), memory-mapped read-only so worker processes share it
    ngrams.npy           FastText n-gram bucket vectors (buckets x d', float32), FastText models only; d' < d when
                         the model joins a word-level half (pipelines/word2vec/convert.py ``join``): the n-grams
                         then give the first d' columns of an unknown word's vector and the rest is zero
    vectors.json         {"dim", "min_n", "max_n", "bucket"}

Query words are expected already normalised the way the model's training text was (the pipelines layer does it).
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from models.errors import InvalidInput, UnknownWord
from models.neighbor_table import NeighborTable
from models.registry import Artifact, ArtifactWriter

FloatMatrix = npt.NDArray[np.float32]
Neighbor = tuple[str, float]


class NeighborIndex(Protocol):
    """An approximate top-k index over the unit rows (see models/ann.py)."""

    def search(self, queries: FloatMatrix, k: int) -> tuple[npt.NDArray[np.int64], FloatMatrix]: ...


def _fold(word: str) -> str:
    decomposed = unicodedata.normalize("NFD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def unit_rows(matrix: npt.NDArray[Any]) -> FloatMatrix:
    """Rows scaled to unit length (zero rows stay zero)."""
    m = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    out: FloatMatrix = (m / norms).astype(np.float32)
    return out


class WordVectors:
    """A vocabulary with vectors; exact (or indexed) cosine search, similarity and analogies."""

    def __init__(
        self,
        words: Sequence[str],
        vectors: npt.NDArray[Any],
        *,
        normed: npt.NDArray[Any] | None = None,
        counts: npt.NDArray[Any] | None = None,
        ngrams: npt.NDArray[Any] | None = None,
        min_n: int = 3,
        max_n: int = 6,
    ) -> None:
        if len(words) != vectors.shape[0]:
            raise InvalidInput(f"{len(words)} words but {vectors.shape[0]} vector rows")
        if len(words) == 0:
            raise InvalidInput("a vector model needs at least one word")
        if ngrams is not None and (ngrams.ndim != 2 or ngrams.shape[1] > vectors.shape[1]):
            raise InvalidInput(
                f"n-gram rows of shape {ngrams.shape[1:]} do not fit {vectors.shape[1]}-d vectors"
            )
        self.words = list(words)
        self.vectors = vectors
        self.normed: FloatMatrix = normed if normed is not None else unit_rows(vectors)
        self.counts = counts
        self.ngrams = ngrams
        self.min_n = min_n
        self.max_n = max_n
        self.index_backend: NeighborIndex | None = None
        # precomputed neighbours of every vocabulary word (models/neighbor_table.py), when built
        self.neighbor_table: NeighborTable | None = None

    # -- basics ------------------------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self.index

    @cached_property
    def index(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.words)}

    @property
    def has_subwords(self) -> bool:
        return self.ngrams is not None

    @cached_property
    def _folded(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for w in self.words:
            out.setdefault(_fold(w), []).append(w)
        return out

    def suggest(self, word: str, n: int = 3) -> list[str]:
        """In-vocabulary spellings close to ``word``: accent- and case-insensitive matches first, then near misses."""
        exact = [w for w in self._folded.get(_fold(word), []) if w != word]
        if len(exact) >= n:
            return exact[:n]
        folded = _fold(word)
        pool = [k for k in self._folded if k[:1] == folded[:1] and abs(len(k) - len(folded)) <= 2]
        close = difflib.get_close_matches(folded, pool, n=n, cutoff=0.75)
        for key in close:
            for w in self._folded[key]:
                if w not in exact and w != word:
                    exact.append(w)
        return exact[:n]

    # -- vectors -------------------------------------------------------------------------------------------------
    def _subword_vector(self, word: str) -> FloatMatrix | None:
        if self.ngrams is None:
            return None
        from gensim.models.fasttext import ft_ngram_hashes

        hashes = ft_ngram_hashes(word, self.min_n, self.max_n, self.ngrams.shape[0])
        if not hashes:
            return None
        vec: FloatMatrix = np.asarray(self.ngrams[hashes], dtype=np.float32).mean(axis=0)
        if (
            vec.shape[0] < self.dim
        ):  # a joined model: n-grams cover the subword half, the word half stays zero
            vec = np.concatenate([vec, np.zeros(self.dim - vec.shape[0], dtype=np.float32)])
        return vec

    def unit_matrix(self, words: Sequence[str]) -> FloatMatrix:
        """Unit vectors for ``words`` (subwords for unknown words on FastText models).

        Raises:
            UnknownWord: listing every word without a vector, with spelling suggestions for each.
        """
        rows: list[FloatMatrix] = []
        unknown: list[str] = []
        for w in words:
            i = self.index.get(w)
            if i is not None:
                rows.append(np.asarray(self.normed[i], dtype=np.float32))
                continue
            sub = self._subword_vector(w)
            if sub is None or not np.any(sub):
                unknown.append(w)
                continue
            rows.append(unit_rows(sub[None, :])[0])
        if unknown:
            raise UnknownWord(
                f"not in the model's vocabulary: {', '.join(unknown)}",
                words=unknown,
                suggestions={w: self.suggest(w) for w in unknown},
            )
        return np.vstack(rows).astype(np.float32) if rows else np.zeros((0, self.dim), np.float32)

    def vector(self, word: str) -> FloatMatrix:
        """The raw vector of ``word`` (a subword composition for unknown words on FastText models)."""
        i = self.index.get(word)
        if i is not None:
            return np.asarray(self.vectors[i], dtype=np.float32)
        sub = self._subword_vector(word)
        if sub is None:
            raise UnknownWord(
                f"not in the model's vocabulary: {word}", words=[word], suggestions={word: self.suggest(word)}
            )
        return sub

    # -- search --------------------------------------------------------------------------------------------------
    def top_k(
        self,
        queries: FloatMatrix,
        k: int,
        *,
        exclude: Sequence[Iterable[int]] | None = None,
        exact: bool = False,
    ) -> list[list[Neighbor]]:
        """The ``k`` nearest rows to each unit query (one matrix product for the whole batch)."""
        if k <= 0:
            raise InvalidInput(f"k must be a positive integer, got {k}")
        extra = max((len(list(e)) for e in exclude), default=0) if exclude else 0
        want = min(k + extra, len(self.words))
        if self.index_backend is not None and not exact:
            ids, scores = self.index_backend.search(queries, want)
        else:
            sims = queries @ self.normed.T
            part = np.argpartition(-sims, want - 1, axis=1)[:, :want] if want < sims.shape[1] else None
            ids = part if part is not None else np.tile(np.arange(sims.shape[1]), (sims.shape[0], 1))
            scores = np.take_along_axis(sims, ids, axis=1)
            order = np.argsort(-scores, axis=1, kind="stable")
            ids = np.take_along_axis(ids, order, axis=1)
            scores = np.take_along_axis(scores, order, axis=1)
        out: list[list[Neighbor]] = []
        for row, (row_ids, row_scores) in enumerate(zip(ids, scores, strict=True)):
            skip = set(exclude[row]) if exclude else set()
            hits = [
                (self.words[int(i)], float(s))
                for i, s in zip(row_ids, row_scores, strict=True)
                if i >= 0 and int(i) not in skip
            ]
            out.append(hits[:k])
        return out

    def table_neighbors(self, words: Sequence[str], k: int) -> list[list[Neighbor]] | None:
        """The answer of :meth:`neighbors` read from the neighbour table, or None when it cannot answer.

        It answers when every word is in the vocabulary and ``k`` fits the table's width.
        """
        if self.neighbor_table is None or k <= 0:
            return None
        rows = [self.index.get(w) for w in words]
        if any(r is None for r in rows):
            return None
        found = self.neighbor_table.lookup([r for r in rows if r is not None], k)  # None when k is too wide
        return None if found is None else [[(self.words[i], s) for i, s in row] for row in found]

    def neighbors(self, words: Sequence[str], k: int = 10) -> list[list[Neighbor]]:
        """Nearest words to each of ``words`` by cosine, the word itself excluded."""
        cached = self.table_neighbors(words, k)
        if cached is not None:
            return cached
        queries = self.unit_matrix(words)
        exclude = [[self.index[w]] if w in self.index else [] for w in words]
        return self.top_k(queries, k, exclude=exclude)

    def similarity(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """Cosine similarity of each pair (all unknown words across all pairs are reported together)."""
        flat = [w for pair in pairs for w in pair]
        units = self.unit_matrix(flat)
        return [float(np.dot(units[2 * i], units[2 * i + 1])) for i in range(len(pairs))]

    def analogy(
        self,
        positive: Sequence[str],
        negative: Sequence[str],
        k: int = 5,
        *,
        method: Literal["3cosadd", "3cosmul"] = "3cosadd",
    ) -> list[Neighbor]:
        """Words closest to ``sum(positive) - sum(negative)`` (3CosAdd) or by Levy & Goldberg's 3CosMul."""
        if not positive:
            raise InvalidInput("an analogy needs at least one positive word")
        pos = self.unit_matrix(positive)
        neg = self.unit_matrix(negative) if negative else np.zeros((0, self.dim), np.float32)
        exclude = {self.index[w] for w in (*positive, *negative) if w in self.index}
        if method == "3cosadd":
            offset = pos.sum(axis=0) - neg.sum(axis=0)
            if float(np.linalg.norm(offset)) < 1e-4:  # no direction: every word would score 0
                raise InvalidInput(
                    "the positive and negative words cancel out (the same words on both sides); "
                    "give words whose difference points somewhere"
                )
            return self.top_k(unit_rows(offset[None, :]), k, exclude=[exclude])[0]
        if method != "3cosmul":
            raise InvalidInput(f"unknown analogy method {method!r}; use 3cosadd or 3cosmul")
        sims_pos = (self.normed @ pos.T + 1.0) / 2.0
        sims_neg = (self.normed @ neg.T + 1.0) / 2.0
        scores = np.prod(sims_pos, axis=1) / (np.prod(sims_neg, axis=1) + 1e-3)
        scores[list(exclude)] = -np.inf
        top = np.argsort(-scores)[: min(k, len(scores) - len(exclude))]  # the query words are never answers
        return [(self.words[int(i)], float(scores[i])) for i in top]

    # -- artifacts ------------------------------------------------------------------------------------------------
    def save(self, writer: ArtifactWriter) -> None:
        """Write the vector files into a staging artifact."""
        writer.write_json("vocab.json", self.words)
        writer.write_array("vectors.npy", np.asarray(self.vectors, dtype=np.float32))
        writer.write_array("vectors_norm.npy", self.normed)
        if self.counts is not None:
            writer.write_array("counts.npy", np.asarray(self.counts, dtype=np.int64))
        info: dict[str, Any] = {"dim": self.dim, "words": len(self.words)}
        if self.ngrams is not None:
            writer.write_array("ngrams.npy", np.asarray(self.ngrams, dtype=np.float32))
            info.update(min_n=self.min_n, max_n=self.max_n, bucket=int(self.ngrams.shape[0]))
        writer.write_json("vectors.json", info)

    @classmethod
    def load(cls, artifact: Artifact, *, mmap: bool = True) -> WordVectors:
        """Read vectors from a (verified) registry artifact; matrices are memory-mapped read-only by default."""
        info = artifact.read_json("vectors.json")
        return cls(
            artifact.read_json("vocab.json"),
            artifact.read_array("vectors.npy", mmap=mmap),
            normed=artifact.read_array("vectors_norm.npy", mmap=mmap),
            counts=artifact.read_array("counts.npy", mmap=False) if artifact.exists("counts.npy") else None,
            ngrams=artifact.read_array("ngrams.npy", mmap=mmap) if artifact.exists("ngrams.npy") else None,
            min_n=int(info.get("min_n", 3)),
            max_n=int(info.get("max_n", 6)),
        )
