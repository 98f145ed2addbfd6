"""The Kneser-Ney n-gram component: against a plain-Python implementation of the same formulas, and its sums."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pytest

from models.errors import IntegrityError, InvalidInput
from models.ngram import NGramModel
from pipelines.lm.ngram import discounts, estimate

PAD = 0


def _reference(ids: list[int], order: int, v: int):
    """Interpolated modified Kneser-Ney written out with dictionaries (Chen & Goodman 1998), for comparison."""
    stream = [PAD] * (order - 1) + ids
    windows = {  # counted from the last pad on (the <p> before the first document), as every <p> is
        m: Counter(tuple(stream[j - m + 1 : j + 1]) for j in range(max(m - 1, order + m - 3), len(stream)))
        for m in range(1, order + 1)
    }
    counts: dict[int, Counter] = {order: windows[order]}
    for m in range(order - 1, 0, -1):
        left = Counter(g[1:] for g in windows[m + 1])  # distinct tokens before each m-gram
        counts[m] = Counter({g: left.get(g, 0) for g in windows[m]})

    def ds(m):
        values = np.array([c for c in counts[m].values() if c > 0], dtype=np.int64)
        return discounts(values)

    d = {m: ds(m) for m in range(1, order + 1)}
    totals = {m: defaultdict(float) for m in range(1, order + 1)}
    freed = {m: defaultdict(float) for m in range(1, order + 1)}
    for m in range(1, order + 1):
        for g, c in counts[m].items():
            totals[m][g[:-1]] += c
            if c > 0:
                freed[m][g[:-1]] += d[m][min(c, 3)]

    def p(w, history, m):
        if m == 0:
            return 1.0 / v
        h = tuple(history[len(history) - (m - 1) :]) if m > 1 else ()
        lower = p(w, history, m - 1)
        total = totals[m].get(h, 0.0)
        if total == 0:
            return lower
        c = counts[m].get((*h, w), 0)
        a = max(c - d[m][min(c, 3)], 0.0) / total
        return a + freed[m][h] / total * lower

    return p


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_estimate_matches_the_formulas_written_out(order):
    rng = np.random.default_rng(order)
    v = 9
    ids = [int(x) for x in rng.integers(1, v, size=300)] + [1, 2, 3, 1, 2, 3, 1, 2, 4]
    model = estimate(np.array(ids), order=order, vocab_size=v, pad=PAD)
    ref = _reference(ids, order, v)
    contexts = rng.integers(0, v, size=(60, 4))
    contexts[:5] = [[1, 2, 3, 1], [0, 0, 0, 0], [2, 3, 1, 2], [8, 8, 8, 8], [3, 1, 2, 3]]
    targets = rng.integers(0, v, size=60)
    got = np.exp(model.log_probs(contexts, targets))
    want = [ref(int(w), list(map(int, ctx)), order) for ctx, w in zip(contexts, targets, strict=True)]
    np.testing.assert_allclose(got, want, rtol=2e-6)
    for ctx in contexts[:10]:
        dist = model.distribution(ctx)
        assert dist.sum() == pytest.approx(1.0, abs=1e-5)
        assert (dist > 0).all()
        np.testing.assert_allclose(dist, [ref(w, list(map(int, ctx)), order) for w in range(v)], rtol=2e-6)


def test_a_seen_phrase_is_predicted_and_unseen_contexts_back_off():
    sentence = [3, 4, 5, 6, 2]
    ids = np.array(sentence * 50 + [7, 8] * 20)
    model = estimate(ids, order=3, vocab_size=10, pad=PAD)
    dist = model.distribution([3, 4])
    assert int(np.argmax(dist)) == 5
    assert dist[5] > 0.8
    # a history never seen: the answer is the bigram's (last token only)
    np.testing.assert_allclose(model.distribution([9, 4]), model.distribution([7, 4]), rtol=1e-6)


def test_a_texts_start_reads_as_any_paragraphs_start():
    # every document but the first opens "3 5"; the first opens "3 4". A context padded with <p> (a text's start,
    # as the predictor pads it) must back off as after any <p> (here after 20, a token never seen), not recall
    # the stream's own first words, seen once behind its padding
    rng = np.random.default_rng(0)
    ids = [3, 4, 6, 7, PAD]
    for _ in range(200):
        ids += [3, 5, *rng.integers(6, 20, size=5).tolist(), PAD]
    model = estimate(np.array(ids), order=5, vocab_size=21, pad=PAD)
    at_start = model.distribution([PAD, PAD, PAD, 3])
    np.testing.assert_allclose(at_start, model.distribution([20, 20, PAD, 3]), rtol=1e-6)
    assert at_start[5] > 0.85
    # the first token of a text: as after any <p>
    np.testing.assert_allclose(
        model.distribution([PAD, PAD, PAD, PAD]), model.distribution([20, 20, 20, PAD]), rtol=1e-6
    )


def test_arrays_round_trip_and_damage_is_refused():
    model = estimate(np.arange(1, 50) % 7 + 1, order=3, vocab_size=8, pad=PAD)
    arrays = model.to_arrays()
    again = NGramModel.from_arrays(arrays, order=3, vocab_size=8)
    ctx = np.array([[1, 2], [3, 4]])
    np.testing.assert_array_equal(
        again.log_probs(ctx, np.array([3, 5])), model.log_probs(ctx, np.array([3, 5]))
    )
    missing = {k: a for k, a in arrays.items() if k != "gamma.3"}
    with pytest.raises(IntegrityError, match=r"gamma\.3"):
        NGramModel.from_arrays(missing, order=3, vocab_size=8)
    short = dict(arrays, **{"discounted.2": arrays["discounted.2"][:-1]})
    with pytest.raises(IntegrityError):
        NGramModel.from_arrays(short, order=3, vocab_size=8)


@pytest.mark.parametrize(
    "damage",
    [
        "unigram in two dimensions",
        "keys out of order",
        "key past its history",
        "gamma not a number",
        "a above 1",
    ],
)
def test_tables_that_do_not_describe_a_model_are_refused(damage):
    model = estimate(np.arange(1, 50) % 7 + 1, order=3, vocab_size=8, pad=PAD)
    arrays = {k: np.array(a) for k, a in model.to_arrays().items()}
    if damage == "unigram in two dimensions":  # lengths still match; every lookup then broadcasts
        arrays["unigram"] = arrays["unigram"][:, None]
    elif damage == "keys out of order":  # the binary searches would miss n-grams the tables hold
        arrays["keys.2"] = arrays["keys.2"][::-1].copy()
    elif damage == "key past its history":
        arrays["keys.3"][-1] = len(arrays["keys.2"]) * 8
    elif damage == "gamma not a number":
        arrays["gamma.2"][0] = np.nan
    else:
        arrays["discounted.3"][0] = 1.5
    with pytest.raises(IntegrityError, match="n-gram"):
        NGramModel.from_arrays(arrays, order=3, vocab_size=8)


def test_bad_input_is_refused():
    with pytest.raises(InvalidInput, match="order"):
        estimate(np.array([1, 2]), order=0, vocab_size=4, pad=PAD)
    with pytest.raises(InvalidInput, match="no tokens"):
        estimate(np.array([], dtype=np.int64), order=2, vocab_size=4, pad=PAD)
    with pytest.raises(InvalidInput, match=r"\[0, 4\)"):
        estimate(np.array([1, 9]), order=2, vocab_size=4, pad=PAD)
    model = estimate(np.array([1, 2, 3]), order=3, vocab_size=4, pad=PAD)
    with pytest.raises(InvalidInput, match="at least 2"):
        model.log_probs(np.array([[1]]), np.array([2]))
