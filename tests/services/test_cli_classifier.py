"""``palavra train|evaluate classifier``, ``palavra classify``, ``palavra compare classifier``: JSON on stdout,
one-line errors with exit code 2 for bad input, and nothing registered when training fails."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.cli.main import main
from services.context import open_registry
from services.settings import Settings, get_settings

SMALL = ["--epochs", "6", "--lr", "0.02", "--batch-size", "16", "--threads", "1", "--quiet"]


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("PALAVRA_HOME", str(settings.home))
    monkeypatch.delenv("PALAVRA_DATA_MIRROR", raising=False)
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def _train(files: dict[str, Path], *extra: str) -> list[str]:
    return [
        "train", "classifier", "--train", str(files["train"]), "--validation", str(files["validation"]),
        "--text-column", "texto", "--label-column", "rotulo", "--name", "sentimento", *SMALL, *extra,
    ]  # fmt: skip


def test_cli_train_evaluate_classify(
    cli_env: Settings, reviews_csv: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(_train(reviews_csv, "--activation", "leaky_relu", "--optimizer", "adam"), capsys)
    assert code == 0
    summary = json.loads(out)
    assert summary["model"] == "sentimento@1"
    assert summary["classes"] == ["neg", "pos"]
    assert summary["macro_f1"] > 0.9

    evaluate = ["evaluate", "classifier", "sentimento", "--test", str(reviews_csv["validation"])]
    code, out, _ = run([*evaluate, "--text-column", "texto", "--label-column", "rotulo"], capsys)
    assert code == 0
    metrics = json.loads(out)
    assert metrics["model"] == "sentimento@1"
    assert metrics["texts"] == 100
    assert set(metrics["per_class"]) == {"neg", "pos"}
    assert len(metrics["confusion_matrix"]["matrix"]) == 2
    code, out, _ = run([*evaluate, "--text-column", "texto", "--label-column", "rotulo", "--table"], capsys)
    assert code == 0
    assert "macro-F1" in out
    assert "confusion matrix" in out

    code, out, _ = run(
        ["classify", "sentimento", "Produto excelente, adorei", "Veio quebrado, péssimo"], capsys
    )
    assert code == 0
    results = json.loads(out)
    assert [r["label"] for r in results] == ["pos", "neg"]
    assert results[0]["text"] == "Produto excelente, adorei"


def test_cli_train_reads_a_toml_config_and_options_win(
    cli_env: Settings, reviews_csv: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "run.toml"
    config.write_text(
        '[model]\nactivation = "tanh"\nhidden = [8]\nembedding_dim = 8\n\n[training]\noptimizer = "rmsprop"\n',
        encoding="utf-8",
    )
    code, out, _ = run(_train(reviews_csv, "--config", str(config), "--optimizer", "adagrad"), capsys)
    assert code == 0
    art = open_registry(get_settings()).open(json.loads(out)["model"])
    saved = art.read_json("config.json")
    assert saved["model"]["activation"] == "tanh"
    assert saved["model"]["hidden"] == [8]
    assert saved["training"]["optimizer"] == "adagrad"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--label-column", "label"], "no column 'label'"),
        (["--embeddings", "nada"], "unknown embeddings model 'nada'"),
        (["--activation", "swish"], "field 'model.activation'"),
        (["--optimizer", "lbfgs"], "field 'training.optimizer'"),
        (["--hidden", "64,x"], "--hidden takes comma-separated sizes"),
        (["--name", "mau nome"], "field 'name'"),
        (["--config", "{tmp}/nada.toml"], "nada.toml does not exist"),
    ],
)
def test_cli_train_bad_input_is_one_line_and_registers_nothing(
    cli_env: Settings,
    reviews_csv: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    code, _, err = run(_train(reviews_csv, *[e.format(tmp=tmp_path) for e in extra]), capsys)
    assert code == 2
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert open_registry(get_settings()).list() == []


def test_cli_evaluate_and_classify_errors(
    cli_env: Settings, reviews_csv: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = run(_train(reviews_csv), capsys)
    assert code == 0
    other = tmp_path / "outro.csv"
    other.write_text("texto,rotulo\nbom,pos\nmais ou menos,neutro\n", encoding="utf-8")
    args = ["--text-column", "texto", "--label-column", "rotulo"]
    code, _, err = run(["evaluate", "classifier", "sentimento", "--test", str(other), *args], capsys)
    assert code == 2
    assert "never saw in training: 'neutro'" in err
    code, _, err = run(["classify", "sentimento", "   "], capsys)
    assert code == 2
    assert "empty text" in err
    code, _, err = run(["classify", "nada", "oi"], capsys)
    assert code == 2
    assert "not registered" in err


def test_cli_compare_writes_table_and_plot(
    cli_env: Settings, reviews_csv: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "cmp"
    argv = [
        "compare", "classifier", "--train", str(reviews_csv["train"]), "--validation", str(reviews_csv["validation"]),
        "--text-column", "texto", "--label-column", "rotulo", "--optimizers", "sgd,adam",
        "--activations", "sigmoid,relu", "--epochs", "3", "--out", str(out_dir), "--quiet",
    ]  # fmt: skip
    code, out, _ = run(argv, capsys)
    assert code == 0
    result = json.loads(out)
    assert [(r["optimizer"], r["activation"]) for r in result["runs"]] == [
        ("sgd", "sigmoid"), ("sgd", "relu"), ("adam", "sigmoid"), ("adam", "relu"),
    ]  # fmt: skip
    report = (out_dir / "report.md").read_text(encoding="utf-8")
    assert report.count("\n| sgd |") == 2
    assert report.count("\n| adam |") == 2
    assert "NaN" not in report
    assert (out_dir / "loss_curves.png").read_bytes()[:4] == b"\x89PNG"
    code, _, err = run([*argv[:-3], "--optimizers", "lbfgs", "--out", str(out_dir)], capsys)
    assert code == 2
    assert "unknown optimizer 'lbfgs'" in err
