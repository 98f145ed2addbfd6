"""``palavra train encoder`` and ``palavra evaluate encoder``: JSON on stdout, one-line errors with exit code 2."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from models.registry import Registry
from services.settings import Settings
from tests.conftest import make_sentences
from tests.services.cli_helpers import run


def scored_pairs(path: Path, n: int = 120, *, seed: int = 0) -> Path:
    """Pairs of the fixture sentences: the same sentence scores 5, sharing the first four words 4, else 1."""
    rnd = random.Random(seed)
    sentences = make_sentences(200, seed=seed + 5)
    rows: list[dict[str, Any]] = []
    for _ in range(n):
        a, b = rnd.sample(sentences, 2)
        score = 5.0 if a == b else 4.0 if a.split()[:4] == b.split()[:4] else 1.0
        rows.append({"sentence1": a, "sentence2": b if rnd.random() < 0.8 else a, "score": score})
        if rows[-1]["sentence1"] == rows[-1]["sentence2"]:
            rows[-1]["score"] = 5.0
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_cli_train_and_evaluate_sif_encoder(
    cli_env: Settings,
    registry: Registry,
    tiny_word2vec: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tiny_word2vec(registry, "word2vec", name="palavras")
    pairs = scored_pairs(tmp_path / "pares.jsonl")
    code, out, err = run(
        [
            "train",
            "encoder",
            "--kind",
            "sif",
            "--words",
            "palavras",
            "--name",
            "frases",
            "--sample",
            str(pairs),
        ],
        capsys,
    )
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["model"], summary["pooling"], summary["words"]) == ("frases@1", "sif", "palavras@1")
    assert registry.get("frases").metadata["estimated"]["weights_from"] == "counts"
    code, out, err = run(["evaluate", "encoder", "frases", "--pairs", str(pairs)], capsys)
    assert code == 0, err
    scores = json.loads(out)
    assert set(scores) >= {"pearson", "spearman", "mse"}
    assert scores["model"] == "frases@1"  # the version scored (was the name as typed)
    assert scores["pairs"] == 120
    assert scores["pearson"] > 0.5
    unknown = tmp_path / "desconhecidas.csv"  # no pair holds a known word: every cosine is 0
    unknown.write_text("sentence1,sentence2,score\nxyzzy,qwrtp,1\nfoo,bar,5\nbaz,quux,3\n", encoding="utf-8")
    code, out, err = run(["evaluate", "encoder", "frases", "--pairs", str(unknown)], capsys)
    assert code == 2, out  # was Pearson 0.0 and Spearman 0.0, exit 0
    assert "gave all 3 pairs the same cosine (0), so correlation is undefined" in err
    folder = tmp_path / "textos"
    folder.mkdir()
    (folder / "a.txt").write_text("\n".join(make_sentences(30)) + "\n", encoding="utf-8")
    code, out, err = run(
        ["train", "encoder", "--words", "palavras", "--name", "frases", "--sample", str(folder)], capsys
    )
    assert code == 0, err
    assert json.loads(out)["estimated"]["common_from"] == "30 sample texts"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--kind", "max"], "unknown encoder kind 'max'"),
        (["--words", "nenhum"], "model 'nenhum' is not registered"),
        (["--sif-a", "2"], "--sif-a must lie between 0 and 1"),
    ],
)
def test_cli_train_encoder_bad_input_exits_2(
    cli_env: Settings,
    registry: Registry,
    tiny_word2vec: Any,
    extra: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tiny_word2vec(registry, "word2vec", name="palavras")
    argv = ["train", "encoder", "--words", "palavras", "--name", "frases", *extra]
    code, _, err = run(argv, capsys)
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert registry.list(kind="encoder") == []


def test_cli_train_siamese_encoder_is_seeded_and_registered(
    cli_env: Settings,
    registry: Registry,
    tiny_word2vec: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tiny_word2vec(registry, "word2vec", name="palavras")
    train = scored_pairs(tmp_path / "treino.jsonl", 200, seed=1)
    dev = scored_pairs(tmp_path / "dev.jsonl", 80, seed=2)
    argv = [
        "train", "encoder", "--pairs", str(train), "--words", "palavras", "--name", "siames",
        "--hidden", "16", "--activation", "relu", "--optimizer", "adam", "--epochs", "8", "--seed", "3",
    ]  # fmt: skip
    outputs = []
    for _ in range(2):
        code, out, err = run(argv, capsys)
        assert code == 0, err
        outputs.append(json.loads(out))
    assert outputs[0]["pooling"] == "trained"
    assert outputs[0]["validation"] == outputs[1]["validation"]  # same seed, same model
    mv = registry.get("siames@1")
    assert len(mv.metadata["history"]) == outputs[0]["epochs_run"]
    code, out, err = run(["evaluate", "encoder", "siames@2", "--pairs", str(dev)], capsys)
    assert code == 0, err
    assert json.loads(out)["pearson"] > 0.5


@pytest.fixture
def sif_encoder(
    cli_env: Settings,
    registry: Registry,
    tiny_word2vec: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> str:
    """A SIF encoder ``frases`` over tiny word vectors ``palavras``, trained through the CLI."""
    tiny_word2vec(registry, "word2vec", name="palavras")
    pairs = scored_pairs(tmp_path / "pares.jsonl")
    argv = [
        "train",
        "encoder",
        "--kind",
        "sif",
        "--words",
        "palavras",
        "--name",
        "frases",
        "--sample",
        str(pairs),
    ]
    assert run(argv, capsys)[0] == 0
    capsys.readouterr()
    return "frases"


def test_cli_text_similarity_answers_as_the_encoder_does(
    sif_encoder: str, registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipelines.text_encoder.served import load_text_encoder

    texts = ["o rei visita o reino", "a rainha visita o castelo", "o gato dorme", "o cão dorme"]
    code, out, err = run(["text-similarity", "frases", *texts, "--json"], capsys)
    assert code == 0, err
    expected = load_text_encoder(registry, "frases").similarity([(texts[0], texts[1]), (texts[2], texts[3])])
    assert [r["cosine"] for r in json.loads(out)["results"]] == [round(c, 4) for c in expected]
    code, _, err = run(["text-similarity", "frases", "o rei"], capsys)
    assert code == 2
    assert "give texts in pairs" in err
    code, _, err = run(["text-similarity", "frases", "o rei", "   "], capsys)
    assert code == 2
    assert "text 2 is empty" in err


def test_cli_embed_prints_one_unit_vector_per_text(
    sif_encoder: str, registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    import numpy as np

    from pipelines.text_encoder.served import load_text_encoder

    texts = ["o rei visita o reino", "xyzzy qwerty"]
    code, out, err = run(["embed", "frases", *texts], capsys)
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["text"] for r in rows] == texts
    expected = load_text_encoder(registry, "frases").embed(texts)
    assert np.allclose([r["vector"] for r in rows], expected, atol=1e-5)
    assert abs(np.linalg.norm(rows[0]["vector"]) - 1) < 1e-4
    assert not any(rows[1]["vector"])
    assert (
        err.strip()
        == "warning: text 2 ('xyzzy qwerty') has no word the encoder knows: its vector is all zeros"
    )
    code, _, err = run(["embed", "frases", "ok", ""], capsys)
    assert code == 2
    assert "text 2 is empty" in err


def test_cli_train_encoder_leaves_out_the_pairs_it_will_be_scored_on(
    cli_env: Settings,
    registry: Registry,
    tiny_word2vec: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """ASSIN 2's train file repeats 401 of the 500 dev pairs: --exclude keeps them out of training."""
    tiny_word2vec(registry, "word2vec", name="palavras")
    train = scored_pairs(tmp_path / "treino.jsonl", 120, seed=1)
    rows = [json.loads(line) for line in train.read_text(encoding="utf-8").splitlines()]
    dev = tmp_path / "dev.jsonl"  # 30 of the training pairs, 10 of them with their sentences swapped
    picked = [
        {**r, "sentence1": r["sentence2"], "sentence2": r["sentence1"]} if i < 10 else r
        for i, r in enumerate(rows[:30])
    ]
    dev.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in picked), encoding="utf-8")
    held = {frozenset((p["sentence1"], p["sentence2"])) for p in picked}
    shared = sum(frozenset((r["sentence1"], r["sentence2"])) in held for r in rows)  # repeats counted too
    argv = [
        "train",
        "encoder",
        "--pairs",
        str(train),
        "--exclude",
        str(dev),
        "--words",
        "palavras",
        "--name",
        "limpo",
        "--epochs",
        "2",
    ]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["data"]["excluded_pairs"] == shared >= 30
    assert registry.get("limpo@1").metadata["data"]["excluded"] == str(dev)
    code, _, err = run([*argv[:4], "--exclude", str(train), *argv[6:]], capsys)  # nothing left
    assert code == 2
    assert "nothing is left to train on" in err
    code, _, err = run(
        ["train", "encoder", "--kind", "sif", "--exclude", str(dev), "--words", "palavras", "--name", "x"],
        capsys,
    )
    assert code == 2
    assert "--exclude removes pairs from --pairs" in err


def test_cli_train_siamese_encoder_shows_its_epochs_on_a_progress_bar(
    cli_env: Settings,
    registry: Registry,
    tiny_word2vec: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Training an encoder on ASSIN 2 printed nothing for a minute; it now reports pooling, then each epoch."""
    tiny_word2vec(registry, "word2vec", name="palavras")
    train = scored_pairs(tmp_path / "treino.jsonl", 120, seed=1)
    argv = ["train", "encoder", "--pairs", str(train), "--words", "palavras", "--name", "s", "--epochs", "3"]
    code, _, err = run([*argv, "--patience", "10"], capsys)
    assert code == 0, err
    assert "pooling the word vectors of 120 pairs" in err
    assert "3/3" in err  # the epochs bar reached its total
    assert "kept epoch" in err
    code, _, err = run([*argv, "--quiet"], capsys)
    assert code == 0
    assert err == ""
