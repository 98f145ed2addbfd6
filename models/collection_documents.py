"""A collection's documents and one generation of it as read from disk (:class:`Snapshot`), and the checks a
document passes before it is written; models/collection.py's store writes and opens them."""

from __future__ import annotations

import json
import math
import os
import unicodedata
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from models.artifact import sha256_open
from models.collection_files import DOCS_FILE, OFFSETS_FILE, MappedFile, Stamp, StoredIndex, damaged
from models.errors import InvalidInput
from models.lexical import Bm25, Terms

MAX_METADATA_DEPTH = 32
# a document id: 1 to this many characters (the HTTP routes and the JSONL reader agree)
MAX_ID_CHARS = 256
# characters that show nothing: format characters (zero-width space, BOM), marks with no letter, separators
_INVISIBLE = ("Cf", "Mn", "Me", "Zs", "Zl", "Zp")


def id_problem(doc_id: str) -> str | None:
    """Why ``doc_id`` cannot name a new document, or None.

    An id holds something visible (a zero-width space alone named a document no listing could show) and no control
    character but a tab (a NUL, a line break, U+2028: ids are printed one per line).
    """
    control = next(
        (
            c
            for c in doc_id
            if (unicodedata.category(c) == "Cc" and c != "\t") or unicodedata.category(c) in ("Zl", "Zp")
        ),
        None,
    )
    if control is not None:
        return f"the id holds the control character U+{ord(control):04X}; ids are printed on one line"
    if all(c.isspace() or unicodedata.category(c) in _INVISIBLE for c in doc_id):
        return "the id is empty (nothing but whitespace or invisible characters)"
    return None


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


_ID_PREFIX = b'{"id": '  # how :meth:`Document.line` starts every line it writes
_TEXT_NEXT = ', "text": '  # and goes on after the id
_DECODER = json.JSONDecoder()


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
        name: str = "",
        docs_file: str = DOCS_FILE,
        files: tuple[MappedFile, ...] = (),
        stamp: Stamp | None = None,
    ) -> None:
        self.info = info
        self.files = files  # what it maps or holds open, as it was when opened (:meth:`changed`)
        self.stamp = stamp  # the collection.json it was read with (:meth:`CollectionStore.stamp`)
        self.name = name or str(info.get("name"))
        self.docs_file = docs_file  # documents.jsonl, named from the collection's folder (in errors)
        self.offsets = offsets
        self.vectors = vectors
        self.terms = terms
        self.lexical = lexical
        self.ann = ann
        self._fd = docs_fd  # documents.jsonl of this generation, open even after a later write replaces it
        self._docs_size = os.fstat(docs_fd).st_size
        weakref.finalize(self, os.close, docs_fd)

    @property
    def generation(self) -> int:
        return int(self.info["generation"])

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def changed(self) -> tuple[str, str] | None:
        """The first file this snapshot maps or holds open that is no longer the file it opened, whole (another
        inode, another size, gone), and what is different about it; None when each is as opened. One ``stat`` a
        file (9, or 10 with the index): 28-37 us on the reference machine (benchmarks/collection_check.py), cheap
        enough before every search."""
        for file in self.files:
            change = file.change()
            if change is not None:
                return file.rel, change
        return None

    def document(self, row: int) -> Document:
        """The document at ``row`` (one read of its line)."""
        start, end = int(self.offsets[row]), int(self.offsets[row + 1])
        if not 0 <= start <= end <= self._docs_size:  # offsets.npy changed on disk at the same size
            problem = (
                f"gives document {row + 1} the bytes {start:,}-{end:,} of a {self._docs_size:,}-byte file"
            )
            raise damaged(self.name, str(Path(self.docs_file).with_name(OFFSETS_FILE)), problem)
        return self._parse(os.pread(self._fd, end - start, start), row)

    def _parse(self, line: bytes, row: int) -> Document:
        """The document on ``line``, the one of ``row``; a line that does not hold one (bytes changed or cut on
        disk) is damage (:class:`IntegrityError` naming the collection and documents.jsonl)."""
        try:
            fields = json.loads(line)
            doc = Document(**fields)
        except (ValueError, TypeError, RecursionError) as exc:  # not UTF-8 or JSON, not a document's fields
            problem = f"cannot be read at document {row + 1} ({str(exc)[:80]})"
            raise damaged(self.name, self.docs_file, problem) from None
        if not (isinstance(doc.id, str) and isinstance(doc.text, str) and isinstance(doc.metadata, dict)):
            problem = f"holds an id, text or metadata of the wrong kind for document {row + 1}"
            raise damaged(self.name, self.docs_file, problem)
        return doc

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
        for row, line in enumerate(self.lines()):
            yield self._parse(line, row)

    def ids(self) -> list[str]:
        """Every document's id, in row order (one pass).

        When documents.jsonl still holds the bytes collection.json recorded (one sha256 of the file: 0.4 s for
        100 MB), a line that starts as :meth:`Document.line` writes one has only its id decoded (1,000,000
        documents: 2 s instead of 9 s, for every add and delete); any other line, and every line of a file that
        does not match its record or has none, is read whole, so damage is named as it was.
        """
        if not self._intact():
            return [d.id for d in self.documents()]
        decode = _DECODER.raw_decode
        out: list[str] = []
        for row, line in enumerate(self.lines()):
            if line.startswith(_ID_PREFIX):
                try:
                    text = line.decode("utf-8")
                    value, end = decode(text, len(_ID_PREFIX))
                except ValueError:  # UnicodeDecodeError included: read whole below, which names the damage
                    value, end, text = None, 0, ""
                if isinstance(value, str) and text.startswith(_TEXT_NEXT, end):
                    out.append(value)
                    continue
            out.append(self._parse(line, row).id)
        return out

    def _intact(self) -> bool:
        """Whether documents.jsonl, as this snapshot holds it open, has the sha256 collection.json recorded."""
        files = self.info.get("files")
        want = files.get(self.docs_file) if isinstance(files, dict) else None
        if not isinstance(want, str):
            return False  # written before checksums were recorded
        return sha256_open(self._fd, chunk=1 << 22) == want


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
