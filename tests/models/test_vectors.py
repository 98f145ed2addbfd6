from __future__ import annotations

import numpy as np
import pytest

from models.errors import InvalidInput, UnknownWord
from models.registry import Registry
from models.vectors import WordVectors

WORDS = ["rei", "rainha", "homem", "mulher", "ação", "casa", "casas"]


@pytest.fixture
def wv() -> WordVectors:
    rnd = np.random.default_rng(0)
    base = rnd.normal(size=(len(WORDS), 16)).astype(np.float32)
    # rei - homem + mulher == rainha by construction
    base[1] = base[0] - base[2] + base[3]
    base[6] = base[5] + 0.05 * rnd.normal(size=16)
    return WordVectors(WORDS, base)


def test_vectors_neighbors_exclude_the_word_and_are_sorted(wv: WordVectors) -> None:
    (hits,) = wv.neighbors(["casa"], k=3)
    assert hits[0].word == "casas"
    assert "casa" not in [n.word for n in hits]
    scores = [n.score for n in hits]
    assert scores == sorted(scores, reverse=True)


def test_vectors_batched_neighbors_match_single(wv: WordVectors) -> None:
    batch = wv.neighbors(["rei", "casa"], k=2)
    single = [wv.neighbors(["rei"], k=2)[0], wv.neighbors(["casa"], k=2)[0]]
    assert [[n.word for n in row] for row in batch] == [[n.word for n in row] for row in single]
    np.testing.assert_allclose(
        [n.score for row in batch for n in row], [n.score for row in single for n in row], rtol=1e-5
    )


@pytest.mark.parametrize("method", ["3cosadd", "3cosmul"])
def test_vectors_analogy_finds_constructed_answer(wv: WordVectors, method: str) -> None:
    hits = wv.analogy(["rei", "mulher"], ["homem"], k=1, method=method)  # type: ignore[arg-type]
    assert hits[0].word == "rainha"


def test_vectors_analogy_never_answers_query_words_even_for_a_large_k(wv: WordVectors) -> None:
    for method in ("3cosadd", "3cosmul"):
        hits = wv.analogy(["rei", "mulher"], ["homem"], k=100, method=method)  # type: ignore[arg-type]
        assert sorted(n.word for n in hits) == sorted(set(WORDS) - {"rei", "mulher", "homem"}), method
        assert all(np.isfinite(n.score) for n in hits), method


def test_vectors_analogy_whose_words_cancel_out_is_refused(wv: WordVectors) -> None:
    with pytest.raises(InvalidInput, match="cancel out"):
        wv.analogy(["rei"], ["rei"])
    with pytest.raises(InvalidInput, match="cancel out"):
        wv.analogy(["rei", "casa"], ["casa", "rei"])


def test_vectors_unknown_words_listed_with_suggestions(wv: WordVectors) -> None:
    with pytest.raises(UnknownWord) as err:
        wv.similarity([("acao", "rei"), ("Casa", "xyz")])
    assert err.value.extra["words"] == ["acao", "Casa", "xyz"]
    assert err.value.extra["suggestions"]["acao"] == ["ação"]
    assert "casa" in err.value.extra["suggestions"]["Casa"]


def test_vectors_k_must_be_positive(wv: WordVectors) -> None:
    with pytest.raises(InvalidInput):
        wv.neighbors(["rei"], k=0)


def test_vectors_roundtrip_through_registry(wv: WordVectors, registry: Registry) -> None:
    with registry.create("wv", "word2vec") as w:
        wv.save(w)
    loaded = WordVectors.load(registry.open("wv"))
    assert loaded.words == WORDS
    assert isinstance(loaded.normed, np.memmap)
    assert loaded.neighbors(["casa"], k=2) == wv.neighbors(["casa"], k=2)


def test_vectors_subwords_answer_unknown_words() -> None:
    rnd = np.random.default_rng(1)
    ngrams = rnd.normal(size=(1000, 8)).astype(np.float32)
    wv = WordVectors(["casa"], rnd.normal(size=(1, 8)).astype(np.float32), ngrams=ngrams)
    vec = wv.vector("casinha")
    assert vec.shape == (8,)
    assert wv.unit_matrix(["casinha"]).shape == (1, 8)
