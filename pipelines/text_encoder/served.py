"""An encoder as used: texts -> unit vectors, pairs -> cosines, over the word-vector model it stands on.

:func:`load_text_encoder` opens the encoder artifact, then the exact word-vector version it records; texts are
normalised the way that model's training text was (its own normaliser, phrases joined where it learned them).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from models.errors import InvalidInput, ModelNotFound
from models.references import VECTOR_KINDS
from models.registry import Artifact, Registry
from models.text_encoder import KIND, FloatMatrix, TextEncoder
from pipelines.serving.served_vectors import ServedVectors, load_served_vectors


class TextEncoderModel:
    """A :class:`TextEncoder` with the word vectors and normaliser it reads."""

    def __init__(self, encoder: TextEncoder, embeddings: ServedVectors, *, ref: str = "") -> None:
        if encoder.spec.dim != embeddings.dim:
            raise InvalidInput(
                f"the encoder expects {encoder.spec.dim}-dimensional word vectors; the model has {embeddings.dim}"
            )
        self.encoder = encoder
        self.embeddings = embeddings
        self.ref = ref  # NAME@VERSION when read from the registry

    @property
    def dim(self) -> int:
        return self.encoder.out_dim

    def tokens(self, texts: Iterable[str]) -> list[list[str]]:
        """Each text's tokens as the word model saw its training text."""
        phrases = self.embeddings.phrases
        out = list(self.embeddings.normalizer.pipe(texts))
        return [phrases.apply(t) for t in out] if phrases is not None else out

    def pooled(self, texts: Sequence[str]) -> FloatMatrix:
        """The weighted mean of each text's word vectors, before common-component removal and projection."""
        return self.pooled_tokens(self.tokens(texts))

    def pooled_tokens(self, tokens: Sequence[Sequence[str]]) -> FloatMatrix:
        """:meth:`pooled` of texts already split by :meth:`tokens`."""
        vectors = self.embeddings.word_vectors
        index = vectors.index
        ids: list[int] = []
        starts = np.zeros(len(tokens), np.int64)
        extra_sum: FloatMatrix | None = None
        extra_count = np.zeros(len(tokens), np.float32)
        for i, toks in enumerate(tokens):
            starts[i] = len(ids)
            for tok in toks:
                row = index.get(tok)
                if row is not None:
                    ids.append(row)
                    continue
                if not vectors.has_subwords:
                    continue  # no vector for it: the text is pooled from its known words
                try:
                    sub = vectors.vector(tok)
                except InvalidInput:
                    continue
                if extra_sum is None:
                    extra_sum = np.zeros((len(tokens), vectors.dim), np.float32)
                weight = self.encoder.unknown_weight
                extra_sum[i] += weight * sub
                extra_count[i] += 1.0
        return self.encoder.pool(
            vectors.vectors,
            np.asarray(ids, np.int64),
            starts,
            extra_sum=extra_sum,
            extra_count=extra_count if extra_sum is not None else None,
        )

    def maxed_tokens(self, tokens: Sequence[Sequence[str]]) -> FloatMatrix:
        """The element-wise maximum of each text's word vectors (words composed from subwords included; zeros for a
        text without a single word the model knows)."""
        vectors = self.embeddings.word_vectors
        index = vectors.index
        out = np.zeros((len(tokens), vectors.dim), np.float32)
        for i, toks in enumerate(tokens):
            rows = [row for tok in toks if (row := index.get(tok)) is not None]
            found = [np.asarray(vectors.vectors[rows], np.float32)] if rows else []
            if vectors.has_subwords:
                for tok in toks:
                    if tok not in index:
                        with contextlib.suppress(InvalidInput):  # not a single known n-gram either
                            found.append(np.asarray(vectors.vector(tok), np.float32)[None, :])
            if found:
                out[i] = np.max(np.concatenate(found), axis=0)
        return out

    def features(self, tokens: Sequence[Sequence[str]]) -> FloatMatrix:
        """What the encoder's networks read: the pooled vector without its common components, and beside it the
        element-wise maximum of the word vectors when the encoder was trained on both (``max_pool``)."""
        maxed = self.maxed_tokens(tokens) if self.encoder.spec.max_pool else None
        return self.encoder.finish(self.pooled_tokens(tokens), unit=False, maxed=maxed, project=False)

    def embed(self, texts: Sequence[str]) -> FloatMatrix:
        """One unit vector per text (zeros for a text without a single word the model knows)."""
        return self.embed_tokens(self.tokens(texts))

    def embed_tokens(self, tokens: Sequence[Sequence[str]]) -> FloatMatrix:
        """:meth:`embed` of texts already split by :meth:`tokens`."""
        if not tokens:
            return np.zeros((0, self.dim), np.float32)
        maxed = self.maxed_tokens(tokens) if self.encoder.spec.max_pool else None
        return self.encoder.finish(self.pooled_tokens(tokens), maxed=maxed)

    def similarity(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """The cosine of each pair's vectors (0 when a text has no known word)."""
        units = self.embed([t for pair in pairs for t in pair])
        cosines: npt.NDArray[np.float32] = np.einsum("ij,ij->i", units[0::2], units[1::2])
        return [float(c) for c in np.clip(cosines, -1.0, 1.0)]


def word_model_artifact(registry: Registry, encoder_ref: str, words_ref: str) -> Artifact:
    """The word-vector version an encoder records, with an error that says so when it is gone."""
    try:
        return registry.open(words_ref, kind=VECTOR_KINDS)
    except ModelNotFound as exc:
        raise ModelNotFound(
            f"encoder {encoder_ref} stands on word-vector model {words_ref}, which is no longer registered; "
            f"register that model again or build a new encoder (`palavra train encoder --words ...`)",
            model=encoder_ref,
            words=words_ref,
        ) from exc


def load_text_encoder(registry: Registry, ref: str) -> TextEncoderModel:
    """The registered encoder ``ref`` and the word vectors it stands on, checked against their sha256."""
    artifact = registry.open(ref, kind=KIND)
    encoder = TextEncoder.load(artifact)
    words = word_model_artifact(registry, artifact.version.ref, encoder.spec.words)
    return TextEncoderModel(encoder, load_served_vectors(words), ref=artifact.version.ref)
