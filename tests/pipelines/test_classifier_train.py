from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from models.errors import DatasetError, IntegrityError, InvalidInput, ModelNotFound
from models.registry import Registry
from pipelines.classifier.artifact import LABEL_NAMES_FILE, load_classifier, read_report, save_classifier
from pipelines.classifier.config import ClassifierRun
from pipelines.classifier.thresholds import decide
from pipelines.classifier.train import train_classifier
from pipelines.runs.progress import Progress
from tests.conftest import review_run


def _run(files: dict[str, Path], **overrides: Any) -> ClassifierRun:
    run: ClassifierRun = review_run(files, **overrides)
    return run


def test_train_registers_a_classifier_that_predicts_label_names(
    registry: Registry, reviews_csv: dict[str, Path]
) -> None:
    seen: list[Progress] = []
    version = train_classifier(_run(reviews_csv), registry=registry, progress=seen.append)
    assert version.ref == "sentimento@1"
    assert version.kind == "classifier"
    assert version.metadata["metrics"]["macro_f1"] > 0.9
    started, *epochs = [p for p in seen if p.stage == "train"]
    # the stage opens before epoch 1 runs (it ran under "prepare" before), then one report per epoch
    assert (started.epoch, started.done, started.total) == (None, 0, epochs[0].total)
    assert [p.epoch for p in epochs] == list(range(1, len(epochs) + 1))
    assert all(p.loss is not None and 0 < (p.fraction or 0) <= 1 for p in epochs)
    clf = load_classifier(registry.open("sentimento"))
    out = clf.predict(["Adorei, produto excelente e entrega rápida", "Chegou quebrado, péssimo, odiei"])
    assert [o["label"] for o in out] == ["pos", "neg"]
    assert set(out[0]["scores"]) == {"neg", "pos"}
    assert sum(out[0]["scores"].values()) == pytest.approx(1.0, abs=1e-4)


def test_train_artifact_holds_weights_vocab_configs_history_and_metrics(
    registry: Registry, reviews_csv: dict[str, Path]
) -> None:
    version = train_classifier(_run(reviews_csv, baseline=True), registry=registry)
    files = set(version.metadata["files"])
    assert {
        "model.safetensors",
        "vocab.json",
        "labels.json",
        "preprocessing.json",
        "config.json",
        "history.json",
        "history.png",
        "metrics.json",
        "decision.json",
    } <= files
    assert not any(f.endswith((".pkl", ".pt", ".bin")) for f in files)
    art = registry.open(version.ref)
    config = art.read_json("config.json")
    assert config["training"]["lr"] == 0.02
    assert config["text_column"] == "texto"
    assert art.read_json("preprocessing.json")["normalize"]["drop_punctuation"] is False
    history = art.read_json("history.json")
    assert {"train_loss", "val_loss", "accuracy", "macro_f1", "lr", "seconds"} <= set(history[0])
    metrics = art.read_json("metrics.json")
    assert set(metrics["validation"]["per_class"]) == {"neg", "pos"}
    assert metrics["baseline"]["name"] == "tfidf+logreg"
    assert metrics["baseline"]["macro_f1"] > 0.8
    assert art.file("history.png").read_bytes()[:4] == b"\x89PNG"


def test_train_same_seed_gives_identical_weights(registry: Registry, reviews_csv: dict[str, Path]) -> None:
    first = train_classifier(_run(reviews_csv), registry=registry)
    second = train_classifier(_run(reviews_csv), registry=registry)
    a = registry.open(first.ref).read_tensors("model.safetensors")
    b = registry.open(second.ref).read_tensors("model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((first.path / "history.json").read_text())[-1]["train_loss"] == pytest.approx(
        json.loads((second.path / "history.json").read_text())[-1]["train_loss"]
    )


