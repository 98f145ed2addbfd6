"""A collection: documents (id, text, metadata) with one vector each from a registered text encoder.

This module owns a collection's files; every reader and writer goes through :class:`CollectionStore`.

    <home>/collections/<name>/
        collection.json     {"format", "name", "encoder", "text_field", "id_field", "dim", "documents",
                             "generation", "data", "ann", "files", "sizes", "created_at", "updated_at"}
        gen-<tag>/          the current generation's data, named by ``data`` in collection.json:
            documents.jsonl     one {"id", "text", "metadata"} per line, in row order
            offsets.npy         the byte offset of each line of documents.jsonl, then its size (int64, documents + 1)
            vectors.npy         unit vectors (documents x dim, float32), row i for line i
            terms.json, terms.npy, term_offsets.npy
                                each document's words as the encoder's word model reads them (models/lexical.py)
            bm25/               the BM25 index of those words
        ann-<tag>.faiss     (large collections) the HNSW index in use (models/ann.py), its vectors memory-mapped;
                            ``ann`` in collection.json describes it: {"file", "ids", "rows", "ef_search", ...}
        ann-<tag>.ids.json  the document id of each index row
        .staging/           generations being written, each with a lock its writer holds
    <home>/collections/.<name>.lock         held shared by readers opening files, exclusive by a commit
    <home>/collections/.writers/<name>.lock the lock writers take turns on (:meth:`CollectionStore.writing`)

``files`` and ``sizes`` in collection.json record the sha256 and the size of every file of the generation and of
its index, written with them (the checksums a registered model version records, models/artifact.py). Opening a
collection compares each file's size and each array's shape with what was recorded (cheap: no file is read
whole), so a truncated or missing file is refused with :class:`IntegrityError` naming the collection and the file;
a snapshot keeps the inode and size of every file it maps (:meth:`Snapshot.changed`) and the stamp of the
collection.json it was read from (:meth:`CollectionStore.stamp`), so a reader that keeps one can tell that a file
was truncated or replaced since, or the collection put back from a backup, before it reads its maps again;
``palavra doctor`` compares the checksums (:meth:`CollectionStore.problems`). collection.json itself is checked as it
is read: every field of its kind, and every path it records (``data``, the index's files, the keys of ``files`` and
``sizes``) inside the collection's folder, or :class:`IntegrityError` naming the field
(:func:`models.collection_files.check_info`).

A collection is built in a staging folder, its HNSW index included, and renamed into place, so an interrupted
build leaves nothing under its name. Every later change (add, delete) writes a whole new generation folder (and a
new index when it rebuilds one), renames them in under the collection's lock and then replaces
``collection.json`` (one atomic rename) with ``data`` and ``ann`` pointing at them and ``generation`` raised: a
reader sees the old generation with its index or the new one with its own, never a mix, even if the writer dies
half-way (SIGKILL included). A reader that sees a new generation reloads, so added documents are searchable
without a restart and deleted ones (their rows are removed) never come back. What a dead writer leaves (its
staging folder, a generation or index nothing points at) is removed by the next write.

Writers of one collection take turns (:meth:`CollectionStore.writing`): a second add or delete waits for the first
(up to ``write_wait_s``, then :class:`Conflict`) and reads what it left, so concurrent writers all succeed.
Readers never wait for a writer, only for the moment a commit swaps the files.

Readers memory-map every array and read a document's line only when a search returns it, so serving workers share
one copy of a collection of any size and hold none of its documents as objects. A collection written before
generation folders existed (``palavra-collection/1``: documents.jsonl and vectors.npy beside collection.json, no
offsets, terms or BM25 index) is still read: its offsets are found by one pass over documents.jsonl, its BM25 index
is built in memory by the searcher, and its next add or delete writes a generation folder (still without terms).
One written before checksums were recorded (no ``files``), or before the index was described in collection.json
(an ``ann.json`` beside it), is read as it is and gets both with its next add or delete.

The ANN index names documents by id, not row: it outlives adds and deletes (a searcher maps its hits to current
rows, drops the ids that are gone and scans the rows it does not cover exactly) and is rebuilt when it falls behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from models.ann import HnswIndex
from models.artifact import file_problems
from models.collection_documents import (  # models.collection's to hand out: readers import them from here
    MAX_ID_CHARS as MAX_ID_CHARS,
)
from models.collection_documents import (
    MAX_METADATA_DEPTH as MAX_METADATA_DEPTH,
)
from models.collection_documents import (
    Document as Document,
)
from models.collection_documents import (
    Snapshot as Snapshot,
)
from models.collection_documents import (
    check_document as check_document,
)
from models.collection_documents import (
    id_problem as id_problem,
)
from models.collection_files import (
    ANN_INFO_FILE,
    DOCS_FILE,
    FORMAT,
    GEN_PREFIX,
    INFO_FILE,
    OFFSETS_FILE,
    VECTORS_FILE,
    Opening,
    Records,
    check_info,
    damaged,
    index_files,
    index_of,
    info_fields,
    measure,
    recorded,
    stage_index,
    stamp_of,
)
from models.collection_files import (
    Stamp as Stamp,  # which file collection.json is (CollectionStore.stamp)
)
from models.collection_files import (
    StoredIndex as StoredIndex,  # the index a writer commits: models.collection's to hand out
)
from models.collection_writer import CollectionWriter as CollectionWriter  # models.collection's to hand out
from models.collection_writer import write_lexical
from models.errors import CollectionNotFound, Conflict, IntegrityError, InvalidInput
from models.lexical import Terms
from models.registry import NAME_RE, NAME_RULE
from models.staging import staged, sweep_staging

# how long a writer waits for another writer of the same collection, and how often it looks
WRITE_WAIT_S = 60.0
WRITE_POLL_S = 0.05
# each collection's writer lock, NAME.lock (beside ".NAME.lock", names holding dots could clash)
WRITERS_DIR = ".writers"

log = logging.getLogger(__name__)


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


def summary(info: dict[str, Any]) -> dict[str, Any]:
    """A collection's description as shown to users: collection.json without its file records and its index."""
    return {k: v for k, v in info.items() if k not in ("files", "sizes", "ann")}


