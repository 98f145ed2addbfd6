"""Phrases: learned with gensim, applied exactly as gensim's FrozenPhrases does, saved as JSON, cached."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.errors import InvalidConfig
from pipelines.text.normalize import NormalizeConfig
from pipelines.text.phrases import PhraseConfig, PhraseModel, learn_phrases, phrase_corpus
from pipelines.text.preprocess import PreparedCorpus, prepare_corpus


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory, pt_corpus_file: Path) -> PreparedCorpus:
    extra = "O Rio de Janeiro é grande. Ele voltou ao Rio de Janeiro.\n" * 20
    src = tmp_path_factory.mktemp("phr") / "c.txt"
    src.write_text(pt_corpus_file.read_text(encoding="utf-8") + extra, encoding="utf-8")
    return prepare_corpus([src], NormalizeConfig(), cache_dir=src.parent / "cache")


def test_learns_portuguese_names_with_connectors(prepared: PreparedCorpus) -> None:
    model = learn_phrases(prepared.path, PhraseConfig(threshold=1.0))
    assert "são_paulo" in model.passes[0]
    assert "rio_de_janeiro" in model.passes[0]
    assert model.apply(["ele", "mora", "em", "são", "paulo", "e", "viu", "o", "rio", "de", "janeiro"]) == [
        "ele", "mora", "em", "são_paulo", "e", "viu", "o", "rio_de_janeiro",
    ]  # fmt: skip
    assert model.apply(["de", "são"]) == ["de", "são"]


def test_apply_equals_gensim_frozen_phrases(prepared: PreparedCorpus) -> None:
    from gensim.models.phrases import Phrases

    config = PhraseConfig(threshold=1.0, min_count=2)
    model = learn_phrases(prepared.path, config)
    sentences = [line.split() for line in prepared.path.read_text(encoding="utf-8").splitlines()]
    frozen = Phrases(
        sentences, min_count=2, threshold=1.0, connector_words=frozenset(config.connector_words)
    ).freeze()
    assert [model.apply(s) for s in sentences] == [frozen[s] for s in sentences]


def test_json_round_trip_is_plain_data(prepared: PreparedCorpus) -> None:
    model = learn_phrases(prepared.path, PhraseConfig(threshold=1.0, passes=2))
    data = json.loads(json.dumps(model.to_json()))
    assert data["delimiter"] == "_"
    assert ["são", "paulo"] in [words for words, _ in data["passes"][0]]
    again = PhraseModel.from_json(data)
    sentence = ["o", "rei", "visita", "são", "paulo", "e", "o", "rio", "de", "janeiro"]
    assert again.apply(sentence) == model.apply(sentence)
    with pytest.raises(InvalidConfig, match="not a palavra phrases document"):
        PhraseModel.from_json({"format": "palavra-phrases/1"})


def test_phrase_corpus_is_applied_and_cached(prepared: PreparedCorpus, tmp_path: Path) -> None:
    config = PhraseConfig(threshold=1.0)
    joined, model = phrase_corpus(prepared, config, cache_dir=tmp_path)
    text = joined.path.read_text(encoding="utf-8")
    assert "são_paulo" in text
    assert " são paulo " not in text
    assert joined.n_tokens == len(text.split()) < prepared.n_tokens
    assert joined.n_sentences == prepared.n_sentences
    again, model_again = phrase_corpus(prepared, config, cache_dir=tmp_path)
    assert again.cache_hit
    assert (again.path, again.data_hash) == (joined.path, joined.data_hash)
    assert model_again.passes[0].keys() == model.passes[0].keys()