@pytest.mark.parametrize(
    ("pooling", "activation"),
    [("mean", "sigmoid"), ("max", "tanh"), ("mean_max", "relu"), ("mean_max", "leaky_relu")],
)
def test_loaded_classifier_numpy_engine_matches_torch(
    registry: Registry, reviews_csv: dict[str, Path], pooling: str, activation: str
) -> None:
    version = train_classifier(
        _run(reviews_csv, model={"pooling": pooling, "activation": activation, "hidden": [8, 4]}),
        registry=registry,
    )
    fast = load_classifier(registry.open(version.ref), engine="numpy")  # PALAVRA_CLASSIFIER_ENGINE=numpy
    exact = load_classifier(registry.open(version.ref))
    texts = [
        "Adorei, produto excelente e entrega rápida",
        "Chegou quebrado, péssimo, odiei",
        "???",  # no features at all: pools to zeros in both engines
        "zzzqqq xkcd",  # unseen words: character n-grams only
        "bom " * 200,
    ]
    np.testing.assert_allclose(fast.predict_proba(texts), exact.predict_proba(texts), atol=1e-5)
    assert [o["label"] for o in fast.predict(texts)] == [o["label"] for o in exact.predict(texts)]
    assert "torch" not in type(fast.model).__module__


def test_a_tuned_decision_rule_explains_a_label_that_is_not_the_top_score(
    registry: Registry, reviews_csv: dict[str, Path]
) -> None:
    version = train_classifier(_run(reviews_csv), registry=registry)
    clf = load_classifier(registry.open(version.ref), engine="numpy")
    clf.biases = None
    assert clf.decision() == {"rule": "argmax", "biases": None, "threshold": None}
    clf.biases = np.array([0.0, 0.08])
    decision = clf.decision()
    assert decision["biases"] == {"neg": 0.0, "pos": 0.08}
    threshold = decision["threshold"]["pos"]
    assert threshold == pytest.approx(1 / (1 + np.exp(0.08)), abs=1e-4)
    # the threshold is the rule: just above it the label is pos, just below neg, whatever the top score
    probs = np.array([[1 - threshold - 0.001, threshold + 0.001], [1 - threshold + 0.001, threshold - 0.001]])
    assert decide(probs, clf.biases).tolist() == [1, 0]


def test_train_target_error_stops_early(registry: Registry, reviews_csv: dict[str, Path]) -> None:
    run = _run(reviews_csv, training={"epochs": 50, "target_error": 0.2, "patience": None})
    version = train_classifier(run, registry=registry)
    metrics = json.loads((version.path / "metrics.json").read_text())
    assert metrics["training"]["stopped"] == "target_error"
    assert metrics["training"]["epochs"] < 50


def test_train_without_validation_holds_out_part_of_train(
    registry: Registry, reviews_csv: dict[str, Path]
) -> None:
    version = train_classifier(_run(reviews_csv, validation=None), registry=registry)
    metrics = json.loads((version.path / "metrics.json").read_text())
    data = metrics["data"]
    assert data["validation_from"] == "holdout"
    # then trained again on all 300 texts for the epochs the holdout chose
    assert metrics["training"]["refit"]["texts"] == 300
    assert metrics["training"]["refit"]["epochs"] == metrics["training"]["best_epoch"]
    # both networks ship, their probabilities averaged
    assert json.loads((version.path / "model.json").read_text())["members"] == 2
    clf = load_classifier(registry.open(version.ref))
    assert len(clf.members) == 2
    probs = clf.predict_proba(["odiei, veio quebrado"])
    assert probs.shape == (1, 2)
    assert probs.sum() == pytest.approx(1.0, abs=1e-5)
    replaced = train_classifier(
        _run(reviews_csv, validation=None, name="so-um", training={"refit": "replace"}), registry=registry
    )
    assert len(load_classifier(registry.open(replaced.ref)).members) == 1
    assert data["validation_texts"] == 30
    assert data["train_texts"] == 270


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adagrad", "rmsprop", "adam"])
def test_train_every_optimizer_learns_at_its_default_rate(
    registry: Registry, reviews_csv: dict[str, Path], optimizer: str
) -> None:
    run = _run(reviews_csv, training={"optimizer": optimizer, "lr": None, "epochs": 10, "patience": None})
    version = train_classifier(run, registry=registry)
    assert version.metadata["metrics"]["accuracy"] > 0.8


