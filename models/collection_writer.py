"""A new collection's files written as its documents arrive: part of models/collection.py (which owns the kind)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from models.collection_documents import Document, check_document
from models.collection_files import BM25_DIR, DOCS_FILE, OFFSETS_FILE, VECTORS_FILE
from models.errors import InvalidInput
from models.lexical import Bm25, Terms


def write_lexical(folder: Path, terms: Terms) -> None:
    """Write ``terms`` and their BM25 index into ``folder``."""
    terms.write(folder)
    Bm25.build(terms).write(folder / BM25_DIR)


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
        self.order: list[str] = []  # the ids in row order
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
            self.order.append(d.id)
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
        write_lexical(self.path, terms)
        terms_raw.unlink()
        return self.count
