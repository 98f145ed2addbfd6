"""Word vectors, and the word-vector artifact (kinds ``word2vec`` and ``fasttext``), which this module owns.

:class:`WordVectors` is a vocabulary with its raw matrix, the row-normalised copy and optional FastText subword
n-grams, with exact (or indexed) cosine search, similarity and analogies over vocabulary forms: query words are
expected already normalised the way the model's training text was (``pipelines/serving/served_vectors.py`` does it).

The artifact is made of components (models/components.py); :func:`save` writes them and records which ones,
:func:`load` reads them back (versions registered before the record existed are read by the files they hold), and
nothing else opens these files:

    vectors         vocab.json (the words, row order of the matrices), vectors.npy (raw, n x d float32),
                    vectors_norm.npy (unit rows, memory-mapped read-only so worker processes share them),
                    vectors.json {"dim", "words", "min_n", "max_n", "bucket"}
    counts          counts.npy: corpus frequency of each word (int64)
    subwords        ngrams.npy: FastText n-gram bucket vectors (buckets x d' float32); d' < d when the model joins
                    a word-level half (pipelines/word2vec/convert.py ``join``): the n-grams then give the first
                    d' columns of an unknown word's vector
    subword_map     subword_map.npy: a joined model's linear map (d' x (d - d') float32) from an unknown word's
                    n-gram half to its word-level half, fitted on the vocabulary; without it that half is zero
    normalize       normalize.json: how the training text, and so every query word, was normalised
    phrases         phrases.json: the learned phrases (or only the delimiter that joined them)
    config          config.json: the recipe (a training run, or where an imported model came from)
    index           ann.faiss: an HNSW index over the unit rows (models/ann.py), added at registration
    neighbor_table  neighbors_ids.npy, neighbors_scores.npy: every word's nearest neighbours (models/neighbor_table.py)
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from models import components
from models.errors import InvalidInput, UnknownWord
from models.references import VECTOR_KINDS
from models.registry import Artifact, ArtifactWriter

FloatMatrix = npt.NDArray[np.float32]
KINDS = VECTOR_KINDS

VOCAB_FILE = "vocab.json"
VECTORS_FILE = "vectors.npy"
UNIT_FILE = "vectors_norm.npy"
INFO_FILE = "vectors.json"
COUNTS_FILE = "counts.npy"
NGRAMS_FILE = "ngrams.npy"
SUBWORD_MAP_FILE = "subword_map.npy"
NORMALIZE_FILE = "normalize.json"
PHRASES_FILE = "phrases.json"
CONFIG_FILE = "config.json"
ANN_FILE = "ann.faiss"
TABLE_IDS = "neighbors_ids.npy"
TABLE_SCORES = "neighbors_scores.npy"
#: component -> its files, in the order :func:`save` writes them (the index ones are added at registration)
COMPONENTS: dict[str, tuple[str, ...]] = {
    "vectors": (VOCAB_FILE, VECTORS_FILE, UNIT_FILE, INFO_FILE),
    "counts": (COUNTS_FILE,),
    "subwords": (NGRAMS_FILE,),
    "subword_map": (SUBWORD_MAP_FILE,),
    "normalize": (NORMALIZE_FILE,),
    "phrases": (PHRASES_FILE,),
    "config": (CONFIG_FILE,),
    "index": (ANN_FILE,),
    "neighbor_table": (TABLE_IDS, TABLE_SCORES),
}


# not frozen: a frozen dataclass costs four times as much to create, and a batch of 64 words makes 640 of them
@dataclass(slots=True)
class Neighbor:
    """A vocabulary word near a query, with its cosine similarity (3CosMul analogies: their score)."""

    word: str
    score: float


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
    """A vocabulary with vectors; exact (or indexed) cosine search, similarity and analogies.

    Searches are exact unless given an ``index`` (an HNSW index over :attr:`normed`, see models/ann.py).
    """

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
        subword_map: npt.NDArray[Any] | None = None,
    ) -> None:
        if len(words) != vectors.shape[0]:
            raise InvalidInput(f"{len(words)} words but {vectors.shape[0]} vector rows")
        if len(words) == 0:
            raise InvalidInput("a vector model needs at least one word")
        if ngrams is not None and (ngrams.ndim != 2 or ngrams.shape[1] > vectors.shape[1]):
            raise InvalidInput(
                f"n-gram rows of shape {ngrams.shape[1:]} do not fit {vectors.shape[1]}-d vectors"
            )
        if subword_map is not None and (
            ngrams is None or subword_map.shape != (ngrams.shape[1], vectors.shape[1] - ngrams.shape[1])
        ):
            raise InvalidInput(
                f"a subword map of shape {subword_map.shape} does not fit n-gram rows of shape "
                f"{None if ngrams is None else ngrams.shape[1:]} and {vectors.shape[1]}-d vectors"
            )
        self.words = list(words)
        self.vectors = vectors
        self.normed: FloatMatrix = normed if normed is not None else unit_rows(vectors)
        self.counts = counts
        self.ngrams = ngrams
        self.min_n = min_n
        self.max_n = max_n
        self.subword_map = subword_map

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
        # a joined model: the n-grams give the subword half, the map the word-level half
        if vec.shape[0] < self.dim:
            rest = (
                vec @ np.asarray(self.subword_map, dtype=np.float32)
                if self.subword_map is not None
                else np.zeros(self.dim - vec.shape[0], dtype=np.float32)
            )
            vec = np.concatenate([vec, rest])
        return vec

    def check_directions(self, words: Sequence[str], units: FloatMatrix | None = None) -> None:
        """Refuse vocabulary words whose vector is all zeros (imported vectors can hold them): they have no
        direction, so every cosine with them is 0 and their neighbours an arbitrary list.

        ``units``: the words' rows of :meth:`unit_matrix` when the caller has them (not read again).

        Raises:
            InvalidInput: naming each such word.
        """
        if units is None:
            ids = sorted({i for i in (self.index.get(w) for w in words) if i is not None})
            rows = dict(zip(ids, np.asarray(self.normed[ids]), strict=True)) if ids else {}
            zero = [w for w in words if (i := self.index.get(w)) is not None and not rows[i].any()]
        else:
            zero = [w for w, row in zip(words, units, strict=True) if not row.any()]
        zero = list(dict.fromkeys(zero))
        if zero:
            raise InvalidInput(
                f"{', '.join(repr(w) for w in zero)} {'has' if len(zero) == 1 else 'have'} a zero vector in this "
                "model (no direction to compare); use other words",
                words=zero,
            )

    def unit_matrix(self, words: Sequence[str]) -> FloatMatrix:
        """Unit vectors for ``words`` (subwords for unknown words on FastText models).

        Raises:
            UnknownWord: listing every word without a vector, with spelling suggestions for each.
        """
        ids = [self.index.get(w) for w in words]
        out = np.empty((len(words), self.dim), dtype=np.float32)
        known = [(j, i) for j, i in enumerate(ids) if i is not None]
        if known:  # one gather: a row at a time makes a memmap view per row (benchmarks/results/serving.md)
            out[[j for j, _ in known]] = self.normed[[i for _, i in known]]
        unknown: list[str] = []
        for j, (w, i) in enumerate(zip(words, ids, strict=True)):
            if i is not None:
                continue
            sub = self._subword_vector(w)
            if sub is None or not np.any(sub):
                unknown.append(w)
                continue
            out[j] = unit_rows(sub[None, :])[0]
        if unknown:
            raise UnknownWord(
                f"not in the model's vocabulary: {', '.join(unknown)}",
                words=unknown,
                suggestions={w: self.suggest(w) for w in unknown},
            )
        return out

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
        index: NeighborIndex | None = None,
    ) -> list[list[Neighbor]]:
        """The ``k`` nearest rows to each unit query (one matrix product for the whole batch, or ``index``)."""
        if k <= 0:
            raise InvalidInput(f"k must be a positive integer, got {k}")
        extra = max((len(list(e)) for e in exclude), default=0) if exclude else 0
        want = min(k + extra, len(self.words))
        if index is not None:
            ids, scores = index.search(queries, want)
        else:
            sims = queries @ self.normed.T
            part = np.argpartition(-sims, want - 1, axis=1)[:, :want] if want < sims.shape[1] else None
            ids = part if part is not None else np.tile(np.arange(sims.shape[1]), (sims.shape[0], 1))
            scores = np.take_along_axis(sims, ids, axis=1)
            order = np.argsort(-scores, axis=1, kind="stable")
            ids = np.take_along_axis(ids, order, axis=1)
            scores = np.take_along_axis(scores, order, axis=1)
        out: list[list[Neighbor]] = []
        words = self.words
        for row, (row_ids, row_scores) in enumerate(zip(ids.tolist(), scores.tolist(), strict=True)):
            skip = set(exclude[row]) if exclude else ()
            hits = [
                Neighbor(words[i], s)
                for i, s in zip(row_ids, row_scores, strict=True)
                if i >= 0 and i not in skip
            ]
            out.append(hits[:k])
        return out

    def named(self, rows: Iterable[Iterable[tuple[int, float]]]) -> list[list[Neighbor]]:
        """``(row, score)`` pairs (a neighbour table's answer) as neighbours."""
        words = self.words
        return [[Neighbor(words[i], s) for i, s in row] for row in rows]

    def neighbors(
        self, words: Sequence[str], k: int = 10, *, index: NeighborIndex | None = None
    ) -> list[list[Neighbor]]:
        """Nearest words to each of ``words`` by cosine, the word itself excluded."""
        queries = self.unit_matrix(words)
        exclude = [[self.index[w]] if w in self.index else [] for w in words]
        return self.top_k(queries, k, exclude=exclude, index=index)

    def similarity(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """Cosine similarity of each pair (all unknown words across all pairs are reported together)."""
        flat = [w for pair in pairs for w in pair]
        units = self.unit_matrix(flat)
        # float32 unit vectors: a word with itself came out 1.0000001; a cosine is never above 1
        return [float(np.clip(np.dot(units[2 * i], units[2 * i + 1]), -1.0, 1.0)) for i in range(len(pairs))]

    def analogy(
        self,
        positive: Sequence[str],
        negative: Sequence[str],
        k: int = 5,
        *,
        method: Literal["3cosadd", "3cosmul"] = "3cosadd",
        index: NeighborIndex | None = None,
    ) -> list[Neighbor]:
        """Words closest to ``sum(positive) - sum(negative)`` (3CosAdd) or by Levy & Goldberg's 3CosMul."""
        if not positive:
            raise InvalidInput("an analogy needs at least one positive word")
        pos = self.unit_matrix(positive)
        neg = self.unit_matrix(negative) if negative else np.zeros((0, self.dim), np.float32)
        exclude = {self.index[w] for w in (*positive, *negative) if w in self.index}
        # a zero vector has no direction (imported vectors can hold them): it was said to "cancel out"
        self.check_directions([*positive, *negative], np.concatenate([pos, neg]))
        if method not in ("3cosadd", "3cosmul"):
            raise InvalidInput(f"unknown analogy method {method!r}; use 3cosadd or 3cosmul")
        offset = pos.sum(axis=0) - neg.sum(axis=0)
        # no direction: every word would score 0 by 3CosAdd, and about 1 by 3CosMul (an arbitrary list)
        if float(np.linalg.norm(offset)) < 1e-4:
            raise InvalidInput(
                "the positive and negative words cancel out (the same words on both sides, as this model reads them); "
                "give words whose difference points somewhere"
            )
        if method == "3cosadd":
            return self.top_k(unit_rows(offset[None, :]), k, exclude=[exclude], index=index)[0]
        sims_pos = (self.normed @ pos.T + 1.0) / 2.0
        sims_neg = (self.normed @ neg.T + 1.0) / 2.0
        scores = np.prod(sims_pos, axis=1) / (np.prod(sims_neg, axis=1) + 1e-3)
        scores[list(exclude)] = -np.inf
        top = np.argsort(-scores)[: min(k, len(scores) - len(exclude))]  # the query words are never answers
        return [Neighbor(self.words[int(i)], float(scores[i])) for i in top]

    # -- artifacts ------------------------------------------------------------------------------------------------
    def save(self, writer: ArtifactWriter) -> None:
        """Write these vectors alone into a staging artifact (:func:`save` with nothing beside them)."""
        save(writer, self)

    @classmethod
    def load(cls, artifact: Artifact, *, mmap: bool = True) -> WordVectors:
        """The vectors of a (verified) word-vector artifact (:func:`load`), without the documents beside them."""
        return load(artifact, mmap=mmap).vectors


@dataclass(frozen=True)
class VectorArtifact:
    """A word-vector artifact as read: the vectors, the components it holds and the JSON documents beside them.

    ``normalize`` and ``phrases`` are the documents as stored (None when the artifact has no such component);
    pipelines/serving/served_vectors.py gives them their meaning.
    """

    ref: str
    vectors: WordVectors
    components: tuple[str, ...]
    normalize: dict[str, Any] | None = None
    phrases: dict[str, Any] | None = None


def save(
    writer: ArtifactWriter,
    vectors: WordVectors,
    *,
    normalize: Mapping[str, Any] | None = None,
    phrases: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
) -> None:
    """Write a word-vector artifact into a staging folder and record its components (the registry commits it).

    Args:
        writer: the staging artifact, of kind ``word2vec`` or ``fasttext``.
        vectors: the vocabulary and its vectors (with counts and subwords when it has them).
        normalize: how the training text was normalised (a ``NormalizeConfig`` as JSON); without it, query words
            are matched as typed.
        phrases: the learned phrases (``PhraseModel.to_json()``) or ``{"delimiter": "_"}``.
        config: the recipe: the training run, or where an imported model came from.
    """
    written = ["vectors"]
    writer.write_json(VOCAB_FILE, vectors.words)
    writer.write_array(VECTORS_FILE, np.asarray(vectors.vectors, dtype=np.float32))
    writer.write_array(UNIT_FILE, vectors.normed)
    if vectors.counts is not None:
        writer.write_array(COUNTS_FILE, np.asarray(vectors.counts, dtype=np.int64))
        written.append("counts")
    info: dict[str, Any] = {"dim": vectors.dim, "words": len(vectors.words)}
    if vectors.ngrams is not None:
        writer.write_array(NGRAMS_FILE, np.asarray(vectors.ngrams, dtype=np.float32))
        info.update(min_n=vectors.min_n, max_n=vectors.max_n, bucket=int(vectors.ngrams.shape[0]))
        written.append("subwords")
    if vectors.subword_map is not None:
        writer.write_array(SUBWORD_MAP_FILE, np.asarray(vectors.subword_map, dtype=np.float32))
        written.append("subword_map")
    writer.write_json(INFO_FILE, info)
    for name, document in (("normalize", normalize), ("phrases", phrases), ("config", config)):
        if document is not None:
            writer.write_json(COMPONENTS[name][0], dict(document))
            written.append(name)
    for name in written:
        components.record(writer, COMPONENTS, name)


def add_component(writer: ArtifactWriter, name: str) -> None:
    """Record that ``name``'s files were written into a staged artifact (the index, at registration)."""
    components.record(writer, COMPONENTS, name)


def held(artifact: Artifact) -> tuple[str, ...]:
    """The components a word-vector artifact holds (:func:`models.components.held`).

    Raises:
        IntegrityError: the artifact has no vectors, or holds a component's files without recording it.
    """
    return components.held(artifact, COMPONENTS, required="vectors")


def load(artifact: Artifact, *, mmap: bool = True) -> VectorArtifact:
    """Read a (verified) word-vector artifact; matrices are memory-mapped read-only by default.

    Raises:
        IntegrityError: a file is missing, does not match its sha256, or the artifact holds no vectors.
    """
    parts = held(artifact)
    info = artifact.read_json(INFO_FILE)
    vectors = WordVectors(
        artifact.read_json(VOCAB_FILE),
        artifact.read_array(VECTORS_FILE, mmap=mmap),
        normed=artifact.read_array(UNIT_FILE, mmap=mmap),
        counts=artifact.read_array(COUNTS_FILE, mmap=False) if "counts" in parts else None,
        ngrams=artifact.read_array(NGRAMS_FILE, mmap=mmap) if "subwords" in parts else None,
        min_n=int(info.get("min_n", 3)),
        max_n=int(info.get("max_n", 6)),
        subword_map=artifact.read_array(SUBWORD_MAP_FILE, mmap=False) if "subword_map" in parts else None,
    )
    return VectorArtifact(
        ref=artifact.version.ref,
        vectors=vectors,
        components=parts,
        normalize=artifact.read_json(NORMALIZE_FILE) if "normalize" in parts else None,
        phrases=artifact.read_json(PHRASES_FILE) if "phrases" in parts else None,
    )
