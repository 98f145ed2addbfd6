"""Fitting a :class:`FeatureSpace` on training texts: which words and n-grams get rows, and their idf."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from pipelines.classifier.config import FeatureConfig
from pipelines.classifier.features import FeatureSpace
from pipelines.classifier.hashing import (
    Bags,
    ngram_keys,
    stable_hash,
)
from pipelines.text.normalize import NormalizeConfig

log = logging.getLogger(__name__)
_NO_KEYS = np.zeros(0, dtype=np.uint64)


def _frequent(
    keys: npt.NDArray[np.uint64], doc_of: npt.NDArray[np.int64], min_count: int
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64]]:
    """Keys present in at least ``min_count`` documents, with their document counts."""
    if not keys.size:
        return _NO_KEYS, np.zeros(0, dtype=np.int64)
    order = np.lexsort((doc_of, keys))
    k, d = keys[order], doc_of[order]
    first = np.ones(k.shape[0], dtype=bool)
    first[1:] = (k[1:] != k[:-1]) | (d[1:] != d[:-1])
    uniq, counts = np.unique(k[first], return_counts=True)
    keep = counts >= min_count
    return uniq[keep], counts[keep]


def _char_key_df(
    per_token: list[list[int]], token_df: npt.NDArray[np.int64], min_count: int
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64]]:
    """Character n-gram keys with their text counts (a text with two words sharing an n-gram counts twice)."""
    sizes = np.fromiter((len(k) for k in per_token), dtype=np.int64, count=len(per_token))
    flat = np.fromiter((h for keys in per_token for h in keys), dtype=np.uint64, count=int(sizes.sum()))
    if not flat.size:
        return _NO_KEYS, np.zeros(0, dtype=np.int64)
    uniq, inverse = np.unique(flat, return_inverse=True)
    counts = np.bincount(inverse, weights=np.repeat(token_df, sizes)).astype(np.int64)
    keep = counts >= min_count
    return uniq[keep], counts[keep]


def _word_ngram_df(
    docs: Sequence[Sequence[str]], config: FeatureConfig
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64]]:
    lengths = np.fromiter((len(d) for d in docs), dtype=np.int64, count=len(docs))
    hashes = np.fromiter((stable_hash(t) for d in docs for t in d), dtype=np.uint64)
    starts = np.zeros(len(docs), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    keys, doc_of = [], []
    for n in range(2, config.word_ngrams + 1):
        k, d = ngram_keys(hashes, starts, n)
        keys.append(k)
        doc_of.append(d)
    if not keys:
        return _NO_KEYS, np.zeros(0, dtype=np.int64)
    return _frequent(np.concatenate(keys), np.concatenate(doc_of), config.ngram_min_count)


def _cap(
    keys: npt.NDArray[np.uint64], counts: npt.NDArray[np.int64], room: int
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64]]:
    """The ``room`` most frequent keys (all of them when they fit), sorted by key, with their counts."""
    if keys.shape[0] <= room:
        return keys, counts
    top = np.sort(np.argsort(-counts, kind="stable")[: max(room, 0)])
    return keys[top], counts[top]


def _idf(df: npt.NDArray[np.int64], n: int) -> npt.NDArray[np.float32]:
    """scikit-learn's smoothed idf, ``ln((1 + n) / (1 + df)) + 1``."""
    out: npt.NDArray[np.float32] = (np.log((1.0 + n) / (1.0 + df)) + 1.0).astype(np.float32)
    return out


#: The steps of :func:`fit_feature_space`, each announced to its ``on_step`` before it runs.
FIT_STEPS = 4


def fit_feature_space(
    texts: Sequence[str],
    config: FeatureConfig,
    normalize: NormalizeConfig,
    *,
    on_step: Callable[[str], None] | None = None,
) -> tuple[FeatureSpace, Bags]:
    """Choose the rows from ``texts`` and encode them; returns the space and the training bags.

    Args:
        on_step: called with a line saying what runs next, before each of the :data:`FIT_STEPS` steps.
    """
    step = on_step or (lambda _message: None)
    probe = FeatureSpace(
        config, normalize, words=[], char_keys=_NO_KEYS, word_ngram_keys=_NO_KEYS, idf=np.zeros(0, np.float32)
    )
    step(f"tokenising {len(texts):,} texts")
    docs = probe.token_lists(texts)
    counter = Counter(w for doc in docs for w in set(doc))
    tokens = sorted(counter, key=lambda w: (-counter[w], w))
    token_df = np.fromiter((counter[t] for t in tokens), dtype=np.int64, count=len(tokens))
    words = [w for w in tokens if counter[w] >= config.min_count][: config.max_rows]
    room = config.max_rows - len(words)
    step(f"character n-grams of {len(tokens):,} distinct words")
    per_token = probe.char_keys_of(tokens)
    char_keys, char_df = _cap(*_char_key_df(per_token, token_df, config.ngram_min_count), room)
    step("choosing feature rows")
    gram_keys, gram_df = _NO_KEYS, np.zeros(0, dtype=np.int64)
    if config.word_ngrams > 1:
        gram_keys, gram_df = _cap(*_word_ngram_df(docs, config), room - char_keys.shape[0])
    df = np.concatenate([token_df[: len(words)], char_df, gram_df])
    space = FeatureSpace(
        config,
        normalize,
        words=words,
        char_keys=char_keys,
        word_ngram_keys=gram_keys,
        idf=_idf(df, len(texts)),
    )
    space.learn(tokens, per_token)
    step(f"encoding {len(texts):,} training texts")
    bags = space.encode_tokens(docs)
    log.info("feature rows: %s", space.describe())
    return space, bags
