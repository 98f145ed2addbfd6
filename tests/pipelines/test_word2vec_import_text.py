"""word2vec import: Unicode forms, byte-order marks and whitespace in words, as import and export agree on them."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import numpy as np
import pytest

from models.errors import CorpusError
from models.registry import Registry
from pipelines.serving.served_vectors import load_served_vectors
from pipelines.word2vec.io_formats import export_word2vec, import_word2vec
from pipelines.word2vec.transfer import import_model

CAFE, ACAO = "café", "ação"


def nfd(word: str) -> str:
    return unicodedata.normalize("NFD", word)


def test_import_stores_decomposed_words_in_nfc_and_keeps_the_first_spelling(tmp_path: Path) -> None:
    path = tmp_path / "v.txt"
    rows = [(nfd(CAFE), "1 0"), (CAFE, "0 1"), (nfd(ACAO), "0.5 0.5"), ("rua", "1 1")]
    path.write_text("".join(f"{w} {v}\n" for w, v in rows), encoding="utf-8")
    vectors, report = import_word2vec(path)
    assert vectors.words == [CAFE, ACAO, "rua"]
    assert all(unicodedata.is_normalized("NFC", w) for w in vectors.words)
    np.testing.assert_allclose(vectors.vector(CAFE), [1, 0])  # the first row of the word, not the NFC one
    assert (report.duplicates, report.renormalized) == (1, 2)
    (note,) = report.notes
    assert "NFC" in note
    assert "1 row(s) spelled an earlier word in another Unicode form" in note


def test_imported_decomposed_words_answer_queries(registry: Registry, tmp_path: Path) -> None:
    path = tmp_path / "v.txt"
    path.write_text(f"3 2\n{nfd(CAFE)} 1 0\nchá 0.9 0.1\n{nfd(ACAO)} 0 1\n", encoding="utf-8")
    mv = import_model(path, name="nfd", registry=registry)
    emb = load_served_vectors(registry.open("nfd"))
    (found,) = emb.neighbors([CAFE], k=1)  # typed (and normalised) in NFC
    assert found.word.in_vocabulary
    assert [n.word for n in found.neighbors] == ["chá"]
    assert emb.neighbors([nfd(ACAO)], k=1)[0].word.in_vocabulary  # typed in NFD
    assert any("NFC" in note for note in mv.metadata["imported"]["notes"])


@pytest.mark.parametrize(
    "content",
    [b"\xef\xbb\xbf2 2\nx 1 0\ny 0 1\n", b"\xef\xbb\xbfx 1 0\ny 0 1\n"],
    ids=["header", "headerless"],
)
def test_text_import_skips_a_byte_order_mark(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes(content)
    vectors, report = import_word2vec(path)
    assert (vectors.words, vectors.dim) == (["x", "y"], 2)
    np.testing.assert_allclose(vectors.vectors, [[1, 0], [0, 1]])
    assert report.declared_words == (2 if content.startswith(b"\xef\xbb\xbf2 2\n") else None)


def test_binary_import_skips_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "bom.bin"
    path.write_bytes(b"\xef\xbb\xbf1 2\nx " + np.array([1, 0], dtype="<f4").tobytes() + b"\n")
    vectors, _ = import_word2vec(path, binary=True)
    assert vectors.words == ["x"]
    np.testing.assert_allclose(vectors.vectors, [[1, 0]])


def test_text_import_takes_runs_of_whitespace_as_one_separator_and_exports_again(tmp_path: Path) -> None:
    path = tmp_path / "v.txt"
    path.write_bytes(b"3 2\nx  1 0\ny\t0 1 \r\n  z 1\t\t1\n")
    vectors, _ = import_word2vec(path)
    assert vectors.words == ["x", "y", "z"]
    np.testing.assert_allclose(vectors.vectors, [[1, 0], [0, 1], [1, 1]])
    out = tmp_path / "out.txt"
    assert export_word2vec(vectors, out) == 3
    assert import_word2vec(out)[0].words == ["x", "y", "z"]


@pytest.mark.parametrize(
    ("content", "binary", "kept"),
    [
        (b"3 2\nx 1 0\ns\xc3\xa3o paulo 1 0\ny 0 1\n", False, ["x", "y"]),
        (
            b"s\xc3\xa3o paulo 1 0\nx 1 0\n",
            False,
            ["x"],
        ),  # no header: the numbers ending the row say the width
        (b"2 2\nx\xc2\xa0y 1 0\nz 0 1\n", False, ["z"]),  # a no-break space, as in fastText's .vec files
        (b"2 1\nx\ty \x00\x00\x80?\nz \x00\x00\x80?\n", True, ["z"]),
    ],
    ids=["word-with-space", "headerless-word-with-space", "no-break-space", "binary-tab"],
)
def test_import_skips_words_that_export_could_not_write_and_says_so(
    tmp_path: Path, content: bytes, binary: bool, kept: list[str]
) -> None:
    """A published .vec file holding a few such rows imports (before: one aborted the whole import)."""
    path = tmp_path / "v.txt"
    path.write_bytes(content)
    vectors, report = import_word2vec(path, binary=binary)
    assert vectors.words == kept
    assert report.whitespace == 1
    assert any("1 row(s) whose word holds whitespace" in note for note in report.notes)
    out = tmp_path / "out.txt"
    assert export_word2vec(vectors, out) == len(kept)  # and what was kept exports again


def test_import_refuses_a_row_with_more_numbers_than_the_width(tmp_path: Path) -> None:
    path = tmp_path / "v.txt"
    path.write_bytes(b"1 2\nx 1 0 3\n")  # not the word 'x 1'
    with pytest.raises(CorpusError, match=r"v\.txt:2: expected a word and 2 numbers"):
        import_word2vec(path)
