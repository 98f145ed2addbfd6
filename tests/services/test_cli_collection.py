"""``palavra collection`` and ``palavra search``: build, change and search collections; clear errors, exit code 2."""

from __future__ import annotations

import errno
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from models.registry import Registry
from pipelines.text_encoder.build import pooling_model, register_encoder
from services.factories import open_collections
from services.settings import Settings, get_settings
from tests.services.cli_helpers import run
from tests.services.vector_models import register

DOCS = [
    {"id": "d1", "texto": "O rei e a rainha no castelo", "tipo": "nobreza"},
    {"id": "d2", "texto": "A casa e o lar", "tipo": "moradia"},
    {"id": "d3", "texto": "O homem e a mulher", "tipo": "pessoas"},
    {"id": "d4", "texto": "O príncipe e a princesa", "tipo": "nobreza"},
]


@pytest.fixture
def cli_env(settings: Settings, registry: Registry, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("PALAVRA_HOME", str(settings.home))
    monkeypatch.delenv("PALAVRA_DATA_MIRROR", raising=False)
    get_settings.cache_clear()
    register(registry, "w2v")
    model, _ = pooling_model(registry, "w2v", pooling="sif", sample=[d["texto"] for d in DOCS])
    register_encoder(registry, "frases", model, metadata={})
    yield settings
    get_settings.cache_clear()


def jsonl(path: Path, rows: list[dict[str, Any]], *, encoding: str = "utf-8") -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding=encoding)
    return path


def create(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    rows: list[dict[str, Any]] = DOCS,
    *,
    encoding: str = "utf-8",
) -> tuple[int, str]:
    source = jsonl(tmp_path / "docs.jsonl", rows, encoding=encoding)
    argv = [
        "collection",
        "create",
        "docs",
        "--from",
        str(source),
        "--text-field",
        "texto",
        "--encoder",
        "frases",
    ]
    code, _, err = run([*argv, "--quiet"], capsys)
    return code, err


def search(capsys: pytest.CaptureFixture[str], query: str, *extra: str) -> list[dict[str, Any]]:
    code, out, err = run(["search", "docs", query, *extra], capsys)
    assert code == 0, err
    assert err == ""  # no library chatter on stderr
    hits: list[dict[str, Any]] = json.loads(out)["hits"]
    return hits


