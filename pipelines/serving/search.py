"""Collections of documents searched by meaning (encoder vectors), by words (BM25) or both (reciprocal rank fusion).

Documents come from JSONL files (one object a line: an id field, a text field, any other fields kept as metadata).
Lexical ranking is BM25 (``bm25s``, models/lexical.py) over the tokens the encoder's word model uses, so both rankings
read the same words; the index is built when the collection is written and memory-mapped by every searcher. Hybrid
fuses the two rankings with reciprocal rank fusion (``1 / (60 + rank)`` summed).
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from models.ann import AnnConfig, HnswIndex, build_tuned
from models.collection import (
    MAX_ID_CHARS,
    CollectionStore,
    Document,
    Snapshot,
    StoredIndex,
    check_document,
    id_problem,
    summary,
)
from models.errors import DatasetError, InvalidInput, TooLarge
from models.lexical import Bm25
from models.registry import Registry
from pipelines.serving.filters import (
    NO_MATCH,
    FilterValue,
    NotJsonNumber,
    filter_keys,
    loads_strict,
    value_key,
)
from pipelines.serving.filters import parse_filter as parse_filter  # the CLI's --filter reads it from here
from pipelines.text.normalize import is_blank, unicode_problem
from pipelines.text_encoder.served import TextEncoderModel, load_text_encoder

Mode = Literal["vector", "lexical", "hybrid"]
MODES: tuple[str, ...] = ("vector", "lexical", "hybrid")
MAX_QUERY_CHARS = 2_000
MAX_K = 1_000
RRF_K = 60
HYBRID_DEPTH = 100  # hybrid fuses the top max(k, this) of each ranking
BATCH = 1_000
# collections: a cheaper graph than the word vectors' (M 16, efConstruction 80) keeps a 1M-document build in minutes
ANN_CONFIG = AnnConfig(m=16, ef_construction=80, table_width=0, recall_queries=500)
# the index is rebuilt once this share of the documents is outside it (added) or of its rows is gone (deleted)
STALE_SHARE = 0.1
# ANN candidates fetched at most (after over-fetching past deleted or filtered-out rows) before an exact scan
MAX_FETCH = 4_096
# metadata fields whose values a searcher keeps for filters (the least recently used goes first)
FILTER_FIELDS = 8

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    text: str
    metadata: dict[str, Any]


def _what(value: object) -> str:
    """How a JSON value is named in an error: ``null``, ``true``, ``a number (5)``, ``a list`` ..."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int | float):
        return f"a number ({value})"
    return "a list" if isinstance(value, list) else "an object" if isinstance(value, dict) else "a string"


def _field_value(
    row: dict[str, Any], field: str, *, what: str, where: str, line: int, collection: str | None = None
) -> str:
    """The string in ``row[field]``: present, a string, not empty (an id stripped, as the HTTP routes strip it).

    Raises:
        DatasetError: the field is missing (lists the line's fields), null, not a string, empty, too long (an id)
            or not Unicode text.
    """
    if field not in row:
        advice = (
            f"name the right one with --{what}-field"
            if collection is None  # documents for a collection of their own
            else f"collection {collection!r} reads its documents' {what} from {field!r}, as it was created"
        )
        raise DatasetError(
            f"{where} has no {what} field {field!r} (fields: {', '.join(row) or 'none'}); {advice}", line=line
        )
    value = row[field]
    if what == "id" and isinstance(value, int | float) and not isinstance(value, bool):
        value = str(
            value
        )  # 123 is the id "123" (database exports number their rows), 123.0 "123.0" as before
    if not isinstance(value, str):
        raise DatasetError(f"{where}: its {what} field {field!r} is {_what(value)}, not a string", line=line)
    if what == "id":
        value = value.strip()
    if not value:
        raise DatasetError(f"{where}: its {what} field {field!r} is empty", line=line)
    if what == "id" and (problem := id_problem(value)) is not None:
        raise DatasetError(f"{where}: {problem}", line=line)
    if what == "id" and len(value) > MAX_ID_CHARS:
        raise DatasetError(
            f"{where}: its id has {len(value)} characters; the limit is {MAX_ID_CHARS}", line=line
        )
    if problem := unicode_problem(value):
        raise DatasetError(f"{where}: its {what} field {field!r} is not Unicode text ({problem})", line=line)
    return value


