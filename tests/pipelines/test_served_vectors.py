from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from models.errors import InvalidConfig, InvalidInput, UnknownWord
from models.registry import Registry
from models.vectors import WordVectors, save
from pipelines.serving.served_vectors import load_served_vectors
from pipelines.text.normalize import NormalizeConfig

WORDS = ["rei", "rainha", "homem", "mulher", "ação", "casa", "casas", "são_paulo", "0000"]


def _vectors(*, ngrams: bool = False) -> WordVectors:
    rnd = np.random.default_rng(0)
    base = rnd.normal(size=(len(WORDS), 16)).astype(np.float32)
    base[1] = base[0] - base[2] + base[3]
    base[6] = base[5] + 0.05 * rnd.normal(size=16)
    grams = rnd.normal(size=(500, 16)).astype(np.float32) if ngrams else None
    return WordVectors(WORDS, base, ngrams=grams)


def _register(registry: Registry, *, kind: str = "word2vec", phrases: bool = True, ngrams: bool = False):
    with registry.create("emb", kind) as w:
        save(
            w,
            _vectors(ngrams=ngrams),
            normalize=NormalizeConfig(lowercase=True, numbers="zero").model_dump(mode="json"),
            phrases={"delimiter": "_"} if phrases else None,
        )
    return load_served_vectors(registry.open("emb"))


def test_served_vectors_normalise_queries_like_training_text(registry: Registry) -> None:
    emb = _register(registry)
    assert emb.neighbors(["CASA"], k=1)[0].neighbors[0].word == "casas"
    assert emb.similarity([("Rei", "REI")]) == [pytest.approx(1.0)]
    assert emb.lookup(["São Paulo"])[0].token == "são_paulo"
    assert emb.lookup(["1984"])[0].in_vocabulary  # digits map to 0 as in training


def test_served_vectors_unknown_words_reported_as_typed_with_suggestions(registry: Registry) -> None:
    emb = _register(registry)
    with pytest.raises(UnknownWord) as err:
        emb.similarity([("Acao", "rei"), ("xyzzy", "Acao")])
    assert err.value.extra["words"] == ["Acao", "xyzzy"]
    assert err.value.extra["suggestions"]["Acao"] == ["ação"]


def test_served_vectors_analogy_and_vectors(registry: Registry) -> None:
    emb = _register(registry)
    assert emb.analogy(["Rei", "mulher"], ["homem"], k=1)[0].word == "rainha"
    _, vecs = emb.vectors(["rei", "casa"])
    assert vecs.shape == (2, 16)
    np.testing.assert_allclose(vecs[0], _vectors().vectors[0])


def test_served_vectors_fasttext_answers_unknown_words_from_subwords(registry: Registry) -> None:
    emb = _register(registry, kind="fasttext", ngrams=True)
    (found,) = emb.neighbors(["casinhas"], k=3)
    assert len(found.neighbors) == 3
    assert not found.word.in_vocabulary


@pytest.mark.parametrize("kind", ["word2vec", "fasttext"])
@pytest.mark.parametrize("blank", ["", "   ", "\u200b", "\x00", "\u00ad", "\ufeff", "\u2060"])
def test_served_vectors_refuse_a_blank_word_in_every_operation(
    registry: Registry, kind: str, blank: str
) -> None:
    """Whitespace or invisible characters only: one clear refusal, never an answer from the n-grams of nothing
    (a FastText model gave neighbours and a cosine of 0.99 for a zero-width space) nor "unknown word"."""
    emb = _register(registry, kind=kind, ngrams=kind == "fasttext")
    calls = [
        lambda: emb.neighbors([blank], k=3),
        lambda: emb.neighbors(["rei", blank], k=3),
        lambda: emb.similarity([("rei", blank)]),
        lambda: emb.analogy(["rei", blank], ["homem"], k=1),
        lambda: emb.vectors([blank]),
        lambda: emb.lookup([blank]),
    ]
    for call in calls:
        with pytest.raises(InvalidInput, match="must not be blank") as err:
            call()
        assert not isinstance(err.value, UnknownWord)
    with pytest.raises(InvalidInput, match=r"^word 2 of 2 must not be blank"):
        emb.neighbors(["rei", blank], k=3)


def test_served_vectors_refuse_a_word_whose_vector_is_zero_everywhere(registry: Registry) -> None:
    """An imported zero vector gave a cosine of 0.0 with itself and neighbours all scored 0.0, while the analogy
    refused it: every operation now names the word, as the analogy did."""
    base = np.random.default_rng(2).normal(size=(4, 8)).astype(np.float32)
    base[3] = 0.0
    with registry.create("zeros", "word2vec") as w:
        save(w, WordVectors(["rei", "rainha", "casa", "vazio"], base), normalize=None)
    emb = load_served_vectors(registry.open("zeros"))
    for call in (
        lambda: emb.similarity([("vazio", "vazio")]),
        lambda: emb.similarity([("rei", "rainha"), ("casa", "vazio")]),
        lambda: emb.neighbors(["vazio"], k=2),
        lambda: emb.analogy(["rei", "vazio"], ["casa"], k=1),
    ):
        with pytest.raises(InvalidInput, match=r"^'vazio' has a zero vector in this model"):
            call()
    assert emb.neighbors(["rei"], k=3)[0].neighbors  # the others still answer
    _, matrix = emb.vectors(["vazio"])  # the stored vector itself is an answer
    assert not matrix.any()


