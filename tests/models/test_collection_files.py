"""A collection's files as the store reads them: collection.json checked field by field, its paths confined to the
collection's folder, documents.jsonl read as damaged rather than failing, and what a reader maps re-checked."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.collection import CollectionStore, Document
from models.collection_documents import Snapshot
from models.errors import IntegrityError

INFO = {"encoder": "frases@1", "words": "w2v@1", "text_field": "text", "id_field": "id", "dim": 4}
TEXTS = ["o rei e a rainha", "a casa e o lar", "o homem e a mulher"]


def build(store: CollectionStore, name: str) -> None:
    """A three-document collection written by the store itself (no encoder: vectors and words made up)."""
    docs = [Document(f"d{i}", t, {"n": i}) for i, t in enumerate(TEXTS)]
    vectors = np.eye(len(docs), 4, dtype=np.float32)
    with store.create(name, INFO) as writer:
        writer.add(docs, vectors, [t.split() for t in TEXTS])


def edit(store: CollectionStore, name: str, change: Callable[[dict[str, Any]], object]) -> None:
    path = store.path(name) / "collection.json"
    info = json.loads(path.read_text(encoding="utf-8"))
    change(info)
    path.write_text(json.dumps(info), encoding="utf-8")


# a hand edit of collection.json, and the field it names
BAD_FIELDS: dict[str, tuple[Callable[[dict[str, Any]], object], str]] = {
    "generation a string": (lambda d: d.update(generation="abc"), "generation"),
    "generation null": (lambda d: d.update(generation=None), "generation"),
    "generation 1.5": (lambda d: d.update(generation=1.5), "generation"),
    "generation true": (lambda d: d.update(generation=True), "generation"),
    "generation 10**30": (lambda d: d.update(generation=10**30), "generation"),
    "documents a string": (lambda d: d.update(documents="x"), "documents"),
    "documents negative": (lambda d: d.update(documents=-5), "documents"),
    "dim a string": (lambda d: d.update(dim="x"), "dim"),
    "dim a list": (lambda d: d.update(dim=[1]), "dim"),
    "encoder missing": (lambda d: d.pop("encoder"), "encoder"),
    "encoder a number": (lambda d: d.update(encoder=5), "encoder"),
    "name missing": (lambda d: d.pop("name"), "name"),
    "text_field null": (lambda d: d.update(text_field=None), "text_field"),
    "data a number": (lambda d: d.update(data=5), "data"),
    "sizes a list": (lambda d: d.update(sizes=[1, 2]), "sizes"),
    "sizes as strings": (lambda d: d.update(sizes=dict.fromkeys(d["sizes"], "x")), "sizes"),
    "files a list": (lambda d: d.update(files=["a"]), "files"),
    "ann a string": (lambda d: d.update(ann="x"), "ann"),
    "ann without its file": (lambda d: d.update(ann={"ids": "x.ids.json"}), "ann.file"),
    "ann ef_search a string": (
        lambda d: d.update(ann={"file": "a.faiss", "ids": "a.ids.json", "ef_search": "x"}),
        "ann.ef_search",
    ),
    # paths that leave the collection's folder
    "data in another collection": (lambda d: d.update(data="../outra/" + d["data"]), "data"),
    "data absolute": (lambda d: d.update(data="/etc"), "data"),
    "a size of a file outside": (lambda d: d["sizes"].update({"../../registry.db": 1}), "sizes"),
    "a checksum of an absolute path": (lambda d: d["files"].update({"/etc/passwd": "0" * 64}), "files"),
    "an index file outside": (
        lambda d: d.update(ann={"file": "../x.faiss", "ids": "x.ids.json"}),
        "ann.file",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FIELDS))
def test_collection_info_of_the_wrong_kind_is_damage_naming_the_field(tmp_path: Path, case: str) -> None:
    """Each edit gave a TypeError, KeyError or ValueError traceback (a 500), or read files outside the collection's
    folder; now collection.json is checked once, as read, and each is an IntegrityError naming it and the field."""
    store = CollectionStore(tmp_path)
    build(store, "docs")
    build(store, "outra")
    change, field = BAD_FIELDS[case]
    edit(store, "docs", change)
    for read in (store.info, store.generation, store.read):
        with pytest.raises(IntegrityError) as info:
            read("docs")
        assert (info.value.extra["file"], info.value.extra["field"]) == ("collection.json", field)
        assert info.value.detail.startswith(f"collection 'docs' is damaged: collection.json field {field!r} ")
    problems = store.problems("docs")
    assert len(problems) == 1
    assert problems[0].startswith(f"collection.json field {field!r} ")
    assert len(store.read("outra")) == 3


def test_collection_info_as_written_passes_its_check(tmp_path: Path) -> None:
    store = CollectionStore(tmp_path)
    build(store, "docs")
    info = store.info("docs")
    assert (info["generation"], info["documents"], info["dim"]) == (1, 3, 4)
    assert store.problems("docs") == []


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (b'{"id"', b'x"id"', "cannot be read at document 1"),  # not JSON
        (b'"d0"', b"1234", "holds an id, text or metadata of the wrong kind for document 1"),
        (b'"text"', b'"txet"', "cannot be read at document 1"),  # not a document's fields
        (b'{"n": 0}', b'{"n": 0]', "cannot be read at document 1"),  # after the id and the text's key
    ],
)
def test_collection_documents_changed_in_place_are_damage_naming_the_file(
    tmp_path: Path, old: bytes, new: bytes, problem: str
) -> None:
    """Bytes of documents.jsonl changed at the same size (so opening it does not notice) gave a JSONDecodeError or
    TypeError traceback from every search returning the document and from every add; now an IntegrityError naming
    the collection and the file."""
    store = CollectionStore(tmp_path)
    build(store, "docs")
    path = store.path("docs") / store.info("docs")["data"] / "documents.jsonl"
    data = path.read_bytes()
    path.write_bytes(data.replace(old, new, 1))
    snapshot = store.read("docs")
    rel = f"{store.info('docs')['data']}/documents.jsonl"
    for read in (lambda: snapshot.document(0), lambda: snapshot.ids(), lambda: list(snapshot.documents())):
        with pytest.raises(IntegrityError) as info:
            read()
        assert (info.value.extra["collection"], info.value.extra["file"]) == ("docs", rel)
        assert info.value.detail.startswith(f"collection 'docs' is damaged: {rel} {problem}")
    assert snapshot.document(1).id == "d1"


@pytest.mark.parametrize("offset", [-5, 2**40])
def test_collection_offsets_changed_in_place_are_damage_naming_the_file(tmp_path: Path, offset: int) -> None:
    """An offset of offsets.npy changed at the same size (so opening does not notice) gave an OSError (a negative
    offset) or a MemoryError (a huge one), a 500 from a search returning the document; now an IntegrityError
    naming offsets.npy."""
    store = CollectionStore(tmp_path)
    build(store, "docs")
    path = store.path("docs") / store.info("docs")["data"] / "offsets.npy"
    offsets = np.load(path)
    offsets[1] = offset
    np.save(path, offsets)
    snapshot = store.read("docs")
    rel = f"{store.info('docs')['data']}/offsets.npy"
    for row in (0, 1):  # the document before the changed offset, and the one it starts
        with pytest.raises(IntegrityError) as info:
            snapshot.document(row)
        assert (info.value.extra["collection"], info.value.extra["file"]) == ("docs", rel)
    assert snapshot.document(2).id == "d2"


@pytest.mark.parametrize(
    ("file", "change", "problem"),
    [
        ("term_offsets.npy", lambda a: a.__setitem__(1, 14), "holds a document that ends before it starts"),
        ("term_offsets.npy", lambda a: a.__setitem__(-1, 5), "does not cut the"),
        ("terms.npy", lambda a: a.__setitem__(0, 10**6), "holds a term id outside the vocabulary"),
    ],
)
def test_collection_terms_changed_in_place_are_damage_before_an_add_builds_on_them(
    tmp_path: Path, file: str, change: Callable[[np.ndarray], object], problem: str
) -> None:
    """Term rows changed at the same size (offsets going down or ending elsewhere, a term id past the vocabulary)
    made the next add or delete fail with a ValueError (a 500) or build a wrong BM25 index from them; now the
    writer's read refuses them, naming term_offsets.npy."""
    store = CollectionStore(tmp_path)
    build(store, "docs")
    path = store.path("docs") / store.info("docs")["data"] / file
    array = np.load(path)
    change(array)
    np.save(path, array)
    store.read("docs")  # a searcher does not read the terms
    with pytest.raises(IntegrityError) as info:
        store.read("docs", with_terms=True)
    rel = f"{store.info('docs')['data']}/term_offsets.npy"
    assert (info.value.extra["collection"], info.value.extra["file"]) == ("docs", rel)
    assert problem in info.value.detail


