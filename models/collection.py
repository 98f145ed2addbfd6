"""A collection: documents (id, text, metadata) with one vector each from a registered text encoder.

This module owns a collection's files; every reader and writer goes through :class:`CollectionStore`.

    <home>/collections/<name>/
        collection.json     {"format", "name", "encoder", "text_field", "id_field", "dim", "documents",
                             "generation", "created_at", "updated_at"}
        documents.jsonl     one {"id", "text", "metadata"} per line, in row order
        vectors.npy         unit vectors (documents x dim, float32), row i for line i
        ann.json            (large collections) the HNSW index in use: {"file", "ids", "rows", "ef_search", ...}
        ann-<tag>.faiss     that index (models/ann.py), its vectors memory-mapped
        ann-<tag>.ids.json  the document id of each index row

A collection is built in a staging folder and renamed into place, so an interrupted build leaves nothing under its
name. Every later change (add, delete) writes new files beside the old ones and renames them over, under a file
lock, and ``collection.json`` goes last with its ``generation`` raised: a reader that sees a new generation reloads,
so added documents are searchable without a restart and deleted ones (their rows are removed) never come back.

The ANN index names documents by id, not row: it outlives adds and deletes (a searcher maps its hits to current
rows, drops the ids that are gone and scans the rows it does not cover exactly) and is rebuilt when it falls behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from models.ann import HnswIndex
from models.errors import CollectionNotFound, Conflict, InvalidInput
from models.registry import NAME_RE, NAME_RULE

FORMAT = "palavra-collection/1"
INFO_FILE = "collection.json"
ANN_INFO_FILE = "ann.json"
DOCS_FILE = "documents.jsonl"
VECTORS_FILE = "vectors.npy"


@dataclass(frozen=True)
class Document:
    id: str
    text: str
    metadata: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "metadata": self.metadata}


@dataclass
class StoredIndex:
    """A collection's HNSW index and the document id of each of its rows."""

    index: HnswIndex
    ids: list[str]
    info: dict[str, Any]


@dataclass
class Snapshot:
    """One generation of a collection as read from disk."""

    info: dict[str, Any]
    documents: list[Document]
    vectors: npt.NDArray[np.float32]
    ann: StoredIndex | None = None

    @property
    def generation(self) -> int:
        return int(self.info["generation"])


def check_name(name: str) -> str:
    """``name`` when it is a valid collection name (the rule model names follow), else InvalidInput."""
    if not NAME_RE.fullmatch(name):
        raise InvalidInput(f"invalid collection name {name!r}: {NAME_RULE}", collection=name)
    return name


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _write_docs(path: Path, docs: Sequence[Document]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for d in docs:
            fh.write(json.dumps(d.to_json(), ensure_ascii=False) + "\n")


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

    def read(self, name: str, *, with_index: bool = False) -> Snapshot:
        """The current documents and vectors (vectors memory-mapped read-only), and the ANN index if asked."""
        with self._lock(name, shared=True):
            info = self.info(name)
            folder = self.path(name)
            with (folder / DOCS_FILE).open(encoding="utf-8") as fh:
                docs = [Document(**json.loads(line)) for line in fh if line.strip()]
            vectors = np.load(folder / VECTORS_FILE, mmap_mode="r", allow_pickle=False)
            ann = self._read_index(folder) if with_index else None
        return Snapshot(info=info, documents=docs, vectors=vectors, ann=ann)

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
        staging = self.root / ".staging" / uuid.uuid4().hex
        staging.mkdir(parents=True)
        writer = CollectionWriter(staging, int(info["dim"]))
        try:
            yield writer
            count = writer.finish()
            if not count:
                raise InvalidInput(f"collection {name!r} would be empty: the input has no documents")
            now = _now()
            meta = {"format": FORMAT, "name": name, **info, "documents": count, "generation": 1}
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
        finally:
            writer.close()
            shutil.rmtree(staging, ignore_errors=True)

    def replace(
        self, name: str, docs: Sequence[Document], vectors: npt.NDArray[np.float32], *, expect: int
    ) -> dict[str, Any]:
        """Swap in a new document list and vectors (caller read generation ``expect``); returns the new info."""
        folder = self.path(name)
        with self._lock(name):
            info = self.info(name)
            if int(info["generation"]) != expect:
                raise Conflict(f"collection {name!r} changed while this request ran; send it again")
            tag = uuid.uuid4().hex
            _write_docs(folder / f".{tag}.{DOCS_FILE}", docs)
            np.save(
                folder / f".{tag}.{VECTORS_FILE}",
                np.ascontiguousarray(vectors, np.float32),
                allow_pickle=False,
            )
            info = {**info, "documents": len(docs), "generation": expect + 1, "updated_at": _now()}
            (folder / f".{tag}.{INFO_FILE}").write_text(
                json.dumps(info, ensure_ascii=False, indent=1), "utf-8"
            )
            os.replace(folder / f".{tag}.{DOCS_FILE}", folder / DOCS_FILE)
            os.replace(folder / f".{tag}.{VECTORS_FILE}", folder / VECTORS_FILE)
            os.replace(folder / f".{tag}.{INFO_FILE}", folder / INFO_FILE)
        return info


class CollectionWriter:
    """A new collection written as documents arrive (any size: only the ids are kept in memory).

    Documents go straight to ``documents.jsonl`` and vectors to a raw float32 file, turned into ``vectors.npy`` by
    :meth:`finish`; ids are checked unique as they arrive.
    """

    def __init__(self, path: Path, dim: int) -> None:
        self.path = path
        self.dim = dim
        self.count = 0
        self.ids: set[str] = set()
        self._docs = (path / DOCS_FILE).open("w", encoding="utf-8")
        self._raw = (path / "vectors.raw").open("wb")

    def add(self, docs: Sequence[Document], vectors: npt.NDArray[np.float32]) -> None:
        if vectors.shape != (len(docs), self.dim):
            raise InvalidInput(f"{len(docs)} documents but vectors of shape {vectors.shape}")
        for d in docs:
            if d.id in self.ids:
                raise InvalidInput(f"duplicate document id {d.id!r}; every id must be unique", id=d.id)
            self.ids.add(d.id)
        for d in docs:
            self._docs.write(json.dumps(d.to_json(), ensure_ascii=False) + "\n")
        self._raw.write(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
        self.count += len(docs)

    def close(self) -> None:
        self._docs.close()
        self._raw.close()

    def finish(self) -> int:
        """Close the files and write ``vectors.npy``; returns the number of documents."""
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
        return self.count
