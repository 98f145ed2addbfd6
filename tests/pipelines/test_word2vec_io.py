"""word2vec text / binary formats: round trips, interoperability with gensim, errors, registry import/export."""

from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path

import numpy as np
import pytest

from models.errors import CorpusError, InvalidInput
from models.registry import ModelVersion, Registry
from models.vectors import WordVectors
from pipelines.serving.served_vectors import load_served_vectors
from pipelines.word2vec.io_formats import export_word2vec, import_word2vec
from pipelines.word2vec.transfer import export_model, import_model, infer_normalize

WORDS = ["de", "ação", "são_paulo", "Lisboa", "0000"]


@pytest.fixture
def wv() -> WordVectors:
    rnd = np.random.default_rng(3)
    return WordVectors(WORDS, rnd.normal(size=(len(WORDS), 7)).astype(np.float32))


@pytest.mark.parametrize("binary", [False, True])
def test_formats_round_trip(wv: WordVectors, tmp_path: Path, binary: bool) -> None:
    path = tmp_path / "v.bin"
    assert export_word2vec(wv, path, binary=binary) == len(WORDS)
    back, report = import_word2vec(path, binary=binary)
    assert back.words == WORDS
    np.testing.assert_allclose(back.vectors, wv.vectors, rtol=1e-6)
    assert (report.declared_words, report.dim, report.duplicates) == (5, 7, 0)


@pytest.mark.parametrize("binary", [False, True])
def test_formats_interoperate_with_gensim(wv: WordVectors, tmp_path: Path, binary: bool) -> None:
    from gensim.models import KeyedVectors

    ours = tmp_path / "ours"
    export_word2vec(wv, ours, binary=binary)
    kv = KeyedVectors.load_word2vec_format(str(ours), binary=binary)
    assert list(kv.index_to_key) == WORDS
    np.testing.assert_allclose(kv["ação"], wv.vector("ação"), rtol=1e-6)
    theirs = tmp_path / "theirs"
    kv.save_word2vec_format(str(theirs), binary=binary)
    back, _ = import_word2vec(theirs, binary=binary)
    assert back.words == WORDS
    np.testing.assert_allclose(back.vectors, wv.vectors, rtol=1e-6)


def test_text_import_reads_headerless_files_and_skips_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "glove.txt"
    path.write_text("casa 0.1 0.2\ncasa 9 9\nrua -1 2.5\n", encoding="utf-8")
    vectors, report = import_word2vec(path)
    assert vectors.words == ["casa", "rua"]
    np.testing.assert_allclose(vectors.vector("casa"), [0.1, 0.2])
    assert (report.declared_words, report.duplicates) == (None, 1)
    assert report.notes == ["1 row(s) repeated a word already read and were skipped (the first row is kept)"]


def test_import_of_words_that_are_not_utf8_says_so(tmp_path: Path) -> None:
    """Two words of bytes that are not UTF-8 both read as U+FFFD U+FFFD: one was dropped as a duplicate of the other,
    with nothing in the notes (a hostile probe)."""
    path = tmp_path / "v.vec"
    path.write_bytes(b"3 2\n\xff\xfe 0.1 0.2\n\xfe\xff 0.3 0.1\ncasa 1 2\n")
    vectors, report = import_word2vec(path)
    assert len(vectors.words) == 2  # casa, and one of the two
    assert (report.undecodable, report.duplicates) == (2, 1)
    assert report.notes[0].startswith("2 word(s) were not UTF-8 text: their bad bytes were read as U+FFFD")
    assert "repeated a word" in report.notes[1]


@pytest.mark.parametrize(
    ("content", "binary", "message"),
    [
        (b"2 3\ncasa 1 2 3\nrua 1 2\n", False, r"v\.txt:3: expected a word and 3 numbers"),
        (b"2 3\ncasa 1 2 x\n", False, r"v\.txt:2: expected a word and 3 numbers"),
        (b"2 2\ncasa \x00\x00\x80?\xff\xfe\x00\x00\n", False, "--binary"),
        (b"\xff\xfe\x00binary", False, "not UTF-8 text"),
        (b"", False, "is empty"),
        (b"casa 1 2\n", True, "drop --binary"),
        # a header is checked against the file's size before anything is allocated from it
        (
            b"3000000000 300\na 1\n",
            False,
            "declares 3000000000 words of 300 dimensions, which needs at least",
        ),
        (b"3000000000 300\na 1\n", True, "declares 3000000000 words of 300 dimensions, which needs at least"),
        (b"1 3000000000\na 1\n", False, "the file holds 4 after the header"),
        (b"3000000000 1\na 1\n", False, "the header declares 3000000000 words, but the file holds 1"),
        (b"1 3000000000\na 1\n", True, "the file holds 4 after the header"),
        # ... and against the rows
        (b"1 2\ncasa 1 2\nrua 1 2\n", False, r"v\.txt:3: the header declares 1 words, but more rows follow"),
        (b"2 1\ncasa 1.5\n", False, "the header declares 2 words, but the file holds 1"),
        (b"1 1\ncasa \x00\x00\x80?\nrua \x00\x00\x80?\n", True, "declares 1 words, but more data follows"),
        (b"2 3\ncasa 1 2 3\nrua 1 nan 3\n", False, r"v\.txt:3: the vector of 'rua' holds a non-finite value"),
        (b"casa 1 1e39 3\n", False, r"v\.txt:1: the vector of 'casa' holds a non-finite"),  # past float32
        (
            b"1 2\ncasa \x00\x00\xc0\x7f\x00\x00\x80?\n",
            True,
            r"word 1: the vector of 'casa' holds a non-finite",
        ),
    ],
)
def test_import_errors_name_file_line_and_fix(
    tmp_path: Path, content: bytes, binary: bool, message: str
) -> None:
    path = tmp_path / "v.txt"
    path.write_bytes(content)
    # nothing printed above the one-line error: a value past float32's range warned "overflow encountered in cast"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(CorpusError, match=message):
            import_word2vec(path, binary=binary)