def test_a_collection_created_without_its_optional_fields_is_read(tmp_path: Path) -> None:
    """The store writes name, generation, documents and dates itself; a collection created with only an encoder and
    a width (as the benchmarks create theirs) was refused on reading ("field 'words' is missing")."""
    store = CollectionStore(tmp_path)
    with store.create("bench", {"encoder": "synthetic", "dim": 4}) as writer:
        writer.add([Document("a", "o rei", {})], np.eye(1, 4, dtype=np.float32), [["o", "rei"]])
    assert store.read("bench").document(0).id == "a"


def test_collection_ids_read_from_each_line_whatever_its_key_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ids() of an intact documents.jsonl decodes only the id of a line written as Document.line writes it (an add
    or a delete of 1,000,000 documents read them all whole: 9 s); a line with its keys in another order (an older
    writer's) is read whole, and ids with quotes, backslashes and accents come back as they were."""
    store = CollectionStore(tmp_path)
    odd = ['aç"ã\\o', 'd"1\\\u00e9\n', "ü"]
    docs = [Document(i, t, {"n": n}) for n, (i, t) in enumerate(zip(odd, TEXTS, strict=True))]
    with store.create("docs", INFO) as writer:
        writer.add(docs, np.eye(3, 4, dtype=np.float32), [t.split() for t in TEXTS])
    parsed: list[int] = []
    whole = Snapshot._parse

    def counting(self: Snapshot, line: bytes, row: int) -> Document:
        parsed.append(row)
        return whole(self, line, row)

    monkeypatch.setattr(Snapshot, "_parse", counting)
    assert store.read("docs").ids() == odd
    assert parsed == []  # every line by its id alone
    rel = f"{store.info('docs')['data']}/documents.jsonl"
    path = store.path("docs") / rel
    first, rest = path.read_bytes().split(b"\n", 1)
    reordered = json.dumps(
        {"text": TEXTS[0], "id": odd[0], "metadata": {"n": 0}}, ensure_ascii=False
    ).encode()
    assert len(reordered) == len(first)  # same size: the offsets still hold
    assert reordered != first
    path.write_bytes(reordered + b"\n" + rest)
    edit(store, "docs", lambda d: d["files"].update({rel: hashlib.sha256(path.read_bytes()).hexdigest()}))
    assert store.read("docs").ids() == odd
    assert parsed == [0]  # the reordered line alone read whole
