"""Text encoders: pairs files, mean/SIF pooling over registered word vectors, their artifacts and their errors."""

from __future__ import annotations

import json
import math
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from models.errors import DatasetError, IntegrityError, InvalidInput, ModelNotFound
from models.registry import Registry, model_aliases, model_versions
from models.text_encoder import CONFIG_FILE, EncoderSpec, TextEncoder, sif_weights
from models.vectors import WordVectors
from models.vectors import save as save_vectors
from pipelines.serving.served_vectors import load_served_vectors
from pipelines.text.normalize import NormalizeConfig
from pipelines.text_encoder.build import pooling_model, register_encoder
from pipelines.text_encoder.evaluate import evaluate_pairs
from pipelines.text_encoder.pairs import Pair, read_pairs
from pipelines.text_encoder.served import TextEncoderModel, load_text_encoder
from pipelines.text_encoder.train import EncoderTraining, split_by_sentence, train_siamese
from tests.conftest import make_sentences
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


def _register_vectors(registry: Registry, name: str, words: list[str], matrix: np.ndarray) -> None:
    with registry.create(name, "word2vec") as writer:
        save_vectors(
            writer, WordVectors(words, matrix.astype(np.float32)), normalize=NormalizeConfig().model_dump()
        )


def _scored(sentences: list[str], n: int, seed: int) -> list[Pair]:
    """Pairs scored by how many words their sentences share (1 to 5), so the score is a function of the texts."""
    rnd = random.Random(seed)
    pairs = []
    for _ in range(n):
        a, b = rnd.sample(sentences, 2)
        shared = len(set(a.split()) & set(b.split())) / len(set(a.split()) | set(b.split()))
        pairs.append(Pair(a, b, 1.0 + 4.0 * shared))
    return pairs


@pytest.fixture
def pairs_and_words(registry: Registry) -> tuple[list[Pair], list[Pair]]:
    """Random 16-d vectors ``palavras`` for the fixture sentences' words; training and validation pairs."""
    sentences = make_sentences(200, seed=3)
    words = sorted({w for s in sentences for w in s.lower().rstrip(".").split()})
    _register_vectors(registry, "palavras", words, np.random.default_rng(0).normal(size=(len(words), 16)))
    return _scored(sentences, 300, seed=1), _scored(sentences, 80, seed=2)


def test_trained_encoder_as_registered_scores_what_training_measured(
    registry: Registry, pairs_and_words: tuple[list[Pair], list[Pair]]
) -> None:
    """The network trains on standardised input with a skip path; both are folded into the saved weights."""
    train, validation = pairs_and_words
    cfg = EncoderTraining(hidden=[8], out_dim=8, epochs=5, seed=1, members=1)
    model, report = train_siamese(registry, "palavras", train, validation, cfg=cfg)
    register_encoder(registry, "frases", model, metadata={})
    loaded = load_text_encoder(registry, "frases")
    (projection,) = loaded.encoder.projections
    assert projection.skip is not None
    assert projection.skip.shape == (8, 32)  # SIF mean and maximum side by side
    spec = json.loads((registry.get("frases").path / CONFIG_FILE).read_text(encoding="utf-8"))
    assert spec["format"] == "palavra-text-encoder/2"
    tower_pearson = report["history"][report["best_epoch"] - 1]["val_pearson"]  # torch, standardised input
    assert evaluate_pairs(loaded, validation)["pearson"] == pytest.approx(tower_pearson, abs=1e-5)


