"""gensim models -> :class:`~models.vectors.WordVectors`, array by array (never through gensim's pickle files).

A FastText model keeps its n-gram bucket matrix, so unknown words still get vectors from their subwords
(``models.vectors`` hashes n-grams exactly as gensim's ``ft_ngram_hashes``).

:func:`join` puts a FastText model and a word-level model (CBOW or skip-gram) side by side: a known word's vector
is its unit FastText vector and its unit word-level vector, weighted and concatenated, so cosine similarity is the
weighted mean of the two models' similarities. FastText's composed vectors share character n-grams, so on their own
a word's nearest neighbours are mostly its spellings (*cidade*: cidadela, cidadezinha); the word-level half pulls
them back to meaning, and the FastText half keeps the morphology that syntactic analogies need. An unknown word gets
its n-gram half and a word-level half predicted from it (see :func:`join`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from models.errors import InvalidInput
from models.vectors import WordVectors, unit_rows


def _counts(kv: Any) -> np.ndarray[Any, np.dtype[np.int64]] | None:
    counts = getattr(kv, "expandos", {}).get("count")
    if counts is None or len(counts) != len(kv.index_to_key):
        return None
    return np.asarray(counts, dtype=np.int64)


def from_keyed_vectors(kv: Any) -> WordVectors:
    """Vectors of a gensim ``KeyedVectors`` / ``FastTextKeyedVectors`` (or a model holding one as ``wv``).

    For FastText the in-vocabulary rows are gensim's composed vectors (word + n-grams), and the n-gram
    buckets come along for unknown words.
    """
    kv = getattr(kv, "wv", kv)
    words = [str(w) for w in kv.index_to_key]
    vectors = np.asarray(kv.vectors, dtype=np.float32)
    ngrams = getattr(kv, "vectors_ngrams", None)
    if ngrams is not None and int(getattr(kv, "bucket", 0) or 0) > 0:
        return WordVectors(
            words,
            vectors,
            counts=_counts(kv),
            ngrams=np.asarray(ngrams, dtype=np.float32),
            min_n=int(kv.min_n),
            max_n=int(kv.max_n),
        )
    return WordVectors(words, vectors, counts=_counts(kv))


#: ridge penalty of the map from an unknown word's n-gram half to its word-level half (1 over every word and 10
#: over words seen at most 1,000 times scored the same)
MAP_RIDGE = 1.0


def join(subword: WordVectors, word: WordVectors, *, weight: float | npt.NDArray[Any]) -> WordVectors:
    """``subword``'s vocabulary with rows ``[(1 - weight) * unit(subword); weight * unit(word)]``.

    An unknown word gets both halves too: its n-gram half, and a word-level half predicted from it by a linear
    map fitted on the vocabulary (ridge least squares, :data:`MAP_RIDGE`); with a zero word-level half its
    similarities shrank against known words' and ranked low (LX-SimLex-999 over all pairs 0.285 -> 0.289,
    3CosMul +0.2 points; benchmarks/results/word2vec.md).

    ``weight`` is one number or one per word of ``subword`` (e.g. larger for frequent words, whose word-level
    vectors are well trained). ``subword`` must carry n-grams; every word of ``subword`` must be in ``word`` (both
    are trained on the same token file with the same ``min_count``). The n-gram matrix is scaled like the subword
    half of an average word.

    Raises:
        InvalidInput: a weight outside [0, 1), no n-grams, or words missing from ``word``.
    """
    weights = np.broadcast_to(np.asarray(weight, dtype=np.float64), (len(subword),))
    if not np.all((weights >= 0.0) & (weights < 1.0)) or not np.any(weights > 0.0):
        raise InvalidInput("word-level weights must be in [0, 1) and not all 0")
    if subword.ngrams is None:
        raise InvalidInput("joining needs a subword (FastText) model with n-grams")
    rows = [word.index.get(w, -1) for w in subword.words]
    missing = [w for w, i in zip(subword.words, rows, strict=True) if i < 0]
    if missing:
        raise InvalidInput(
            f"{len(missing)} words of the subword model lack word-level vectors, e.g. {missing[:5]}"
        )
    w = weights[:, None]
    left = (1.0 - w) * unit_rows(subword.vectors)
    right = w * unit_rows(np.asarray(word.vectors)[np.asarray(rows, dtype=np.int64)])
    ngrams = np.asarray(subword.ngrams, dtype=np.float32)
    # scale n-gram rows by the same factor as the composed vectors' unit scaling on average, so that an unknown
    # word's vector has a norm comparable to known words' subword halves (cosine ignores it; sums do not)
    mean_norm = float(np.mean(np.linalg.norm(subword.vectors, axis=1))) or 1.0
    x = left.astype(np.float64)
    subword_map = np.linalg.solve(x.T @ x + MAP_RIDGE * np.eye(x.shape[1]), x.T @ right.astype(np.float64))
    return WordVectors(
        subword.words,
        np.hstack([left, right]).astype(np.float32),
        counts=subword.counts,
        ngrams=(float(1.0 - weights.mean()) / mean_norm * ngrams).astype(np.float32),
        min_n=subword.min_n,
        max_n=subword.max_n,
        subword_map=subword_map.astype(np.float32),
    )
