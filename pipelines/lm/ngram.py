"""Estimate an interpolated modified Kneser-Ney n-gram model (models/ngram.py) from a stream of token ids.

The stream is the one the network trains on (documents one after another, ``<p>`` between them), padded on the
left with ``order - 1`` ``pad`` tokens as the network's first contexts are (n-grams reaching past the last pad are
tabled, not counted). Each order's n-grams are counted with whole-array numpy (one sort per order: about 3 s per
order on 19M tokens); no Python loop runs per token.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from models.errors import InvalidInput
from models.ngram import MAX_ORDER, NGramModel

Ids = npt.NDArray[np.int64]


def discounts(counts: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """``D[c]`` for a count ``c`` of 0, 1, 2 and 3+ (Chen & Goodman's estimates from the counts of counts).

    Each D is kept inside ``(0, c)``: a count keeps some of its mass and gives some to the lower order, so that no
    token's probability is 0, also on a corpus too small for the estimates.
    """
    n1, n2, n3, n4 = (int(np.count_nonzero(counts == k)) for k in (1, 2, 3, 4))
    y = n1 / (n1 + 2 * n2) if n1 + 2 * n2 else 0.5
    raw = (
        1 - 2 * y * n2 / n1 if n1 else 0.5,
        2 - 3 * y * n3 / n2 if n2 else 1.0,
        3 - 4 * y * n4 / n3 if n3 else 1.5,
    )
    out = np.zeros(4, dtype=np.float64)
    for c, d in enumerate(raw, start=1):
        out[c] = min(max(d, 0.1), c - 0.1)
    return out


def _discount_of(counts: npt.NDArray[np.int64], d: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    out: npt.NDArray[np.float64] = d[np.minimum(counts, 3)]
    return out


def estimate(ids: Ids, *, order: int, vocab_size: int, pad: int) -> NGramModel:
    """The order-``order`` model of the stream ``ids`` (every id in ``[0, vocab_size)``).

    Raises:
        InvalidInput: an order outside 1..MAX_ORDER, an empty stream or an id outside the vocabulary.
    """
    if not 1 <= order <= MAX_ORDER:
        raise InvalidInput(f"an n-gram order must be from 1 to {MAX_ORDER}, not {order}")
    ids = np.asarray(ids, dtype=np.int64)
    if ids.size == 0:
        raise InvalidInput("no tokens to count n-grams in")
    if int(ids.min()) < 0 or int(ids.max()) >= vocab_size or not 0 <= pad < vocab_size:
        raise InvalidInput(f"token ids must be in [0, {vocab_size})")
    v = vocab_size
    stream = np.concatenate([np.full(order - 1, pad, dtype=np.int64), ids])
    # order m's table: its sorted unique keys, and the row of the window ending at each position j >= m - 1.
    # Only the windows from position order - 2 on are counted: the last pad stands for the <p> before the first
    # document, as one <p> comes before every other; the ones before it exist for the alignment only. Counted,
    # they made "<p> <p> <p> w" a history seen once (the stream's first words), which every text's start
    # (padded with <p> by the predictor) then recalled instead of backing off to how paragraphs start.
    keys: list[Ids] = []
    counts: list[npt.NDArray[np.int64]] = []
    suffix_rows: list[Ids] = []  # per key of order m: the row of its last m - 1 tokens in order m - 1's table
    rows: Ids = stream  # order 1: a window's row is its token id
    for m in range(2, order + 1):
        key = rows[:-1] * v + stream[m - 1 :]
        uniq, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        suffix = rows[first + 1]  # rows is aligned to positions m - 2.., this key array to m - 1..
        rows = inverse.reshape(-1).astype(np.int64)  # window i starts at position i
        keys.append(uniq.astype(np.int64))
        counts.append(np.bincount(rows[order - 2 :], minlength=len(uniq)).astype(np.int64))
        suffix_rows.append(suffix.astype(np.int64))
    # raw counts at the highest order; below it, continuation counts: how many distinct tokens came before
    adjusted: list[npt.NDArray[np.int64]] = [np.zeros(0, dtype=np.int64)] * (order - 1)
    if order >= 2:
        adjusted[-1] = counts[-1]
    for m in range(order - 1, 1, -1):  # order m's counts from order m + 1's keys (those counted)
        left = suffix_rows[m - 1][counts[m - 1] > 0]
        adjusted[m - 2] = np.bincount(left, minlength=len(keys[m - 2])).astype(np.int64)
    if order >= 2:
        unigram_counts = np.bincount(suffix_rows[0][counts[0] > 0], minlength=v).astype(np.int64)
    else:
        unigram_counts = np.bincount(ids, minlength=v).astype(np.int64)

    d1 = discounts(unigram_counts[unigram_counts > 0])
    total = float(unigram_counts.sum())
    freed = float(_discount_of(unigram_counts, d1)[unigram_counts > 0].sum())
    unigram = np.maximum(unigram_counts - _discount_of(unigram_counts, d1), 0.0) / total + freed / total / v

    discounted: list[npt.NDArray[np.float32]] = []
    gammas: list[npt.NDArray[np.float32]] = []
    rows_below = v
    for m in range(2, order + 1):
        c = adjusted[m - 2]
        d = discounts(c[c > 0])
        history = keys[m - 2] // v
        totals = np.bincount(history, weights=c, minlength=rows_below)
        freed_mass = np.bincount(
            history, weights=np.where(c > 0, _discount_of(c, d), 0.0), minlength=rows_below
        )
        seen = totals > 0
        safe = np.where(seen, totals, 1.0)
        discounted.append((np.maximum(c - _discount_of(c, d), 0.0) / safe[history]).astype(np.float32))
        gammas.append(np.where(seen, freed_mass / safe, 1.0).astype(np.float32))
        rows_below = len(keys[m - 2])
    return NGramModel(
        order=order,
        vocab_size=v,
        unigram=unigram.astype(np.float32),
        keys=tuple(keys),
        discounted=tuple(discounted),
        gamma=tuple(gammas),
    )
