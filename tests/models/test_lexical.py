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
