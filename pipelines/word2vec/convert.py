"""gensim models -> :class:`~models.vectors.WordVectors`, array by array (never through gensim's pickle files).

A FastText model keeps its n-gram bucket matrix, so unknown words still get vectors from their subwords
(``models.vectors`` hashes n-grams exactly as gensim's ``ft_ngram_hashes``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.vectors import WordVectors


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
