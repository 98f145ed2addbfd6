"""``palavra train lm``, ``complete``, ``generate``, ``evaluate lm``: JSON / text on stdout, exit code 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.settings import Settings
from tests.services.cli_helpers import run

TINY = ["--context", "3", "--dim", "16", "--hidden", "32", "--epochs", "3", "--batch-size", "64"]
TINY += ["--lr", "0.01", "--min-count", "1", "--seed", "3", "--quiet"]


def test_cli_train_complete_generate_evaluate(
    cli_env: Settings, pt_corpus_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["train", "lm", "--corpus", str(pt_corpus_file), "--name", "frases", *TINY], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["model"] == "frases@1"
    [source] = summary["sources"]
    assert source["source"] == str(pt_corpus_file)
    assert source["wrapped"] is False
    assert source["documents"] == source["lines"] > source["held_out"] > 0
    assert Path(summary["history_png"]).is_file()
    assert len(summary["val_perplexity_per_epoch"]) == summary["training"]["epochs_run"]

    code, out, _ = run(["complete", "frases", "o menino", "-k", "3"], capsys)
    assert code == 0
    assert len(json.loads(out)["candidates"]) == 3

    generate = ["generate", "frases", "a rainha", "--max-tokens", "12", "--seed", "7", "--temperature", "1"]
    texts = [run(generate, capsys)[1] for _ in range(2)]
    assert texts[0] == texts[1]
    assert texts[0].startswith("A rainha ")

    sample = tmp_path / "amostra.txt"
    sample.write_text("O rei governa o reino no inverno.\nO astronauta chegou.\n", encoding="utf-8")
    code, out, _ = run(["evaluate", "lm", "frases", "--text", str(sample)], capsys)
    assert code == 0
    report = json.loads(out)
    assert report["model"] == "frases@1"
    assert report["oov_rate"] == pytest.approx(2 / 12, abs=1e-4)  # astronauta, chegou
    assert report["perplexity"] > 1
    # a binary file got a perplexity (exit 0) where training refuses it (a hostile probe)
    binary = tmp_path / "binario.txt"
    binary.write_bytes(b"O rei governa.\x00\x00\x01\n")
    code, out, err = run(["evaluate", "lm", "frases", "--text", str(binary)], capsys)
    assert code == 2
    assert err.strip() == f"error: {binary}: binary file (NUL bytes); give UTF-8 text, JSON lines or CSV"
    # JSON lines are read by their text field, as training reads them: the JSON syntax itself was scored
    records = tmp_path / "amostra.jsonl"
    lines = ["O rei governa o reino no inverno.", "O astronauta chegou."]
    records.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(lines)), "utf-8")
    code, out, err = run(["evaluate", "lm", "frases", "--text", str(records)], capsys)
    assert code == 0, err
    assert {k: v for k, v in json.loads(out).items() if k != "model"} == {
        k: v for k, v in report.items() if k != "model"
    }
    # a file of another name is plain text, as before (notes.md, a file without a suffix)
    # ... split as a .txt is: at newlines only (a form feed or U+2028 inside a line is not a line break)
    odd = "\ufeffO rei governa\x0co reino no inverno.\r\n\nO astronauta \u2028chegou.\n"
    for name in ("notas.md", "notas.txt"):
        (tmp_path / name).write_text(odd, encoding="utf-8")
    code, out_md, _ = run(["evaluate", "lm", "frases", "--text", str(tmp_path / "notas.md")], capsys)
    code_txt, out_txt, _ = run(["evaluate", "lm", "frases", "--text", str(tmp_path / "notas.txt")], capsys)
    assert (code, code_txt) == (0, 0)
    assert json.loads(out_md) == json.loads(out_txt)
    code, out, err = run(
        ["evaluate", "lm", "frases", "--text", str(records), "--text-field", "corpo"], capsys
    )
    assert code == 2
    assert "corpo" in err, err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "lm", "--corpus", "x.txt", "--name", "m", "--context", "0"], "context"),
        (["train", "lm", "--corpus", "x.txt", "--name", "m", "--activation", "softplus"], "activation"),
        (  # an order above context + 1 was cut down to it without a word
            ["train", "lm", "--corpus", "x.txt", "--name", "m", "--context", "5", "--ngram", "7"],
            "field 'ngram': order 7 is above context + 1 = 6; give at most 6",
        ),
        (["generate", "nada", "oi", "--top-p", "1.5"], "top_p"),
        (["generate", "nada", "oi", "--temperature", "-1"], "temperature"),
        (["complete", "nada", "oi", "-k", "0"], "-k"),
        (["complete", "nada", "oi"], "nada"),
        (
            ["compare", "lm", "--corpus", "x.txt", "--grid", "model.context=3,0"],
            "give an integer from 1 to 32",
        ),
        (["compare", "lm", "--corpus", "x.txt", "--activations", "softplus"], "choose from sigmoid, tanh"),
        (["compare", "lm", "--corpus", "x.txt", "--grid", "model.contxt=3"], "did you mean model.context?"),
    ],
)
def test_cli_bad_parameters_exit_2_with_one_line(
    cli_env: Settings, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(argv, capsys)
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_cli_compare_lm_writes_one_report(
    cli_env: Settings, pt_corpus_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cmp"
    argv = [
        "compare",
        "lm",
        "--corpus",
        str(pt_corpus_file),
        "--grid",
        "model.context=2,3",
        "--out",
        str(out),
    ]
    argv += ["--dim", "8", "--hidden", "16", "--epochs", "2", "--batch-size", "64", "--lr", "0.01"]
    code, stdout, err = run([*argv, "--min-count", "1", "--seed", "3", "--quiet"], capsys)
    assert code == 0, err
    result = json.loads(stdout)
    assert [r["cell"] for r in result["runs"]] == [{"model.context": 2}, {"model.context": 3}]
    assert Path(result["plot"]).is_file()
    assert (
        (out / "report.md")
        .read_text(encoding="utf-8")
        .startswith("# Language-model comparison: `model.context`")
    )
