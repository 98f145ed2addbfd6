from __future__ import annotations

import numpy as np
import pytest

from models.ann import (
    ANN_FILE,
    AnnConfig,
    HnswIndex,
    build_tuned,
    exact_top_k,
    index_hook,
    load_index,
    recall_at_k,
)
from models.errors import IntegrityError
from models.registry import Registry
from models.vectors import WordVectors, load
from tests.models.helpers import clustered, write_old_vectors


@pytest.fixture(scope="module")
def unit() -> np.ndarray:
    return clustered(3000, 24)


def test_ann_search_agrees_with_exact_search(unit: np.ndarray) -> None:
    index = HnswIndex.build(unit, m=16, ef_construction=80)
    index.ef_search = 128
    query_ids = list(range(0, 3000, 30))
    truth = exact_top_k(unit, unit[query_ids], 11)
    found, scores = index.search(unit[query_ids], 11)
    assert recall_at_k(truth, found, query_ids, k=10) >= 0.95
    assert np.all(np.diff(scores, axis=1) <= 1e-6)  # best first


def test_ann_recall_counts_misses() -> None:
    truth = np.array([[0, 1, 2], [1, 3, 4]])
    found = np.array([[0, 1, 9], [1, 9, 9]])
    # query 0: exact {1, 2}, found {1}; query 1: exact {3, 4}, found {}
    assert recall_at_k(truth, found, [0, 1], k=2) == pytest.approx(0.25)


def test_ann_hook_stores_index_and_recall_in_artifact(registry: Registry, unit: np.ndarray) -> None:
    registry.add_commit_hook(index_hook(min_vocab=1000, config=AnnConfig(m=16, recall_queries=200)))
    words = [f"w{i}" for i in range(len(unit))]
    with registry.create("grande", "word2vec") as w:
        WordVectors(words, unit).save(w)
    with registry.create("pequeno", "word2vec") as w:
        WordVectors(words[:500], unit[:500]).save(w)
    big = registry.get("grande")
    assert ANN_FILE in big.metadata["files"]
    assert big.metadata["ann"]["recall_at_10"] >= 0.95
    assert "ann" not in registry.get("pequeno").metadata

    assert big.metadata["components"] == ["vectors", "index", "neighbor_table"]
    art = registry.open("grande")
    stored = load(art)
    index = load_index(art, stored, min_vocab=1000, cache_dir=registry.home / "cache")
    assert index is not None
    assert index.info["source"] == "artifact"
    wv = stored.vectors
    approx = wv.top_k(wv.unit_matrix(["w7"]), 5, exclude=[[7]], index=index)[0]
    exact = wv.top_k(wv.unit_matrix(["w7"]), 5, exclude=[[7]])[0]
    assert len({n.word for n in exact} & {n.word for n in approx}) >= 4
    # vocabulary words are answered from the exact neighbour table built beside the index
    assert index.table is not None
    assert [n.word for n in wv.named(index.table.lookup([7], 5))[0]] == [n.word for n in exact]


def test_ann_built_at_load_is_cached_by_sha(registry: Registry, unit: np.ndarray) -> None:
    words = [f"w{i}" for i in range(len(unit))]
    with registry.create("sem-indice", "word2vec") as w:
        WordVectors(words, unit).save(w)
    cache = registry.home / "cache"
    config = AnnConfig(m=16, recall_queries=100)
    art = registry.open("sem-indice")
    first = load_index(art, load(art), min_vocab=1000, cache_dir=cache, config=config)
    assert first is not None
    assert first.info["source"] == "cache"
    cached = list((cache / "ann").glob("*.faiss"))
    assert len(cached) == 1
    mtime = cached[0].stat().st_mtime_ns
    art = registry.open("sem-indice")
    stored = load(art)
    second = load_index(art, stored, min_vocab=1000, cache_dir=cache, config=config)
    assert cached[0].stat().st_mtime_ns == mtime  # reused, not rebuilt
    wv = stored.vectors
    assert wv.neighbors(["w3"], k=3, index=second) == wv.neighbors(["w3"], k=3, index=first)


def test_ann_small_vocabulary_stays_exact(registry: Registry, unit: np.ndarray) -> None:
    with registry.create("pequeno", "word2vec") as w:
        WordVectors([f"w{i}" for i in range(100)], unit[:100]).save(w)
    art = registry.open("pequeno")
    assert load_index(art, load(art), min_vocab=1000, cache_dir=registry.home) is None


def test_ann_index_of_other_rows_is_refused(registry: Registry, unit: np.ndarray, tmp_path) -> None:
    with registry.create("m", "word2vec") as w:
        WordVectors([f"w{i}" for i in range(1500)], unit[:1500]).save(w)
    art = registry.open("m")
    sha = art.version.metadata["files"]["vectors_norm.npy"]
    config = AnnConfig(m=16, recall_queries=50)
    target = tmp_path / "ann" / f"{sha}-{config.key}.faiss"
    target.parent.mkdir()
    HnswIndex.build(unit[:200], m=16).write(target)
    target.with_suffix(".json").write_text('{"ef_search": 64}')
    with pytest.raises(IntegrityError, match="200 rows"):
        load_index(art, load(art), min_vocab=1000, cache_dir=tmp_path, config=config)


def test_ann_index_of_an_artifact_from_before_components_is_used(
    registry: Registry, unit: np.ndarray
) -> None:
    config = AnnConfig(m=16, recall_queries=100, table_width=0)
    words = [f"w{i}" for i in range(len(unit))]
    with registry.create("antigo", "word2vec") as w:  # the files and metadata the commit hook wrote then
        write_old_vectors(w, WordVectors(words, unit))
        built, w.metadata["ann"] = build_tuned(unit, config)
        built.write(w.file(ANN_FILE))
    art = registry.open("antigo")
    assert "components" not in art.version.metadata
    index = load_index(art, load(art), min_vocab=1000, cache_dir=registry.home / "cache", config=config)
    assert index is not None
    assert index.info["source"] == "artifact"
    assert not (registry.home / "cache").exists()  # nothing built at load time