def test_encoder_training_that_diverges_is_an_error_not_a_model_of_nans(
    registry: Registry, pairs_and_words: tuple[list[Pair], list[Pair]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A loss that is not finite stopped nothing: the NaN weights were registered, and served vectors of nulls
    with status 200 (a hostile probe, lr 1e30: refused now, see below; the guard stays for any other cause)."""
    from pipelines.text_encoder import train as encoder_train

    cosine = encoder_train._cosine

    def blown_up(*args: Any) -> Any:
        return cosine(*args) * float("nan")

    monkeypatch.setattr(encoder_train, "_cosine", blown_up)
    train, validation = pairs_and_words
    cfg = EncoderTraining(hidden=[8], out_dim=8, epochs=3, seed=1, members=1, optimizer="sgd")
    with pytest.raises(
        InvalidInput, match=r"^training diverged at epoch 1 \(loss is nan, .* with sgd at lr "
    ):
        train_siamese(registry, "palavras", train, validation, cfg=cfg)


def test_encoder_training_that_diverges_later_keeps_its_best_finite_epoch(
    registry: Registry, pairs_and_words: tuple[list[Pair], list[Pair]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a NaN before any finite epoch is an error; after one, the best finite epoch is kept, as early stopping
    keeps it (a review of the guard above: it threw a good model away)."""
    from pipelines.text_encoder import train as encoder_train

    cosine = encoder_train._cosine
    calls: list[int] = []

    def blown_up_later(*args: Any) -> Any:
        calls.append(1)
        out = cosine(*args)
        return out * float("nan") if len(calls) > 40 else out

    monkeypatch.setattr(encoder_train, "_cosine", blown_up_later)
    train, validation = pairs_and_words
    cfg = EncoderTraining(hidden=[8], out_dim=8, epochs=50, seed=1, members=1, patience=None)
    model, report = train_siamese(registry, "palavras", train, validation, cfg=cfg)
    assert report["diverged_at"] > report["best_epoch"] >= 1
    assert all(math.isfinite(row["val_loss"]) for row in report["history"])
    units = model.embed(["o rei governa"])
    assert np.isfinite(units).all()


@pytest.mark.parametrize(
    "training",
    [
        {"hidden": [-5]},
        {"hidden": [0]},
        {"hidden": [10**12]},
        {"lr": 1e39},
        {"lr": float("nan")},
        {"weight_decay": 1e39},
    ],
)
def test_encoder_training_settings_out_of_range_are_refused(training: dict[str, object]) -> None:
    """They crashed inside torch (a negative or huge layer, an lr it cannot hold in a float) or trained a
    zero-width layer."""
    with pytest.raises(ValidationError):
        EncoderTraining.model_validate(training)


def test_trained_encoder_does_not_depend_on_the_scale_of_the_word_vectors(
    registry: Registry, pairs_and_words: tuple[list[Pair], list[Pair]]
) -> None:
    """Pooled features differ widely in scale (a joined model's two halves); the network sees them standardised."""
    train, validation = pairs_and_words
    vectors = load_served_vectors(registry.open("palavras")).word_vectors
    scaled = vectors.vectors * np.geomspace(1e-3, 1e3, vectors.dim)  # every dimension on its own scale
    _register_vectors(registry, "escaladas", vectors.words, scaled)
    cfg = EncoderTraining(hidden=[8], out_dim=8, epochs=5, seed=1, members=1, max_pool=False)
    runs = {
        (name, standardize): train_siamese(
            registry,
            name,
            train,
            validation,
            cfg=cfg.model_copy(update={"standardize": standardize}),
            components=0,  # the common component (an SVD) depends on the scales; the mean does not
        )[1]["validation"]["pearson"]
        for name in ("palavras", "escaladas")
        for standardize in (True, False)
    }
    assert runs["palavras", True] == pytest.approx(runs["escaladas", True], abs=1e-3)
    assert runs["escaladas", False] < runs["escaladas", True] - 0.05


def test_skip_path_keeps_what_the_pooled_vectors_know(
    registry: Registry, pairs_and_words: tuple[list[Pair], list[Pair]]
) -> None:
    """A network too narrow to carry the pooled vector (one hidden unit) still scores well through the skip path."""
    train, validation = pairs_and_words
    cfg = EncoderTraining(hidden=[1], out_dim=8, epochs=30, lr=0.01, seed=1, members=1, max_pool=False)
    scores = {
        skip: train_siamese(
            registry, "palavras", train, validation, cfg=cfg.model_copy(update={"skip": skip})
        )[1]["validation"]["pearson"]
        for skip in (True, False)
    }
    assert scores[True] > scores[False] + 0.1
    no_skip, _ = train_siamese(
        registry, "palavras", train, validation, cfg=cfg.model_copy(update={"skip": False})
    )
    register_encoder(registry, "sem-atalho", no_skip, metadata={})
    spec = json.loads((registry.get("sem-atalho").path / CONFIG_FILE).read_text(encoding="utf-8"))
    assert spec["format"] == "palavra-text-encoder/1"  # what readers before the skip path read
    assert load_text_encoder(registry, "sem-atalho").encoder.projections[0].skip is None


def test_encoder_of_several_members_answers_the_mean_of_their_cosines(
    registry: Registry, pairs_and_words: tuple[list[Pair], list[Pair]]
) -> None:
    """Members trained from different seeds, averaged: the encoder stays one vector per text."""
    train, validation = pairs_and_words
    cfg = EncoderTraining(hidden=[8], out_dim=8, epochs=4, seed=5, members=3)
    model, report = train_siamese(registry, "palavras", train, validation, cfg=cfg)
    assert [m["seed"] for m in report["members"]] == [5, 6, 7]
    assert len(report["history"]) == report["epochs_run"]
    register_encoder(registry, "trio", model, metadata={})
    loaded = load_text_encoder(registry, "trio")
    assert loaded.dim == 24
    texts = [(p.sentence1, p.sentence2) for p in validation]
    each = [
        TextEncoderModel(
            TextEncoder(
                loaded.encoder.spec,
                word_weights=loaded.encoder.word_weights,
                common=loaded.encoder.common,
                projections=[p],
            ),
            loaded.embeddings,
        ).similarity(texts)
        for p in loaded.encoder.projections
    ]
    assert len({tuple(np.round(c, 3)) for c in each}) == 3  # three different networks
    np.testing.assert_allclose(loaded.similarity(texts), np.mean(each, axis=0), atol=1e-5)
    assert report["validation"]["pearson"] == pytest.approx(
        evaluate_pairs(loaded, validation)["pearson"], abs=1e-5
    )


def test_max_pool_tells_apart_texts_whose_mean_is_the_same(registry: Registry) -> None:
    """Two words pulling apart and two words in the middle pool to the same mean; their maximum differs."""
    words = ["norte", "leste", "centro", "meio"]
    matrix = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.5, 0.5]], np.float32)
    with registry.create("pontos", "word2vec") as writer:
        counts = np.full(4, 10)  # equal SIF weights
        save_vectors(
            writer, WordVectors(words, matrix, counts=counts), normalize=NormalizeConfig().model_dump()
        )
    model, _ = pooling_model(registry, "pontos", pooling="sif", components=0)
    tokens = [["norte", "leste"], ["centro", "meio"]]
    plain = model.features(tokens)
    np.testing.assert_allclose(plain[0], plain[1])
    model.encoder.spec = replace(model.encoder.spec, max_pool=True)
    both = model.features(tokens)
    np.testing.assert_allclose(both[:, :2], plain)
    np.testing.assert_allclose(both[:, 2:], [[1.0, 1.0], [0.5, 0.5]])