def test_served_vectors_find_placeholders_for_numbers_urls_emails_and_mentions(registry: Registry) -> None:
    """Training text put <num>, <url>, <email> and <user> where those stood; a query for one finds it (1857 was
    "not in the model's vocabulary" while <num> was)."""
    words = ["rei", "<num>", "<url>", "<email>", "<user>", "casa"]
    with registry.create("marcas", "word2vec") as w:
        rnd = np.random.default_rng(1)
        vectors = WordVectors(words, rnd.normal(size=(len(words), 8)).astype(np.float32))
        save(w, vectors, normalize=NormalizeConfig(numbers="token").model_dump(mode="json"))
    emb = load_served_vectors(registry.open("marcas"))
    looked = emb.lookup(["1857", "três", "http://exemplo.com", "ana@exemplo.com", "@fulano", "Casa"])
    assert [q.token for q in looked] == ["<num>", "<num>", "<url>", "<email>", "<user>", "casa"]
    assert all(q.in_vocabulary for q in looked)
    assert emb.similarity([("1857", "1882")]) == [pytest.approx(1.0)]


@pytest.mark.parametrize("normalize", [None, NormalizeConfig().model_dump(mode="json")])
def test_served_vectors_find_url_and_mention_shaped_words_a_vocabulary_holds_itself(
    registry: Registry, normalize: dict[str, Any] | None
) -> None:
    """Imported vectors keep such words as they are (their recorded or inferred normalisation still says
    "placeholder"): a query for one finds the word itself, never a <url> the vocabulary lacks."""
    words = ["casa", "globo.com", "@fulano", "www.ufrj.br", "<num>"]
    with registry.create("importados", "word2vec") as w:
        rnd = np.random.default_rng(3)
        save(w, WordVectors(words, rnd.normal(size=(len(words), 8)).astype(np.float32)), normalize=normalize)
    emb = load_served_vectors(registry.open("importados"))
    looked = emb.lookup(["globo.com", "@fulano", "www.ufrj.br", "casa"])
    assert [q.token for q in looked] == ["globo.com", "@fulano", "www.ufrj.br", "casa"]
    assert all(q.in_vocabulary for q in looked)
    assert (
        emb.lookup(["http://exemplo.com"])[0].token == "http://exemplo.com"
    )  # no <url> here: itself, unknown


def test_served_vectors_without_normalize_file_match_verbatim(registry: Registry) -> None:
    with registry.create("cru", "word2vec") as w:
        _vectors().save(w)
    emb = load_served_vectors(registry.open("cru"))
    with pytest.raises(UnknownWord):
        emb.neighbors(["REI"])
    assert emb.neighbors(["rei"], k=1)


def test_served_vectors_invalid_normalize_file_is_a_config_error(registry: Registry) -> None:
    with registry.create("mau", "word2vec") as w:
        save(w, _vectors(), normalize={"lowercase": "talvez", "nope": 1})
    with pytest.raises(InvalidConfig, match=r"normalize\.json"):
        load_served_vectors(registry.open("mau"))


def test_served_vectors_apply_learned_phrases_to_queries(registry: Registry) -> None:
    from pipelines.text.phrases import PhraseModel

    learned = PhraseModel(({"são_paulo": 12.0},), "_", frozenset({"de"}))
    with registry.create("frases", "word2vec") as w:
        save(w, _vectors(), normalize=NormalizeConfig().model_dump(mode="json"), phrases=learned.to_json())
    emb = load_served_vectors(registry.open("frases"))
    assert emb.lookup(["São  Paulo"])[0].token == "são_paulo"
    assert emb.neighbors(["São Paulo"], k=1)
    with pytest.raises(UnknownWord) as err:
        emb.neighbors(["casa azul"])
    assert err.value.extra["words"] == ["casa azul"]


def test_served_vectors_many_unknown_words_all_listed_suggestions_bounded(registry: Registry) -> None:
    emb = _register(registry)
    unknown = [f"palavra{i}" for i in range(25)]
    with pytest.raises(UnknownWord) as err:
        emb.neighbors(["rei", *unknown])
    assert err.value.extra["words"] == unknown
    assert len(err.value.extra["suggestions"]) == 10
    assert "and 15 more" in err.value.detail


def test_served_vectors_of_an_artifact_from_before_components_keep_its_normalisation(
    registry: Registry,
) -> None:
    """A version registered before components were recorded is served as it was: its normalisation and phrases
    still shape every query."""
    from tests.models.helpers import write_old_vectors

    with registry.create("antigo", "word2vec") as w:
        write_old_vectors(
            w,
            _vectors(),
            normalize=NormalizeConfig(lowercase=True, numbers="zero").model_dump(mode="json"),
            phrases={"delimiter": "_"},
        )
    emb = load_served_vectors(registry.open("antigo"))
    (found,) = emb.neighbors(["São Paulo"], k=1)
    assert (found.word.token, found.word.in_vocabulary) == ("são_paulo", True)
    assert emb.similarity([("Rei", "REI")]) == [pytest.approx(1.0)]


def test_a_cosine_is_never_above_one() -> None:
    """float32 unit vectors made a word's cosine with itself 1.0000001 (/v1/similarity, a hostile probe)."""
    from pipelines.serving.served_vectors import ServedVectors
    from pipelines.text.normalize import Normalizer

    rnd = np.random.default_rng(3)
    words = ["".join(p) for p in itertools.product("abcdefg", repeat=3)][:300]
    vectors = WordVectors(words, rnd.normal(size=(300, 50)).astype(np.float32))
    served = ServedVectors(vectors, Normalizer(NormalizeConfig(lowercase=False)))
    pairs = [(w, w) for w in words]
    for cosines in (vectors.similarity(pairs), served.similarity(pairs)):
        assert max(cosines) == 1.0  # not above
        assert min(cosines) > 0.9999
    opposite = WordVectors(["a", "b"], np.array([[1.0, 2.0, 3.0], [-1.0, -2.0, -3.0]], dtype=np.float32))
    assert opposite.similarity([("a", "b")])[0] >= -1.0
