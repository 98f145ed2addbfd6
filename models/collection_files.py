"""A collection's files as :mod:`models.collection` writes and reads them: their names, the records of their
sha256 and sizes kept in collection.json, and the checks a reader makes as it opens them.

Only :mod:`models.collection` imports this module; the layout is drawn in its docstring.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from models.ann import HnswIndex
from models.artifact import file_checksums, sha256_file
from models.errors import IntegrityError, InvalidInput
from models.lexical import FILES as TERM_FILES
from models.lexical import OFFSETS_FILE as TERM_OFFSETS_FILE
from models.lexical import Bm25, Terms

FORMAT = "palavra-collection/2"
INFO_FILE = "collection.json"
ANN_INFO_FILE = "ann.json"  # the index's description before collection.json held it
DOCS_FILE = "documents.jsonl"
OFFSETS_FILE = "offsets.npy"
VECTORS_FILE = "vectors.npy"
BM25_DIR = "bm25"
GEN_PREFIX = "gen-"

# {path relative to the collection's folder: {"sha256", "size"}}, kept in collection.json as ``files`` and ``sizes``
Records = dict[str, dict[str, Any]]


@dataclass
class StoredIndex:
    """A collection's HNSW index and the document id of each of its rows."""

    index: HnswIndex
    ids: list[str]
    info: dict[str, Any]


def line_offsets(path: Path) -> npt.NDArray[np.int64]:
    """The byte offset of each line of ``path``, then its size (a collection written without offsets.npy)."""
    offsets = [0]
    with path.open("rb") as fh:
        for line in fh:
            if line.strip():
                offsets.append(offsets[-1] + len(line))
            else:
                offsets[-1] += len(line)  # a blank line belongs to no document: skip it
    return np.asarray(offsets, np.int64)


def data_folder(folder: Path, info: dict[str, Any]) -> Path:
    """The folder holding a collection's current documents and arrays (the collection's own, before format 2)."""
    return folder / info["data"] if info.get("data") else folder


def measure(base: Path, rels: Iterable[str]) -> Records:
    """The sha256 and size of each file ``rels`` names under ``base`` (a folder: every file under it)."""
    out: Records = {}
    for rel in rels:
        target = base / rel
        found = file_checksums(target) if target.is_dir() else {"": sha256_file(target)}
        for sub, sha in found.items():
            key = f"{rel}/{sub}" if sub else rel
            out[key] = {"sha256": sha, "size": (base / key).stat().st_size}
    return out


def info_fields(records: Records) -> dict[str, Any]:
    """``files`` (sha256) and ``sizes`` of collection.json from records."""
    return {
        "files": {rel: r["sha256"] for rel, r in records.items()},
        "sizes": {rel: r["size"] for rel, r in records.items()},
    }


def recorded(info: dict[str, Any]) -> Records:
    """The records collection.json holds (none for a collection written before they were recorded)."""
    files, sizes = info.get("files") or {}, info.get("sizes") or {}
    return {rel: {"sha256": sha, "size": sizes[rel]} for rel, sha in files.items() if rel in sizes}


