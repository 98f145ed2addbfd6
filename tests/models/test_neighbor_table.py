from __future__ import annotations

import numpy as np
import pytest

import models.neighbor_table as nt
from models.ann import AnnConfig, HnswIndex, exact_top_k, index_hook, load_index
from models.errors import IntegrityError
from models.neighbor_table import TABLE_IDS, TABLE_SCORES, NeighborTable, build_table
from models.registry import Registry
from models.vectors import WordVectors, load
from tests.models.helpers import clustered


@pytest.fixture(scope="module")
def unit() -> np.ndarray:
    return clustered(2500, 16)


def _exact_without_self(unit: np.ndarray, width: int) -> np.ndarray:
    truth = exact_top_k(unit, unit, width + 1)
    return np.array([[i for i in row if i != r][:width] for r, row in enumerate(truth)])


def test_exact_table_is_every_rows_exact_top_k_without_itself(unit: np.ndarray) -> None:
    table, info = build_table(unit, 12)
    assert info["method"] == "exact"
    assert info["width"] == 12
    assert table.ids.shape == (2500, 12)
    assert table.ids.dtype == np.int32
    truth = _exact_without_self(unit, 12)
    # ties can swap places; compare sets and check scores are the cosines, best first
    agree = np.mean([len(set(a) & set(b)) / 12 for a, b in zip(table.ids, truth, strict=True)])
    assert agree > 0.999
    assert not np.any(table.ids == np.arange(2500)[:, None])
    np.testing.assert_allclose(
        table.scores, np.einsum("ij,ikj->ik", unit, unit[table.ids]), rtol=0, atol=1e-5
    )
    assert np.all(np.diff(table.scores, axis=1) <= 1e-6)


def test_table_drops_the_word_itself_even_behind_identical_rows() -> None:
    # rows 0, 1 and 2 are the same vector: each must list the other two, never itself
    base = clustered(50, 8, seed=3)
    base[1] = base[0]
    base[2] = base[0]
    table, _ = build_table(base, 4)
    for r in (0, 1, 2):
        assert r not in table.ids[r].tolist()
        assert set(table.ids[r, :2].tolist()) == {0, 1, 2} - {r}


def test_table_width_is_capped_by_the_vocabulary() -> None:
    table, info = build_table(clustered(6, 4), 50)
    assert table.width == 5
    assert info["width"] == 5
    with pytest.raises(ValueError, match="at least 2 rows"):
        build_table(clustered(1, 4), 5)


def test_large_vocabularies_fill_the_table_from_the_index(unit: np.ndarray, monkeypatch) -> None:
    monkeypatch.setattr(nt, "EXACT_MAX_ROWS", 1000)
    index = HnswIndex.build(unit, m=16, ef_construction=80)
    index.ef_search = 128
    table, info = build_table(unit, 10, index=index)
    assert info["method"] == "hnsw"
    truth = _exact_without_self(unit, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(table.ids, truth, strict=True)])
    assert recall >= 0.95
    assert not np.any(table.ids == np.arange(len(unit))[:, None])


def test_lookup_returns_k_best_and_refuses_wider_k(unit: np.ndarray) -> None:
    table, _ = build_table(unit, 8)
    rows = table.lookup([3, 9], 5)
    assert rows is not None
    assert [len(r) for r in rows] == [5, 5]
    assert [i for i, _ in rows[0]] == table.ids[3, :5].tolist()
    assert table.lookup([3], 9) is None


def test_registered_artifact_carries_the_table_and_serves_from_it(
    registry: Registry, unit: np.ndarray
) -> None:
    registry.add_commit_hook(
        index_hook(min_vocab=1000, config=AnnConfig(m=16, recall_queries=100, table_width=20))
    )
    words = [f"w{i}" for i in range(len(unit))]
    with registry.create("grande", "word2vec") as w:
        WordVectors(words, unit).save(w)
    mv = registry.get("grande")
    assert {TABLE_IDS, TABLE_SCORES} <= set(mv.metadata["files"])  # covered by the sha256 list
    assert mv.metadata["ann"]["table"]["width"] == 20
    art = registry.open("grande")
    stored = load(art)
    index = load_index(art, stored, min_vocab=1000, cache_dir=registry.home / "cache")
    assert index is not None
    assert index.table is not None
    assert index.table.width == 20
    wv = stored.vectors
    exact = wv.top_k(wv.unit_matrix(["w11", "w40"]), 20, exclude=[[11], [40]])
    served = wv.named(index.table.lookup([11, 40], 20))
    assert [[n.word for n in row] for row in served] == [[n.word for n in row] for row in exact]
    # wider than the table: answered by the index instead, still k results without the word itself
    assert index.table.lookup([11], 30) is None
    wide = wv.neighbors(["w11"], k=30, index=index)[0]
    assert len(wide) == 30
    assert "w11" not in {n.word for n in wide}


def test_table_built_at_load_is_cached_and_checked(registry: Registry, unit: np.ndarray) -> None:
    words = [f"w{i}" for i in range(len(unit))]
    with registry.create("sem-tabela", "word2vec") as w:
        WordVectors(words, unit).save(w)
    cache = registry.home / "cache"
    config = AnnConfig(m=16, recall_queries=50, table_width=6)
    art = registry.open("sem-tabela")
    first = load_index(art, load(art), min_vocab=1000, cache_dir=cache, config=config)
    assert first is not None
    assert first.table is not None
    assert first.info["table"]["method"] == "exact"
    ids_files = list((cache / "ann").glob("*.ids.npy"))
    assert len(ids_files) == 1
    mtime = ids_files[0].stat().st_mtime_ns
    second = load_index(art, load(art), min_vocab=1000, cache_dir=cache, config=config)
    assert second is not None
    assert second.table is not None
    assert ids_files[0].stat().st_mtime_ns == mtime
    assert second.table.lookup([5], 6) == first.table.lookup([5], 6)
    # a table of another model's rows is refused, not served
    np.save(ids_files[0], np.zeros((10, 6), dtype=np.int32))
    np.save(str(ids_files[0]).replace(".ids.npy", ".scores.npy"), np.zeros((10, 6), dtype=np.float32))
    with pytest.raises(IntegrityError, match="10 rows"):
        load_index(art, load(art), min_vocab=1000, cache_dir=cache, config=config)


def test_mismatched_table_files_are_refused() -> None:
    with pytest.raises(IntegrityError, match="do not match"):
        NeighborTable(np.zeros((3, 2), dtype=np.int32), np.zeros((3, 4), dtype=np.float32))