def test_an_encoder_whose_config_names_an_unknown_activation_is_damaged_not_bad_input() -> None:
    """config.json naming an activation palavra does not know was read as is, and every text to encode then failed
    with InvalidInput (a 422 blaming the request); now loading refuses the artifact (IntegrityError, 503)."""
    spec = EncoderSpec(
        pooling="trained", words="w@1", words_kind="word2vec", normalize={}, dim=4, hidden=(8,)
    )
    assert EncoderSpec.from_json(spec.to_json()) == spec
    with pytest.raises(IntegrityError, match="activation 'softplus'"):
        EncoderSpec.from_json({**spec.to_json(), "activation": "softplus"})


def test_a_few_texts_pool_as_a_batch_does() -> None:
    """Up to FEW_TEXTS texts are pooled by a gather per text instead of a sparse matrix (a search query: 0.2 ->
    0.03 ms); the same weighted means, repeated words and texts without a known word included."""
    from models.text_encoder import FEW_TEXTS

    rng = np.random.default_rng(3)
    table = rng.normal(size=(50, 6)).astype(np.float32)
    spec = EncoderSpec(pooling="sif", words="w@1", words_kind="word2vec", normalize={}, dim=6)
    encoder = TextEncoder(spec, word_weights=rng.random(50).astype(np.float32))
    texts = [
        [3, 3, 7],
        [],
        [49],
        list(range(20)),
        [0],
    ] * 4  # 20 texts, the second of each five without a word
    ids = np.asarray([i for t in texts for i in t], np.int64)
    starts = np.cumsum([0] + [len(t) for t in texts[:-1]]).astype(np.int64)
    batch = encoder.pool(table, ids, starts)  # over FEW_TEXTS: the sparse matrix
    assert len(texts) > FEW_TEXTS
    for lo in range(0, len(texts), FEW_TEXTS):
        few = texts[lo : lo + FEW_TEXTS]
        few_ids = np.asarray([i for t in few for i in t], np.int64)
        few_starts = np.cumsum([0] + [len(t) for t in few[:-1]]).astype(np.int64)
        np.testing.assert_allclose(
            encoder.pool(table, few_ids, few_starts), batch[lo : lo + len(few)], rtol=1e-6, atol=1e-6
        )  # atol: a component near 0 (weighted terms cancelling) has a large relative rounding difference
    assert not batch[1].any()
    np.testing.assert_allclose(
        batch[0], (2 * encoder.word_weights[3] * table[3] + encoder.word_weights[7] * table[7]) / 3, rtol=1e-6
    )