def read_documents(
    path: Path, *, text_field: str, id_field: str, collection: str | None = None
) -> Iterator[Document]:
    """Stream documents from a JSONL file (UTF-8, a byte-order mark allowed); every other field is kept as metadata.

    ``collection``: the existing collection they are added to, whose fields were set when it was created (a missing
    field's error names it, rather than an option to choose another).

    Ids and texts follow the HTTP routes' rules: an id is a string (surrounding whitespace stripped) of 1 to
    :data:`~models.collection.MAX_ID_CHARS` characters, a text a string with something to read. A file may also
    number its documents: a numeric id is its text (``123`` is ``"123"``, ``123.0`` is ``"123.0"``). Numbers must be
    JSON's: ``NaN`` and ``Infinity``, which Python's json reads, are refused.

    Raises:
        DatasetError: naming the line: not UTF-8, not JSON (or holding NaN or Infinity), not a JSON object, or an
            id or text field that is missing, null, not a string or empty.
    """
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, start=1):
            where = f"{path}: line {n}"
            try:
                line = raw.decode("utf-8-sig" if n == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise DatasetError(
                    f"{where} is not UTF-8 text (byte 0x{raw[exc.start]:02X} at byte {exc.start}); "
                    "save the file as UTF-8",
                    line=n,
                ) from None
            if not line.strip():
                continue
            try:
                row = loads_strict(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{where} is not JSON ({exc.msg})", line=n) from exc
            except RecursionError:
                raise DatasetError(f"{where} nests too deep to read", line=n) from None
            except NotJsonNumber as exc:
                raise DatasetError(
                    f"{where} holds {exc}, which is not a finite number (JSON has no NaN or infinity); "
                    "write null or leave the field out",
                    line=n,
                ) from None
            except ValueError as exc:  # an integer of over 4,300 digits
                raise DatasetError(f"{where} cannot be read ({exc})", line=n) from None
            if not isinstance(row, dict):
                raise DatasetError(f"{where} is not a JSON object", line=n)
            text = _field_value(row, text_field, what="text", where=where, line=n, collection=collection)
            doc_id = _field_value(row, id_field, what="id", where=where, line=n, collection=collection)
            if is_blank(text):
                raise DatasetError(
                    f"{where}: its text is empty (nothing but whitespace or invisible characters)", line=n
                )
            row.pop(text_field, None)
            row.pop(id_field, None)
            yield Document(id=doc_id, text=text, metadata=row)


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
    ann_min_docs: int | None = None,
    before_commit: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Encode ``docs`` in batches and create the collection ``name``; nothing exists under it unless this completes.

    ``models`` maps an encoder's ``name@version`` to the loaded encoder (a serving cache); default: load it.
    ``ann_min_docs``: a collection this large gets its HNSW index (None: never). ``before_commit`` runs under the
    store's lock just before the rename into place; raising there leaves nothing under ``name``.
    """
    ref = registry.get(encoder, kind="encoder").ref
    model = (models or (lambda r: load_text_encoder(registry, r)))(ref)
    info = {"encoder": ref, "words": model.encoder.spec.words, "text_field": text_field, "id_field": id_field}

    def index(vectors: npt.NDArray[np.float32], ids: list[str]) -> StoredIndex | None:
        return _build_index(vectors, ids, 1) if _index_plan(None, ids, ann_min_docs) == "build" else None

    with store.create(name, {**info, "dim": model.dim}, before_commit=before_commit, index=index) as writer:
        for batch in _batches(docs):
            tokens = model.tokens([d.text for d in batch])
            writer.add(batch, model.embed_tokens(tokens), tokens)
            if on_batch is not None:
                on_batch(len(batch))
    return summary(store.info(name))


def _index_plan(
    indexed: Sequence[str] | None, ids: Sequence[str], min_docs: int | None, *, readded: bool = False
) -> Literal["keep", "drop", "build"]:
    """What the next generation (``ids``) does with the index of ``indexed`` (None: no index): build one when it has
    ``min_docs`` documents or more and has none, or a stale one; keep it otherwise. ``readded``: an id deleted
    earlier comes back with another text, so the index's vector for it is not its vector (dropped when too small).

    Stale: more than :data:`STALE_SHARE` of the documents are not in it, or of its rows are deleted.
    """
    large = min_docs is not None and len(ids) >= min_docs
    if readded:
        return "build" if large else "drop"
    if not large:
        return "keep"
    if indexed is None:
        return "build"
    have = set(indexed)
    covered = sum(1 for i in ids if i in have)
    stale = len(ids) - covered > STALE_SHARE * len(ids) or len(have) - covered > STALE_SHARE * len(have)
    return "build" if stale else "keep"


def _build_index(
    vectors: npt.NDArray[np.float32], ids: list[str], generation: int, config: AnnConfig = ANN_CONFIG
) -> StoredIndex:
    index, info = build_tuned(vectors, config)
    # the generation it was built from: a searcher of that generation maps index rows to its rows one to one
    return StoredIndex(index, ids, {**info, "generation": generation})


def ensure_index(
    store: CollectionStore, name: str, min_docs: int | None, *, config: AnnConfig = ANN_CONFIG
) -> dict[str, Any] | None:
    """Build the collection's HNSW index when it has ``min_docs`` documents or more and has none, or a stale one
    (:func:`_index_plan`; adds and deletes do it as they commit). Returns the index's ``ann`` when one was written,
    else ``None``."""
    if min_docs is None or int(store.info(name)["documents"]) < min_docs:
        return None
    with store.writing(name):
        snap = store.read(name)
        ids = snap.ids()
        if _index_plan(store.index_ids(name), ids, min_docs) != "build":
            return None
        built = _build_index(snap.vectors, ids, snap.generation, config)
        return store.write_index(name, built.index, built.ids, built.info)


def add_documents(
    store: CollectionStore,
    registry: Registry,
    name: str,
    docs: Sequence[Document],
    *,
    models: Callable[[str], TextEncoderModel] | None = None,
    ann_min_docs: int | None = None,
) -> dict[str, Any]:
    """Add documents (ids must be new); searchable by every process once this returns.

    A concurrent writer of the collection is waited for (:meth:`CollectionStore.writing`), and the index, when it
    is rebuilt, is committed with the documents.
    """
    if not docs:
        raise InvalidInput("no documents to add")
    seen: set[str] = set()
    for d in docs:
        if d.id in seen:
            raise InvalidInput(
                f"duplicate document id {d.id!r}: it appears twice in the documents to add", id=d.id
            )
        check_document(d)
        seen.add(d.id)
    with store.writing(name):
        current = store.read(name, with_terms=True)
        present = current.ids()
        known = set(present)
        for d in docs:
            if d.id in known:
                raise InvalidInput(
                    f"duplicate document id {d.id!r}: the collection already holds it", id=d.id
                )
        model = (models or (lambda r: load_text_encoder(registry, r)))(current.info["encoder"])
        tokens = model.tokens([d.text for d in docs])
        vectors = np.vstack([np.asarray(current.vectors), model.embed_tokens(tokens)])
        # a collection written before terms were saved stays without them (its searchers build BM25 in memory)
        terms = current.terms.extend(tokens) if current.terms is not None else None
        ids = [*present, *(d.id for d in docs)]
        indexed = store.index_ids(name)
        readded = indexed is not None and not seen.isdisjoint(indexed)
        plan = _index_plan(indexed, ids, ann_min_docs, readded=readded)
        index = _build_index(vectors, ids, current.generation + 1) if plan == "build" else plan
        lines = itertools.chain(
            current.lines(), (d.line() for d in docs)
        )  # kept lines copied, not parsed again
        return summary(store.replace(name, lines, vectors, terms, expect=current.generation, index=index))


def delete_documents(
    store: CollectionStore, name: str, ids: Sequence[str], *, ann_min_docs: int | None = None
) -> dict[str, Any]:
    """Remove documents by id (their rows go, so they never come back); unknown ids are an error."""
    with store.writing(name):
        current = store.read(name, with_terms=True)
        present = current.ids()
        known = set(present)
        missing = [i for i in ids if i not in known]
        if missing:
            raise InvalidInput(
                f"not in collection {name!r}: {', '.join(map(repr, missing[:10]))}", ids=missing
            )
        drop = set(ids)
        keep = [row for row, i in enumerate(present) if i not in drop]
        kept = set(keep)
        vectors = np.asarray(current.vectors)[keep]
        left = [present[row] for row in keep]
        plan = _index_plan(store.index_ids(name), left, ann_min_docs)
        index = _build_index(vectors, left, current.generation + 1) if plan == "build" else plan
        info = store.replace(
            name,
            (line for row, line in enumerate(current.lines()) if row in kept),  # copied, not parsed again
            vectors,
            current.terms.take(keep) if current.terms is not None else None,
            expect=current.generation,
            index=index,
        )
    return summary(info)


class Searcher:
    """One generation of a collection, ready to search: its vectors, its BM25 index and its encoder.

    Everything large is memory-mapped (shared by every worker): a search reads the lines of the documents it
    returns, and a filter reads the field it names once, coding each value by its canonical JSON text
    (:data:`FILTER_FIELDS` fields are kept).
    """

    def __init__(
        self, snapshot: Snapshot, model: TextEncoderModel, *, ann_min_docs: int | None = None
    ) -> None:
        self.snapshot = snapshot
        self.model = model
        self.size = len(snapshot)
        self.checked = time.monotonic()  # when its files were last found as opened (SearcherCache)
        self.vectors = snapshot.vectors
        if snapshot.lexical is not None:
            self.bm25 = snapshot.lexical
        else:  # written before the index was saved with the collection: build it from the texts
            self.bm25 = Bm25.of_tokens(model.tokens(d.text for d in snapshot.documents()))
        self._fields: OrderedDict[str, tuple[dict[str, int], npt.NDArray[np.int32]]] = OrderedDict()
        self._fields_lock = threading.Lock()
        self.ann: HnswIndex | None = None
        self.ann_rows: npt.NDArray[np.int64] = np.zeros(0, np.int64)
        self.ann_deleted = 0
        self.tail: npt.NDArray[np.int64] = np.zeros(0, np.int64)
        if snapshot.ann is not None and ann_min_docs is not None and self.size >= ann_min_docs:
            self.ann = snapshot.ann.index
            if (
                snapshot.ann.info.get("generation") == snapshot.generation
                and len(snapshot.ann.ids) == self.size
            ):
                self.ann_rows = np.arange(self.size, dtype=np.int64)  # built from this very generation
            else:
                row_of = {i: row for row, i in enumerate(snapshot.ids())}
                # index row -> current row (-1: deleted since the index was built); rows it lacks are scanned
                self.ann_rows = np.fromiter(
                    (row_of.get(i, -1) for i in snapshot.ann.ids), np.int64, len(snapshot.ann.ids)
                )
            covered = np.zeros(self.size, dtype=bool)
            covered[self.ann_rows[self.ann_rows >= 0]] = True
            self.tail = np.flatnonzero(~covered)
            self.ann_deleted = int((self.ann_rows < 0).sum())

    @property
    def generation(self) -> int:
        return self.snapshot.generation

    def _field(self, field: str) -> tuple[dict[str, int], npt.NDArray[np.int32]]:
        """Each row's value of metadata ``field`` as its canonical JSON text (:func:`filters.value_key`; a missing
        field, a list or an object: :data:`filters.NO_MATCH`), coded: (code of a value's text, codes)."""
        with self._fields_lock:
            found = self._fields.get(field)
            if found is not None:
                self._fields.move_to_end(field)
                return found
        # read outside the lock: searches filtering on fields already read do not wait for this one
        values = [
            value_key(d.metadata[field]) if field in d.metadata else NO_MATCH
            for d in self.snapshot.documents()
        ]
        distinct, codes = np.unique(np.asarray(values, dtype=object), return_inverse=True)
        code_of = {str(v): i for i, v in enumerate(distinct) if v != NO_MATCH}
        found = (code_of, codes.astype(np.int32))
        with self._fields_lock:
            self._fields[field] = found
            if len(self._fields) > FILTER_FIELDS:
                self._fields.popitem(last=False)
        return found

    def _allowed(self, keys: dict[str, list[str]]) -> npt.NDArray[np.bool_] | None:
        """Rows whose metadata match every filter (field -> the value texts it matches, :func:`filters.filter_keys`);
        None (every row) without a filter."""
        if not keys:
            return None
        mask = np.ones(self.size, dtype=bool)
        for field, texts in keys.items():
            code_of, codes = self._field(field)
            wanted = [code_of[t] for t in texts if t in code_of]
            if not wanted:
                return np.zeros(self.size, dtype=bool)
            matched = codes == wanted[0]
            for code in wanted[
                1:
            ]:  # two or three codes: a comparison each beats np.isin's sort (18x on 2M rows)
                matched |= codes == code
            mask &= matched
        return mask

    def _vector_ranked(
        self, query: str, mask: npt.NDArray[np.bool_] | None, depth: int
    ) -> list[tuple[int, float]]:
        """The ``depth`` best allowed rows by cosine, best first: exact scan, or ANN + exact scan of uncovered rows.

        Nothing for a query the encoder has no vector for (no word it knows: a zero vector): every document would
        score 0 and come back in insertion order, looking like matches.
        """
        q = np.asarray(self.model.embed([query])[0], np.float32)
        if not q.any():
            return []
        if self.ann is not None:
            found = self._ann_ranked(self.ann, q, mask, depth)
            if found is not None:
                return found
        scores: npt.NDArray[np.float32] = np.asarray(self.vectors @ q, np.float32)
        rows = None if mask is None else np.flatnonzero(mask)
        return [(i, float(scores[i])) for i in self._rank(scores, rows, depth)]

    def _ann_ranked(
        self,
        ann: HnswIndex,
        q: npt.NDArray[np.float32],
        mask: npt.NDArray[np.bool_] | None,
        depth: int,
    ) -> list[tuple[int, float]] | None:
        """ANN candidates mapped to current rows (deleted and filtered-out ones dropped, over-fetching to make up
        for them) plus every uncovered row, rescored exactly; ``None`` when even :data:`MAX_FETCH` is not enough."""
        total = len(ann)
        want = min(depth, self.size if mask is None else int(mask.sum()))
        fetch = min(total, MAX_FETCH, depth + self.ann_deleted + 16)
        while True:
            ids, _ = ann.search(q[None, :], fetch)
            rows = self.ann_rows[ids[0][ids[0] >= 0]]
            rows = rows[rows >= 0]
            if mask is not None:
                rows = rows[mask[rows]]
            tail = self.tail if mask is None else self.tail[mask[self.tail]]
            if len(rows) + len(tail) >= want or fetch >= total:
                break
            if fetch >= MAX_FETCH:
                return None
            fetch = min(total, fetch * 4, MAX_FETCH)
        order = np.sort(np.concatenate([rows, tail]))  # ascending rows: sequential reads of the memory map
        if not len(order):
            return []
        scores = np.asarray(self.vectors[order] @ q, np.float32)
        top = np.argsort(-scores, kind="stable")[:depth]
        return [(int(order[i]), float(scores[i])) for i in top]

    def _lexical_ranked(
        self, query: str, mask: npt.NDArray[np.bool_] | None, depth: int
    ) -> list[tuple[int, float]]:
        """The ``depth`` best allowed rows by BM25, best first; only documents sharing a word with the query."""
        rows, scores = self.bm25.candidates(self.model.tokens([query])[0], depth, mask)
        return [(int(rows[i]), float(scores[i])) for i in self._rank(scores, None, depth)]

    @staticmethod
    def _rank(scores: npt.NDArray[np.float32], rows: npt.NDArray[np.int64] | None, k: int) -> list[int]:
        """The ``k`` best of ``rows`` (every row when None) by score, best first; equal scores in row order.

        Only the candidates are looked at: a lexical query touches the documents that share a word with it,
        not the whole collection (benchmarks/results/text.md).
        """
        cand = scores if rows is None else scores[rows]
        n = len(cand)
        k = min(k, n)
        if k <= 0:
            return []
        kth = np.partition(cand, n - k)[n - k]  # the k-th best score
        above = np.flatnonzero(cand > kth)
        top = np.concatenate([above, np.flatnonzero(cand == kth)[: k - len(above)]])
        top = top[np.lexsort((top, -cand[top]))]
        picked: list[int] = (top if rows is None else rows[top]).tolist()
        return picked

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        mode: str = "hybrid",
        where: Mapping[str, FilterValue] | None = None,
    ) -> list[Hit]:
        """The ``k`` best documents for ``query`` whose metadata match every filter of ``where`` (field -> JSON value;
        the rule: :mod:`pipelines.serving.filters`).

        Raises:
            InvalidInput: an empty query, an unknown mode, k out of range, a filter value that is a list, an object
                or not a finite number, or an empty collection.
            TooLarge: a query over :data:`MAX_QUERY_CHARS` characters.
        """
        if is_blank(query):  # whitespace, zero-width or control characters only, as the HTTP routes refuse
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
        keys = filter_keys(where or {})
        if not self.size:
            name = self.snapshot.info.get("name")
            raise InvalidInput(f"collection {name!r} is empty; add documents before searching it")
        mask = self._allowed(keys)
        if mode == "vector":
            return self._hits(self._vector_ranked(query, mask, k))
        if mode == "lexical":
            return self._hits(self._lexical_ranked(query, mask, k))
        depth = max(k, HYBRID_DEPTH)  # a k past it fuses deeper rankings (docs/text.md)
        fused: dict[int, float] = {}
        vector = [i for i, _ in self._vector_ranked(query, mask, depth)]
        lexical = [i for i, _ in self._lexical_ranked(query, mask, depth)]
        for ranked in (vector, lexical):
            for rank, i in enumerate(ranked, start=1):
                fused[i] = fused.get(i, 0.0) + 1.0 / (RRF_K + rank)
        best = sorted(fused.items(), key=lambda item: (-item[1], item[0]))[:k]
        return self._hits([(i, float(np.float32(score))) for i, score in best])

    def _hits(self, ranked: list[tuple[int, float]]) -> list[Hit]:
        hits = []
        for i, score in ranked:
            doc = self.snapshot.document(i)
            hits.append(Hit(doc.id, score, doc.text, doc.metadata))
        return hits
