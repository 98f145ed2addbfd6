"""Text encoders: pairs files, mean/SIF pooling over registered word vectors, their artifacts and their errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.errors import DatasetError, InvalidInput, ModelNotFound
from models.registry import Registry, model_aliases, model_versions
from models.text_encoder import CONFIG_FILE, sif_weights
from pipelines.text_encoder.build import pooling_model, register_encoder
from pipelines.text_encoder.pairs import Pair, read_pairs
from pipelines.text_encoder.served import load_text_encoder
from pipelines.text_encoder.train import split_by_sentence
from tests.services import vector_models

ASSIN_XML = """<?xml version='1.0' encoding='utf-8'?>
<entailment-corpus>
  <pair entailment="Entailment" id="1" similarity="4.9"><t>O rei governa.</t><h>A rainha governa.</h></pair>
  <pair entailment="None" id="2" similarity="1.5"><t>A casa caiu.</t><h>O homem dorme.</h></pair>
</entailment-corpus>
"""


def test_read_pairs_xml_csv_jsonl(tmp_path: Path) -> None:
    xml = tmp_path / "p.xml"
    xml.write_text(ASSIN_XML, encoding="utf-8")
    csv = tmp_path / "p.csv"
    csv.write_text("sentence1,sentence2,score\nO rei governa.,A rainha governa.,4.5\n", encoding="utf-8")
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text(
        json.dumps({"sentence1": "a casa", "sentence2": "o lar", "score": 3}) + "\n", encoding="utf-8"
    )
    pairs = read_pairs(xml)
    assert [(p.score, p.entailment) for p in pairs] == [(4.9, "Entailment"), (1.5, "None")]
    assert read_pairs(csv)[0].sentence2 == "A rainha governa."
    assert read_pairs(jsonl)[0].score == 3.0


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("p.jsonl", '{"sentence1": "a", "score": 1}\n', "missing sentence2"),
        ("p.csv", "sentence1,sentence2,score\na,b,alto\n", "is not a number"),
        ("p.csv", "texto,score\na,1\n", "must name sentence1"),
        ("p.txt", "a b 1\n", "read from .xml"),
    ],
)
def test_read_pairs_bad_files(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DatasetError, match=message):
        read_pairs(path)


def test_sif_weights_from_counts_favour_rare_words() -> None:
    weights = sif_weights(np.array([1000, 10, 1]), 3, a=1e-3)
    assert weights[0] < weights[1] < weights[2] <= 1.0


def test_sif_sample_without_known_words_is_refused(registry: Registry) -> None:
    """It was accepted, and the encoder removed no common component while its spec said one."""
    vector_models.register(registry, "palavras")
    with pytest.raises(InvalidInput, match="only 1 of the 3 sample texts hold a word that palavras knows"):
        pooling_model(registry, "palavras", pooling="sif", sample=["xyzzy qwrtp", "o rei", "foo bar baz"])
    with pytest.raises(InvalidInput, match="3 are needed to estimate 3 common component"):
        pooling_model(registry, "palavras", pooling="sif", components=3, sample=["o rei", "a casa"])


def test_sif_encoder_round_trip_records_word_model(registry: Registry) -> None:
    vector_models.register(registry, "palavras")
    model, estimated = pooling_model(
        registry, "palavras", pooling="sif", sample=["o rei e a rainha", "a casa e o lar", "o homem"]
    )
    assert estimated["common_from"] == "3 sample texts"
    texts = ["O Rei e a Rainha", "casa, casas e lar", "palavras desconhecidas"]
    before = model.embed(texts)
    mv = register_encoder(registry, "frases", model, metadata={})
    spec = json.loads((mv.path / CONFIG_FILE).read_text(encoding="utf-8"))
    assert (spec["words"], spec["pooling"], spec["normalize"]["lowercase"]) == ("palavras@1", "sif", True)
    loaded = load_text_encoder(registry, "frases")
    after = loaded.embed(texts)
    np.testing.assert_allclose(after, before, atol=1e-6)
    assert np.allclose(np.linalg.norm(after[:2], axis=1), 1.0)
    assert not after[2].any()  # no word the model knows: a zero vector, not an error
    same, other = loaded.similarity([("o rei", "O REI"), ("o rei", "a casa")])
    assert same == pytest.approx(1.0, abs=1e-5)
    assert other < same


def test_mean_encoder_composes_unknown_words_from_subwords(registry: Registry) -> None:
    vector_models.register(registry, "ft", kind="fasttext")
    model, _ = pooling_model(registry, "ft", pooling="mean")
    assert model.embed(["castelos"]).any()
    vector_models.register(registry, "w2v")
    plain, _ = pooling_model(registry, "w2v", pooling="mean")
    assert not plain.embed(["castelos"]).any()


def test_encoder_whose_word_model_is_gone_says_so(registry: Registry) -> None:
    vector_models.register(registry, "palavras")
    model, _ = pooling_model(registry, "palavras", pooling="mean")
    register_encoder(registry, "frases", model, metadata={})
    with registry.engine.begin() as conn:
        conn.execute(model_versions.delete().where(model_versions.c.name == "palavras"))
        conn.execute(model_aliases.delete().where(model_aliases.c.name == "palavras"))
    with pytest.raises(ModelNotFound, match="stands on word-vector model palavras@1"):
        load_text_encoder(registry, "frases")


def test_validation_pairs_share_no_sentence_with_training_pairs() -> None:
    """ASSIN-style sets build many pairs from one sentence: a random split leaks sentences into validation."""
    rnd = np.random.default_rng(0)
    sentences = [f"frase {i}" for i in range(300)]
    pairs = [Pair(sentences[a], sentences[b], 3.0) for a, b in rnd.integers(300, size=(1000, 2))]
    pairs += [Pair(f"só {i}", f"sozinha {i}", 1.0) for i in range(400)]  # groups of one pair
    train, validation = split_by_sentence(pairs, 0.1, seed=7)
    assert len(train) + len(validation) == len(pairs)
    seen = {s for p in train for s in (p.sentence1, p.sentence2)}
    assert not any(p.sentence1 in seen or p.sentence2 in seen for p in validation)
    assert 0.05 * len(pairs) <= len(validation) <= 0.2 * len(pairs)
    assert split_by_sentence(pairs, 0.1, seed=7) == (train, validation)
    tangled = [Pair(sentences[a], sentences[b], 3.0) for a, b in rnd.integers(300, size=(1000, 2))]
    train, validation = split_by_sentence(tangled, 0.1, seed=7)  # one giant group: a plain split
    assert (len(train), len(validation)) == (900, 100)
