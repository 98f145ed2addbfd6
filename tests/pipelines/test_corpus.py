"""Corpus readers: formats, folders, byte-range slices, and which problems are skipped or fatal."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from models.errors import CorpusError
from pipelines.reading.corpus import (
    CorpusLimits,
    CorpusStats,
    Slice,
    file_format,
    iter_documents,
    list_files,
    plan_slices,
    read_slice,
)


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def read_all(*sources: Path, text_field: str = "text") -> tuple[list[str], CorpusStats]:
    stats = CorpusStats()
    return list(iter_documents(list(sources), text_field=text_field, stats=stats)), stats


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.txt", ("txt", False)),
        ("a.TXT", ("txt", False)),
        ("a.jsonl", ("jsonl", False)),
        ("a.csv.gz", ("csv", True)),
        ("a.jsonl.gz", ("jsonl", True)),
        ("a.gz", ("txt", True)),
        ("notes.tsv", None),
        ("README", None),
    ],
)
def test_file_format_from_name(name: str, expected: tuple[str, bool] | None) -> None:
    assert file_format(Path(name)) == expected


def test_txt_lines_are_documents_and_blanks_are_counted(tmp_path: Path) -> None:
    docs, stats = read_all(write(tmp_path / "a.txt", "\ufeffUm.\n\n  \nDois\r\nTrês"))
    assert docs == ["Um.", "Dois", "Três"]
    assert (stats.docs, stats.blank, stats.skipped) == (3, 2, 2)


def test_jsonl_field_and_gzip(tmp_path: Path) -> None:
    lines = [
        {"text": "Olá mundo"},
        {"text": ""},
        {"text": None},
        {"titulo": "x", "corpo": "y", "text": "Fim"},
    ]
    path = write(tmp_path / "a.jsonl.gz", "\n".join(json.dumps(x, ensure_ascii=False) for x in lines))
    docs, stats = read_all(path)
    assert docs == ["Olá mundo", "Fim"]
    assert stats.blank == 2
    assert stats.bytes_read == path.stat().st_size


def test_csv_named_column_with_quoted_newlines(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", 'id,corpo\n1,"linha um\nlinha dois"\n2,""\n3\n4,fim\n')
    docs, stats = read_all(path, text_field="corpo")
    assert docs == ["linha um\nlinha dois", "fim"]
    assert (stats.blank, stats.bad_rows) == (1, 1)


def test_folder_is_read_recursively_in_sorted_order(tmp_path: Path) -> None:
    write(tmp_path / "b" / "z.txt", "b/z")
    write(tmp_path / "a.txt", "a")
    write(tmp_path / "b" / "a.txt.gz", "b/a")
    write(tmp_path / "meta.tsv", "x\ty")
    write(tmp_path / ".hidden" / "x.txt", "hidden")
    docs, stats = read_all(tmp_path)
    assert docs == ["a", "b/a", "b/z"]
    assert sorted(Path(p).name for p in stats.skipped_files) == ["meta.tsv", "x.txt"]


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("bin.txt", b"abc\x00\x01\x02", "bin.txt: binary file"),
        ("latin.txt", "linha boa\nação\n".encode("latin-1"), "latin.txt:2: not UTF-8"),
        ("bad.jsonl", b'{"text": "ok"}\n\n{"text": \n', "bad.jsonl:3: not a JSON line"),
        ("field.jsonl", b'{"text": "ok"}\n{"body": "x"}\n', "field.jsonl:2: no field 'text' (found: body)"),
        ("num.jsonl", b'{"text": 3}\n', "num.jsonl:1: field 'text' is int"),
        ("list.jsonl", b"[1, 2]\n", "list.jsonl:1: no field 'text'"),
        ("col.csv", b"id,body\n1,x\n", "col.csv:1: no column 'text' (columns: id, body)"),
        ("latin.csv", "text\nação\n".encode("latin-1"), "latin.csv"),
        ("broken.txt.gz", b"\x1f\x8b\x08\x00garbage", "broken.txt.gz: broken gzip"),
        ("notes.tsv", b"a\tb\n", "unknown corpus format '.tsv'"),
    ],
)
def test_unreadable_input_is_fatal_and_names_file_and_line(
    tmp_path: Path, name: str, data: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(CorpusError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_all(path)


def test_missing_source_is_fatal(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="no such file or folder"):
        list_files([tmp_path / "nope.txt"])


def test_bad_line_number_is_exact_inside_a_later_slice(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", "linha\n" * 500 + "ruim \xff\n")
    path.write_bytes(path.read_bytes().replace("ÿ".encode(), b"\xff"))
    files = list_files([path])
    last = plan_slices(files, 3)[-1]
    with pytest.raises(CorpusError, match=r"a.txt:501: not UTF-8"):
        for sl in last:
            list(read_slice(sl))


@pytest.mark.parametrize("parts", [1, 2, 3, 7])
def test_slices_read_exactly_what_one_reader_reads(tmp_path: Path, parts: int) -> None:
    write(tmp_path / "1.txt", "".join(f"linha {i} com texto\n" for i in range(300)))
    write(tmp_path / "2.jsonl", "".join(json.dumps({"text": f"doc {i}"}) + "\n" for i in range(50)))
    write(tmp_path / "3.csv", "text\n" + "".join(f"row {i}\n" for i in range(40)))
    write(tmp_path / "4.txt", "sem quebra no fim")
    files = list_files([tmp_path])
    whole, _ = read_all(tmp_path)
    stats = CorpusStats()
    joined = [doc for run in plan_slices(files, parts) for sl in run for doc in read_slice(sl, stats=stats)]
    assert joined == whole
    assert stats.bytes_read == sum(f.size for f in files)


def _read(path: Path, limits: CorpusLimits) -> list[str]:
    return [doc for f in list_files([path]) for doc in read_slice(Slice(f), limits=limits)]


@pytest.mark.parametrize(
    ("name", "content", "where"),
    [
        ("bomba.txt.gz", "o rei\n" + "a" * 5000 + "\n", "bomba.txt.gz:2"),  # one huge line, gzipped
        ("longa.txt", "o rei\n" + "a" * 5000, "longa.txt:2"),
        ("longa.jsonl", '{"text": "o rei"}\n{"text": "' + "a" * 5000 + '"}\n', "longa.jsonl:2"),
        ("longa.csv", "text\no rei\n" + "a" * 5000 + "\n", "longa.csv:3"),
    ],
)
def test_read_stops_at_a_line_over_the_limit(tmp_path: Path, name: str, content: str, where: str) -> None:
    path = write(tmp_path / name, content)
    with pytest.raises(CorpusError, match=rf"{where}: a line longer than 1,000 bytes.*MAX_LINE_BYTES"):
        _read(path, CorpusLimits(max_line_bytes=1000))
    assert _read(path, CorpusLimits(max_line_bytes=6000))[-1] == "a" * 5000


def test_read_stops_a_decompression_bomb(tmp_path: Path) -> None:
    bomb = write(tmp_path / "bomba.txt.gz", "o rei governa o reino\n" * 20_000)  # 440 KB from ~1 KB
    with pytest.raises(CorpusError, match=r"expands to more than 100,000 bytes.*DECOMPRESSED_BYTES"):
        _read(bomb, CorpusLimits(max_decompressed_bytes=100_000))
    with pytest.raises(CorpusError, match=r"expands more than 50 times.*decompression bomb"):
        _read(bomb, CorpusLimits(max_compression_ratio=50, ratio_floor_bytes=10_000))
    assert len(_read(bomb, CorpusLimits())) == 20_000
    csv_bomb = write(tmp_path / "bomba.csv.gz", "text\n" + "o rei governa o reino\n" * 20_000)
    with pytest.raises(CorpusError, match="expands to more than"):
        _read(csv_bomb, CorpusLimits(max_decompressed_bytes=100_000))


@pytest.mark.parametrize("link", ["hard", "symbolic"])
@pytest.mark.parametrize("parts", [1, 2])
def test_a_file_replaced_after_listing_is_never_read(tmp_path: Path, link: str, parts: int) -> None:
    """Inputs are checked when listed (a job refuses hard and symbolic links then), but a folder is read file by
    file for minutes: a link to a file outside moved over a listed name afterwards was read and trained on. Each
    file is opened only while it is still the one listed, through the slices the preprocessing workers get too."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "a.txt").write_text("o rei governa\na rainha governa\n", encoding="utf-8")
    (folder / "z.txt").write_text("o reino\n", encoding="utf-8")
    secret = tmp_path / "segredo.txt"
    secret.write_text("segredo guardado\n", encoding="utf-8")
    slices = [
        Slice.from_json(sl.to_json()) for part in plan_slices(list_files([folder]), parts) for sl in part
    ]
    seen: list[str] = []
    with pytest.raises(CorpusError, match=r"z\.txt: the file was replaced after the corpus was listed"):
        for sl in slices:
            for doc in read_slice(sl):
                seen.append(doc)
                if doc == "o rei governa":  # the first file is being read: swap the second
                    (folder / "z.txt").unlink()
                    if link == "hard":
                        (folder / "z.txt").hardlink_to(secret)
                    else:
                        (folder / "z.txt").symlink_to(secret)
    assert seen == ["o rei governa", "a rainha governa"]


def test_a_pipe_named_as_a_corpus_is_named_as_such(tmp_path: Path) -> None:
    """A pipe was 'no such file or folder' (a corpus is read in slices, by offset: it must be a file)."""
    import os

    fifo = tmp_path / "entrada.txt"
    os.mkfifo(fifo)
    with pytest.raises(CorpusError, match="not a regular file"):
        list_files([fifo])
    notes = tmp_path / "notas.md"
    notes.write_text("o rei\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"unknown corpus format '\.md'"):
        list_files([notes])
    assert [f.fmt for f in list_files([notes], unknown_as_text=True)] == ["txt"]
