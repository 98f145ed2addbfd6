"""A collection: documents (id, text, metadata) with one vector each from a registered text encoder.

This module owns a collection's files; every reader and writer goes through :class:`CollectionStore`.

    <home>/collections/<name>/
        collection.json     {"format", "name", "encoder", "text_field", "id_field", "dim", "documents",
                             "generation", "data", "created_at", "updated_at"}
        gen-<tag>/          the current generation's data, named by ``data`` in collection.json:
            documents.jsonl     one {"id", "text", "metadata"} per line, in row order
            offsets.npy         the byte offset of each line of documents.jsonl, then its size (int64, documents + 1)
            vectors.npy         unit vectors (documents x dim, float32), row i for line i
            terms.json, terms.npy, term_offsets.npy
                                each document's words as the encoder's word model reads them (models/lexical.py)
            bm25/               the BM25 index of those words
        ann.json            (large collections) the HNSW index in use: {"file", "ids", "rows", "ef_search", ...}
        ann-<tag>.faiss     that index (models/ann.py), its vectors memory-mapped
        ann-<tag>.ids.json  the document id of each index row
        .staging/           generations being written, each with a lock its writer holds

A collection is built in a staging folder and renamed into place, so an interrupted build leaves nothing under its
name. Every later change (add, delete) writes a whole new generation folder, renames it in under the collection's
lock and then replaces ``collection.json`` (one atomic rename) with ``data`` pointing at it and ``generation``
raised: a reader sees the old generation or the new one, never a mix, even if the writer dies half-way. A reader
that sees a new generation reloads, so added documents are searchable without a restart and deleted ones (their
rows are removed) never come back. What a dead writer leaves (its staging folder, a generation folder nothing points
at) is removed by the next write.

Readers memory-map every array and read a document's line only when a search returns it, so serving workers share
one copy of a collection of any size and hold none of its documents as objects. A collection written before
generation folders existed (``palavra-collection/1``: documents.jsonl and vectors.npy beside collection.json, no
offsets, terms or BM25 index) is still read: its offsets are found by one pass over documents.jsonl, its BM25 index
is built in memory by the searcher, and its next add or delete writes a generation folder (still without terms).

The ANN index names documents by id, not row: it outlives adds and deletes (a searcher maps its hits to current
rows, drops the ids that are gone and scans the rows it does not cover exactly) and is rebuilt when it falls behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import shutil
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from models.ann import HnswIndex
from models.errors import CollectionNotFound, Conflict, InvalidInput
from models.lexical import Bm25, Terms
from models.registry import NAME_RE, NAME_RULE
from models.staging import staged, sweep_staging

FORMAT = "palavra-collection/2"
INFO_FILE = "collection.json"
ANN_INFO_FILE = "ann.json"
DOCS_FILE = "documents.jsonl"
OFFSETS_FILE = "offsets.npy"
VECTORS_FILE = "vectors.npy"
BM25_DIR = "bm25"
MAX_METADATA_DEPTH = 32
# a document id: 1 to this many characters (the HTTP routes and the JSONL reader agree)
MAX_ID_CHARS = 256
GEN_PREFIX = "gen-"


@dataclass(frozen=True)
class Document:
    id: str
    text: str
    metadata: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "metadata": self.metadata}

    def line(self) -> bytes:
        """The document as its line of documents.jsonl."""
        return (json.dumps(self.to_json(), ensure_ascii=False) + "\n").encode("utf-8")


@dataclass
class StoredIndex:
    """A collection's HNSW index and the document id of each of its rows."""

    index: HnswIndex
    ids: list[str]
    info: dict[str, Any]


