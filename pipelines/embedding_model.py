"""A word-vector model as served: :class:`WordVectors` plus the normalisation its training text went through.

Every query word passes through the model's own :class:`Normalizer` (``normalize.json`` in the artifact) before it
meets the vocabulary, so ``Rei`` finds ``rei`` in a lowercased model and ``São Paulo`` finds the phrase
``são_paulo`` when the model joined phrases. Unknown words are reported as the caller typed them, all at once,
with in-vocabulary spellings suggested for each; FastText models answer them from subword vectors instead.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import ValidationError

from models.ann import AnnConfig, attach_index
from models.errors import InvalidConfig, InvalidInput, UnknownWord
from models.registry import Artifact, ArtifactWriter
from models.vectors import FloatMatrix, Neighbor, WordVectors
from pipelines.normalize import NormalizeConfig, Normalizer
from pipelines.phrases import PhraseModel

log = logging.getLogger(__name__)

NORMALIZE_FILE = "normalize.json"
PHRASES_FILE = "phrases.json"
MAX_SUGGESTED = 10  # unknown words per request that get spelling suggestions
# a model saved without normalize.json: treat queries as typed (Unicode NFC only)
VERBATIM = NormalizeConfig(lowercase=False, numbers="keep")


@dataclass(frozen=True)
class WordHit:
    """One query word as the model understood it."""

    query: str
    token: str
    in_vocabulary: bool


class Embeddings:
    """Serving-time word vectors: normalise query words, then search, compare or compose them."""

    def __init__(
        self,
        vectors: WordVectors,
        normalizer: Normalizer,
        *,
        phrase_delimiter: str | None = None,
        phrases: PhraseModel | None = None,
        ann: dict[str, Any] | None = None,
    ) -> None:
        self.vectors = vectors
        self.normalizer = normalizer
        self.phrases = phrases
        self.phrase_delimiter = phrases.delimiter if phrases is not None else phrase_delimiter
        self.ann = ann

    def __len__(self) -> int:
        return len(self.vectors)

    @property
    def dim(self) -> int:
        return self.vectors.dim

    def token(self, word: str) -> str:
        """The vocabulary form of a query word: normalised, and phrase-joined when the model has phrases."""
        token = self.normalizer.word(word)
        if self.phrase_delimiter and any(c.isspace() for c in token):
            parts = token.split()
            # learned phrases join as in the training corpus; what is left is joined whole, as a phrase query
            token = self.phrase_delimiter.join(self.phrases.apply(parts) if self.phrases else parts)
        return token

    def lookup(self, words: Sequence[str]) -> list[WordHit]:
        """How each query word maps onto the vocabulary (no error for unknown words)."""
        return [WordHit(w, t, t in self.vectors) for w, t in zip(words, map(self.token, words), strict=True)]

    def _tokens(self, words: Sequence[str]) -> list[str]:
        tokens = [self.token(w) for w in words]
        if self.vectors.has_subwords:
            unknown = [w for w, t in zip(words, tokens, strict=True) if not t.strip()]
        else:
            unknown = [w for w, t in zip(words, tokens, strict=True) if t not in self.vectors]
        if unknown:
            raise self._unknown(unknown)
        return tokens

    def _unknown(self, words: Sequence[str]) -> UnknownWord:
        ordered = list(dict.fromkeys(words))
        shown = ", ".join(repr(w) for w in ordered[:MAX_SUGGESTED])
        more = f" and {len(ordered) - MAX_SUGGESTED} more" if len(ordered) > MAX_SUGGESTED else ""
        return UnknownWord(
            f"not in the model's vocabulary: {shown}{more}",
            words=ordered,
            # fuzzy matching costs milliseconds per word on a large vocabulary: bound it per request
            suggestions={w: self.vectors.suggest(self.token(w)) for w in ordered[:MAX_SUGGESTED]},
        )

    def _units(self, words: Sequence[str]) -> tuple[list[str], FloatMatrix]:
        tokens = self._tokens(words)
        try:
            return tokens, self.vectors.unit_matrix(tokens)
        except UnknownWord as exc:  # FastText words whose n-grams are all empty
            missing = set(exc.extra.get("words", []))
            raise self._unknown([w for w, t in zip(words, tokens, strict=True) if t in missing]) from exc

    def table_neighbors(self, words: Sequence[str], k: int) -> list[list[Neighbor]] | None:
        """:meth:`neighbors` answered from the neighbour table without any search, or None when it cannot be.

        Cheap enough for an event loop: normalisation and row reads only. None when the model has no table, a
        word is not in the vocabulary (subwords or an error needed) or ``k`` is wider than the table.
        """
        if self.vectors.neighbor_table is None:
            return None
        return self.vectors.table_neighbors([self.token(w) for w in words], k)

    def neighbors(self, words: Sequence[str], k: int = 10) -> list[list[Neighbor]]:
        """The ``k`` nearest vocabulary words to each query word (one matrix product for the batch).

        Vocabulary words are answered from the model's neighbour table when it has one (no search at all).
        """
        cached = self.table_neighbors(words, k)
        if cached is not None:
            return cached
        tokens, units = self._units(words)
        index = self.vectors.index
        exclude = [[index[t]] if t in index else [] for t in tokens]
        return self.vectors.top_k(units, k, exclude=exclude)

    def similarity(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """Cosine similarity of each pair; unknown words of every pair are reported together."""
        _, units = self._units([w for pair in pairs for w in pair])
        return np.einsum("ij,ij->i", units[0::2], units[1::2]).astype(float).tolist()  # type: ignore[no-any-return]

    def analogy(
        self,
        positive: Sequence[str],
        negative: Sequence[str],
        k: int = 5,
        *,
        method: Literal["3cosadd", "3cosmul"] = "3cosadd",
    ) -> list[Neighbor]:
        """``positive[0] - negative[0] + positive[1] ...``: the ``k`` best answers, query words excluded."""
        if not positive:
            raise InvalidInput("an analogy needs at least one positive word")
        tokens = self._tokens([*positive, *negative])
        pos, neg = tokens[: len(positive)], tokens[len(positive) :]
        return self.vectors.analogy(pos, neg, k, method=method)

    def raw_vectors(self, words: Sequence[str]) -> FloatMatrix:
        """The stored (not unit-length) vector of each word; subword compositions on FastText models."""
        tokens = self._tokens(words)
        rows = [self.vectors.vector(t) for t in tokens]
        return np.vstack(rows).astype(np.float32) if rows else np.zeros((0, self.dim), np.float32)


def write_normalize(writer: ArtifactWriter, config: NormalizeConfig) -> None:
    """Record how a word-vector artifact's words were normalised (read back by :func:`read_normalize`)."""
    writer.write_json(NORMALIZE_FILE, config.model_dump(mode="json"))