def index_of(folder: Path, info: dict[str, Any]) -> dict[str, Any] | None:
    """The collection's index as collection.json describes it (before it did: ``ann.json`` beside it), or None.

    Raises:
        IntegrityError: a legacy ann.json that is not JSON, or describes files outside the collection's folder.
    """
    if "ann" in info:
        ann: dict[str, Any] | None = info["ann"]
        return ann
    try:
        legacy: dict[str, Any] = json.loads((folder / ANN_INFO_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError as exc:  # not UTF-8, not JSON
        raise damaged(folder.name, ANN_INFO_FILE, f"is not readable JSON ({str(exc)[:80]})") from None
    found = ann_problem(legacy, "index")
    if found is not None:
        raise damaged(folder.name, ANN_INFO_FILE, f"field {found[0]!r} {found[1]}", field=found[0])
    return legacy


def index_files(ann: dict[str, Any] | None) -> tuple[str, ...]:
    return (ann["file"], ann["ids"]) if ann is not None else ()


def stage_index(staging: Path, built: StoredIndex) -> dict[str, Any]:
    """Write ``built`` into ``staging`` as ``ann-<tag>.faiss`` and ``ann-<tag>.ids.json``; returns its ``ann``."""
    if len(built.index) != len(built.ids):
        raise InvalidInput(f"an index of {len(built.index)} rows for {len(built.ids)} ids")
    tag = uuid.uuid4().hex[:12]
    ann = {**built.info, "file": f"ann-{tag}.faiss", "ids": f"ann-{tag}.ids.json", "rows": len(built.ids)}
    built.index.write(staging / ann["file"])
    (staging / ann["ids"]).write_text(json.dumps(list(built.ids), ensure_ascii=False), encoding="utf-8")
    return ann


def damaged(name: str, rel: str, problem: str, **extra: Any) -> IntegrityError:
    """The error a damaged collection file gives: one line naming the collection, the file and what to do."""
    return IntegrityError(
        f"collection {name!r} is damaged: {rel} {problem}; restore collections/{name} under PALAVRA_HOME from a "
        "backup, or remove that folder and create the collection again",
        collection=name,
        file=rel,
        problem=f"{rel} {problem}",
        **extra,
    )


# the largest count collection.json may hold (numpy's array sizes are int64)
MAX_COUNT = 2**63 - 1
# the fields every collection.json has held since the first one, and what each must be
# text fields every collection.json has (the store writes them), and those its creator may leave out
TEXT_FIELDS = ("name", "encoder", "created_at", "updated_at")
OPTIONAL_TEXT_FIELDS = ("words", "text_field", "id_field")
COUNT_FIELDS = {"generation": 1, "documents": 0, "dim": 1}  # the least value of each


def inside(rel: object) -> bool:
    """True when ``rel`` is a path collection.json may record: relative, within the collection's folder."""
    if not isinstance(rel, str) or not rel.strip("/") or rel.startswith("/") or "\x00" in rel:
        return False
    return ".." not in rel.split("/")


def _count(value: object, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and least <= value <= MAX_COUNT


def _shown(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def info_problem(info: dict[str, Any]) -> tuple[str, str] | None:
    """The first field of collection.json whose value is not of its kind, and what is wrong with it, or None.

    Every path it records (``data``, ``ann``'s files, the keys of ``files`` and ``sizes``) must stay inside the
    collection's folder: relative, with no ``..``.
    """
    for key in TEXT_FIELDS:
        if not isinstance(info.get(key), str) or (key == "encoder" and not info[key]):
            return key, "is missing" if key not in info else f"is {_shown(info[key])}, not a string"
    for key in OPTIONAL_TEXT_FIELDS:
        if key in info and not isinstance(info[key], str):
            return key, f"is {_shown(info[key])}, not a string"
    for key, least in COUNT_FIELDS.items():
        if not _count(info.get(key), least):
            found = "is missing" if key not in info else f"is {_shown(info[key])}"
            return key, f"{found}, not a whole number of {least} or more"
    if info.get("format") is not None and not isinstance(info["format"], str):
        return "format", f"is {_shown(info['format'])}, not a string"
    if info.get("data") is not None and not inside(info["data"]):
        return "data", f"is {_shown(info['data'])}, not the name of a folder inside the collection's"
    if info.get("ann") is not None and (index := ann_problem(info["ann"], "ann")) is not None:
        return index
    for key, valid, kind in (("files", lambda v: isinstance(v, str), "a sha256"), ("sizes", _size, "a size")):
        records = info.get(key)
        if records is None:
            continue
        if not isinstance(records, dict):
            return key, f"is {_shown(records)}, not an object of file -> {kind}"
        for rel, value in records.items():
            if not inside(rel):
                return key, f"names {_shown(rel)}, which is not inside the collection's folder"
            if not valid(value):
                return key, f"gives {rel} {_shown(value)}, not {kind}"
    return None


def ann_problem(ann: object, field: str) -> tuple[str, str] | None:
    """What is wrong with the description of a collection's index (``ann`` in collection.json, or a legacy
    ann.json: ``field`` names it in the answer), or None: its files must be inside the collection's folder."""
    if not isinstance(ann, dict):
        return field, f"is {_shown(ann)}, not an object describing the index"
    for key in ("file", "ids"):
        if not inside(ann.get(key)):
            return (
                f"{field}.{key}",
                f"is {_shown(ann.get(key))}, not the name of a file inside the collection's folder",
            )
    for key, least in (("rows", 0), ("generation", 1), ("ef_search", 1)):
        if key in ann and not _count(ann[key], least):
            return f"{field}.{key}", f"is {_shown(ann[key])}, not a whole number of {least} or more"
    return None


def _size(value: object) -> bool:
    return _count(value, 0)


def check_info(name: str, info: object) -> dict[str, Any]:
    """``info`` (collection.json as parsed) when every field has a value of its kind (:func:`info_problem`).

    Raises:
        IntegrityError: it is not an object, or a field is missing or wrong, naming collection.json and the field.
    """
    if not isinstance(info, dict):
        raise damaged(name, INFO_FILE, "does not describe a collection (it is not a JSON object)")
    found = info_problem(info)
    if found is not None:
        field, problem = found
        raise damaged(name, INFO_FILE, f"field {field!r} {problem}", field=field)
    return info


# which file a path is: (device, inode, size, mtime_ns, ctime_ns); a copy put back (``cp -a``) differs in ctime
Stamp = tuple[int, int, int, int, int]


def stamp_of(st: os.stat_result) -> Stamp:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@dataclass(frozen=True)
class MappedFile:
    """A file a reader maps or holds open, as it was when opened: its device, inode and size."""

    rel: str
    path: Path
    dev: int
    ino: int
    size: int

    def change(self) -> str | None:
        """What is different about the file at ``path`` now (one stat), or None when it is the file opened, whole."""
        try:
            st = os.stat(self.path)
        except OSError:
            return "is missing"
        if (st.st_dev, st.st_ino) != (self.dev, self.ino):
            return "is another file than the one opened"
        if st.st_size != self.size:
            return f"has {st.st_size:,} bytes where {self.size:,} were opened"
        return None


@dataclass
class Opened:
    """A generation's files as opened by :meth:`Opening.open` (``fd``: documents.jsonl, open for reading;
    ``files``: each file mapped or held open, as it was just before it was opened)."""

    fd: int
    offsets: npt.NDArray[np.int64]
    vectors: npt.NDArray[np.float32]
    terms: Terms | None
    lexical: Bm25 | None
    ann: StoredIndex | None
    docs_file: str = DOCS_FILE  # documents.jsonl, named from the collection's folder
    files: tuple[MappedFile, ...] = ()


class Opening:
    """One collection's files as a reader opens them, checked on the way: sizes against collection.json, shapes
    against each other; whatever fails is an :class:`IntegrityError` naming the file (:func:`damaged`)."""

    def __init__(self, name: str, folder: Path, info: dict[str, Any]) -> None:
        self.name = name
        self.folder = folder
        self.info = info
        self.data = data_folder(folder, info)

    def rel(self, file: str) -> str:
        """A file of the generation, named from the collection's folder."""
        return (self.data / file).relative_to(self.folder).as_posix()

    def call(self, rel: str, fn: Callable[[], Any]) -> Any:
        """``fn()``, which reads the file (or folder) ``rel``: what fails to read it is damage."""
        try:
            return fn()
        except FileNotFoundError:
            raise damaged(self.name, rel, "is missing") from None
        # what numpy, json, bm25s and faiss raise on bytes that are not what they wrote
        except (ValueError, KeyError, EOFError, RuntimeError) as exc:
            raise damaged(self.name, rel, f"cannot be read ({exc})") from None

    def array(self, file: str) -> Any:
        return self.call(self.rel(file), lambda: np.load(self.data / file, mmap_mode="r", allow_pickle=False))

    def check_sizes(self) -> None:
        """Every file collection.json records is there with its recorded size (a stat each: nothing is read)."""
        for rel, size in (self.info.get("sizes") or {}).items():
            try:
                found = (self.folder / rel).stat().st_size
            except FileNotFoundError:
                raise damaged(self.name, rel, "is missing") from None
            if found != size:
                raise damaged(self.name, rel, f"has {found:,} bytes where {size:,} were written")

    def mapped(self, *, with_index: bool, with_terms: bool) -> tuple[MappedFile, ...]:
        """The files :meth:`open` maps or holds open, as they are before it opens them (one that is missing is left
        out: opening it fails)."""
        paths = [self.data / f for f in (DOCS_FILE, OFFSETS_FILE, VECTORS_FILE)]
        if with_terms:
            paths += [self.data / f for f in TERM_FILES]
        if self.info.get("data"):
            paths += sorted(p for p in (self.data / BM25_DIR).glob("*") if p.is_file())
        ann = index_of(self.folder, self.info) if with_index else None
        if ann is not None:
            paths.append(self.folder / ann["file"])
        found = []
        for path in paths:
            try:
                st = os.stat(path)
            except OSError:
                continue
            rel = path.relative_to(self.folder).as_posix()
            found.append(MappedFile(rel, path, st.st_dev, st.st_ino, st.st_size))
        return tuple(found)

    def open(self, *, with_index: bool, with_terms: bool) -> Opened:
        """Open the generation's files (the index and the terms if asked), checking them."""
        self.check_sizes()
        files = self.mapped(with_index=with_index, with_terms=with_terms)
        fd = self.call(self.rel(DOCS_FILE), lambda: os.open(self.data / DOCS_FILE, os.O_RDONLY))
        try:
            if (self.data / OFFSETS_FILE).is_file():
                offsets = self.array(OFFSETS_FILE)
            else:
                offsets = line_offsets(self.data / DOCS_FILE)
            vectors = self.array(VECTORS_FILE)
            self.check_shapes(offsets, vectors, os.fstat(fd).st_size)
            saved = self.info.get("data") and Terms.present(self.data)
            terms = None
            if saved and with_terms:
                terms = self.call(" or ".join(map(self.rel, TERM_FILES)), lambda: Terms.read(self.data))
                if len(terms) != len(vectors):
                    problem = f"holds the terms of {len(terms)} documents, not {len(vectors)}"
                    raise damaged(self.name, self.rel(TERM_OFFSETS_FILE), problem)
                if (problem := terms.problem()) is not None:  # a BM25 index built from them would be wrong
                    raise damaged(self.name, self.rel(TERM_OFFSETS_FILE), problem)
            lexical = (
                self.call(self.rel(BM25_DIR), lambda: Bm25.read(self.data / BM25_DIR)) if saved else None
            )
            ann = index_of(self.folder, self.info) if with_index else None
            index = self.index(ann) if ann is not None else None
        except BaseException:
            os.close(fd)
            raise
        return Opened(fd, offsets, vectors, terms, lexical, index, self.rel(DOCS_FILE), files)

    def check_shapes(self, offsets: Any, vectors: Any, docs_size: int) -> None:
        """The arrays agree with collection.json, with each other and with documents.jsonl."""
        rows, dim = int(self.info["documents"]), int(self.info["dim"])
        if vectors.shape != (rows, dim) or vectors.dtype != np.float32:
            raise damaged(
                self.name,
                self.rel(VECTORS_FILE),
                f"holds {vectors.dtype} vectors of shape {vectors.shape}, not the {rows} x {dim} float32 ones "
                "collection.json records",
            )
        if offsets.shape != (rows + 1,) or int(offsets[-1]) != docs_size:
            raise damaged(
                self.name,
                self.rel(OFFSETS_FILE if self.info.get("data") else DOCS_FILE),
                f"does not describe {rows} documents in {docs_size:,} bytes",
            )

    def index_ids(self, ann: dict[str, Any]) -> list[str]:
        ids = self.call(
            ann["ids"], lambda: json.loads((self.folder / ann["ids"]).read_text(encoding="utf-8"))
        )
        if not isinstance(ids, list):
            raise damaged(self.name, ann["ids"], "is not a list of ids")
        return ids

    def index(self, ann: dict[str, Any]) -> StoredIndex:
        ids = self.index_ids(ann)
        path = self.folder / ann["file"]
        ef_search = int(ann.get("ef_search", 128))
        index: HnswIndex = self.call(ann["file"], lambda: HnswIndex.read(path, ef_search=ef_search))
        if len(index) != len(ids):
            raise damaged(self.name, ann["file"], f"indexes {len(index)} rows for {len(ids)} ids")
        return StoredIndex(index=index, ids=ids, info=ann)