class Snapshot:
    """One generation of a collection as read from disk: arrays memory-mapped, documents read when asked for.

    ``lexical`` is the saved BM25 index and ``terms`` the words it was built from (``None`` for a collection
    written before they were saved).
    """

    def __init__(
        self,
        info: dict[str, Any],
        docs_fd: int,
        offsets: npt.NDArray[np.int64],
        vectors: npt.NDArray[np.float32],
        *,
        terms: Terms | None = None,
        lexical: Bm25 | None = None,
        ann: StoredIndex | None = None,
    ) -> None:
        self.info = info
        self.offsets = offsets
        self.vectors = vectors
        self.terms = terms
        self.lexical = lexical
        self.ann = ann
        self._fd = docs_fd  # documents.jsonl of this generation, open even after a later write replaces it
        weakref.finalize(self, os.close, docs_fd)

    @property
    def generation(self) -> int:
        return int(self.info["generation"])

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def document(self, row: int) -> Document:
        """The document at ``row`` (one read of its line)."""
        start, end = int(self.offsets[row]), int(self.offsets[row + 1])
        return Document(**json.loads(os.pread(self._fd, end - start, start)))

    def lines(self) -> Iterator[bytes]:
        """Every document's line of documents.jsonl as stored (newline included), in row order: one pass."""
        size = int(self.offsets[-1])
        pos = 0
        chunk = 1 << 24
        rest = b""
        while pos < size:
            data = rest + os.pread(self._fd, min(chunk, size - pos), pos)
            pos += min(chunk, size - pos)
            lines = data.split(b"\n")
            rest = lines.pop()
            for line in lines:
                if line.strip():  # a blank line (possible in a format-1 file) belongs to no document
                    yield line + b"\n"
        if rest.strip():
            yield rest + b"\n"

    def documents(self) -> Iterator[Document]:
        """Every document, in row order (one pass over the file)."""
        for line in self.lines():
            yield Document(**json.loads(line))

    def ids(self) -> list[str]:
        return [d.id for d in self.documents()]


def _line_offsets(path: Path) -> npt.NDArray[np.int64]:
    """The byte offset of each line of ``path``, then its size (a collection written without offsets.npy)."""
    offsets = [0]
    with path.open("rb") as fh:
        for line in fh:
            if line.strip():
                offsets.append(offsets[-1] + len(line))
            else:
                offsets[-1] += len(line)  # a blank line belongs to no document: skip it
    return np.asarray(offsets, np.int64)


