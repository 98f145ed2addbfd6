"""Word vectors as served: :class:`ServedVectors`, the one model that routes, the CLI and text encoders query.

It is the vectors of a word-vector artifact (models/vectors.py) with the normalisation its training text went
through, its learned phrases and, for large vocabularies, its search index and neighbour table (models/ann.py).
Each query word is normalised once per call (:meth:`ServedVectors.lookup`), so ``Rei`` finds ``rei`` in a
lowercased model and ``São Paulo`` finds the phrase ``são_paulo`` when the model joined phrases; the vocabulary
forms then go to :class:`WordVectors`. Unknown words are reported as the caller typed them, all at once, with
in-vocabulary spellings suggested for each; FastText models answer them from subword vectors instead.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import ValidationError

from models.ann import AnnConfig, VectorIndex, load_index
from models.errors import InvalidConfig, InvalidInput, UnknownWord
from models.registry import Artifact
from models.vectors import NORMALIZE_FILE, FloatMatrix, Neighbor, VectorArtifact, WordVectors
from models.vectors import load as read_vector_artifact
from pipelines.text.normalize import NormalizeConfig, Normalizer, is_blank
from pipelines.text.phrases import PhraseModel

log = logging.getLogger(__name__)

MAX_SUGGESTED = 10  # unknown words per request that get spelling suggestions
# a model saved without a normalisation: treat queries as typed (Unicode NFC only)
VERBATIM = NormalizeConfig(lowercase=False, numbers="keep")


# plain (not frozen) dataclasses, as models.vectors.Neighbor: made per query word, they must cost little to create
@dataclass(slots=True)
class QueryWord:
    """One query word as the model understood it."""

    query: str
    token: str
    in_vocabulary: bool


@dataclass(slots=True)
class QueryNeighbors:
    """A query word and its nearest vocabulary words, best first (the word itself excluded)."""

    word: QueryWord
    neighbors: list[Neighbor]


class ServedVectors:
    """Serving-time word vectors: normalise query words once, then search, compare or compose them.

    Args:
        word_vectors: the vocabulary and its vectors.
        normalizer: what every query word goes through (the training text's normalisation).
        phrases: learned phrases, applied to multi-word queries as to the training text.
        phrase_delimiter: joins the words of a multi-word query when the model has no learned phrases.
        index: the approximate index and neighbour table, for vocabularies large enough to have them.
    """

    def __init__(
        self,
        word_vectors: WordVectors,
        normalizer: Normalizer,
        *,
        phrases: PhraseModel | None = None,
        phrase_delimiter: str | None = None,
        index: VectorIndex | None = None,
    ) -> None:
        self.word_vectors = word_vectors
        self.normalizer = normalizer
        self.phrases = phrases
        self.phrase_delimiter = phrases.delimiter if phrases is not None else phrase_delimiter
        self.index = index

    def __len__(self) -> int:
        return len(self.word_vectors)

    @property
    def dim(self) -> int:
        return self.word_vectors.dim

    @property
    def ann(self) -> dict[str, Any] | None:
        """The search index's facts (parameters, recall@10, where it was built), or None when search is exact."""
        return self.index.info if self.index is not None else None

    # -- query words ---------------------------------------------------------------------------------------------
    def token(self, word: str) -> str:
        """The vocabulary form of a query word: normalised, and phrase-joined when the model has phrases; a
        number, URL, e-mail or mention the vocabulary lacks is its placeholder when the vocabulary holds that."""
        token = self.normalizer.word(word)
        if token not in self.word_vectors.index:  # 1857 -> <num>, as training text had it
            placeholder = self.normalizer.placeholder(word)
            if placeholder is not None and placeholder in self.word_vectors.index:
                return placeholder
        if self.phrase_delimiter and any(c.isspace() for c in token):
            parts = token.split()
            # learned phrases join as in the training corpus; what is left is joined whole, as a phrase query
            token = self.phrase_delimiter.join(self.phrases.apply(parts) if self.phrases else parts)
        return token

    def lookup(self, words: Sequence[str]) -> list[QueryWord]:
        """How each query word maps onto the vocabulary (no error for unknown words).

        Raises:
            InvalidInput: a blank word (whitespace or invisible characters only), which a FastText model would
                otherwise answer from the n-grams of nothing.
        """
        vocabulary = self.word_vectors.index
        out = []
        for position, word in enumerate(words):
            if is_blank(word):
                which = "word" if len(words) == 1 else f"word {position + 1} of {len(words)}"
                raise InvalidInput(
                    f"{which} must not be blank (nothing but whitespace or invisible characters)"
                )
            token = self.token(word)
            out.append(QueryWord(word, token, token in vocabulary))
        return out

    def _answerable(self, looked: Sequence[QueryWord]) -> list[str]:
        """The tokens of ``looked``; UnknownWord for the words the model has no vector for."""
        if self.word_vectors.has_subwords:
            unknown = [q for q in looked if not q.token.strip()]
        else:
            unknown = [q for q in looked if not q.in_vocabulary]
        if unknown:
            raise self._unknown(unknown)
        return [q.token for q in looked]

    def _unknown(self, looked: Sequence[QueryWord]) -> UnknownWord:
        ordered = list({q.query: q for q in looked}.values())
        shown = ", ".join(repr(q.query) for q in ordered[:MAX_SUGGESTED])
        more = f" and {len(ordered) - MAX_SUGGESTED} more" if len(ordered) > MAX_SUGGESTED else ""
        return UnknownWord(
            f"not in the model's vocabulary: {shown}{more}",
            words=[q.query for q in ordered],
            # fuzzy matching costs milliseconds per word on a large vocabulary: bound it per request
            suggestions={q.query: self.word_vectors.suggest(q.token) for q in ordered[:MAX_SUGGESTED]},
        )

    def _units(self, looked: Sequence[QueryWord]) -> FloatMatrix:
        tokens = self._answerable(looked)
        try:
            units = self.word_vectors.unit_matrix(tokens)
        except UnknownWord as exc:  # FastText words whose n-grams are all empty
            missing = set(exc.extra.get("words", []))
            raise self._unknown([q for q in looked if q.token in missing]) from exc
        self.word_vectors.check_directions(tokens, units)
        return units

    # -- operations ----------------------------------------------------------------------------------------------
    def from_table(self, looked: Sequence[QueryWord], k: int) -> list[QueryNeighbors] | None:
        """:meth:`nearest` answered from the neighbour table without any search, or None when it cannot be.

        Cheap enough for an event loop: row reads only. None when the model has no table, a word is not in the
        vocabulary (subwords or an error needed) or ``k`` is wider than the table.
        """
        table = self.index.table if self.index is not None else None
        if table is None or k <= 0 or not all(q.in_vocabulary for q in looked):
            return None
        self.word_vectors.check_directions([q.token for q in looked])
        vocabulary = self.word_vectors.index
        found = table.lookup([vocabulary[q.token] for q in looked], k)  # None when k is too wide
        if found is None:
            return None
        return [
            QueryNeighbors(q, hits) for q, hits in zip(looked, self.word_vectors.named(found), strict=True)
        ]

    def nearest(self, looked: Sequence[QueryWord], k: int) -> list[QueryNeighbors]:
        """The ``k`` nearest vocabulary words to each looked-up query word (one search for the batch).

        Vocabulary words are answered from the neighbour table when the model has one (no search at all).
        """
        cached = self.from_table(looked, k)
        if cached is not None:
            return cached
        units = self._units(looked)
        vocabulary = self.word_vectors.index
        exclude = [[vocabulary[q.token]] if q.in_vocabulary else [] for q in looked]
        hits = self.word_vectors.top_k(units, k, exclude=exclude, index=self.index)
        return [QueryNeighbors(q, row) for q, row in zip(looked, hits, strict=True)]

    def neighbors(self, words: Sequence[str], k: int = 10) -> list[QueryNeighbors]:
        """The ``k`` nearest vocabulary words to each query word."""
        return self.nearest(self.lookup(words), k)

    def similarity(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """Cosine similarity of each pair; unknown words of every pair are reported together."""
        units = self._units(self.lookup([w for pair in pairs for w in pair]))
        # float32 unit vectors: a word with itself came out 1.0000001; a cosine is never above 1
        cosines = np.clip(np.einsum("ij,ij->i", units[0::2], units[1::2]), -1.0, 1.0)
        return cosines.astype(float).tolist()  # type: ignore[no-any-return]

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
        tokens = self._answerable(self.lookup([*positive, *negative]))
        pos, neg = tokens[: len(positive)], tokens[len(positive) :]
        return self.word_vectors.analogy(pos, neg, k, method=method, index=self.index)

    def vectors(self, words: Sequence[str]) -> tuple[list[QueryWord], FloatMatrix]:
        """How each word was looked up, and its stored (not unit-length) vector; subword compositions on FastText
        models."""
        looked = self.lookup(words)
        rows = [self.word_vectors.vector(t) for t in self._answerable(looked)]
        matrix = np.vstack(rows).astype(np.float32) if rows else np.zeros((0, self.dim), np.float32)
        return looked, matrix


def read_normalize(stored: VectorArtifact) -> NormalizeConfig:
    """The normalisation a word-vector artifact's words went through (its ``normalize`` component).

    Every reader of word vectors (serving, a classifier's pretrained rows, text encoders, the CLI) takes it from
    here, for trained and imported models alike.

    Raises:
        InvalidConfig: the stored document is not a valid normalisation config.
    """
    if stored.normalize is None:
        log.warning("%s has no %s; words are matched as typed", stored.ref, NORMALIZE_FILE)
        return VERBATIM
    try:
        return NormalizeConfig.model_validate(stored.normalize)
    except ValidationError as exc:
        raise InvalidConfig(
            f"{stored.ref}: {NORMALIZE_FILE} is not a valid normalisation config ({exc.error_count()} "
            "problems); re-register the model"
        ) from exc


def _phrases(stored: VectorArtifact) -> tuple[PhraseModel | None, str | None]:
    """The learned phrases (``palavra-phrases`` JSON) or, for other documents, just their delimiter."""
    data: Any = stored.phrases
    if data is None:
        return None, None
    if isinstance(data, dict) and "format" in data:
        return PhraseModel.from_json(data), None
    return None, str(data.get("delimiter", "_") if isinstance(data, dict) else "_")


def load_served_vectors(
    artifact: Artifact,
    *,
    ann_min_vocab: int | None = None,
    cache_dir: Path | None = None,
    ann_config: AnnConfig | None = None,
) -> ServedVectors:
    """Serving-time vectors from a verified artifact: memory-mapped matrices, the model's normaliser, phrases.

    Reads the artifact only: an index built at load time goes to ``cache_dir``, never into the registry.

    Args:
        artifact: from ``registry.open(ref, kind=VECTOR_KINDS)``.
        ann_min_vocab: vocabularies at least this large are searched through an approximate index
            (``None``: always exact).
        cache_dir: where an index built at load time is kept (artifacts registered without one).
        ann_config: index and neighbour-table parameters (default :class:`AnnConfig`).
    """
    stored = read_vector_artifact(artifact)
    index = None
    if ann_min_vocab is not None:
        index = load_index(
            artifact,
            stored,
            min_vocab=ann_min_vocab,
            cache_dir=cache_dir or artifact.path.parent.parent.parent / "cache",
            config=ann_config,
        )
    phrases, delimiter = _phrases(stored)
    return ServedVectors(
        stored.vectors,
        Normalizer(read_normalize(stored)),
        phrases=phrases,
        phrase_delimiter=delimiter,
        index=index,
    )
