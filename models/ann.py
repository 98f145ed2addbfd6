"""Approximate nearest neighbours over the unit rows of a vector model (faiss HNSW, inner product = cosine).

Why faiss HNSW: on this machine it answers about as fast as hnswlib at the same recall (benchmarks/results/
serving.md), and ``IO_FLAG_MMAP_IFC`` maps its stored vectors from the file, so the worker processes of one server
share those pages the way they share ``vectors_norm.npy``; hnswlib copies its whole index into each process.

Where the index lives:

- At registration: :func:`index_hook` is a registry commit hook (``services/factories.open_registry`` installs it)
  that builds ``ann.faiss`` inside the staged artifact when the vocabulary reaches ``min_vocab`` (the artifact's
  ``index`` component, see models/vectors.py); the file is covered by the artifact's sha256 list and
  ``metadata["ann"]`` records its parameters and recall@10.
- At load, for artifacts registered without one: :func:`load_index` builds it once into
  ``<cache>/ann/<sha256 of vectors_norm.npy>-<params>.faiss`` under a file lock (the other workers wait, then map it).
  Loading never writes to the registry: what the build measured is in :attr:`VectorIndex.info`.

Recall is measured against exact search on vocabulary words as queries (the word itself excluded, as
``/v1/neighbors`` does), and ``ef_search`` is the smallest candidate reaching ``target_recall``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
import uuid
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from models.errors import IntegrityError, InvalidInput
from models.mapped import MappedFiles, map_npy
from models.neighbor_table import DEFAULT_WIDTH, NeighborTable, build_table
from models.registry import Artifact, ArtifactWriter
from models.vectors import (
    ANN_FILE,
    KINDS,
    TABLE_IDS,
    TABLE_SCORES,
    UNIT_FILE,
    FloatMatrix,
    VectorArtifact,
    add_component,
)

log = logging.getLogger(__name__)

IdMatrix = npt.NDArray[np.int64]


@dataclass(frozen=True)
class AnnConfig:
    """HNSW parameters; ``ef_candidates`` are tried in order until recall@10 reaches ``target_recall``."""

    m: int = 32
    # efConstruction 200 instead of 80: on the 202k x 300 corpus model recall@10 0.95 then needs ef 512, not 1024,
    # and a query costs a quarter (benchmarks/results/serving.md); building takes 1.5x longer
    ef_construction: int = 200
    ef_candidates: tuple[int, ...] = (16, 32, 64, 128, 192, 256, 384, 512, 768, 1024, 2048)
    target_recall: float = 0.95
    recall_queries: int = 1000
    seed: int = 0
    # neighbours per word precomputed for /v1/neighbors (models/neighbor_table.py); 0: no table
    table_width: int = DEFAULT_WIDTH

    @property
    def key(self) -> str:
        return f"hnsw{self.m}-efc{self.ef_construction}-r{round(self.target_recall * 1000)}"


class HnswIndex:
    """A faiss ``IndexHNSWFlat`` over unit vectors, searched with a fixed ``ef_search``; thread-safe to search."""

    def __init__(self, index: Any, *, ef_search: int = 128) -> None:
        self.index = index
        self.ef_search = ef_search
        self._search_params: dict[int, Any] = {}

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @classmethod
    def build(cls, unit: npt.NDArray[Any], *, m: int = 32, ef_construction: int = 200) -> HnswIndex:
        """Index the rows of ``unit`` (already unit length), added in chunks so a memmap is never copied whole."""
        import faiss

        if unit.ndim != 2 or unit.shape[0] == 0:
            raise InvalidInput(f"an index needs a non-empty 2-d matrix, got shape {unit.shape}")
        index = faiss.IndexHNSWFlat(int(unit.shape[1]), m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        for start in range(0, unit.shape[0], 100_000):
            index.add(np.ascontiguousarray(unit[start : start + 100_000], dtype=np.float32))
        return cls(index)

    def _params(self, ef: int) -> Any:
        params = self._search_params.get(ef)
        if params is None:  # built once per ef: a per-call object costs as much as a small search
            import faiss

            params = faiss.SearchParametersHNSW(efSearch=ef)  # type: ignore[attr-defined]
            self._search_params[ef] = params
        return params

    def search(self, queries: FloatMatrix, k: int) -> tuple[IdMatrix, FloatMatrix]:
        """Ids (``-1`` where fewer than ``k`` were found) and inner products of the ``k`` best rows per query."""
        params = self._params(max(self.ef_search, k))
        q = np.ascontiguousarray(queries, dtype=np.float32)
        scores, ids = self.index.search(q, k, params=params)
        return ids.astype(np.int64, copy=False), scores

    def write(self, path: Path) -> None:
        import faiss

        faiss.write_index(self.index, str(path))

    @classmethod
    def read(cls, path: Path, *, ef_search: int, mmap: bool = True) -> HnswIndex:
        """Load with the stored vectors memory-mapped read-only (shared between processes), the graph in memory.

        Map only a file nothing will change (a private copy, see models/mapped.py); ``mmap=False`` reads it all.
        """
        import faiss

        flags = faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY if mmap else 0
        return cls(faiss.read_index(str(path), flags), ef_search=ef_search)


def set_threads(n: int) -> None:
    """OpenMP threads faiss uses for one batched search or a build (serving processes use 1 per request)."""
    import faiss

    faiss.omp_set_num_threads(max(1, n))


def exact_top_k(unit: npt.NDArray[Any], queries: FloatMatrix, k: int) -> IdMatrix:
    """The exact top-``k`` row ids by inner product, one matrix product per chunk of queries (~128 MB of scores)."""
    out = np.empty((queries.shape[0], k), dtype=np.int64)
    chunk = max(1, (1 << 25) // unit.shape[0])
    for start in range(0, queries.shape[0], chunk):
        sims = queries[start : start + chunk] @ unit.T
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1)
        out[start : start + chunk] = np.take_along_axis(part, order, axis=1)
    return out


def recall_at_k(
    truth: IdMatrix, found: IdMatrix, query_ids: Sequence[int] | IdMatrix, *, k: int = 10
) -> float:
    """Mean share of the exact top-``k`` (query row excluded) that the approximate top-``k`` also returns."""
    hits = 0
    for qid, t_row, f_row in zip(query_ids, truth, found, strict=True):
        t = [int(i) for i in t_row if i != qid][:k]
        f = {int(i) for i in f_row if i != qid and i >= 0}
        hits += len(f.intersection(t))
    return hits / (k * len(query_ids))


def tune(unit: npt.NDArray[Any], index: HnswIndex, config: AnnConfig, *, k: int = 10) -> dict[str, Any]:
    """Pick the smallest ``ef_search`` whose recall@k reaches the target; returns what was measured."""
    rng = np.random.default_rng(config.seed)
    n = unit.shape[0]
    query_ids = np.sort(rng.choice(n, size=min(config.recall_queries, n), replace=False))
    queries = np.ascontiguousarray(unit[query_ids], dtype=np.float32)
    want = min(k + 1, n)
    truth = exact_top_k(unit, queries, want)
    curve: dict[str, float] = {}
    for ef in config.ef_candidates:
        index.ef_search = ef
        found, _ = index.search(queries, want)
        curve[str(ef)] = round(recall_at_k(truth, found, query_ids, k=k), 4)
        if curve[str(ef)] >= config.target_recall:
            break
    return {"ef_search": index.ef_search, "recall_at_10": curve[str(index.ef_search)], "recall_curve": curve}


def build_tuned(unit: npt.NDArray[Any], config: AnnConfig) -> tuple[HnswIndex, dict[str, Any]]:
    """Build, tune ``ef_search`` and describe the index (the dict goes into the model's metadata)."""
    started = time.perf_counter()
    index = HnswIndex.build(unit, m=config.m, ef_construction=config.ef_construction)
    built = time.perf_counter() - started
    measured = tune(unit, index, config)
    info = {
        "backend": "faiss-hnsw",
        "file": ANN_FILE,
        "rows": int(unit.shape[0]),
        "params": {k: v for k, v in asdict(config).items() if k != "ef_candidates"},
        "build_s": round(built, 2),
        "recall_queries": min(config.recall_queries, int(unit.shape[0])),
        **measured,
    }
    log.info("built an HNSW index over %d rows in %.1fs: %s", unit.shape[0], built, measured)
    return index, info


def index_hook(*, min_vocab: int, config: AnnConfig | None = None) -> Callable[[ArtifactWriter], None]:
    """A registry commit hook that adds ``ann.faiss`` to word-vector artifacts of at least ``min_vocab`` words."""
    cfg = config or AnnConfig()

    def hook(writer: ArtifactWriter) -> None:
        path = writer.path / UNIT_FILE
        if writer.kind not in KINDS or not path.is_file() or writer.path.joinpath(ANN_FILE).exists():
            return
        unit = np.load(path, mmap_mode="r", allow_pickle=False)
        if unit.shape[0] < min_vocab:
            return
        index, info = build_tuned(unit, cfg)
        index.write(writer.file(ANN_FILE))
        add_component(writer, "index")
        if cfg.table_width > 0:
            table, info["table"] = build_table(unit, cfg.table_width, index=index)
            writer.write_array(TABLE_IDS, table.ids)
            writer.write_array(TABLE_SCORES, table.scores)
            add_component(writer, "neighbor_table")
        writer.metadata["ann"] = info

    return hook


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _cached_index(
    unit: npt.NDArray[Any], sha: str, *, cache_dir: Path, config: AnnConfig, mapped: MappedFiles | None = None
) -> tuple[Path, dict[str, Any], NeighborTable | None]:
    """The index (and neighbour table) built for these vectors under ``cache_dir``, built now if missing."""
    target = cache_dir / "ann" / f"{sha}-{config.key}.faiss"
    sidecar = target.with_suffix(".json")
    table_ids = target.with_name(f"{target.stem}-t{config.table_width}.ids.npy")
    table_scores = target.with_name(f"{target.stem}-t{config.table_width}.scores.npy")
    with _file_lock(target.with_suffix(".lock")):
        index = None
        if not (target.is_file() and sidecar.is_file()):
            index, info = build_tuned(unit, config)
            tmp = target.with_name(f".{uuid.uuid4().hex}.tmp")
            index.write(tmp)
            os.replace(tmp, target)
            sidecar.write_text(json.dumps(info), encoding="utf-8")
        info = json.loads(sidecar.read_text(encoding="utf-8"))
        if config.table_width > 0 and not (table_ids.is_file() and table_scores.is_file()):
            if index is None:
                index = HnswIndex.read(target, ef_search=int(info.get("ef_search", 128)))
            table, info["table"] = build_table(unit, config.table_width, index=index)
            tmp_ids = table_ids.with_name(f".{uuid.uuid4().hex}.ids.npy")
            tmp_scores = table_scores.with_name(f".{uuid.uuid4().hex}.scores.npy")
            table.write(tmp_ids, tmp_scores)
            os.replace(tmp_scores, table_scores)
            os.replace(tmp_ids, table_ids)  # ids last: their presence means both are complete
            tmp = sidecar.with_name(f".{uuid.uuid4().hex}.json")
            tmp.write_text(json.dumps(info), encoding="utf-8")
            os.replace(tmp, sidecar)
    table_out = None
    if config.table_width > 0 and info.get("table"):
        table_out = NeighborTable.checked(
            _map_array(mapped, table_ids), _map_array(mapped, table_scores), rows=int(unit.shape[0])
        )
    return target, info, table_out


def _open_copy(mapped: MappedFiles | None, path: Path) -> BinaryIO | None:
    """A private copy of a cache file to map, or None where none can be made."""
    if mapped is None:
        return None
    try:
        return mapped.open(path, None)
    except OSError as exc:
        log.warning("cannot copy %s to %s (%s); reading it into memory", path, mapped.root, exc)
        return None


def _map_array(mapped: MappedFiles | None, path: Path) -> Any:
    """A cache file's array, mapped from a private copy (a later change of the cache file cannot reach it)."""
    fh = _open_copy(mapped, path)
    if fh is None:
        return np.load(path, allow_pickle=False)
    with fh:
        return map_npy(fh)


def _read_index(fh: BinaryIO, *, ef_search: int) -> HnswIndex:
    """The index in an open (private, verified) file; the file stays open, and locked, as long as the index lives."""
    index = HnswIndex.read(Path(f"/proc/self/fd/{fh.fileno()}"), ef_search=ef_search)
    weakref.finalize(index, fh.close)
    return index


@dataclass(frozen=True)
class VectorIndex:
    """How a word-vector model is searched besides exactly: an HNSW index over its unit rows, and the table of
    every word's nearest neighbours when one was built.

    ``info`` holds the index's parameters, ``ef_search`` and recall@10, and ``source``: ``artifact`` (built at
    registration) or ``cache`` (built at load time).
    """

    hnsw: HnswIndex
    table: NeighborTable | None
    info: dict[str, Any]

    def search(self, queries: FloatMatrix, k: int) -> tuple[IdMatrix, FloatMatrix]:
        return self.hnsw.search(queries, k)


def load_index(
    artifact: Artifact,
    stored: VectorArtifact,
    *,
    min_vocab: int,
    cache_dir: Path,
    config: AnnConfig | None = None,
) -> VectorIndex | None:
    """The approximate index (and neighbour table) of a word-vector model of ``min_vocab`` words or more.

    Uses the artifact's own ``index`` (and ``neighbor_table``) components when it has them, else builds them once
    into ``cache_dir``; the registry is only read. None when the vocabulary is too small.
    """
    vectors = stored.vectors
    if len(vectors) < min_vocab:
        return None
    cfg = config or AnnConfig()
    info: dict[str, Any] | None = artifact.version.metadata.get("ann")
    table: NeighborTable | None = None
    if "index" in stored.components and info:
        path = artifact.file(ANN_FILE)
        info = {**info, "source": "artifact"}
        if cfg.table_width > 0 and info.get("table") and "neighbor_table" in stored.components:
            table = NeighborTable.checked(
                artifact.read_array(TABLE_IDS), artifact.read_array(TABLE_SCORES), rows=len(vectors)
            )
    else:
        sha = artifact.version.metadata.get("files", {}).get(UNIT_FILE)
        if not sha:
            return None
        path, info, table = _cached_index(
            vectors.normed, sha, cache_dir=cache_dir, config=cfg, mapped=artifact.mapped
        )
        info = {**info, "source": "cache"}
    ef_search = int(info.get("ef_search", 128))
    fh = artifact.open_mapped(ANN_FILE) if info["source"] == "artifact" else _open_copy(artifact.mapped, path)
    if (
        fh is None
    ):  # no private copy could be made: read the whole index into this process instead of mapping it
        index = HnswIndex.read(path, ef_search=ef_search, mmap=False)
    else:
        index = _read_index(fh, ef_search=ef_search)
    if len(index) != len(vectors):
        raise IntegrityError(
            f"{artifact.version.ref}: {path.name} indexes {len(index)} rows, the model has {len(vectors)}"
        )
    return VectorIndex(index, table, info)
