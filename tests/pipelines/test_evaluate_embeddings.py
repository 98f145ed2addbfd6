"""Analogy and word-pair evaluation: file parsing, counting rules, agreement with gensim, subword answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.errors import DatasetError
from models.vectors import WordVectors
from pipelines.evaluation.evaluate_embeddings import (
    AnalogyQuestion,
    WordPair,
    evaluate_analogies,
    evaluate_embeddings,
    evaluate_word_pairs,
    is_echo,
    orthographic_echo,
    read_analogies,
    read_word_pairs,
)
from pipelines.reading.datasets import DataCatalog
from pipelines.text.normalize import Normalizer

WORDS = ["rei", "rainha", "homem", "mulher", "menino", "menina", "casa", "casas", "carro", "carros", "lisboa"]


@pytest.fixture
def wv() -> WordVectors:
    """Vectors where male->female and singular->plural are exact offsets."""
    rnd = np.random.default_rng(0)
    base = {w: rnd.normal(size=24) for w in ["rei", "homem", "menino", "casa", "carro", "lisboa"]}
    female, plural = rnd.normal(size=24), rnd.normal(size=24)
    rows = {
        **base,
        "rainha": base["rei"] + female,
        "mulher": base["homem"] + female,
        "menina": base["menino"] + female,
        "casas": base["casa"] + plural,
        "carros": base["carro"] + plural,
    }
    counts = np.arange(len(WORDS), 0, -1)
    return WordVectors(WORDS, np.array([rows[w] for w in WORDS], np.float32), counts=counts)


def q(section: str, line: str) -> AnalogyQuestion:
    a, b, c, d = line.split()
    return AnalogyQuestion(section, (a, b, c, d))


def test_read_analogies_sections_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text(": family\nrei rainha homem mulher\n\n: gram8-plural\ncasa casas carro carros\n", "utf-8")
    questions = read_analogies(path)
    assert [x.section for x in questions] == ["family", "gram8-plural"]
    path.write_text(": family\nrei rainha homem\n", "utf-8")
    with pytest.raises(DatasetError, match=r"a\.txt:2: an analogy line needs four words"):
        read_analogies(path)
    path.write_bytes(b"\x00\xff\xfe")
    with pytest.raises(DatasetError, match="not UTF-8"):
        read_analogies(path)


def test_read_word_pairs_with_header_and_pos_column(tmp_path: Path) -> None:
    path = tmp_path / "p.tsv"
    path.write_text("word1\tword2\tPOS\tscore\nvelho\tnovo\tA\t0.00\nfeliz\talegre\tA\t8,33\n", "utf-8")
    assert read_word_pairs(path) == [WordPair("velho", "novo", 0.0), WordPair("feliz", "alegre", 8.33)]
    path.write_text("a\tb\t1\nc\td\tmuito\n", "utf-8")
    with pytest.raises(DatasetError, match=r"p\.tsv:2"):
        read_word_pairs(path)


def test_analogies_count_answered_skipped_and_sections(wv: WordVectors) -> None:
    questions = [
        q("family", "Rei Rainha Homem Mulher"),
        q("family", "homem mulher menino menina"),
        q("family", "rei rainha homem desconhecida"),
        q("gram8-plural", "casa casas carro carros"),
        q("gram8-plural", "casa casas barco barcos"),
    ]
    res = evaluate_analogies(wv, questions, normalize=Normalizer().word)
    assert (res["questions"], res["answered"], res["skipped"]) == (5, 3, 2)
    for method in ("3cosadd", "3cosmul"):
        assert res[method]["correct"] == 3
        assert res[method]["accuracy"] == pytest.approx(1.0)
        assert res[method]["accuracy_all"] == pytest.approx(3 / 5)
    assert res["semantic"]["questions"] == 3
    assert res["syntactic"]["3cosadd"]["accuracy_all"] == pytest.approx(0.5)
    assert res["sections"]["family"]["answered"] == 2


def test_analogies_restrict_vocab_drops_rare_answers(wv: WordVectors) -> None:
    questions = [q("g", "casa casas carro carros")]  # "carros" is the least frequent but one
    assert evaluate_analogies(wv, questions, restrict_vocab=len(WORDS))["answered"] == 1
    assert evaluate_analogies(wv, questions, restrict_vocab=5)["answered"] == 0


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_analogies_agree_with_gensim(wv: WordVectors) -> None:
    from gensim.models import KeyedVectors

    kv = KeyedVectors(vector_size=wv.dim)
    kv.add_vectors(wv.words, np.asarray(wv.vectors))
    rnd = np.random.default_rng(1)
    questions = [q("s", " ".join(rnd.choice(WORDS, size=4, replace=False))) for _ in range(200)]
    ours = evaluate_analogies(wv, questions)
    expected_add = sum(
        kv.most_similar(positive=[x.words[1], x.words[2]], negative=[x.words[0]], topn=1)[0][0] == x.words[3]
        for x in questions
    )
    expected_mul = sum(
        kv.most_similar_cosmul(positive=[x.words[1], x.words[2]], negative=[x.words[0]], topn=1)[0][0]
        == x.words[3]
        for x in questions
    )
    assert ours["3cosadd"]["correct"] == expected_add
    assert ours["3cosmul"]["correct"] == expected_mul


def test_word_pairs_spearman_and_oov(wv: WordVectors) -> None:
    pairs = [
        WordPair("rei", "rainha", 9.0),
        WordPair("casa", "casas", 8.0),
        WordPair("rei", "carro", 1.0),
        WordPair("Lisboa", "casa", 2.0),
        WordPair("rei", "xyz", 5.0),
    ]
    res = evaluate_word_pairs(wv, pairs, normalize=Normalizer().word)
    assert (res["pairs"], res["used"]) == (5, 4)
    assert res["oov_ratio"] == pytest.approx(0.2)
    assert res["oov_words"] == ["xyz"]
    assert -1.0 <= res["spearman"] <= 1.0


def test_fasttext_answers_unknown_prompt_words_from_subwords() -> None:
    rnd = np.random.default_rng(2)
    words = ["casa", "casas", "carro", "carros"]
    vectors = rnd.normal(size=(4, 8)).astype(np.float32)
    ngrams = rnd.normal(size=(1000, 8)).astype(np.float32)
    wv = WordVectors(words, vectors, ngrams=ngrams)
    questions = [q("g", "barco barcos carro carros")]
    assert evaluate_analogies(wv, questions)["answered"] == 1
    assert evaluate_analogies(wv, questions, subwords=False)["answered"] == 0
    pairs = [
        WordPair("barco", "carro", 1.0),
        WordPair("casa", "casas", 2.0),
        WordPair("carro", "carros", 3.0),
    ]
    assert evaluate_word_pairs(wv, pairs)["used"] == 3
    assert evaluate_word_pairs(wv, pairs, subwords=False)["used"] == 2


def test_evaluate_embeddings_resolves_paths(wv: WordVectors, tmp_path: Path) -> None:
    analogies = tmp_path / "a.txt"
    analogies.write_text(": g\ncasa casas carro carros\n", "utf-8")
    pairs = tmp_path / "p.tsv"
    pairs.write_text("rei\trainha\t9\ncasa\tcarro\t1\nrei\thomem\t4\n", "utf-8")
    res = evaluate_embeddings(wv, DataCatalog(None, tmp_path), analogies=[str(analogies)], pairs=[str(pairs)])
    assert res["analogies"][str(analogies)]["3cosadd"]["correct"] == 1
    assert res["pairs"][str(pairs)]["used"] == 3


def test_is_echo_contains_or_shares_five_letters() -> None:
    assert is_echo("casa", "casinha") is False  # shares only four letters and does not contain "casa"
    assert is_echo("casa", "casas")
    assert is_echo("casa", "icasa")
    assert is_echo("cidade", "cidadela")
    assert is_echo("feliz", "felizes")
    assert is_echo("feliz", "infeliz")
    assert is_echo("felicidade", "felicito-me")  # same first five letters
    assert not is_echo("cidade", "vila")
    assert not is_echo("amor", "paixão")


def _echo_vectors() -> WordVectors:
    """Two spelling clusters and a meaning cluster, with counts that put the queries first."""
    rnd = np.random.default_rng(3)
    spell, meaning, other = rnd.normal(size=(3, 16))
    rows = {
        "cidade": spell,
        "cidades": spell + 0.01 * rnd.normal(size=16),
        "cidadela": spell + 0.02 * rnd.normal(size=16),
        "vila": meaning,
        "aldeia": meaning + 0.01 * rnd.normal(size=16),
        "povoado": meaning + 0.02 * rnd.normal(size=16),
        "de": other,
        ",": other + 0.01 * rnd.normal(size=16),
    }
    counts = {
        "de": 100,
        ",": 90,
        "cidade": 50,
        "vila": 40,
        "aldeia": 30,
        "povoado": 20,
        "cidades": 5,
        "cidadela": 4,
    }
    words = list(rows)
    return WordVectors(
        words, np.vstack([rows[w] for w in words]), counts=np.array([counts[w] for w in words])
    )


def test_orthographic_echo_counts_spelling_neighbours_of_the_most_frequent_words() -> None:
    wv = _echo_vectors()
    # queries: the two most frequent words of 3+ letters ("de" and "," are not queries): cidade and vila
    res = orthographic_echo(wv, queries=2, k=2, examples=("cidade", "vila", "absent"))
    assert res["queries"] == 2
    assert res["k"] == 2
    assert res["examples"] == {"cidade": ["cidades", "cidadela"], "vila": ["aldeia", "povoado"]}
    assert res["echo"] == pytest.approx(2 / 4)  # both of cidade's neighbours echo it, none of vila's
    # with more queries the meaning cluster's other words join: aldeia and povoado echo nothing either
    assert orthographic_echo(wv, queries=4, k=2)["echo"] == pytest.approx(2 / 8)


def test_orthographic_echo_lists_examples_outside_the_queries_and_survives_tiny_models() -> None:
    wv = _echo_vectors()
    res = orthographic_echo(wv, queries=1, k=2, examples=("cidadela",))
    assert res["queries"] == 1
    assert res["examples"]["cidadela"][0] in {"cidade", "cidades"}
    tiny = WordVectors(["casa"], np.ones((1, 4)))
    assert orthographic_echo(tiny) == {"echo": None, "queries": 1, "k": 0, "examples": {}}
