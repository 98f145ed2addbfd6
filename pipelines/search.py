"""Collections of documents searched by meaning (encoder vectors), by words (BM25) or both (reciprocal rank fusion).

Documents come from JSONL files (one object a line: an id field, a text field, any other fields kept as metadata).
Lexical ranking is BM25 (``bm25s``) over the tokens the encoder's word model uses, so both rankings read the same
words; hybrid fuses the two rankings with reciprocal rank fusion (``1 / (60 + rank)`` summed).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from models.collection import CollectionStore, Document, Snapshot
from models.errors import DatasetError, InvalidInput, TooLarge
from models.registry import Registry
from pipelines.text_encoder.served import TextEncoderModel, load_text_encoder

Mode = Literal["vector", "lexical", "hybrid"]
MODES: tuple[str, ...] = ("vector", "lexical", "hybrid")
MAX_QUERY_CHARS = 2_000
MAX_K = 1_000
RRF_K = 60
BATCH = 1_000


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    text: str
    metadata: dict[str, Any]


def read_documents(path: Path, *, text_field: str, id_field: str) -> Iterator[Document]:
    """Stream documents from a JSONL file; every other field is kept as metadata.

    Raises:
        DatasetError: a line that is not a JSON object, or one without the id or text field (names the line).
    """
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}: line {n} is not JSON ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise DatasetError(f"{path}: line {n} is not a JSON object")
            for field, what in ((text_field, "text"), (id_field, "id")):
                if row.get(field) in (None, ""):
                    raise DatasetError(
                        f"{path}: line {n} has no {what} field {field!r} (fields: {', '.join(row) or 'none'}); "
                        f"name the right one with --{what}-field",
                        line=n,
                    )
            text = row.pop(text_field)
            doc_id = row.pop(id_field)
            yield Document(id=str(doc_id), text=str(text), metadata=row)


def _batches(docs: Iterable[Document], size: int = BATCH) -> Iterator[list[Document]]:
    batch: list[Document] = []
    for d in docs:
        batch.append(d)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def create_collection(
    store: CollectionStore,
    registry: Registry,
    name: str,
    docs: Iterable[Document],
    *,
    encoder: str,
    text_field: str = "text",
    id_field: str = "id",
    on_batch: Callable[[int], None] | None = None,
    models: Callable[[str], TextEncoderModel] | None = None,
) -> dict[str, Any]:
    """Encode ``docs`` in batches and create the collection ``name``; nothing exists under it unless this completes.

    ``models`` maps an encoder's ``name@version`` to the loaded encoder (a serving cache); default: load it.
    """
    ref = registry.get(encoder, kind="encoder").ref
    model = (models or (lambda r: load_text_encoder(registry, r)))(ref)
    info = {"encoder": ref, "words": model.encoder.spec.words, "text_field": text_field, "id_field": id_field}
    with store.create(name, {**info, "dim": model.dim}) as writer:
        for batch in _batches(docs):
            writer.add(batch, model.embed([d.text for d in batch]))
            if on_batch is not None:
                on_batch(len(batch))
    return store.info(name)


def add_documents(
    store: CollectionStore,
    registry: Registry,
    name: str,
    docs: Sequence[Document],
    *,
    models: Callable[[str], TextEncoderModel] | None = None,
) -> dict[str, Any]:
    """Add documents (ids must be new); searchable by every process once this returns."""
    current = store.read(name)
    known = {d.id for d in current.documents}
    seen: set[str] = set()
    for d in docs:
        if d.id in known or d.id in seen:
            raise InvalidInput(f"duplicate document id {d.id!r}: the collection already holds it", id=d.id)
        seen.add(d.id)
    if not docs:
        raise InvalidInput("no documents to add")
    model = (models or (lambda r: load_text_encoder(registry, r)))(current.info["encoder"])
    vectors = np.vstack([np.asarray(current.vectors), model.embed([d.text for d in docs])])
    return store.replace(name, [*current.documents, *docs], vectors, expect=current.generation)


def delete_documents(store: CollectionStore, name: str, ids: Sequence[str]) -> dict[str, Any]:
    """Remove documents by id (their rows go, so they never come back); unknown ids are an error."""
    current = store.read(name)
    present = {d.id for d in current.documents}
    missing = [i for i in ids if i not in present]
    if missing:
        raise InvalidInput(f"not in collection {name!r}: {', '.join(map(repr, missing[:10]))}", ids=missing)
    drop = set(ids)
    keep = [i for i, d in enumerate(current.documents) if d.id not in drop]
    return store.replace(
        name,
        [current.documents[i] for i in keep],
        np.asarray(current.vectors)[keep],
        expect=current.generation,
    )


def parse_filter(items: Sequence[str]) -> dict[str, str]:
    """``field=value`` strings -> a dict (all must match)."""
    out: dict[str, str] = {}
    for item in items:
        field, eq, value = item.partition("=")
        if not eq or not field.strip():
            raise InvalidInput(f"filter {item!r} is not field=value")
        out[field.strip()] = value
    return out


class Searcher:
    """One generation of a collection, ready to search: its vectors, a BM25 index and its encoder."""

    def __init__(self, snapshot: Snapshot, model: TextEncoderModel) -> None:
        import bm25s

        # bm25s sets its own logger to DEBUG on import, which would print index-building chatter on every search
        logging.getLogger("bm25s").setLevel(logging.WARNING)
        self.snapshot = snapshot
        self.model = model
        self.docs = snapshot.documents
        self.vectors = snapshot.vectors
        self.bm25 = bm25s.BM25()
        if self.docs:
            tokens = model.tokens([d.text for d in self.docs])
            # bm25s cannot index a document without tokens: an empty placeholder token keeps rows aligned
            self.bm25.index([t or [""] for t in tokens], show_progress=False)

    @property
    def generation(self) -> int:
        return self.snapshot.generation

    def _allowed(self, where: dict[str, str]) -> npt.NDArray[np.bool_]:
        mask = np.ones(len(self.docs), dtype=bool)
        if where:
            for i, d in enumerate(self.docs):
                mask[i] = all(str(d.metadata.get(f)) == v for f, v in where.items())
        return mask

    def _vector_scores(self, query: str) -> npt.NDArray[np.float32]:
        q = self.model.embed([query])[0]
        scores: npt.NDArray[np.float32] = np.asarray(self.vectors @ q, np.float32)
        return scores

    def _lexical_scores(self, query: str) -> npt.NDArray[np.float32]:
        vocab = self.bm25.vocab_dict
        tokens = [t for t in self.model.tokens([query])[0] if t in vocab]
        if not tokens:
            return np.zeros(len(self.docs), np.float32)
        return np.asarray(self.bm25.get_scores(tokens), np.float32)

    @staticmethod
    def _rank(scores: npt.NDArray[np.float32], mask: npt.NDArray[np.bool_], k: int) -> list[int]:
        masked = np.where(mask, scores, -np.inf)
        k = min(k, int(mask.sum()))
        if k <= 0:
            return []
        top = np.argpartition(-masked, k - 1)[:k] if k < len(masked) else np.arange(len(masked))
        return [int(i) for i in top[np.argsort(-masked[top], kind="stable")]]

    def search(
        self, query: str, *, k: int = 10, mode: str = "hybrid", where: dict[str, str] | None = None
    ) -> list[Hit]:
        """The ``k`` best documents for ``query``.

        Raises:
            InvalidInput: an empty query, an unknown mode, k out of range or an empty collection.
            TooLarge: a query over :data:`MAX_QUERY_CHARS` characters.
        """
        if not query.strip():
            raise InvalidInput("the query is empty")
        if len(query) > MAX_QUERY_CHARS:
            raise TooLarge(
                f"the query has {len(query)} characters; the limit is {MAX_QUERY_CHARS}",
                limit=MAX_QUERY_CHARS,
            )
        if mode not in MODES:
            raise InvalidInput(f"unknown search mode {mode!r}; use {', '.join(MODES)}")
        if not 1 <= k <= MAX_K:
            raise InvalidInput(f"k must be from 1 to {MAX_K}, got {k}")
        if not self.docs:
            name = self.snapshot.info.get("name")
            raise InvalidInput(f"collection {name!r} is empty; add documents before searching it")
        mask = self._allowed(where or {})
        if mode == "vector":
            scores = self._vector_scores(query)
            return self._hits(self._rank(scores, mask, k), scores)
        lexical = self._lexical_scores(query)
        if mode == "lexical":
            mask = mask & (lexical > 0)  # BM25 ranks only documents that share a word with the query
            return self._hits(self._rank(lexical, mask, k), lexical)
        depth = max(k, 100)
        fused = np.zeros(len(self.docs), np.float64)
        vector = self._vector_scores(query)
        for scores, allowed in ((vector, mask), (lexical, mask & (lexical > 0))):
            for rank, i in enumerate(self._rank(scores, allowed, depth), start=1):
                fused[i] += 1.0 / (RRF_K + rank)
        fused_f = fused.astype(np.float32)
        return self._hits(self._rank(fused_f, mask & (fused_f > 0), k), fused_f)

    def _hits(self, rows: list[int], scores: npt.NDArray[np.float32]) -> list[Hit]:
        return [
            Hit(self.docs[i].id, float(scores[i]), self.docs[i].text, self.docs[i].metadata) for i in rows
        ]


class SearcherCache:
    """Searchers by collection name, rebuilt when the collection's generation moves (adds and deletes show at once)."""

    def __init__(self, store: CollectionStore, registry: Registry) -> None:
        self.store = store
        self.registry = registry
        self._items: dict[str, Searcher] = {}
        self._models: dict[str, TextEncoderModel] = {}
        self._lock = threading.Lock()

    def model(self, ref: str) -> TextEncoderModel:
        """The encoder ``ref`` (a ``name@version``: immutable, so loaded once)."""
        item = self._models.get(ref)
        if item is None:
            item = self._models[ref] = load_text_encoder(self.registry, ref)
        return item

    def get(self, name: str) -> Searcher:
        generation = self.store.generation(name)
        item = self._items.get(name)
        if item is not None and item.generation == generation:
            return item
        with self._lock:
            item = self._items.get(name)
            if item is None or item.generation != self.store.generation(name):
                snapshot = self.store.read(name)
                item = Searcher(snapshot, self.model(snapshot.info["encoder"]))
                self._items[name] = item
        return item
