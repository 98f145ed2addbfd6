"""The searcher cache checks a cached collection against the disk before it answers: a file it maps that was
truncated or replaced, a collection put back from a backup at the same generation, and a collection removed are each
noticed, and never crash the process."""

from __future__ import annotations

import contextlib
import gc
import itertools
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from models.collection import CollectionStore, Document, Snapshot
from models.errors import CollectionNotFound, IntegrityError
from models.registry import Registry
from pipelines.serving.search import create_collection
from pipelines.serving.searcher_cache import SearcherCache
from pipelines.text_encoder.build import pooling_model, register_encoder
from services.settings import Settings
from tests.conftest import REPO_ROOT
from tests.services.vector_models import register

WORDS = [
    a + b for a in ("ba", "ce", "di", "fo", "gu") for b in ("la", "me", "ni", "po", "ru", "sa", "te", "vo")
]
MIN_DOCS = 100


def _docs(n: int, seed: int = 0) -> list[Document]:
    combos = list(itertools.combinations(WORDS, 4))
    random.Random(seed).shuffle(combos)
    return [Document(f"d{i}", " ".join(c), {"par": str(i % 2)}) for i, c in enumerate(combos[:n])]


def _setup(settings: Settings, registry: Registry) -> CollectionStore:
    """ "grande" (300 documents, with its HNSW index) and "outra" (50 other documents, none)."""
    register(registry, "w2v", words=WORDS)
    model, _ = pooling_model(registry, "w2v", pooling="mean")
    register_encoder(registry, "frases", model, metadata={})
    store = CollectionStore(settings.home)
    create_collection(store, registry, "grande", _docs(300), encoder="frases", ann_min_docs=MIN_DOCS)
    create_collection(store, registry, "outra", _docs(50, seed=1), encoder="frases", ann_min_docs=MIN_DOCS)
    return store


def _truncate(path: Path, size: int) -> None:
    with path.open("r+b") as fh:
        fh.truncate(size)


@pytest.mark.parametrize(
    "file",
    ["vectors.npy", "offsets.npy", "documents.jsonl", "bm25/data.csc.index.npy", "the index"],
)
def test_collection_cache_refuses_a_cached_collection_whose_mapped_file_was_truncated(
    settings: Settings, registry: Registry, file: str
) -> None:
    """Sizes were checked only when a collection was opened: a cached searcher kept reading its maps of a file
    truncated since (a server died of SIGBUS). Now the cache stats each mapped file before answering, drops the
    searcher and opens the collection again, which names the file (503 IntegrityError); others keep answering."""
    store = _setup(settings, registry)
    cache = SearcherCache(store, registry, ann_min_docs=MIN_DOCS, check_s=0)
    assert len(cache.get("grande").search("bala ceme", k=5, mode="hybrid")) == 5
    assert cache.get("outra").search("bala", k=1)
    info = store.info("grande")
    rel = info["ann"]["file"] if file == "the index" else f"{info['data']}/{file}"
    _truncate(store.path("grande") / rel, 200)

    with pytest.raises(IntegrityError) as error:
        cache.get("grande")
    assert (error.value.extra["collection"], error.value.extra["file"]) == ("grande", rel)
    assert error.value.detail.startswith(f"collection 'grande' is damaged: {rel} has 200 bytes where")
    assert cache.get("outra").search("bala", k=1)


def test_collection_cache_truncation_of_a_mapped_file_does_not_kill_the_process(
    settings: Settings, registry: Registry
) -> None:
    """The probe's case end to end, in a process of its own: search, truncate vectors.npy, search again. The
    process was killed by SIGBUS (exit 135 from a shell); now the second search is an IntegrityError."""
    _setup(settings, registry)
    script = f"""
import json, sys
from pathlib import Path
from models.collection import CollectionStore
from models.errors import IntegrityError
from models.registry import Registry
from pipelines.serving.searcher_cache import SearcherCache
store = CollectionStore(Path({str(settings.home)!r}))
cache = SearcherCache(store, Registry(Path({str(settings.home)!r}), {settings.effective_database_url!r}), check_s=0)
assert cache.get("grande").search("bala ceme", k=5, mode="vector")
path = store.path("grande") / store.info("grande")["data"] / "vectors.npy"
with path.open("r+b") as fh:
    fh.truncate(200)
try:
    cache.get("grande").search("bala ceme", k=5, mode="vector")
except IntegrityError as exc:
    print(json.dumps({{"file": exc.extra["file"]}}))
"""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
    gen = json.loads((settings.home / "collections" / "grande" / "collection.json").read_text())["data"]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"file": f"{gen}/vectors.npy"}