def _unicode_problem(text: str) -> str | None:
    """Why ``text`` cannot be written as UTF-8 (a lone surrogate: a JSON ``"\\ud800"`` escape), or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"character {exc.start} is a lone surrogate (U+{ord(text[exc.start]):04X})"
    return None


def check_document(doc: Document) -> None:
    """InvalidInput when ``doc`` could not be stored and sent back as JSON: its id or text is not Unicode text
    (a lone surrogate), or its metadata nest deeper than :data:`MAX_METADATA_DEPTH` levels, hold a number that is
    not finite (NaN, infinity: JSON has none) or a key or string that is not Unicode text."""
    for what, text in (("id", doc.id), ("text", doc.text)):
        # no id= beside the message: a raw lone surrogate could not be sent back (repr() escapes it)
        if problem := _unicode_problem(text):
            raise InvalidInput(f"the {what} of document {doc.id!r} is not Unicode text ({problem})")
    stack: list[tuple[Any, int]] = [(doc.metadata, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_METADATA_DEPTH:
            raise InvalidInput(
                f"the metadata of document {doc.id!r} nest deeper than {MAX_METADATA_DEPTH} levels",
                id=doc.id,
                limit=MAX_METADATA_DEPTH,
            )
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
            stack.extend((k, depth) for k in value)
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
        elif isinstance(value, float) and not math.isfinite(value):
            raise InvalidInput(
                f"the metadata of document {doc.id!r} hold {value}, which is not a finite number (JSON has no "
                "NaN or infinity); use null or leave the field out",
                id=doc.id,
            )
        elif isinstance(value, str) and (problem := _unicode_problem(value)):
            raise InvalidInput(
                f"the metadata of document {doc.id!r} hold a string that is not Unicode text ({problem})",
                id=doc.id,
            )


def check_name(name: str) -> str:
    """``name`` when it is a valid collection name (the rule model names follow), else InvalidInput."""
    if not NAME_RE.fullmatch(name):
        raise InvalidInput(f"invalid collection name {name!r}: {NAME_RULE}", collection=name)
    return name


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _write_docs(path: Path, lines: Iterable[bytes]) -> npt.NDArray[np.int64]:
    """Write documents.jsonl at ``path`` from lines (:meth:`Document.line`, :meth:`Snapshot.lines`); returns the
    offsets of its lines (offsets.npy)."""
    offsets = [0]
    with path.open("wb") as fh:
        for line in lines:
            fh.write(line)
            offsets.append(offsets[-1] + len(line))
    return np.asarray(offsets, np.int64)


def _write_lexical(folder: Path, terms: Terms) -> None:
    """Write ``terms`` and their BM25 index into ``folder``."""
    terms.write(folder)
    Bm25.build(terms).write(folder / BM25_DIR)


def _data(folder: Path, info: dict[str, Any]) -> Path:
    """The folder holding a collection's current documents and arrays (the collection's own, before format 2)."""
    return folder / info["data"] if info.get("data") else folder


class CollectionStore:
    """Every collection under ``home/collections``."""

    def __init__(self, home: Path) -> None:
        self.root = Path(home) / "collections"
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        return self.root / check_name(name)

    def names(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if (p / INFO_FILE).is_file())

    def info(self, name: str) -> dict[str, Any]:
        path = self.path(name) / INFO_FILE
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            known = ", ".join(self.names()) or "none yet"
            raise CollectionNotFound(
                f"no collection called {name!r} (collections: {known}); create one with `palavra collection create`",
                collection=name,
            ) from None
        return data

    def generation(self, name: str) -> int:
        return int(self.info(name)["generation"])

    def read(self, name: str, *, with_index: bool = False, with_terms: bool = False) -> Snapshot:
        """The current generation: arrays memory-mapped read-only, documents read when asked for, the BM25 index,
        and the ANN index and each document's terms (what an add or a delete needs) if asked."""
        self.info(name)  # an unknown name: not found, before its lock file is made
        with self._lock(name, shared=True):
            info = self.info(name)
            folder = self.path(name)
            data = _data(folder, info)
            fd = os.open(data / DOCS_FILE, os.O_RDONLY)
            try:
                if (data / OFFSETS_FILE).is_file():
                    offsets = np.load(data / OFFSETS_FILE, mmap_mode="r", allow_pickle=False)
                else:
                    offsets = _line_offsets(data / DOCS_FILE)
                vectors = np.load(data / VECTORS_FILE, mmap_mode="r", allow_pickle=False)
                saved = info.get("data") and Terms.present(data)
                terms = Terms.read(data) if saved and with_terms else None
                lexical = Bm25.read(data / BM25_DIR) if saved else None
                ann = self._read_index(folder) if with_index else None
            except BaseException:
                os.close(fd)
                raise
        return Snapshot(info, fd, offsets, vectors, terms=terms, lexical=lexical, ann=ann)

    @staticmethod
    def _read_index(folder: Path) -> StoredIndex | None:
        try:
            info: dict[str, Any] = json.loads((folder / ANN_INFO_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        ids = json.loads((folder / info["ids"]).read_text(encoding="utf-8"))
        index = HnswIndex.read(folder / info["file"], ef_search=int(info.get("ef_search", 128)))
        return StoredIndex(index=index, ids=ids, info=info)

    def index_info(self, name: str) -> dict[str, Any] | None:
        """The collection's ``ann.json`` (``None`` without an index)."""
        try:
            data: dict[str, Any] = json.loads((self.path(name) / ANN_INFO_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return data

    def write_index(
        self, name: str, index: HnswIndex, ids: Sequence[str], info: dict[str, Any]
    ) -> dict[str, Any]:
        """Put ``index`` (row i = document ``ids[i]``) in place of the collection's index; returns its ``ann.json``."""
        folder = self.path(name)
        if len(index) != len(ids):
            raise InvalidInput(f"an index of {len(index)} rows for {len(ids)} ids")
        tag = uuid.uuid4().hex[:12]
        meta = {**info, "file": f"ann-{tag}.faiss", "ids": f"ann-{tag}.ids.json", "rows": len(ids)}
        index.write(folder / f".{tag}.tmp.faiss")
        (folder / f".{tag}.tmp.ids.json").write_text(
            json.dumps(list(ids), ensure_ascii=False), encoding="utf-8"
        )
        (folder / f".{tag}.tmp.ann.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        with self._lock(name):  # readers load the index under the shared lock: never a half-swapped pair
            if not (folder / INFO_FILE).is_file():
                raise CollectionNotFound(f"collection {name!r} was deleted meanwhile", collection=name)
            os.replace(folder / f".{tag}.tmp.faiss", folder / meta["file"])
            os.replace(folder / f".{tag}.tmp.ids.json", folder / meta["ids"])
            os.replace(folder / f".{tag}.tmp.ann.json", folder / ANN_INFO_FILE)
            for old in folder.glob("ann-*"):
                if old.name not in (meta["file"], meta["ids"]):
                    old.unlink()  # a searcher that mapped it keeps its pages until it reloads
        return meta

    def drop_index(self, name: str) -> None:
        """Remove the collection's index (searches scan every row until a new one is written)."""
        folder = self.path(name)
        with self._lock(name):
            (folder / ANN_INFO_FILE).unlink(missing_ok=True)
            for old in folder.glob("ann-*"):
                old.unlink()

    # -- writing ----------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _lock(self, name: str, *, shared: bool = False) -> Iterator[None]:
        lock_path = self.root / f".{check_name(name)}.lock"
        with lock_path.open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def create(
        self, name: str, info: dict[str, Any], *, before_commit: Callable[[], None] | None = None
    ) -> Iterator[CollectionWriter]:
        """Stage a new collection; it appears under ``name`` only when the block exits cleanly.

        ``before_commit`` (a job's cancellation check) runs under the collection's lock right before the rename: if
        it raises, nothing is renamed into place.
        """
        final = self.path(name)
        if final.exists():
            raise Conflict(f"collection {name!r} already exists; add documents to it or pick another name")
        sweep_staging(self.root)
        with staged(self.root) as staging:
            data = f"{GEN_PREFIX}{uuid.uuid4().hex[:12]}"
            (staging / data).mkdir()
            writer = CollectionWriter(staging / data, int(info["dim"]))
            try:
                yield writer
                count = writer.finish()
            finally:
                writer.close()
            if not count:
                raise InvalidInput(f"collection {name!r} would be empty: the input has no documents")
            now = _now()
            meta = {
                "format": FORMAT,
                "name": name,
                **info,
                "documents": count,
                "generation": 1,
                "data": data,
            }
            (staging / INFO_FILE).write_text(
                json.dumps({**meta, "created_at": now, "updated_at": now}, ensure_ascii=False, indent=1),
                encoding="utf-8",
            )
            with self._lock(name):
                if final.exists():
                    raise Conflict(f"collection {name!r} was created by someone else meanwhile")
                if before_commit is not None:
                    before_commit()
                os.rename(staging, final)

    def replace(
        self,
        name: str,
        lines: Iterable[bytes],
        vectors: npt.NDArray[np.float32],
        terms: Terms | None,
        *,
        expect: int,
    ) -> dict[str, Any]:
        """Make new documents (their lines of documents.jsonl: kept ones copied from :meth:`Snapshot.lines`, new
        ones from :meth:`Document.line`), vectors and terms (row-aligned) the collection's next generation; the
        caller read generation ``expect``. Returns the new info. ``terms`` None: a collection written before terms
        were saved, which stays without them.

        The generation folder is written outside the lock; under it, the generation is checked, the folder renamed
        in and ``collection.json`` replaced (the one step readers see), then the old generation removed.
        """
        folder = self.path(name)
        with staged(folder) as staging:
            offsets = _write_docs(staging / DOCS_FILE, lines)
            rows = len(offsets) - 1
            term_rows = len(terms) if terms is not None else rows
            if rows != len(vectors) or rows != term_rows:
                raise InvalidInput(f"{rows} documents, {len(vectors)} vectors and {term_rows} term rows")
            np.save(staging / OFFSETS_FILE, offsets, allow_pickle=False)
            np.save(staging / VECTORS_FILE, np.ascontiguousarray(vectors, np.float32), allow_pickle=False)
            if terms is not None:
                _write_lexical(staging, terms)
            data = f"{GEN_PREFIX}{uuid.uuid4().hex[:12]}"
            with self._lock(name):
                info = self.info(name)
                if int(info["generation"]) != expect:
                    raise Conflict(f"collection {name!r} changed while this request ran; send it again")
                os.rename(staging, folder / data)
                info = {
                    **info,
                    "format": FORMAT,
                    "documents": rows,
                    "generation": expect + 1,
                    "updated_at": _now(),
                    "data": data,
                }
                tmp = folder / f".{data}.{INFO_FILE}"
                tmp.write_text(json.dumps(info, ensure_ascii=False, indent=1), "utf-8")
                os.replace(tmp, folder / INFO_FILE)
                self._sweep(folder, info)
        return info

    @staticmethod
    def _sweep(folder: Path, info: dict[str, Any]) -> None:
        """Under the collection's lock: remove the generations ``info`` does not point at, the data files of a
        format-1 collection once it has a generation folder, and what dead writers left in staging. A reader that
        mapped an old generation keeps its pages; readers load under the shared lock, so none is half-way."""
        for path in folder.glob(f"{GEN_PREFIX}*"):
            if path.name != info.get("data"):
                shutil.rmtree(path, ignore_errors=True)
        if info.get("data"):
            for old in (DOCS_FILE, OFFSETS_FILE, VECTORS_FILE):
                (folder / old).unlink(missing_ok=True)
        for tmp in folder.glob(f".{GEN_PREFIX}*.{INFO_FILE}"):
            tmp.unlink(missing_ok=True)
        sweep_staging(folder)


class CollectionWriter:
    """A new collection written as documents arrive (any size: only the ids and the vocabulary are kept in memory).

    Documents go straight to ``documents.jsonl``, vectors to a raw float32 file and term ids to a raw int32 file;
    :meth:`finish` turns them into ``vectors.npy``, the terms and their BM25 index. Ids are checked unique as they
    arrive.
    """

    def __init__(self, path: Path, dim: int) -> None:
        self.path = path
        self.dim = dim
        self.count = 0
        self.ids: set[str] = set()
        self.offsets: list[int] = [0]
        self.term_offsets: list[int] = [0]
        self.vocab: dict[str, int] = {}
        self._docs = (path / DOCS_FILE).open("wb")
        self._raw = (path / "vectors.raw").open("wb")
        self._terms = (path / "terms.raw").open("wb")

    def add(
        self, docs: Sequence[Document], vectors: npt.NDArray[np.float32], tokens: Sequence[Sequence[str]]
    ) -> None:
        """Append ``docs``, their vectors and their words (row-aligned)."""
        if vectors.shape != (len(docs), self.dim) or len(tokens) != len(docs):
            raise InvalidInput(
                f"{len(docs)} documents but vectors of shape {vectors.shape} and {len(tokens)} token lists"
            )
        for d in docs:
            if d.id in self.ids:
                raise InvalidInput(f"duplicate document id {d.id!r}; every id must be unique", id=d.id)
            check_document(d)
            self.ids.add(d.id)
        for d in docs:
            line = d.line()
            self._docs.write(line)
            self.offsets.append(self.offsets[-1] + len(line))
        ids: list[int] = []
        for toks in tokens:
            for tok in toks:
                i = self.vocab.get(tok)
                if i is None:
                    i = self.vocab[tok] = len(self.vocab)
                ids.append(i)
            self.term_offsets.append(self.term_offsets[-1] + len(toks))
        self._terms.write(np.asarray(ids, np.int32).tobytes())
        self._raw.write(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
        self.count += len(docs)

    def close(self) -> None:
        self._docs.close()
        self._raw.close()
        self._terms.close()

    def finish(self) -> int:
        """Close the files and write ``vectors.npy``, the offsets, the terms and their BM25 index; returns the
        number of documents."""
        self.close()
        raw = self.path / "vectors.raw"
        out = np.lib.format.open_memmap(
            self.path / VECTORS_FILE, mode="w+", dtype=np.float32, shape=(self.count, self.dim)
        )
        if self.count:
            out[:] = np.memmap(raw, dtype=np.float32, mode="r", shape=(self.count, self.dim))
        out.flush()
        del out
        raw.unlink()
        np.save(self.path / OFFSETS_FILE, np.asarray(self.offsets, np.int64), allow_pickle=False)
        terms_raw = self.path / "terms.raw"
        terms = Terms(
            list(self.vocab), np.fromfile(terms_raw, dtype=np.int32), np.asarray(self.term_offsets, np.int64)
        )
        _write_lexical(self.path, terms)
        terms_raw.unlink()
        return self.count
