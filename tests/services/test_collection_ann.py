"""Collections past the ANN threshold: vector search goes through an HNSW index that outlives adds and deletes."""

from __future__ import annotations

import itertools
import json
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from models.collection import CollectionStore, Document
from models.errors import IntegrityError
from models.registry import Registry
from pipelines.serving.search import add_documents, create_collection, delete_documents
from pipelines.serving.searcher_cache import SearcherCache
from pipelines.text_encoder.build import pooling_model, register_encoder
from services.settings import Settings
from tests.conftest import REPO_ROOT
from tests.services.vector_models import register

WORDS = [
    a + b for a in ("ba", "ce", "di", "fo", "gu") for b in ("la", "me", "ni", "po", "ru", "sa", "te", "vo")
]
MIN_DOCS = 100


def _setup(
    settings: Settings, registry: Registry, n: int = 300, *, create: bool = True
) -> tuple[CollectionStore, list[Document]]:
    register(registry, "w2v", words=WORDS)
    model, _ = pooling_model(registry, "w2v", pooling="mean")
    register_encoder(registry, "frases", model, metadata={})
    combos = list(itertools.combinations(WORDS, 4))
    random.Random(0).shuffle(combos)
    docs = [
        Document(f"d{i}", " ".join(c), {"par": str(i % 2)}) for i, c in enumerate(combos[:n])
    ]  # every text a distinct set of words: no two documents share a vector
    store = CollectionStore(settings.home)
    if create:
        create_collection(store, registry, "grande", docs, encoder="frases", ann_min_docs=MIN_DOCS)
    return store, docs


def _ids(cache: SearcherCache, query: str, k: int = 10, **kw: object) -> list[str]:
    return [h.id for h in cache.get("grande").search(query, k=k, mode="vector", **kw)]  # type: ignore[arg-type]


def test_collection_ann_index_serves_vector_search_close_to_exact(
    settings: Settings, registry: Registry
) -> None:
    store, docs = _setup(settings, registry)
    ann = store.index_info("grande")
    assert ann is not None
    assert (ann["rows"], ann["recall_at_10"] >= 0.9) == (len(docs), True)
    approx = SearcherCache(store, registry, ann_min_docs=MIN_DOCS)
    exact = SearcherCache(store, registry)
    assert approx.get("grande").ann is not None
    assert exact.get("grande").ann is None
    queries = [d.text for d in docs[:30]]
    overlap = [len(set(_ids(approx, q)) & set(_ids(exact, q))) / 10 for q in queries]
    assert sum(overlap) / len(overlap) >= 0.9
    assert [_ids(approx, q, 1)[0] for q in queries] == [d.id for d in docs[:30]]  # a text finds itself
    hits = approx.get("grande").search(docs[0].text, k=3, mode="vector")
    assert (
        hits[0].score == exact.get("grande").search(docs[0].text, k=1, mode="vector")[0].score
    )  # exact rescoring
    # filters: only allowed rows, as many as asked
    assert all(int(i[1:]) % 2 == 1 for i in _ids(approx, docs[0].text, 20, where={"par": "1"}))
    assert len(_ids(approx, docs[0].text, 20, where={"par": "1"})) == 20
    # below the threshold a collection is scanned exactly even with an index on disk
    assert SearcherCache(store, registry, ann_min_docs=10_000).get("grande").ann is None