class CollectionStore:
    """Every collection under ``home/collections``.

    ``write_wait_s``: how long a writer waits for another writer of the same collection (:meth:`writing`).
    """

    def __init__(self, home: Path, *, write_wait_s: float = WRITE_WAIT_S) -> None:
        self.root = Path(home) / "collections"
        self.root.mkdir(parents=True, exist_ok=True)
        self.write_wait_s = write_wait_s

    def path(self, name: str) -> Path:
        return self.root / check_name(name)

    def names(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if (p / INFO_FILE).is_file())

    def info(self, name: str) -> dict[str, Any]:
        """collection.json as written (:func:`summary` is what users see of it).

        Raises:
            CollectionNotFound: no collection called ``name``.
            IntegrityError: collection.json is not readable JSON, or one of its fields is missing or not of its kind,
                or a path it records leaves the collection's folder (naming the field: :func:`check_info`).
        """
        return self._load_info(name)[0]

    def _load_info(self, name: str) -> tuple[dict[str, Any], Stamp]:
        """collection.json, checked (:func:`check_info`), and the stamp of the file it was read from."""
        path = self.path(name) / INFO_FILE
        try:
            with path.open("rb") as fh:
                stamp = stamp_of(os.fstat(fh.fileno()))
                raw = fh.read()
        except FileNotFoundError:
            raise self._not_found(name) from None
        try:
            data = json.loads(raw.decode("utf-8"))
        except ValueError as exc:  # not UTF-8, not JSON
            raise damaged(name, INFO_FILE, f"is not readable JSON ({exc})") from None
        except RecursionError:
            raise damaged(name, INFO_FILE, "is not readable JSON (it nests too deep)") from None
        return check_info(name, data), stamp

    def _not_found(self, name: str) -> CollectionNotFound:
        known = ", ".join(self.names()) or "none yet"
        return CollectionNotFound(
            f"no collection called {name!r} (collections: {known}); create one with `palavra collection create`",
            collection=name,
        )

    def stamp(self, name: str) -> Stamp | None:
        """Which file collection.json is now (one stat), None when there is none: a stamp other than the one a
        :class:`Snapshot` was read with means the collection was changed, or put back from a backup."""
        try:
            return stamp_of(os.stat(self.path(name) / INFO_FILE))
        except FileNotFoundError:
            return None

    def generation(self, name: str) -> int:
        return int(self.info(name)["generation"])

    def read(self, name: str, *, with_index: bool = False, with_terms: bool = False) -> Snapshot:
        """The current generation: arrays memory-mapped read-only, documents read when asked for, the BM25 index,
        and the ANN index and each document's terms (what an add or a delete needs) if asked.

        Raises:
            CollectionNotFound: no collection called ``name``.
            IntegrityError: a file of it is missing or unreadable, or its size or shape is not what was written
                (naming the collection and the file).
        """
        self.info(name)  # an unknown name: not found, before its lock file is made
        with self._lock(name, shared=True):
            info, stamp = self._load_info(name)
            opened = Opening(name, self.path(name), info).open(with_index=with_index, with_terms=with_terms)
        return Snapshot(
            info,
            opened.fd,
            opened.offsets,
            opened.vectors,
            terms=opened.terms,
            lexical=opened.lexical,
            ann=opened.ann,
            name=name,
            docs_file=opened.docs_file,
            files=opened.files,
            stamp=stamp,
        )

    def problems(self, name: str) -> list[str]:
        """What ``palavra doctor`` reports about the collection (empty when healthy): collection.json unreadable or
        a field of it wrong (:func:`check_info`), a recorded file missing or not matching its sha256 (or no
        checksums recorded), and what opening it, its index included, refuses (sizes, shapes, an index that is
        not the one recorded)."""
        found: list[str] = []
        for _attempt in range(3):
            try:
                info = self.info(name)
            except IntegrityError as exc:
                return [str(exc.extra["problem"])]
            files: dict[str, str] | None = info.get("files")
            if not files:
                found = [
                    "its files have no recorded checksums (written before palavra recorded them); its next add or "
                    "delete records them"
                ]
            else:
                found = file_problems(self.path(name), files)
            try:
                self.read(name, with_index=True)
            except IntegrityError as exc:
                if not any(p.startswith(f"{exc.extra['file']} ") for p in found):
                    found.append(str(exc.extra["problem"]))
            if self.info(name) == info:
                return found
            # a write replaced the generation while its files were checked: check the new one
        return found

    def index_info(self, name: str) -> dict[str, Any] | None:
        """The collection's ``ann`` (its HNSW index: file, ids, rows, ef_search ...; ``None`` without an index)."""
        return index_of(self.path(name), self.info(name))

    def index_ids(self, name: str) -> list[str] | None:
        """The document id of each row of the collection's index (``None`` without an index)."""
        opening = Opening(name, self.path(name), self.info(name))
        ann = index_of(opening.folder, opening.info)
        return opening.index_ids(ann) if ann is not None else None

    # -- writing ----------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _lock(self, name: str, *, shared: bool = False) -> Iterator[None]:
        """Held shared by readers while they open files, exclusive by a commit while it swaps them."""
        lock_path = self.root / f".{check_name(name)}.lock"
        with lock_path.open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def writing(self, name: str, *, readable: bool = True) -> Iterator[None]:
        """Be the collection's one writer for the block: read, change and commit with no other writer between.

        Another writer's block is waited for, up to ``write_wait_s`` seconds; readers never wait for it.

        ``readable``: collection.json must be readable (False: only that it exists, to remove a damaged one).

        Raises:
            CollectionNotFound: no collection called ``name`` (no lock file is made).
            IntegrityError: collection.json is not readable (with ``readable``).
            Conflict: another writer held the collection for all of ``write_wait_s``.
        """
        if readable:
            self.info(name)
        elif not (self.path(name) / INFO_FILE).is_file():
            raise self._not_found(name)
        locks = self.root / WRITERS_DIR
        locks.mkdir(exist_ok=True)
        with (locks / f"{name}.lock").open("a") as fh:
            deadline = time.monotonic() + self.write_wait_s
            waiting = False
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise Conflict(
                            f"collection {name!r} is being changed by another writer, still after "
                            f"{self.write_wait_s:g} s; send it again once that one has finished",
                            collection=name,
                        ) from None
                    if not waiting:
                        log.info("collection %r: waiting for another writer (up to %.0f s)", name, left)
                        waiting = True
                    time.sleep(min(WRITE_POLL_S, left))
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def create(
        self,
        name: str,
        info: dict[str, Any],
        *,
        before_commit: Callable[[], None] | None = None,
        index: Callable[[npt.NDArray[np.float32], list[str]], StoredIndex | None] | None = None,
    ) -> Iterator[CollectionWriter]:
        """Stage a new collection; it appears under ``name`` only when the block exits cleanly.

        ``index`` gets the vectors and the ids (row-aligned) once every document is written and returns the HNSW
        index to commit with them (``None``: none). ``before_commit`` (a job's cancellation check) runs under the
        collection's lock right before the rename: if it raises, nothing is renamed into place.
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
            vectors = np.load(staging / data / VECTORS_FILE, mmap_mode="r", allow_pickle=False)
            built = index(vectors, writer.order) if index is not None else None
            ann = stage_index(staging, built) if built is not None else None
            now = _now()
            meta = {
                "format": FORMAT,
                "name": name,
                **info,
                "documents": count,
                "generation": 1,
                "data": data,
                "ann": ann,
                **info_fields(measure(staging, [data, *index_files(ann)])),
                "created_at": now,
                "updated_at": now,
            }
            (staging / INFO_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
            with self._lock(name):
                if final.exists():
                    raise Conflict(f"collection {name!r} was created by someone else meanwhile")
                if before_commit is not None:
                    before_commit()
                os.rename(staging, final)

    def remove(self, name: str) -> dict[str, Any] | None:
        """Remove the collection (as the one writer, after any other finishes), a damaged one too; returns its
        collection.json (None when that was not readable).

        Its folder is renamed into a staging folder under the lock readers open files under, then deleted: a reader
        sees the collection or nothing, and one that mapped its files keeps its pages until it lets them go.

        Raises:
            CollectionNotFound: no collection called ``name``.
            Conflict: another writer held it for all of ``write_wait_s``.
        """
        sweep_staging(self.root)  # what an earlier remove or create left when it died half-way
        with self.writing(name, readable=False):
            try:
                info: dict[str, Any] | None = self.info(name)
            except IntegrityError:
                info = None
            # if this dies half-way, the next create or remove sweeps what is left in staging
            with staged(self.root) as trash, self._lock(name):
                os.rename(self.path(name), trash / name)
        return info

    def replace(
        self,
        name: str,
        lines: Iterable[bytes],
        vectors: npt.NDArray[np.float32],
        terms: Terms | None,
        *,
        expect: int,
        index: StoredIndex | Literal["keep", "drop"] = "keep",
    ) -> dict[str, Any]:
        """Make new documents (their lines of documents.jsonl: kept ones copied from :meth:`Snapshot.lines`, new
        ones from :meth:`Document.line`), vectors and terms (row-aligned) the collection's next generation; the
        caller read generation ``expect``. Returns the new info. ``terms`` None: a collection written before terms
        were saved, which stays without them. ``index``: the HNSW index of the new generation (built from
        ``vectors``), or keep the current one, or drop it.

        The generation folder and the index are written outside the lock; under it, the generation is checked,
        both renamed in and ``collection.json`` replaced (the one step readers see), then the old ones removed.
        """
        folder = self.path(name)
        with staged(folder) as staging:
            gen = staging / "data"
            gen.mkdir()
            offsets = _write_docs(gen / DOCS_FILE, lines)
            rows = len(offsets) - 1
            term_rows = len(terms) if terms is not None else rows
            if rows != len(vectors) or rows != term_rows:
                raise InvalidInput(f"{rows} documents, {len(vectors)} vectors and {term_rows} term rows")
            np.save(gen / OFFSETS_FILE, offsets, allow_pickle=False)
            np.save(gen / VECTORS_FILE, np.ascontiguousarray(vectors, np.float32), allow_pickle=False)
            if terms is not None:
                write_lexical(gen, terms)
            data = f"{GEN_PREFIX}{uuid.uuid4().hex[:12]}"
            records = {f"{data}/{rel}": r for rel, r in measure(gen, [p.name for p in gen.iterdir()]).items()}
            ann = stage_index(staging, index) if isinstance(index, StoredIndex) else None
            records.update(measure(staging, index_files(ann)))
            with self._lock(name):
                info = self.info(name)
                if int(info["generation"]) != expect:
                    raise Conflict(f"collection {name!r} changed while this request ran; send it again")
                if index == "keep":
                    ann = index_of(folder, info)
                    records.update(self._index_records(name, folder, info, ann))
                for rel in index_files(ann) if isinstance(index, StoredIndex) else ():
                    os.rename(staging / rel, folder / rel)
                os.rename(gen, folder / data)
                info = {
                    **info,
                    "format": FORMAT,
                    "documents": rows,
                    "generation": expect + 1,
                    "updated_at": _now(),
                    "data": data,
                    "ann": ann,
                    **info_fields(records),
                }
                self._commit(folder, info)
        return info

    def write_index(
        self, name: str, index: HnswIndex, ids: Sequence[str], info: dict[str, Any]
    ) -> dict[str, Any]:
        """Put ``index`` (row i = document ``ids[i]``) in place of the collection's index; returns its ``ann``."""
        folder = self.path(name)
        with staged(folder) as staging:
            ann = stage_index(staging, StoredIndex(index, list(ids), info))
            records = measure(staging, index_files(ann))
            with self._lock(name):  # readers load the index under the shared lock: never a half-swapped pair
                if not (folder / INFO_FILE).is_file():
                    raise CollectionNotFound(f"collection {name!r} was deleted meanwhile", collection=name)
                current = self.info(name)
                for rel in index_files(ann):
                    os.rename(staging / rel, folder / rel)
                new = {**current, "ann": ann}
                # one written before checksums stays without them until its next add or delete
                if current.get("files"):
                    old = index_files(index_of(folder, current))
                    kept = {rel: r for rel, r in recorded(current).items() if rel not in old}
                    new.update(info_fields({**kept, **records}))
                self._commit(folder, new)
        return ann

    @staticmethod
    def _index_records(name: str, folder: Path, info: dict[str, Any], ann: dict[str, Any] | None) -> Records:
        """The records of the index files ``ann`` names: as collection.json has them, else (an index written before
        they were recorded) measured now."""
        kept = recorded(info)
        if all(rel in kept for rel in index_files(ann)):
            return {rel: kept[rel] for rel in index_files(ann)}
        try:
            return measure(folder, index_files(ann))
        except FileNotFoundError as exc:
            raise damaged(name, Path(str(exc.filename)).name, "is missing") from None

    def _commit(self, folder: Path, info: dict[str, Any]) -> None:
        """Under the collection's lock: replace collection.json with ``info`` (the one step readers see), then
        remove what it no longer points at."""
        tmp = folder / f".{info.get('data') or 'info'}.{uuid.uuid4().hex[:8]}.{INFO_FILE}"
        tmp.write_text(json.dumps(info, ensure_ascii=False, indent=1), "utf-8")
        os.replace(tmp, folder / INFO_FILE)
        self._sweep(folder, info)

    @staticmethod
    def _sweep(folder: Path, info: dict[str, Any]) -> None:
        """Under the collection's lock: remove the generations and index files ``info`` does not point at (an
        ``ann.json`` of before included), the data files of a format-1 collection once it has a generation folder,
        and what dead writers left in staging. A reader that mapped an old generation or index keeps its pages;
        readers load under the shared lock, so none is half-way."""
        for path in folder.glob(f"{GEN_PREFIX}*"):
            if path.name != info.get("data"):
                shutil.rmtree(path, ignore_errors=True)
        if info.get("data"):
            for file in (DOCS_FILE, OFFSETS_FILE, VECTORS_FILE):
                (folder / file).unlink(missing_ok=True)
        (folder / ANN_INFO_FILE).unlink(missing_ok=True)
        keep = index_files(info.get("ann"))
        for old in folder.glob("ann-*"):
            if old.name not in keep:
                old.unlink(missing_ok=True)  # a searcher that mapped it keeps its pages until it reloads
        for tmp in folder.glob(f".*.{INFO_FILE}"):
            tmp.unlink(missing_ok=True)
        sweep_staging(folder)