def read_normalize(artifact: Artifact) -> NormalizeConfig:
    """The normalisation a word-vector artifact's words went through: its ``normalize.json``.

    Every reader of word vectors (serving, a classifier's pretrained rows, the CLI) takes it from here, for trained
    and imported models alike.

    Raises:
        InvalidConfig: the file is not a valid normalisation config.
    """
    if not artifact.exists(NORMALIZE_FILE):
        log.warning("%s has no %s; words are matched as typed", artifact.version.ref, NORMALIZE_FILE)
        return VERBATIM
    try:
        return NormalizeConfig.model_validate(artifact.read_json(NORMALIZE_FILE))
    except ValidationError as exc:
        raise InvalidConfig(
            f"{artifact.version.ref}: {NORMALIZE_FILE} is not a valid normalisation config ({exc.error_count()} "
            "problems); re-register the model"
        ) from exc


def _phrases(artifact: Artifact) -> tuple[PhraseModel | None, str | None]:
    """The learned phrases (``palavra-phrases`` JSON) or, for other documents, just their delimiter."""
    if not artifact.exists(PHRASES_FILE):
        return None, None
    data = artifact.read_json(PHRASES_FILE)
    if isinstance(data, dict) and "format" in data:
        return PhraseModel.from_json(data), None
    delimiter = data.get("delimiter", "_") if isinstance(data, dict) else "_"
    return None, str(delimiter)


def load_embeddings(
    artifact: Artifact,
    *,
    ann_min_vocab: int | None = None,
    cache_dir: Path | None = None,
    ann_config: AnnConfig | None = None,
) -> Embeddings:
    """Serving-time embeddings from a verified artifact: memory-mapped matrices, the model's normaliser, phrases.

    Args:
        artifact: from ``registry.open(ref, kind=("word2vec", "fasttext"))``.
        ann_min_vocab: vocabularies at least this large are searched through an approximate index
            (``None``: always exact).
        cache_dir: where an index built at load time is kept (artifacts registered without ``ann.faiss``).
        ann_config: index and neighbour-table parameters (default :class:`AnnConfig`).
    """
    vectors = WordVectors.load(artifact)
    ann = None
    if ann_min_vocab is not None:
        ann = attach_index(
            vectors,
            artifact,
            min_vocab=ann_min_vocab,
            cache_dir=cache_dir or artifact.path.parent.parent.parent / "cache",
            config=ann_config,
        )
    phrases, delimiter = _phrases(artifact)
    return Embeddings(
        vectors, Normalizer(read_normalize(artifact)), phrase_delimiter=delimiter, phrases=phrases, ann=ann
    )
