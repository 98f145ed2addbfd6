"""``palavra train|evaluate classifier``, ``palavra classify``, ``palavra compare classifier``: JSON on stdout,
one-line errors with exit code 2 for bad input, and nothing registered when training fails."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from services.factories import open_registry
from services.settings import Settings, get_settings
from tests.services.cli_helpers import run

SMALL = ["--epochs", "6", "--lr", "0.02", "--batch-size", "16", "--threads", "1", "--quiet"]


def _train(files: dict[str, Path], *extra: str) -> list[str]:
    return [
        "train", "classifier", "--train", str(files["train"]), "--validation", str(files["validation"]),
        "--text-column", "texto", "--label-column", "rotulo", "--name", "sentimento", *SMALL, *extra,
    ]  # fmt: skip


def _compare(files: dict[str, Path], *extra: str) -> list[str]:
    return [
        "compare", "classifier", "--train", str(files["train"]), "--validation", str(files["validation"]),
        "--text-column", "texto", "--label-column", "rotulo", *extra,
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
        (["--seed", "-1"], "field 'training.seed'"),
        (["--hidden", "100000"], "from 1 to 8192"),
        (["--threads", "100000"], "field 'training.threads'"),
        (["--lr", "inf"], "field 'training.lr'"),
        # crashed inside torch with a traceback (a float it cannot hold), found by a hostile probe
        (["--lr", "1e39"], "field 'training.lr'"),
        (["--set", "training.weight_decay=1e39"], "field 'training.weight_decay'"),
        (["--set", "training.embedding_lr_scale=1e300"], "field 'training.embedding_lr_scale'"),
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
    # bytes that are not UTF-8 reach argv as lone surrogates (surrogateescape): one line, no traceback
    code, out, err = run(["classify", "sentimento", "bom", "ola \udcff"], capsys)
    assert (code, out) == (2, "")
    assert (
        err
        == "error: text at position 1 is not valid text: the byte 0xFF at character 4 is not UTF-8; send UTF-8 text\n"
    )


class _Stdin(io.StringIO):
    def __init__(self, text: str, *, tty: bool = False) -> None:
        super().__init__(text)
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_cli_classify_stdin_gives_one_result_per_line(
    cli_env: Settings,
    reviews_csv: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert run(_train(reviews_csv), capsys)[0] == 0
    monkeypatch.setattr("sys.stdin", _Stdin("Adorei, excelente\r\nPéssimo, odiei\n"))
    code, out, _ = run(["classify", "sentimento", "-"], capsys)
    assert code == 0
    assert [r["text"] for r in json.loads(out)] == ["Adorei, excelente", "Péssimo, odiei"]
    for stdin, message in (
        (_Stdin("bom\n\nruim\n \u200b\n"), "stdin line(s) 2, 4 are empty"),
        (_Stdin(""), "stdin held no text"),
        (_Stdin("", tty=True), "give the texts to classify, or '-'"),  # not left waiting at a terminal
        (
            io.TextIOWrapper(io.BytesIO(b"bom\nola \xff\n"), encoding="utf-8"),
            "stdin is not UTF-8 text (byte 0xFF)",
        ),
        (
            io.TextIOWrapper(io.BytesIO(b"bom\nola \xff\n"), encoding="utf-8", errors="surrogateescape"),
            "text at position 1 is not valid text: the byte 0xFF",
        ),
    ):
        monkeypatch.setattr("sys.stdin", stdin)
        tty = stdin.isatty()
        code, _, err = run(["classify", "sentimento"] if tty else ["classify", "sentimento", "-"], capsys)
        assert code == 2, message
        assert message in err
        assert "Traceback" not in err


def test_cli_compare_writes_table_and_plot(
    cli_env: Settings, reviews_csv: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "cmp"
    argv = _compare(
        reviews_csv, "--optimizers", "sgd,adam", "--activations", "sigmoid,relu", "--epochs", "3",
        "--out", str(out_dir), "--quiet",
    )  # fmt: skip
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


def test_cli_compare_diverged_run_is_strict_json_and_out_must_be_a_folder(
    cli_env: Settings, reviews_csv: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "cmp"
    argv = _compare(
        reviews_csv,
        "--optimizers",
        "sgd",
        "--activations",
        "relu",
        "--lr",
        "1e6",
        "--epochs",
        "2",
        "--quiet",
        "--out",
    )
    code, out, _ = run([*argv, str(out_dir)], capsys)
    assert code == 0

    def strict(text: str) -> Any:
        return json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))

    (row,) = strict(out)["runs"]
    assert row["status"] == "diverged", row
    strict((out_dir / "results.json").read_text(encoding="utf-8"))
    code, _, err = run([*argv, str(reviews_csv["train"])], capsys)
    assert code == 2
    assert "give --out a folder" in err


def test_cli_compare_grids_multiply_and_bad_grids_exit_2(
    cli_env: Settings, reviews_csv: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "cmp"
    argv = _compare(
        reviews_csv, "--optimizers", "sgd", "--grid", "training.lr=0.5,0.05", "--grid", "model.hidden=[]|8",
        "--epochs", "2", "--sample", "200", "--out", str(out_dir), "--quiet",
    )  # fmt: skip
    code, out, _ = run(argv, capsys)
    assert code == 0
    result = json.loads(out)
    assert [(r["cell"]["training.lr"], r["cell"]["model.hidden"]) for r in result["runs"]] == [
        (0.5, []), (0.5, [8]), (0.05, []), (0.05, [8]),
    ]  # fmt: skip
    assert all(r["optimizer"] == "sgd" for r in result["runs"])
    assert result["columns"][:3] == ["lr", "hidden", "status"]
    report = (out_dir / "report.md").read_text(encoding="utf-8")
    assert "200 training texts" in report
    assert "| 0.05 | [] | ok |" in report
    for bad, message in [
        ("training.lr", "--grid 'training.lr': write KEY=V1,V2,..."),
        (
            "training.batch_size=1,half",
            "grid training.batch_size: 'half' is not allowed; give full or an integer",
        ),
        ("model.hiden=64", "unknown grid key 'model.hiden' (did you mean model.hidden?)"),
    ]:
        code, _, err = run([*argv[:-1], "--grid", bad], capsys)
        assert code == 2, bad
        assert message in err
        assert "Traceback" not in err


def _ctrl_c_as_in_a_terminal() -> None:
    """A child inherits an ignored or blocked SIGINT from the test process (whatever earlier tests left in it), and
    Python then never raises KeyboardInterrupt; a user's shell starts the CLI with the default disposition."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def test_cli_training_interrupted_says_so_and_registers_nothing(
    cli_env: Settings, reviews_csv: dict[str, Path]
) -> None:
    import os
    import signal
    import subprocess
    import sys

    argv = [*_train(reviews_csv)[: -len(SMALL)], "--epochs", "10000", "--patience", "0", "--batch-size", "2"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli.main", *argv],
        env={**os.environ, "PALAVRA_HOME": str(cli_env.home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_ctrl_c_as_in_a_terminal,
    )
    assert proc.stderr is not None
    # wait for the training bar (its unit is the epoch), not just the first bytes: under load those are the
    # preparation stage's bar, and the run is meant to be interrupted while it trains
    progress = b""
    while b"epoch" not in progress:
        chunk = os.read(proc.stderr.fileno(), 256)
        assert chunk, f"the run ended before training: {progress!r}"
        progress += chunk
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, progress + err
    assert err.decode().rstrip().endswith("interrupted")
    assert open_registry(get_settings()).list() == []
    assert not list((cli_env.home / "artifacts").rglob("*.safetensors"))


def _numeric_labels(files: dict[str, Path], folder: Path) -> dict[str, Path]:
    """The review files with labels 1 (pos) and 0 (neg), as many data sets store them."""
    import csv

    out = {}
    for split in ("train", "validation"):
        with files[split].open(encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        out[split] = folder / f"{split}.csv"
        with out[split].open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["texto", "rotulo"])
            writer.writerows([r["texto"], int(r["rotulo"] == "pos")] for r in rows)
    return out


def test_cli_label_names_are_what_classify_answers(
    cli_env: Settings, reviews_csv: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _numeric_labels(reviews_csv, tmp_path)
    code, out, err = run(_train(files, "--label-names", "0=negativo,1=positivo"), capsys)
    assert code == 0, err
    assert json.loads(out)["label_names"] == ["negativo", "positivo"]
    code, out, _ = run(["classify", "sentimento", "Adorei, produto excelente"], capsys)
    (result,) = json.loads(out)
    assert result["label"] == "positivo"
    assert set(result["scores"]) == {"negativo", "positivo"}
    # evaluate names the classes as classify does (it said "0" and "1")
    evaluate = ["evaluate", "classifier", "sentimento", "--test", str(files["validation"])]
    code, out, _ = run([*evaluate, "--text-column", "texto", "--label-column", "rotulo"], capsys)
    metrics = json.loads(out)
    assert list(metrics["per_class"]) == metrics["confusion_matrix"]["labels"] == ["negativo", "positivo"]
    # and so does the training's own report (the web page's models tab showed 0 and 1)
    stored = open_registry(get_settings()).open("sentimento").read_json("metrics.json")
    assert list(stored["validation"]["per_class"]) == ["negativo", "positivo"]
    assert stored["validation"]["confusion_matrix"]["labels"] == ["negativo", "positivo"]
    for spec, message in (("0negativo", "LABEL=NAME"), ("0=a,7=b", "'7'"), ("0=a,1=a", "same name")):
        code, out, err = run(_train(files, "--label-names", spec), capsys)
        assert code == 2, (spec, out)
        assert message in err
        assert len(err.strip().splitlines()) == 1


def test_cli_train_skips_and_counts_empty_texts_unless_strict(
    cli_env: Settings, reviews_csv: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = reviews_csv["train"].read_text(encoding="utf-8").splitlines()
    train = tmp_path / "com_vazios.csv"
    # three rows without text, at file lines 3, 6 and 9
    rows = [lines[0], lines[1], " ,pos", *lines[2:4], '"",neg', *lines[4:6], "   ,pos", *lines[6:]]
    train.write_text("\n".join(rows) + "\n", encoding="utf-8")
    files = {"train": train, "validation": reviews_csv["validation"]}
    code, out, err = run(_train(files), capsys)
    assert code == 0, err
    assert json.loads(out)["skipped_empty_texts"] == {"train": 3, "validation": 0}
    code, _, err = run(_train(files, "--strict"), capsys)
    assert code == 2
    assert "3 row(s) have an empty text" in err
    assert "lines 3, 6, 9" in err


def test_cli_train_under_a_name_holding_word_vectors_is_refused_before_training(
    cli_env: Settings, reviews_csv: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.services.vector_models import register

    register(open_registry(cli_env), "sentimento")  # a word2vec model already holds the name
    code, out, err = run(_train(reviews_csv), capsys)
    assert code == 2
    assert out == ""
    assert "'sentimento' holds a word2vec model; a classifier model needs another name" in err
    assert "Traceback" not in err
    assert "epoch" not in err  # refused before training, not after
    assert [v.kind for v in open_registry(cli_env).versions("sentimento")] == ["word2vec"]


def test_cli_train_baseline_prints_its_score_beside_the_model(
    cli_env: Settings, reviews_csv: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(_train(reviews_csv, "--baseline"), capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["baseline"]["name"] == "tfidf+logreg"
    assert 0.5 < summary["baseline"]["macro_f1"] <= 1.0
    assert "macro_f1" in summary  # the model's own, beside it