def test_collection_ann_sees_adds_at_once_and_never_returns_deletes(
    settings: Settings, registry: Registry
) -> None:
    store, docs = _setup(settings, registry)
    cache = SearcherCache(store, registry, ann_min_docs=MIN_DOCS)
    before = store.index_info("grande")
    new = Document("novo", "bala bala bame bame bani", {})
    add_documents(store, registry, "grande", [new], ann_min_docs=MIN_DOCS)
    assert store.index_info("grande") == before  # one new document: the index stays, the new row is scanned
    assert _ids(cache, new.text, 1) == ["novo"]

    gone = [d.id for d in docs[:20]]
    delete_documents(store, "grande", gone, ann_min_docs=MIN_DOCS)
    assert store.index_info("grande") == before  # its deleted rows are skipped, not yet rebuilt
    searcher = cache.get("grande")
    assert searcher.ann is not None
    assert searcher.ann_deleted == 20
    everything = _ids(cache, docs[0].text, k=len(docs))  # over-fetching past the deleted rows: all the rest
    assert sorted(everything) == sorted([d.id for d in docs[20:]] + ["novo"])
    for d in docs[:20]:
        assert not set(gone) & set(_ids(cache, d.text, 5))

    # a deleted id that comes back with another text is not served from its old vector
    back = Document(docs[0].id, "guvo gute gusa guru gupo", {})
    add_documents(store, registry, "grande", [back], ann_min_docs=MIN_DOCS)
    assert _ids(cache, back.text, 1) == [docs[0].id]
    ids = json.loads((store.path("grande") / store.index_info("grande")["ids"]).read_text())  # type: ignore[index]
    assert docs[0].id in ids  # rebuilt with it

    # past a tenth of the documents outside the index, it is rebuilt
    more = [
        Document(f"m{i}", " ".join(c), {})
        for i, c in enumerate(list(itertools.combinations(WORDS[::-1], 3))[:40])
    ]
    add_documents(store, registry, "grande", more, ann_min_docs=MIN_DOCS)
    assert store.index_info("grande")["rows"] == len(docs) - 20 + 2 + 40  # type: ignore[index]
    assert (cache.get("grande").ann_deleted, len(cache.get("grande").tail)) == (0, 0)


def test_collection_search_orders_equal_scores_by_row_and_keeps_filters(
    settings: Settings, registry: Registry
) -> None:
    """Thirty copies of one text tie in every mode: the first k in the collection's order come back, every time."""
    register(registry, "w2v", words=WORDS)
    model, _ = pooling_model(registry, "w2v", pooling="mean")
    register_encoder(registry, "frases", model, metadata={})
    others = [" ".join(c) for c in itertools.combinations(WORDS[8:], 3)][:270]
    docs = [Document(f"o{i}", text, {"par": str(i % 2)}) for i, text in enumerate(others)]
    for i in range(30):  # spread through the collection
        docs.insert(i * 9, Document(f"t{i:02d}", "bala bame", {"par": str(i % 2)}))
    store = CollectionStore(settings.home)
    create_collection(store, registry, "iguais", docs, encoder="frases")
    searcher = SearcherCache(store, registry).get("iguais")
    copies = [f"t{i:02d}" for i in range(30)]
    for mode in ("vector", "lexical", "hybrid"):
        assert [h.id for h in searcher.search("bala bame", k=12, mode=mode)] == copies[:12], mode
        odd = [h.id for h in searcher.search("bala bame", k=5, mode=mode, where={"par": "1"})]
        assert odd == copies[1::2][:5], mode
    assert [h.id for h in searcher.search("bala", k=40, mode="lexical")] == copies  # only texts with the word


# a writer killed (SIGKILL: nothing runs after it) the moment it starts building the HNSW index
KILLED_WHILE_INDEXING = """
import os, signal, sys
from pathlib import Path
from models.collection import CollectionStore
from models.registry import Registry
from pipelines.serving import search

search.build_tuned = lambda *_args, **_kwargs: os.kill(os.getpid(), signal.SIGKILL)
home, url, op, source, min_docs = sys.argv[1:]
store, registry = CollectionStore(Path(home)), Registry(Path(home), url)
docs = list(search.read_documents(Path(source), text_field="text", id_field="id"))
if op == "create":
    search.create_collection(store, registry, "grande", docs, encoder="frases", ann_min_docs=int(min_docs))
elif op == "add":
    search.add_documents(store, registry, "grande", docs, ann_min_docs=int(min_docs))
else:
    search.delete_documents(store, "grande", [d.id for d in docs], ann_min_docs=int(min_docs))
"""


def _killed_while_indexing(settings: Settings, op: str, docs: list[Document], tmp_path: Path) -> None:
    source = tmp_path / "docs.jsonl"
    source.write_bytes(b"".join(d.line() for d in docs))
    args = [str(settings.home), settings.effective_database_url, op, str(source), str(MIN_DOCS)]
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_WHILE_INDEXING, *args], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr


@pytest.mark.parametrize("op", ["create", "add", "delete"])
def test_collection_killed_while_building_its_index_leaves_the_old_state_whole(
    settings: Settings, registry: Registry, tmp_path: Path, op: str
) -> None:
    """A writer killed during the index build left its documents committed without their index (a created
    collection with none; an add or delete a new generation beside an index that fell behind) until the next
    write. The index is committed with the documents: a kill leaves the state before, and the next write sweeps
    what the killed one left."""
    store, docs = _setup(settings, registry, create=op != "create")
    extra = [Document(f"m{i}", " ".join(c), {}) for i, c in enumerate(itertools.combinations(WORDS[::-1], 3))]
    change = {"create": docs, "add": extra[:40], "delete": docs[:40]}[op]  # a tenth and more: a rebuild
    before = None if op == "create" else (store.info("grande"), store.index_info("grande"))
    _killed_while_indexing(settings, op, change, tmp_path)

    if op == "create":
        assert store.names() == []  # before: "grande", without an index
        create_collection(store, registry, "grande", docs, encoder="frases", ann_min_docs=MIN_DOCS)
        assert [p.name for p in (store.root / ".staging").iterdir()] == []
    else:
        assert before is not None
        assert (store.info("grande"), store.index_info("grande")) == before  # before: a new generation
        cache = SearcherCache(store, registry, ann_min_docs=MIN_DOCS)
        assert (cache.get("grande").ann_deleted, len(cache.get("grande").tail)) == (0, 0)
        if op == "add":
            add_documents(store, registry, "grande", change, ann_min_docs=MIN_DOCS)
        else:
            delete_documents(store, "grande", [d.id for d in change], ann_min_docs=MIN_DOCS)
        assert [p.name for p in (store.path("grande") / ".staging").iterdir()] == []
    info, ann = store.info("grande"), store.index_info("grande")
    assert ann is not None
    assert (ann["rows"], ann["generation"]) == (info["documents"], info["generation"])
    assert sorted(p.name for p in store.path("grande").glob("ann-*")) == sorted((ann["file"], ann["ids"]))


def test_collection_written_before_checksums_and_ann_in_collection_json_is_read_and_upgraded(
    settings: Settings, registry: Registry
) -> None:
    """A collection of the previous layout (its index described by ann.json, no file records) is searched through
    its index, reported by ``problems`` as unchecked, and its next add records every file and describes the index
    in collection.json."""
    store, _ = _setup(settings, registry)
    folder = store.path("grande")
    info = json.loads((folder / "collection.json").read_text(encoding="utf-8"))
    (folder / "ann.json").write_text(json.dumps(info.pop("ann")), encoding="utf-8")
    for key in ("files", "sizes"):
        info.pop(key)
    (folder / "collection.json").write_text(json.dumps(info), encoding="utf-8")
    before = store.index_info("grande")
    assert before is not None
    assert SearcherCache(store, registry, ann_min_docs=MIN_DOCS).get("grande").ann is not None
    assert [p.startswith("its files have no recorded checksums") for p in store.problems("grande")] == [True]

    add_documents(store, registry, "grande", [Document("novo", "bala bame bani", {})], ann_min_docs=MIN_DOCS)
    info = store.info("grande")
    assert (info["ann"], (folder / "ann.json").exists()) == (before, False)  # the same index, kept
    assert {before["file"], before["ids"]} <= set(info["files"])
    assert store.problems("grande") == []


@pytest.mark.parametrize(
    ("legacy", "problem"),
    [
        ("{not json", "is not readable JSON"),
        ('"x"', "field 'index' is \"x\", not an object describing the index"),
        ('{"file": "../../registry.db", "ids": "a.ids.json"}', "field 'index.file' is \"../../registry.db\""),
    ],
)
def test_collection_of_the_previous_layout_with_a_damaged_ann_json_is_damage_naming_it(
    settings: Settings, registry: Registry, legacy: str, problem: str
) -> None:
    """A previous-layout collection whose ann.json is not JSON, or describes files outside the collection's folder,
    gave a JSONDecodeError or TypeError (a 500) or read that file; now an IntegrityError naming ann.json."""
    store, _ = _setup(settings, registry)
    folder = store.path("grande")
    info = json.loads((folder / "collection.json").read_text(encoding="utf-8"))
    info.pop("ann")
    for key in ("files", "sizes"):
        info.pop(key)
    (folder / "collection.json").write_text(json.dumps(info), encoding="utf-8")
    (folder / "ann.json").write_text(legacy, encoding="utf-8")
    with pytest.raises(IntegrityError) as raised:
        SearcherCache(store, registry, ann_min_docs=MIN_DOCS).get("grande")
    assert raised.value.extra["file"] == "ann.json"
    assert f"collection 'grande' is damaged: ann.json {problem}" in raised.value.detail