def test_train_multiclass_with_balanced_weights(registry: Registry, tmp_path: Path) -> None:
    from tests.conftest import make_reviews

    path = tmp_path / "tres.jsonl"
    rows = make_reviews(360, seed=3, classes=("pos", "neg", "neutro"))
    path.write_text("\n".join(json.dumps({"t": t, "y": y}) for t, y in rows), encoding="utf-8")
    run = ClassifierRun.model_validate(
        {
            "name": "tres",
            "train": str(path),
            "text_column": "t",
            "label_column": "y",
            "model": {"embedding_dim": 8, "hidden": [8]},
            "training": {"epochs": 10, "lr": 0.02, "class_weights": "balanced", "threads": 1},
        }
    )
    version = train_classifier(run, registry=registry)
    assert version.metadata["classes"] == ["neg", "neutro", "pos"]
    clf = load_classifier(registry.open(version.ref))
    assert clf.predict(["horrível e quebrado, odiei"])[0]["label"] == "neg"


def _nothing_registered(registry: Registry) -> bool:
    return registry.list() == [] and not list((registry.root / ".staging").glob("*"))


def test_train_bad_input_registers_nothing(
    registry: Registry, reviews_csv: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(DatasetError, match="no column 'label'"):
        train_classifier(_run(reviews_csv, label_column="label"), registry=registry)
    one = tmp_path / "um.csv"
    one.write_text("texto,rotulo\nbom,pos\nótimo,pos\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="at least two classes"):
        train_classifier(_run(reviews_csv, train=str(one), validation=None), registry=registry)
    odd = tmp_path / "val.csv"
    odd.write_text("texto,rotulo\nbom,pos\nmais ou menos,neutro\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="never saw in training: 'neutro'"):
        train_classifier(_run(reviews_csv, validation=str(odd)), registry=registry)
    with pytest.raises(ModelNotFound, match="unknown embeddings model 'nada'"):
        train_classifier(_run(reviews_csv, embeddings="nada"), registry=registry)
    assert _nothing_registered(registry)


def test_train_divergence_is_an_error_that_names_the_learning_rate(
    registry: Registry, reviews_csv: dict[str, Path]
) -> None:
    run = _run(reviews_csv, training={"optimizer": "sgd", "lr": 1000.0, "epochs": 3})
    with pytest.raises(InvalidInput, match="lower the learning rate"):
        train_classifier(run, registry=registry)
    assert _nothing_registered(registry)


@pytest.fixture(scope="module")
def royal_csv(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Sentences in the tiny word vectors' vocabulary, labelled by who acts: royalty or commoners."""
    import csv

    from tests.conftest import make_sentences

    royal = ("rei", "rainha", "príncipe", "princesa")
    folder = tmp_path_factory.mktemp("royal")
    out = {}
    for split, n, seed in (("train", 240, 5), ("validation", 80, 6)):
        out[split] = folder / f"{split}.csv"
        with out[split].open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["texto", "rotulo"])
            for sentence in make_sentences(n, seed=seed):
                writer.writerow([sentence, "realeza" if sentence.split()[1] in royal else "povo"])
    return out


@pytest.mark.parametrize("fixture", ["w2v_model", "ft_model"])
def test_train_with_pretrained_embeddings(
    registry: Registry, royal_csv: dict[str, Path], request: pytest.FixtureRequest, fixture: str
) -> None:
    vectors = request.getfixturevalue(fixture)
    run = _run(royal_csv, embeddings=vectors.name, model={"freeze_embeddings": True})
    version = train_classifier(run, registry=registry)
    art = registry.open(version.ref)
    info = art.read_json("metrics.json")["embeddings"]
    assert info["model"] == vectors.ref
    assert info["dim"] == 16
    assert info["coverage"] > 0.8  # the sentences' words are the vectors' words
    assert art.read_json("model.json")["dim"] == 16
    assert version.metadata["metrics"]["accuracy"] > 0.8


def test_train_frozen_pretrained_rows_do_not_move(
    registry: Registry, royal_csv: dict[str, Path], w2v_model: Any
) -> None:
    from pipelines.classifier.pretrained import open_vectors, word_matrix

    run = _run(royal_csv, embeddings=w2v_model.name, model={"freeze_embeddings": True})
    version = train_classifier(run, registry=registry)
    clf = load_classifier(registry.open(version.ref))
    vectors, ref, normalize = open_vectors(registry, w2v_model.name)
    start = word_matrix(vectors, clf.space.words, ref=ref, normalize=normalize, seed=run.training.seed)
    n = len(clf.space.words)
    assert start.found.sum() > 0.8 * n
    np.testing.assert_array_equal(clf.model.embedding.weight.detach().numpy()[:n], start.matrix)
    tuned = train_classifier(_run(royal_csv, embeddings=w2v_model.name, name="solto"), registry=registry)
    moved = load_classifier(registry.open(tuned.ref)).model.embedding.weight.detach().numpy()[:n]
    assert not np.array_equal(moved, start.matrix)


def test_train_embeddings_of_the_wrong_kind_are_refused(
    registry: Registry, reviews_csv: dict[str, Path]
) -> None:
    train_classifier(_run(reviews_csv), registry=registry)
    with pytest.raises(InvalidInput, match="is a classifier model"):
        train_classifier(_run(reviews_csv, name="outro", embeddings="sentimento"), registry=registry)


def test_train_on_imported_vectors_normalises_words_as_the_import_recorded(
    registry: Registry, tmp_path: Path
) -> None:
    import csv

    from pipelines.text.normalize import NormalizeConfig
    from pipelines.word2vec.transfer import import_model

    words = ["ótimo", "péssimo", "produto", "entrega"]
    rng = np.random.default_rng(0)
    vectors = tmp_path / "vetores.txt"
    vectors.write_text(
        f"{len(words)} 8\n"
        + "".join(f"{w} {' '.join(f'{x:.4f}' for x in rng.normal(size=8))}\n" for w in words),
        encoding="utf-8",
    )
    import_model(vectors, name="importado", registry=registry, normalize=NormalizeConfig(lowercase=True))
    data = tmp_path / "treino.csv"
    with data.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["texto", "rotulo"])
        for i in range(40):
            out.writerow(["Ótimo Produto" if i % 2 else "Péssimo Entrega", "pos" if i % 2 else "neg"])
    run = _run(
        {"train": data, "validation": data},
        name="capitais",
        embeddings="importado",
        normalize={
            "lowercase": False
        },  # the classifier keeps capitals; the vectors' own rule lowercases them
        model={"features": {"word_ngrams": 1, "char_ngram_min": 0}},
        training={"epochs": 1},
    )
    version = train_classifier(run, registry=registry)
    art = registry.open(version.ref)
    assert set(load_classifier(art).space.words) == {"Ótimo", "Péssimo", "Produto", "Entrega"}
    assert art.read_json("metrics.json")["embeddings"]["coverage"] == 1.0


def test_train_label_names_from_the_run_the_catalogue_or_the_labels(
    registry: Registry, reviews_csv: dict[str, Path]
) -> None:
    from pipelines.classifier.label_names import resolve_label_names

    named = train_classifier(_run(reviews_csv, label_names={"neg": "negativa"}), registry=registry)
    clf = load_classifier(registry.open(named.ref), engine="numpy")
    assert clf.names == ["negativa", "pos"]  # a label left out keeps its own (readable) name
    out = clf.predict(["Chegou quebrado, péssimo, odiei"])[0]
    assert out["label"] == "negativa"
    assert set(out["scores"]) == {"negativa", "pos"}
    told = resolve_label_names([0, 1], given={}, train="told-br-1annotator-train", label_column="toxic")
    assert told == ["nao_toxico", "toxico"]
    assert resolve_label_names([0, 1], given={}, train="outro.csv", label_column="toxic") == ["0", "1"]
    with pytest.raises(DatasetError, match="'2'"):
        resolve_label_names([0, 1], given={"2": "x"}, train="outro.csv", label_column="toxic")


def test_classifier_saved_without_label_names_answers_its_raw_labels(
    registry: Registry, reviews_csv: dict[str, Path]
) -> None:
    version = train_classifier(_run(reviews_csv), registry=registry)
    with registry.create("antigo", "classifier") as writer:  # an artifact from before label names were saved
        for rel in version.metadata["files"]:
            if rel != "label_names.json":
                writer.file(rel).write_bytes((version.path / rel).read_bytes())
    for engine in ("numpy", "torch"):
        clf = load_classifier(registry.open("antigo"), engine=engine)  # type: ignore[arg-type]
        assert clf.names == ["neg", "pos"]
        assert clf.predict(["Adorei, produto excelente"])[0]["label"] == "pos"


def test_an_artifact_saved_before_label_names_answers_its_labels_as_before(
    registry: Registry, reviews_csv: dict[str, Path]
) -> None:
    """An artifact without label_names.json (saved before names existed) trained on integer labels answered
    ``"label": 1`` from ``palavra classify``; it answered ``"1"`` once names came, breaking scripts that compare
    the label with the number. It answers as before; only the scores' keys were text then too."""
    trained = registry.open(train_classifier(_run(reviews_csv), registry=registry).ref)
    with registry.create("antigo", "classifier") as writer:
        for src in trained.path.rglob("*"):
            rel = src.relative_to(trained.path).as_posix()
            if src.is_file() and rel not in ("metadata.json", LABEL_NAMES_FILE):
                writer.file(rel).write_bytes(src.read_bytes())
        writer.write_json("labels.json", [0, 1])  # neg, pos, as a data set of 0 / 1 stores them
    clf = load_classifier(registry.open("antigo"))
    out = clf.predict(["Adorei, produto excelente e entrega rápida", "Chegou quebrado, péssimo, odiei"])
    assert [o["label"] for o in out] == [1, 0]
    assert set(out[0]["scores"]) == {"0", "1"}


def test_classifier_artifact_records_its_components_and_refuses_unrecorded_files(
    registry: Registry, reviews_csv: dict[str, Path]
) -> None:
    version = train_classifier(_run(reviews_csv), registry=registry)
    assert version.metadata["components"] == ["model", "label_names", "config", "metrics", "history", "plot"]
    metrics, history = read_report(registry.open(version.ref))
    assert metrics is not None
    assert history is not None
    assert set(metrics["validation"]["per_class"]) == {"neg", "pos"}
    clf = load_classifier(registry.open(version.ref))
    with registry.create("avulso", "classifier") as writer:  # a report written beside the owner
        save_classifier(writer, clf)
        writer.write_json("metrics.json", metrics)
    with pytest.raises(IntegrityError, match=r"metrics\.json"):
        load_classifier(registry.open("avulso"))


def test_classifier_registered_before_components_were_recorded_loads_and_reports(
    registry: Registry, reviews_csv: dict[str, Path]
) -> None:
    trained = registry.open(train_classifier(_run(reviews_csv), registry=registry).ref)
    with registry.create("antigo", "classifier") as writer:  # the same files, without the record
        for rel in trained.version.metadata["files"]:
            writer.file(rel).write_bytes((trained.path / rel).read_bytes())
    old = registry.open("antigo")
    assert "components" not in old.version.metadata
    texts = ["Adorei, produto excelente e entrega rápida", "Chegou quebrado, péssimo, odiei"]
    assert load_classifier(old).predict(texts) == load_classifier(trained).predict(texts)
    assert read_report(old) == read_report(trained)
