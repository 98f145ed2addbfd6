"""``palavra preprocess`` and ``palavra data``: JSON / paths on stdout, one-line errors with exit code 2."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.settings import Settings, get_settings
from tests.services.cli_helpers import run


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("PALAVRA_HOME", str(settings.home))
    if settings.data_mirror is not None:
        monkeypatch.setenv("PALAVRA_DATA_MIRROR", str(settings.data_mirror))
    else:
        monkeypatch.delenv("PALAVRA_DATA_MIRROR", raising=False)
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()


def test_preprocess_prints_stats_and_writes_output(
    cli_env: Settings, tmp_path: Path, pt_corpus_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "n.toml"
    config.write_text("fold_accents = true\n", encoding="utf-8")
    out_file = tmp_path / "out" / "tokens.txt"
    argv = ["preprocess", "--corpus", str(pt_corpus_file), "--config", str(config), "--output", str(out_file)]
    code, out, _ = run(argv, capsys)
    assert code == 0
    stats = json.loads(out)
    assert stats["n_docs"] == 600
    assert stats["cache_hit"] is False
    assert stats["normalize"]["fold_accents"] is True
    text = out_file.read_text(encoding="utf-8")
    assert "sao paulo" in text
    assert len(text.split()) == stats["n_tokens"]
    code, out, _ = run([*argv, "--quiet"], capsys)
    assert json.loads(out)["cache_hit"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--corpus", "nao-existe"], "no data set or file called 'nao-existe'"),
        (["--corpus", "{tmp}/bad.toml", "--config", "{tmp}/bad.toml"], "bad.toml: field 'lowercas'"),
    ],
)
def test_preprocess_bad_input_is_one_line_exit_2(
    cli_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    (tmp_path / "bad.toml").write_text("lowercas = true\n", encoding="utf-8")
    code, out, err = run(["preprocess", *[a.format(tmp=tmp_path) for a in args]], capsys)
    assert code == 2
    assert out == ""
    assert err.startswith("error: ")
    assert message in err
    assert err.count("\n") == 1


def test_data_fetch_unknown_name(cli_env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["data", "fetch", "corpus-machado", "nope"], capsys)
    assert code == 2
    assert "no data set or file called 'nope'" in err


def test_data_fetch_prints_one_summary_line_per_data_set_and_paths_on_request(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    mirror = tmp_path / "espelho"
    analogies = mirror / "analogies" / "LX-4WAnalogiesBr-dev.txt"
    analogies.parent.mkdir(parents=True)
    analogies.write_text(": capital\nlisboa portugal paris frança\n" * 100, encoding="utf-8")
    monkeypatch.setenv("PALAVRA_HOME", str(settings.home))
    monkeypatch.setenv("PALAVRA_DATA_MIRROR", str(mirror))
    get_settings.cache_clear()
    try:
        code, out, _ = run(["data", "fetch", "analogies-lx-br-dev"], capsys)
        assert code == 0
        assert out == f"analogies-lx-br-dev: 1 file, 4.0 kB: {analogies}\n"
        code, out, _ = run(["data", "fetch", "analogies-lx-br-dev", "--paths"], capsys)
        assert out == f"{analogies}\n"
    finally:
        get_settings.cache_clear()


@pytest.mark.slow
def test_data_list_and_fetch_from_mirror(cli_env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["data", "list"], capsys)
    assert code == 0
    rows = {line.split()[0]: line.split()[3] for line in out.splitlines()[1:]}
    assert rows["corpus-machado"] == "mirror"
    assert rows["told-br-1annotator-train"] == "mirror"
    code, out, _ = run(["data", "fetch", "simlex-lx-999", "b2w-10k", "--paths"], capsys)
    assert code == 0
    assert [Path(p).name for p in out.split()] == ["LX-SimLex-999.txt", "b2w-10k.csv"]
    code, out, _ = run(["data", "fetch", "corpus-machado"], capsys)
    (line,) = out.splitlines()
    assert line.startswith("corpus-machado: ")
    assert " files, " in line
    assert " MB under " in line
