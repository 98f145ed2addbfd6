"""A collection's terms and BM25 index: rows kept through extend and take, files read back memory-mapped."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.lexical import Bm25, Terms

DOCS = [["o", "gato", "dorme"], [], ["o", "cão", "late", "o"], ["gato", "e", "cão"], ["chove"]]


def _words(terms: Terms) -> list[list[str]]:
    return [[terms.vocab[i] for i in row] for row in terms.rows()]


def test_terms_extend_and_take_keep_each_documents_words() -> None:
    terms = Terms.of(DOCS[:2]).extend(DOCS[2:])
    assert _words(terms) == DOCS
    assert len(terms) == len(DOCS)
    assert _words(terms.take([4, 1, 0, 3])) == [DOCS[4], DOCS[1], DOCS[0], DOCS[3]]
    assert _words(terms.take([1])) == [[]]
    assert len(terms.take([])) == 0


def test_terms_and_bm25_written_and_read_back(tmp_path: Path) -> None:
    terms = Terms.of(DOCS)
    terms.write(tmp_path)
    assert Terms.present(tmp_path)
    back = Terms.read(tmp_path)
    assert _words(back) == DOCS
    built = Bm25.build(terms)
    built.write(tmp_path / "bm25")
    read = Bm25.read(tmp_path / "bm25")
    for query in (["gato"], ["o", "cão"], ["desconhecida"], ["chove", "gato", "gato"]):
        np.testing.assert_array_equal(read.scores(query), built.scores(query))
    scores = read.scores(["gato"])
    assert scores.shape == (len(DOCS),)
    assert [i for i in range(len(DOCS)) if scores[i] > 0] == [0, 3]
    assert not read.scores(["desconhecida"]).any()


def test_bm25_of_documents_without_words_scores_zero(tmp_path: Path) -> None:
    empty = Bm25.build(Terms.of([[], []]))
    empty.write(tmp_path / "bm25")
    read = Bm25.read(tmp_path / "bm25")
    assert read.scores(["gato"]).tolist() == [0.0, 0.0]


def test_bm25_after_take_and_extend_equals_a_fresh_build() -> None:
    changed = Terms.of(DOCS).take([0, 2, 3]).extend([["gato", "novo"]])
    fresh = Terms.of([DOCS[0], DOCS[2], DOCS[3], ["gato", "novo"]])
    for query in (["gato"], ["o", "cão"], ["novo", "gato"]):
        np.testing.assert_allclose(
            Bm25.build(changed).scores(query), Bm25.build(fresh).scores(query), rtol=1e-6
        )


def _ranked(rows: np.ndarray, scores: np.ndarray, k: int) -> list[int]:
    """The k best rows by score, ties in row order (the searcher's rule)."""
    order = sorted(range(len(rows)), key=lambda i: (-scores[i], rows[i]))[:k]
    return [int(rows[i]) for i in order]


def test_bm25_candidates_hold_the_top_k_with_bm25s_scores() -> None:
    rng = np.random.default_rng(7)
    words = [f"w{i}" for i in range(300)]
    p = 1.0 / np.arange(1, 301)  # Zipf: a few words in most documents, as "o" and "de" are
    p /= p.sum()
    docs = [list(rng.choice(words, size=int(rng.integers(1, 25)), p=p)) for _ in range(3000)]
    bm25 = Bm25.build(Terms.of(docs))
    allowed = rng.random(len(docs)) < 0.5
    pruned = 0
    for n in range(200):
        query = [*rng.choice(words, size=int(rng.integers(1, 9)), p=p).tolist(), "ausente"]
        full = np.asarray(bm25.index.get_scores(query[:-1]), np.float32)  # bm25s's own scores
        for k, mask in ((10, None), (100, None), (10, allowed), (5000, None)):
            rows, scores = bm25.candidates(query, k, mask)
            sharing = np.flatnonzero(full > 0)
            if mask is not None:
                sharing = sharing[mask[sharing]]
            assert np.array_equal(scores, full[rows]), (n, k)
            assert _ranked(rows, scores, k) == _ranked(sharing, full[sharing], k), (n, k)
            pruned += len(rows) < len(sharing)
    assert pruned > 100  # the floor leaves most documents out of the ranking
    assert bm25.candidates(["ausente"], 10)[0].tolist() == []


def test_bm25_candidates_keep_the_best_when_a_word_is_repeated_hundreds_of_times() -> None:
    """The float32 sum of a word's score added 999 times falls below the exact sum by more than a fixed 1e-5: the
    lower bound of the k-th best score must allow for it, or every document falls below it. (With a fixed 1e-5,
    304 of the first 400 seeds lost the best document, the first four among them: 40 are plenty.)"""
    for seed in range(40):
        rng = np.random.default_rng(seed)
        docs = [
            ["a"] * int(rng.integers(1, 4)) + [f"f{j}" for j in range(int(rng.integers(0, 40)))]
            for _ in range(50)
        ]
        bm25 = Bm25.build(Terms.of(docs))
        query = ["a"] * 999
        full = np.asarray(bm25.index.get_scores(query), np.float32)
        for k in (1, 3):
            rows, scores = bm25.candidates(query, k)
            assert _ranked(rows, scores, k) == _ranked(np.arange(50), full, k), (seed, k)


def test_bm25_candidates_under_a_tight_filter_of_a_long_query() -> None:
    rng = np.random.default_rng(3)
    words = [f"w{i}" for i in range(400)]
    docs = [list(rng.choice(words, size=12)) for _ in range(5000)]
    bm25 = Bm25.build(Terms.of(docs))
    allowed = np.zeros(5000, bool)
    allowed[rng.choice(5000, 20, replace=False)] = True
    query = list(rng.choice(words, size=300))
    full = np.asarray(bm25.index.get_scores(query), np.float32)
    rows, scores = bm25.candidates(query, 10, allowed)
    sharing = np.flatnonzero((full > 0) & allowed)
    assert _ranked(rows, scores, 10) == _ranked(sharing, full[sharing], 10)


def test_bm25_index_arrays_equal_bm25s_own_build() -> None:
    """The vectorised build gives bm25s's arrays exactly (values, rows, column bounds), on documents with repeated
    words, empty documents and vocabulary words no document holds any more."""
    import bm25s

    rng = np.random.default_rng(11)
    words = [f"w{i}" for i in range(400)]
    p = 1.0 / np.arange(1, 401)
    p /= p.sum()
    docs = [list(rng.choice(words, size=int(rng.integers(0, 30)), p=p)) for _ in range(2000)]
    for terms in (
        Terms.of(docs),
        Terms.of(docs).take(list(range(0, 2000, 3))),
    ):  # the second keeps unused words
        ours = Bm25.build(terms).index
        theirs = bm25s.BM25()
        theirs.index(
            (terms.rows(), {t: i for i, t in enumerate(terms.vocab)}),
            create_empty_token=False,
            show_progress=False,
        )
        for key in ("data", "indices", "indptr"):
            assert ours.scores[key].dtype == theirs.scores[key].dtype, key
            np.testing.assert_array_equal(ours.scores[key], theirs.scores[key], err_msg=key)
        assert ours.scores["num_docs"] == theirs.scores["num_docs"]
        assert ours.vocab_dict == theirs.vocab_dict