def test_collection_cache_reads_a_collection_put_back_from_a_backup_at_the_same_generation(
    settings: Settings, registry: Registry
) -> None:
    """`rm -rf collections/c1 && cp -a backup collections/c1` at the same generation was ignored until a restart
    (the cache compared generation numbers only): searches kept reading the deleted files. Now collection.json being
    another file is noticed and the collection opened again."""
    store = _setup(settings, registry)
    cache = SearcherCache(store, registry, ann_min_docs=MIN_DOCS)
    before = {h.id for h in cache.get("grande").search("bala ceme", k=300, mode="lexical")}
    backup = settings.home / "backup"
    shutil.copytree(store.path("outra"), backup)  # a collection of other documents, also at generation 1
    shutil.rmtree(store.path("grande"))
    shutil.copytree(backup, store.path("grande"))
    assert store.info("grande")["generation"] == 1

    after = {h.id for h in cache.get("grande").search("bala ceme", k=300, mode="lexical")}
    assert after == {h.id for h in cache.get("outra").search("bala ceme", k=300, mode="lexical")}
    assert after != before


def _held(folder: Path) -> list[str]:
    """The files under ``folder`` this process holds open or mapped."""
    fds = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the descriptor listing the folder is closed by now
            fds.append(os.readlink(f"/proc/self/fd/{fd}"))
    maps = [line.split(maxsplit=5)[-1] for line in Path("/proc/self/maps").read_text().splitlines()]
    return [p for p in fds + maps if p.startswith(str(folder))]


def test_collection_cache_releases_the_files_of_a_removed_collection(
    settings: Settings, registry: Registry
) -> None:
    """A removed collection's searcher stayed cached, holding its deleted files open and mapped until a restart;
    now the cache drops it (when it is asked for, or as another collection is) and the files are released."""
    store = _setup(settings, registry)
    cache = SearcherCache(store, registry, ann_min_docs=MIN_DOCS, prune_s=0)
    for name in ("grande", "outra"):
        assert cache.get(name).search("bala", k=1)
    folder = store.path("grande")
    assert _held(folder)
    shutil.rmtree(folder)
    assert cache.get("outra").search("bala", k=1)
    gc.collect()
    assert _held(folder) == []

    shutil.rmtree(store.path("outra"))
    with pytest.raises(CollectionNotFound):
        cache.get("outra")
    gc.collect()
    assert _held(store.path("outra")) == []


def test_collection_cache_looks_at_a_searchers_files_at_most_every_check_s(
    settings: Settings, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stat-ing every mapped file before every search cost a vector search 0.26-0.74 ms of CPU under 16 concurrent
    requests (each stat hands the GIL to another thread): by default a worker looks every 0.25 s; with 0, before
    every search."""
    store = _setup(settings, registry)
    looks: list[str] = []
    changed = Snapshot.changed
    monkeypatch.setattr(Snapshot, "changed", lambda self: (looks.append(self.name), changed(self))[1])
    for check_s, expected in ((3600.0, 0), (0.0, 20)):
        looks.clear()
        cache = SearcherCache(store, registry, check_s=check_s)
        cache.get("grande")  # opened: its files were just checked
        for _ in range(20):
            assert cache.get("grande").search("bala", k=1)
        assert len(looks) == expected


def test_a_search_on_the_event_loop_never_waits_for_a_collection_being_opened(
    settings: Settings, registry: Registry
) -> None:
    """cached() pruned a removed collection under the lock get() holds while it opens another, so a search answered
    on the event loop could stall the whole worker for as long as that opening took (a review)."""
    import threading

    store = _setup(settings, registry)
    cache = SearcherCache(store, registry, ann_min_docs=MIN_DOCS, prune_s=0.0)
    cache.get("grande")
    cache.get("outra")
    store.remove("grande")  # another worker removes it: this worker's searcher of it is stale
    opening = threading.Event()
    release = threading.Event()

    def hold_the_lock() -> None:  # as get() holds it while it opens a collection
        with cache._lock:
            opening.set()
            release.wait(30)

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    opening.wait(10)
    answered: list[object] = []
    search = threading.Thread(target=lambda: answered.append(cache.cached("outra")))
    search.start()
    search.join(5)
    done = not search.is_alive()
    release.set()
    holder.join(10)
    search.join(10)
    assert done, "cached() waited for the lock"
    assert len(answered) == 1
    assert answered[0] is not None
    cache.get("outra")  # a later prune, with nobody holding the lock, drops the removed one
    assert cache.names() == ["outra"]