def test_cli_collection_create_search_add_delete(
    cli_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert create(tmp_path, capsys) == (0, "")
    for mode in ("vector", "lexical", "hybrid"):
        hits = search(capsys, "a rainha", "-k", "2", "--mode", mode)
        assert hits[0]["id"] == "d1", mode
        assert hits[0]["metadata"] == {"tipo": "nobreza"}
    # the filter keeps d2 though the query reads as d1 ("castelo" here, a word the encoder does not know, matched
    # d2 only by its score of 0; such a query now finds nothing by meaning)
    assert [h["id"] for h in search(capsys, "rainha", "--filter", "tipo=moradia", "--mode", "vector")] == [
        "d2"
    ]
    extra = jsonl(tmp_path / "novos.jsonl", [{"id": "d5", "texto": "casas e casas", "tipo": "moradia"}])
    assert run(["collection", "add", "docs", "--from", str(extra)], capsys)[0] == 0
    assert search(capsys, "casas", "--mode", "lexical")[0]["id"] == "d5"
    # a file without the collection's text field: the error sent to --text-field, which `add` does not have
    other = jsonl(tmp_path / "outros.jsonl", [{"id": "d6", "corpo": "casas"}])
    code, _, err = run(["collection", "add", "docs", "--from", str(other)], capsys)
    assert code == 2
    assert err.strip().endswith(
        "line 1 has no text field 'texto' (fields: id, corpo); collection 'docs' reads its documents' text from "
        "'texto', as it was created"
    ), err
    code, out, _ = run(["collection", "delete", "docs", "d1", "d5"], capsys)
    assert (code, json.loads(out)["documents"]) == (0, 3)
    for mode in ("vector", "lexical", "hybrid"):
        ids = [h["id"] for h in search(capsys, "rainha casas", "-k", "10", "--mode", mode)]
        assert "d1" not in ids
        assert "d5" not in ids
    code, out, _ = run(["collection", "list"], capsys)
    assert "docs" in out
    assert "frases@1" in out
    code, out, _ = run(["collection", "remove", "docs"], capsys)
    assert (code, json.loads(out)) == (0, {"name": "docs", "removed": True, "documents": 3})
    code, _, err = run(["search", "docs", "rainha"], capsys)
    assert (code, err.split(";")[0]) == (2, "error: no collection called 'docs' (collections: none yet)")
    code, _, err = run(["collection", "remove", "docs"], capsys)
    assert code == 2
    assert err.startswith("error: no collection called 'docs'")


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([*DOCS, {"id": "d1", "texto": "de novo"}], "duplicate document id 'd1'"),
        ([{"id": "d9", "corpo": "sem texto"}], "line 1 has no text field 'texto'"),
        # a field that is there but unusable is named as such (before: "has no text field ... (fields: id, texto)")
        ([{"id": "d9", "texto": None}], "line 1: its text field 'texto' is null, not a string"),
        ([{"id": "d9", "texto": ""}], "line 1: its text field 'texto' is empty"),
        ([{"id": "", "texto": "a casa"}], "line 1: its id field 'id' is empty"),
        (
            [{"id": "\u200b", "texto": "a casa"}],
            "line 1: the id is empty (nothing but whitespace or invisible",
        ),
        ([{"id": "a\nb", "texto": "a casa"}], "line 1: the id holds the control character U+000A"),
        ([{"id": None, "texto": "a casa"}], "line 1: its id field 'id' is null, not a string"),
        # ids are strings, as POST /v1/collections requires (before: stored as "True" and "['a']")
        ([*DOCS, {"id": True, "texto": "a casa"}], f"line {len(DOCS) + 1}: its id field 'id' is true, not a"),
        ([{"id": ["a"], "texto": "a casa"}], "line 1: its id field 'id' is a list, not a string"),
        # JSON has no NaN (before: stored, and `palavra search` printed "x": NaN, which is not JSON)
        (
            [{"id": "d9", "texto": "a casa", "x": float("nan")}],
            "line 1 holds NaN, which is not a finite number",
        ),
        # refused as POST /v1/collections refuses it (was a document of nothing)
        ([*DOCS, {"id": "d9", "texto": " \u200b "}], f"line {len(DOCS) + 1}: its text is empty"),
        ([], "would be empty"),
    ],
)
def test_cli_collection_bad_input_creates_nothing(
    cli_env: Settings,
    tmp_path: Path,
    rows: list[dict[str, Any]],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, err = create(tmp_path, capsys, rows)
    assert code == 2
    assert message in err
    assert open_collections(cli_env).names() == []


@pytest.mark.parametrize("name", ["../x", "a b", ""])
def test_cli_collection_a_bad_name_is_one_line_with_no_progress_bar_above(
    cli_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """The progress bar was drawn (``../x: 0 docs``) before the name was refused."""
    source = jsonl(tmp_path / "docs.jsonl", DOCS)
    code, out, err = run(
        ["collection", "create", name, "--from", str(source), "--text-field", "texto", "--encoder", "frases"],
        capsys,
    )
    assert (code, out) == (2, "")
    assert err.startswith("error: "), err
    assert len(err.strip().splitlines()) == 1, err
    assert open_collections(cli_env).names() == []


def test_cli_search_errors(cli_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert create(tmp_path, capsys)[0] == 0
    assert "already exists" in create(tmp_path, capsys)[1]
    code, _, err = run(["search", "docs", "casa " * 500], capsys)
    assert (code, "the limit is 2000" in err) == (2, True)
    code, _, err = run(["search", "docs", "\u200b\u2060"], capsys)  # ran on an empty query; HTTP refuses it
    assert (code, "the query is empty" in err) == (2, True)
    code, _, err = run(["search", "nenhuma", "casa"], capsys)
    assert (code, "no collection called 'nenhuma'" in err) == (2, True)
    extra = jsonl(tmp_path / "dup.jsonl", [{"id": "d2", "texto": "outra casa"}])
    code, _, err = run(["collection", "add", "docs", "--from", str(extra)], capsys)
    assert (code, "duplicate document id 'd2'" in err) == (2, True)
    run(["collection", "delete", "docs", "d1", "d2", "d3", "d4"], capsys)
    code, _, err = run(["search", "docs", "casa"], capsys)
    assert (code, "is empty" in err) == (2, True)


def test_cli_search_keeps_bm25s_debug_logging_quiet(
    cli_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    assert create(tmp_path, capsys)[0] == 0
    with caplog.at_level(logging.DEBUG):
        search(capsys, "casa", "--mode", "lexical")
    assert [r.getMessage() for r in caplog.records if r.name.startswith("bm25s")] == []


def test_cli_collection_metadata_nested_too_deep_is_a_clear_error(
    cli_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A line nested past what JSON reading allows, and metadata nested past what a search can send back: one line
    each, exit code 2, nothing created (before: a RecursionError traceback, and a collection whose searches fail)."""
    for depth, expected in ((990, "nests too deep to read"), (40, "nest deeper than 32 levels")):
        source = tmp_path / f"fundo-{depth}.jsonl"
        source.write_text(
            '{"id": "d1", "texto": "O rei", "m": ' + "[" * depth + "]" * depth + "}\n", encoding="utf-8"
        )
        argv = ["collection", "create", "docs", "--from", str(source), "--text-field", "texto"]
        code, _, err = run([*argv, "--encoder", "frases", "--quiet"], capsys)
        assert code == 2, err
        assert expected in err
        assert "Traceback" not in err
        assert open_collections(cli_env).names() == []


def test_cli_search_filter_values_are_json(
    cli_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--filter field=value`` reads true, false, null and a quoted string as JSON, anything else as text (a text
    also matches the number or boolean it spells), and matches equal JSON values; before, values were compared as Python's str(): ok=true matched nothing, ok=True matched
    true, n=3 missed 3.0 and nulo=None matched every document without the field. The file starts with a byte-order
    mark (before: "line 1 is not JSON (Unexpected UTF-8 BOM ...)")."""
    rows = [
        {"id": "d1", "texto": "O rei e a rainha no castelo", "ok": True, "n": 3.0, "nulo": None},
        {"id": "d2", "texto": "A casa e o lar", "ok": False, "n": "3"},
        {"id": "d3", "texto": "O homem e a mulher", "ok": "True", "n": 3},
    ]
    assert create(tmp_path, capsys, rows, encoding="utf-8-sig") == (0, "")

    def ids(*filters: str) -> list[str]:
        args = [x for f in filters for x in ("--filter", f)]
        return sorted(h["id"] for h in search(capsys, "casa rainha homem", "--mode", "vector", *args))

    assert ids("ok=true") == ["d1"]
    assert ids("ok=false") == ["d2"]
    assert ids("ok=True") == ["d1", "d3"]  # the text "True", and true (Python's spelling)
    assert ids("n=3") == ["d1", "d2", "d3"]  # the number, and the text "3" (a file that wrote it as text)
    assert ids('n="3"') == ["d1", "d2", "d3"]  # a string also matches the number it spells
    assert ids("nulo=null") == ["d1"]
    assert ids("nulo=None") == []
    assert ids("ok=true", "n=3") == ["d1"]
    assert search(capsys, "casa", "--filter", "ok=true")[0]["metadata"] == {
        "ok": True,
        "n": 3.0,
        "nulo": None,
    }
    code, out, err = run(["search", "docs", "casa", "--filter", 'n=["a"]'], capsys)
    assert (code, out) == (2, "")
    assert "filter 'n=[\"a\"]': a filter value is a string, number, true, false or null, not a list" in err
    assert len(err.strip().splitlines()) == 1


def test_cli_collection_add_on_a_full_disk_is_one_line_exit_2(
    cli_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk printed a Python traceback and exited 1."""
    from models import collection

    assert create(tmp_path, capsys) == (0, "")

    def full(*_args: object, **_kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", "docs.jsonl")

    monkeypatch.setattr(collection, "_write_docs", full)
    extra = jsonl(tmp_path / "novos.jsonl", [{"id": "d5", "texto": "casas e casas"}])
    code, out, err = run(["collection", "add", "docs", "--from", str(extra)], capsys)
    assert (code, out) == (2, "")
    assert err.strip() == (
        "error: no space left on the device writing docs.jsonl; free disk space and try again (nothing was kept)"
    )
    monkeypatch.setattr(
        collection,
        "_write_docs",
        lambda *_a, **_k: (_ for _ in ()).throw(PermissionError(13, "Permission denied", "/x")),
    )
    code, _, err = run(["collection", "add", "docs", "--from", str(extra)], capsys)
    assert (code, err.strip()) == (2, "error: Permission denied: /x")


def _truncate(path: Path, size: int) -> None:
    with path.open("r+b") as fh:
        fh.truncate(size)


@pytest.mark.parametrize(
    ("file", "size", "message"),
    [
        (
            "vectors.npy",
            100,
            "vectors.npy has 100 bytes where",
        ),  # a copy cut short: the header is all there is
        ("vectors.npy", 20, "vectors.npy has 20 bytes where"),
        ("offsets.npy", 0, "offsets.npy has 0 bytes where"),
        ("documents.jsonl", 30, "documents.jsonl has 30 bytes where"),
        ("bm25/data.csc.index.npy", 64, "bm25/data.csc.index.npy has 64 bytes where"),
    ],
)
def test_cli_search_of_a_damaged_collection_is_one_line_naming_it_and_its_file(
    cli_env: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    file: str,
    size: int,
    message: str,
) -> None:
    """A truncated vectors.npy printed a numpy traceback (ValueError: mmap length is greater than file size) from
    `palavra search`; another collection keeps answering."""
    assert create(tmp_path, capsys) == (0, "")
    source = jsonl(tmp_path / "outros.jsonl", DOCS)
    argv = ["collection", "create", "outra", "--from", str(source), "--text-field", "texto"]
    assert run([*argv, "--encoder", "frases", "--quiet"], capsys)[0] == 0
    store = open_collections(cli_env)
    gen = store.info("docs")["data"]
    _truncate(store.path("docs") / gen / file, size)

    for argv in (["search", "docs", "casa"], ["collection", "add", "docs", "--from", str(source)]):
        code, out, err = run(argv, capsys)
        assert (code, out) == (2, ""), err
        assert "Traceback" not in err
        assert len(err.strip().splitlines()) == 1, err
        assert err.startswith(f"error: collection 'docs' is damaged: {gen}/{message}"), err
        assert "create the collection again" in err
    code, out, err = run(["search", "outra", "casa", "--mode", "lexical"], capsys)
    assert (code, err) == (0, "")
    assert json.loads(out)["hits"][0]["id"] == "d2"
    code, out, err = run(["collection", "list"], capsys)
    assert (code, "docs" in out, "outra" in out) == (0, True, True)


def test_cli_collection_records_size_and_sha256_of_every_file(
    cli_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each generation's files are recorded as they are written (registered models' checksums), and what a user
    sees of collection.json leaves the records out."""
    from models.artifact import sha256_file

    assert create(tmp_path, capsys) == (0, "")
    extra = jsonl(tmp_path / "novos.jsonl", [{"id": "d5", "texto": "casas e casas"}])
    code, out, _ = run(["collection", "add", "docs", "--from", str(extra)], capsys)
    assert code == 0
    assert not {"files", "sizes", "ann"} & json.loads(out).keys()
    store = open_collections(cli_env)
    info = store.info("docs")
    folder = store.path("docs")
    on_disk = sorted(
        p.relative_to(folder).as_posix() for p in (folder / info["data"]).rglob("*") if p.is_file()
    )
    assert sorted(info["files"]) == on_disk == sorted(info["sizes"])
    assert {f"{info['data']}/{f}" for f in ("vectors.npy", "documents.jsonl", "offsets.npy")} <= set(on_disk)
    for rel in on_disk:
        assert info["files"][rel] == sha256_file(folder / rel)
        assert info["sizes"][rel] == (folder / rel).stat().st_size


@pytest.mark.parametrize(
    ("field", "value"),
    [("generation", None), ("dim", "x"), ("files", ["a"]), ("sizes", {"../../registry.db": 1})],
)
def test_cli_collection_json_edited_to_wrong_types_is_one_line_exit_2(
    cli_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], field: str, value: object
) -> None:
    """A hand-edited collection.json printed a TypeError or KeyError traceback from `palavra search` and
    `palavra collection add`, or stat-ed a file outside the collection; now one line naming the field, exit 2,
    and `palavra collection list` names it on stderr and lists the others."""
    assert create(tmp_path, capsys) == (0, "")
    source = jsonl(tmp_path / "outros.jsonl", DOCS)
    argv = ["collection", "create", "outra", "--from", str(source), "--text-field", "texto"]
    assert run([*argv, "--encoder", "frases", "--quiet"], capsys)[0] == 0
    path = open_collections(cli_env).path("docs") / "collection.json"
    path.write_text(
        json.dumps({**json.loads(path.read_text(encoding="utf-8")), field: value}), encoding="utf-8"
    )

    new = jsonl(tmp_path / "novos.jsonl", [{"id": "d9", "texto": "casas"}])
    for argv in (["search", "docs", "casa"], ["collection", "add", "docs", "--from", str(new)]):
        code, out, err = run(argv, capsys)
        assert (code, out) == (2, ""), err
        assert len(err.strip().splitlines()) == 1, err
        assert err.startswith(f"error: collection 'docs' is damaged: collection.json field {field!r} "), err
    code, out, err = run(["collection", "list"], capsys)
    assert (code, "outra" in out, "docs" in out) == (0, True, False), out
    assert "collection.json field" in err


def test_cli_documents_changed_in_place_are_one_line_exit_2(
    cli_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """documents.jsonl with bytes changed at the same size printed a 36-line JSONDecodeError traceback from
    `palavra search` and `palavra collection add`; now one line naming the collection and the file, exit 2."""
    assert create(tmp_path, capsys) == (0, "")
    store = open_collections(cli_env)
    rel = f"{store.info('docs')['data']}/documents.jsonl"
    path = store.path("docs") / rel
    path.write_bytes(path.read_bytes().replace(b'"d2"', b"1234", 1))

    new = jsonl(tmp_path / "novos.jsonl", [{"id": "d9", "texto": "casas"}])
    for argv in (["search", "docs", "casa", "-k", "4"], ["collection", "add", "docs", "--from", str(new)]):
        code, out, err = run(argv, capsys)
        assert (code, out) == (2, ""), err
        assert len(err.strip().splitlines()) == 1, err
        assert err.startswith(f"error: collection 'docs' is damaged: {rel} holds an id, text or metadata"), (
            err
        )
