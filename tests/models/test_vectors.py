from __future__ import annotations

import numpy as np
import pytest

from models.errors import IntegrityError, InvalidInput, UnknownWord
from models.registry import Registry
from models.vectors import WordVectors, load, save
from tests.models.helpers import write_old_vectors

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


@pytest.mark.parametrize("method", ["3cosadd", "3cosmul"])
def test_vectors_analogy_whose_words_cancel_out_is_refused(wv: WordVectors, method: str) -> None:
    """3CosMul answered them too: every word then scores about 1 and the list is arbitrary (a hostile probe)."""
    with pytest.raises(InvalidInput, match="cancel out"):
        wv.analogy(["rei"], ["rei"], method=method)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="cancel out"):
        wv.analogy(["rei", "casa"], ["casa", "rei"], method=method)  # type: ignore[arg-type]


@pytest.mark.parametrize("method", ["3cosadd", "3cosmul"])
def test_vectors_analogy_with_a_zero_vector_names_the_word(method: str) -> None:
    """An imported model's zero vector was reported as words that "cancel out" (3CosAdd) or silently scored
    (3CosMul) (a hostile probe)."""
    base = np.random.default_rng(1).normal(size=(4, 8)).astype(np.float32)
    base[3] = 0.0
    vectors = WordVectors(["rei", "rainha", "casa", "vazio"], base)
    with pytest.raises(InvalidInput, match=r"^'vazio' has a zero vector in this model"):
        vectors.analogy(["vazio"], [], method=method)
    with pytest.raises(InvalidInput, match=r"^'vazio' has a zero vector"):
        vectors.analogy(["rei", "casa"], ["vazio"], method=method)
    assert vectors.analogy(["rei", "casa"], ["rainha"], k=1, method=method)


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


def test_vectors_joined_model_predicts_an_unknown_words_word_level_half(registry: Registry) -> None:
    """A joined model's unknown word gets [n-gram half, n-gram half @ map]; the map travels with the artifact."""
    rnd = np.random.default_rng(2)
    ngrams = rnd.normal(size=(1000, 4)).astype(np.float32)
    subword_map = rnd.normal(size=(4, 3)).astype(np.float32)
    joined = WordVectors(
        ["casa", "rei"], rnd.normal(size=(2, 7)).astype(np.float32), ngrams=ngrams, subword_map=subword_map
    )
    vec = joined.vector("casinha")
    assert np.allclose(vec[4:], vec[:4] @ subword_map, atol=1e-6)
    assert np.any(vec[4:])
    with registry.create("juntos", "fasttext") as w:
        save(w, joined)
    stored = load(registry.open("juntos"))
    assert stored.components == ("vectors", "subwords", "subword_map")
    assert np.array_equal(stored.vectors.vector("casinha"), vec)
    without = WordVectors(["casa", "rei"], joined.vectors, ngrams=ngrams)  # a model joined before the map
    assert not np.any(without.vector("casinha")[4:])
    with pytest.raises(InvalidInput, match="subword map of shape"):
        WordVectors(["casa", "rei"], joined.vectors, ngrams=ngrams, subword_map=np.ones((4, 4), np.float32))


class _CountedReads(np.ndarray):
    """A matrix that counts how often rows are read from it."""

    reads = 0

    def __getitem__(self, key: object) -> object:
        _CountedReads.reads += 1
        return super().__getitem__(key)


def test_vectors_unit_matrix_reads_the_rows_of_a_batch_at_once() -> None:
    """A read per word makes a memmap view per word on a served (memory-mapped) matrix: one gather instead."""
    rnd = np.random.default_rng(2)
    base = rnd.normal(size=(len(WORDS), 8)).astype(np.float32)
    ngrams = rnd.normal(size=(1000, 8)).astype(np.float32)
    plain = WordVectors(WORDS, base, ngrams=ngrams)
    counted = WordVectors(WORDS, base, normed=plain.normed.copy().view(_CountedReads), ngrams=ngrams)
    query = ["casa", "rei", "casinha", "mulher", "rei", "ação"]  # a subword-only word in the middle, a repeat
    _CountedReads.reads = 0
    units = counted.unit_matrix(query)
    assert _CountedReads.reads == 1
    assert units.dtype == np.float32
    assert units.shape == (6, 8)
    for row, word in zip(units, query, strict=True):
        expected = plain.vector(word) / np.linalg.norm(plain.vector(word))
        assert np.allclose(row, expected, atol=1e-6), word


def test_vectors_artifact_records_its_components_and_reads_them_back(registry: Registry) -> None:
    counted = WordVectors(WORDS, np.asarray(np.eye(len(WORDS), 8), np.float32), counts=np.arange(7, 0, -1))
    with registry.create("completo", "word2vec") as w:
        save(
            w, counted, normalize={"lowercase": True}, phrases={"delimiter": "_"}, config={"name": "completo"}
        )
    art = registry.open("completo")
    assert art.version.metadata["components"] == ["vectors", "counts", "normalize", "phrases", "config"]
    stored = load(art)
    assert stored.components == ("vectors", "counts", "normalize", "phrases", "config")
    assert (stored.normalize, stored.phrases) == ({"lowercase": True}, {"delimiter": "_"})
    assert stored.vectors.counts is not None
    with registry.create("so-vetores", "word2vec") as w:
        save(w, counted)
    bare = load(registry.open("so-vetores"))
    assert (bare.components, bare.normalize, bare.phrases) == (("vectors", "counts"), None, None)


def test_vectors_artifact_registered_before_components_were_recorded_still_loads(
    wv: WordVectors, registry: Registry
) -> None:
    with registry.create("antigo", "word2vec") as w:
        write_old_vectors(w, wv, normalize={"lowercase": True}, phrases={"delimiter": "_"}, config={})
    art = registry.open("antigo")
    assert "components" not in art.version.metadata
    stored = load(art)
    assert stored.components == ("vectors", "normalize", "phrases", "config")
    assert (stored.normalize, stored.phrases) == ({"lowercase": True}, {"delimiter": "_"})
    assert stored.vectors.words == WORDS
    assert stored.vectors.neighbors(["casa"], k=2) == wv.neighbors(["casa"], k=2)


def test_vectors_artifact_refuses_files_it_does_not_record(wv: WordVectors, registry: Registry) -> None:
    """A normalisation written beside the owner would be ignored by every reader: refused instead."""
    with registry.create("avulso", "word2vec") as w:
        save(w, wv)
        w.write_json("normalize.json", {"lowercase": True})
    with pytest.raises(IntegrityError, match=r"normalize\.json"):
        load(registry.open("avulso"))
    with registry.create("vazio", "word2vec") as w:
        w.write_json("config.json", {})
    with pytest.raises(IntegrityError, match="holds no vectors"):
        load(registry.open("vazio"))