def test_import_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="does not exist"):
        import_word2vec(tmp_path / "nada.txt")


def test_binary_import_of_a_truncated_file_keeps_whole_rows(wv: WordVectors, tmp_path: Path) -> None:
    path = tmp_path / "v.bin"
    export_word2vec(wv, path, binary=True)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 10])
    back, report = import_word2vec(path, binary=True)
    assert back.words == WORDS[:-1]
    assert report.notes


def test_export_never_turns_a_device_pipe_or_link_into_a_plain_file(wv: WordVectors, tmp_path: Path) -> None:
    """``-o /dev/full`` replaced the device with a 2 MB file (a hostile probe, as root): the export renamed its
    finished file over whatever the path named."""
    fifo = tmp_path / "cano"
    os.mkfifo(fifo)
    with pytest.raises(InvalidInput, match="is not a regular file"):
        export_word2vec(wv, fifo)
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    device = tmp_path / "nulo"
    device.symlink_to("/dev/null")  # a link to a device: refused, the link and the device untouched
    with pytest.raises(InvalidInput, match="is not a regular file"):
        export_word2vec(wv, device)
    assert device.is_symlink()
    assert stat.S_ISCHR(Path("/dev/null").stat().st_mode)
    real = tmp_path / "vetores.txt"
    real.write_text("old", encoding="utf-8")
    link = tmp_path / "atalho.txt"
    link.symlink_to(real)  # a link to a file: the file is written, the link stays a link
    export_word2vec(wv, link)
    assert link.is_symlink()
    assert real.read_text(encoding="utf-8").startswith(f"{len(wv)} {wv.dim}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["atalho.txt", "cano", "nulo", "vetores.txt"]
    (tmp_path / "laço1").symlink_to(tmp_path / "laço2")
    (tmp_path / "laço2").symlink_to(tmp_path / "laço1")  # a loop: one line, not a traceback (a review)
    with pytest.raises(InvalidInput, match="is a loop of symbolic links"):
        export_word2vec(wv, tmp_path / "laço1")


def test_export_refuses_words_with_spaces_and_leaves_no_file(tmp_path: Path) -> None:
    wv = WordVectors(["são paulo", "x"], np.ones((2, 3), np.float32))
    with pytest.raises(InvalidInput, match="whitespace"):
        export_word2vec(wv, tmp_path / "v.txt")
    assert list(tmp_path.iterdir()) == []


def test_infer_normalize_from_vocabulary() -> None:
    assert infer_normalize(["de", "ação", "0000", "rua"]).lowercase is True
    assert infer_normalize(["de", "ação", "0000", "rua"]).numbers == "zero"
    assert infer_normalize(["de", "Lisboa", "1984", "Rua"]).lowercase is False
    assert infer_normalize(["de", "1984"]).numbers == "keep"


def test_import_registers_a_servable_model(wv: WordVectors, registry: Registry, tmp_path: Path) -> None:
    path = tmp_path / "v.txt"
    export_word2vec(wv, path)
    mv = import_model(path, name="nilc", registry=registry)
    assert (mv.kind, mv.metadata["imported"]["words"]) == ("word2vec", len(WORDS))
    emb = load_served_vectors(registry.open("nilc"))
    assert emb.normalizer.config.lowercase is False  # "Lisboa" is capitalised in the vocabulary
    (found,) = emb.neighbors(["ação"], k=2)
    assert len(found.neighbors) == 2


def test_export_import_round_trip_through_registry(
    w2v_model: ModelVersion, registry: Registry, tmp_path: Path
) -> None:
    out = tmp_path / "tiny.bin"
    info = export_model(registry, w2v_model.ref, out, binary=True)
    assert info["subwords_dropped"] is False
    back = import_model(out, name="back", registry=registry, binary=True)
    original = load_served_vectors(registry.open(w2v_model.ref))
    imported = load_served_vectors(registry.open(back.ref))
    assert imported.word_vectors.words == original.word_vectors.words
    assert imported.normalizer.config.lowercase is True
    assert imported.neighbors(["rei"], k=3) == original.neighbors(["rei"], k=3)


def test_export_removes_what_a_killed_export_left_beside_its_target(tmp_path: Path) -> None:
    """A `palavra export` killed with SIGTERM left `.v.txt.f4f99c58.tmp` (32 MB) for good."""
    import fcntl

    wv = WordVectors(WORDS, np.eye(len(WORDS), dtype=np.float32))
    target = tmp_path / "v.txt"
    dead = tmp_path / ".v.txt.f4f99c58.tmp"  # its writer died: nobody holds its lock
    dead.write_bytes(b"x" * 1000)
    running = tmp_path / ".v.txt.0badc0de.tmp"  # an export writing now
    other = tmp_path / ".w.txt.12345678.tmp"  # another target's
    other.write_bytes(b"y")
    with running.open("wb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        export_word2vec(wv, target)
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            ".v.txt.0badc0de.tmp",
            ".w.txt.12345678.tmp",
            "v.txt",
        ]
