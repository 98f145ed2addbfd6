"""``--set SECTION.KEY=VALUE`` on every ``palavra train`` command: it wins over --config and the common flags, its
value is JSON when it parses, and a bad key is one line (exit 2) naming the key and the keys of its section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.factories import open_registry
from services.settings import Settings, get_settings
from tests.services.cli_helpers import run


@pytest.mark.parametrize(
    ("argv", "messages"),
    [
        (
            ["train", "word2vec", "--corpus", "x.txt", "--name", "m", "--set", "train.epoch=5"],
            ["unknown key 'train.epoch'", "did you mean 'epochs'?", "[train] has algorithm, architecture"],
        ),
        (
            ["train", "word2vec", "--corpus", "x.txt", "--name", "m", "--set", "trian.epochs=5"],
            ["unknown key 'trian.epochs'", "did you mean 'train'?", "normalize.*, phrases.*, train.*"],
        ),
        (
            ["train", "classifier", "--train", "x.csv", "--name", "m", "--set", "training.epoch=5"],
            ["unknown key 'training.epoch'", "[training] has optimizer, lr, momentum"],
        ),
        (
            ["train", "classifier", "--train", "x.csv", "--name", "m", "--set", "model.hidden.0=5"],
            ["'model.hidden' is a value, not a section"],
        ),
        (
            ["train", "lm", "--corpus", "x.txt", "--name", "m", "--set", "modle.context=3"],
            ["unknown key 'modle.context'", "did you mean 'model'?", "model.*, training.*"],
        ),
        (
            ["train", "lm", "--corpus", "x.txt", "--name", "m", "--set", "model.contxt=3"],
            ["[model] has no 'contxt'; did you mean 'context'?", "[model] has context, dim, hidden"],
        ),
        (
            [
                "train",
                "encoder",
                "--words",
                "w",
                "--name",
                "e",
                "--pairs",
                "p.jsonl",
                "--set",
                "training.epoch=5",
            ],
            ["unknown key 'training.epoch'", "[training] has hidden, out_dim"],
        ),
        (
            ["train", "encoder", "--words", "w", "--name", "e", "--set", "training.epochs=5"],
            ["--set changes the training of an encoder trained on pairs; give --pairs too"],
        ),
        (
            ["train", "word2vec", "--corpus", "x.txt", "--name", "m", "--set", "train.epochs"],
            ["--set takes SECTION.KEY=VALUE, e.g. --set training.lr=0.01; not 'train.epochs'"],
        ),
    ],
)
def test_cli_train_set_bad_key_is_one_line_naming_the_valid_keys(
    cli_env: Settings, argv: list[str], messages: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(argv, capsys)
    assert code == 2
    assert out == ""
    for message in messages:
        assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "extra", [["--epochs", "0"], ["--set", "training.epochs=0"], ["--set", "training.dropout=1.5"]]
)
def test_cli_train_encoder_bad_training_value_is_one_line(
    cli_env: Settings, extra: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["train", "encoder", "--words", "w", "--name", "e", "--pairs", "p.jsonl", *extra]
    code, _, err = run(argv, capsys)
    assert code == 2
    assert "encoder training: field 'training." in err
    assert "Traceback" not in err


def test_cli_train_classifier_set_wins_over_the_config_file_and_the_flags(
    cli_env: Settings, reviews_csv: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "run.toml"
    config.write_text(
        '[model]\nactivation = "tanh"\nhidden = [8]\nembedding_dim = 8\n\n'
        '[training]\noptimizer = "rmsprop"\nepochs = 9\n',
        encoding="utf-8",
    )
    argv = [
        "train", "classifier", "--train", str(reviews_csv["train"]), "--validation", str(reviews_csv["validation"]),
        "--text-column", "texto", "--label-column", "rotulo", "--name", "sentimento", "--config", str(config),
        "--optimizer", "adagrad", "--epochs", "4", "--batch-size", "16", "--quiet",
        "--set", "training.optimizer=adam", "--set", "model.hidden=[6]", "--set", "training.lr=0.02",
        "--set", "training.weight_decay=1e-4", "--set", "model.features.char_ngram_min=0", "--set", "name=avaliacoes",
    ]  # fmt: skip
    code, out, err = run(argv, capsys)
    assert code == 0, err
    assert json.loads(out)["model"] == "avaliacoes@1"
    saved = open_registry(get_settings()).open("avaliacoes").read_json("config.json")
    assert saved["training"]["optimizer"] == "adam"  # --set over --optimizer over the file
    assert saved["training"]["epochs"] == 4  # the flag over the file
    assert saved["model"]["hidden"] == [6]  # --set over the file (a JSON list)
    assert saved["model"]["activation"] == "tanh"  # the file's, untouched by --set in the same section
    assert saved["training"]["lr"] == 0.02
    assert saved["training"]["weight_decay"] == 1e-4  # a key with no flag of its own
    assert saved["model"]["features"]["char_ngram_min"] == 0  # a section inside a section


def test_cli_train_word2vec_set_wins_over_the_config_file_and_the_flags(
    cli_env: Settings, pt_corpus_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "run.toml"
    config.write_text(
        "[train]\nvector_size = 12\nmin_count = 2\nepochs = 3\nbucket = 5000\n", encoding="utf-8"
    )
    argv = [
        "train", "word2vec", "--corpus", str(pt_corpus_file), "--name", "cli", "--config", str(config),
        "--epochs", "2", "--workers", "1", "--no-evaluate", "--quiet",
        "--set", "train.epochs=1", "--set", "train.algorithm=word2vec", "--set", "train.window=3",
        "--set", "normalize.lowercase=false",
    ]  # fmt: skip
    code, out, err = run(argv, capsys)
    assert code == 0, err
    assert json.loads(out)["kind"] == "word2vec"  # a value that is not JSON is the text itself
    saved = open_registry(get_settings()).open("cli").read_json("config.json")
    assert saved["train"]["epochs"] == 1  # --set over --epochs over the file
    assert saved["train"]["vector_size"] == 12  # the file's
    assert saved["train"]["window"] == 3
    assert saved["normalize"]["lowercase"] is False


def test_cli_train_lm_set_names_keys_as_the_grid_does_and_null_is_a_value(
    cli_env: Settings, pt_corpus_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "train", "lm", "--corpus", str(pt_corpus_file), "--name", "frases", "--context", "3", "--dim", "16",
        "--hidden", "32", "--epochs", "2", "--batch-size", "64", "--min-count", "1", "--quiet",
        "--set", "model.context=2", "--set", "training.patience=null", "--set", "holdout=0.1",
    ]  # fmt: skip
    code, _, err = run(argv, capsys)
    assert code == 0, err
    saved = open_registry(get_settings()).open("frases").read_json("config.json")["training"]["run"]
    assert saved["context"] == 2  # --set over --context
    assert saved["patience"] is None  # JSON null: no early stopping (no flag can say so)
    assert saved["holdout"] == 0.1
    assert saved["dim"] == 16
