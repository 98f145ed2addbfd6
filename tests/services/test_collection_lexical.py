"""A collection's BM25 index is written with it: searchers read it memory-mapped instead of tokenising every document,
adds and deletes keep it exact, and a collection written before it existed is still searched and changed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

from models.collection import CollectionStore, Document
from models.lexical import Bm25
from models.registry import Registry
from pipelines.serving.search import Searcher, add_documents, create_collection, delete_documents
from pipelines.serving.searcher_cache import SearcherCache
from pipelines.text_encoder.build import pooling_model, register_encoder
from pipelines.text_encoder.served import TextEncoderModel, load_text_encoder
from services.settings import Settings
from tests.services.vector_models import register

REPO_ROOT = Path(__file__).resolve().parents[2]
WORDS = ["gato", "cão", "casa", "rio", "mar", "sol", "lua", "pão", "vinho", "livro", "porta", "janela"]
TEXTS = [
    "o gato dorme na casa",
    "o cão corre no rio",
    "o mar e o sol",
    "a lua sobre o mar",
    "pão e vinho na mesa",
    "um livro perto da janela",
    "a porta da casa",
    "o gato e o cão",
]
QUERIES = ["gato", "casa do cão", "mar e sol", "vinho", "janela e porta"]


class CountingModel:
    """An encoder that counts the texts it tokenises."""

    def __init__(self, model: TextEncoderModel) -> None:
        self.model = model
        self.tokenised = 0

    def tokens(self, texts: Iterable[str]) -> list[list[str]]:
        out = self.model.tokens(texts)
        self.tokenised += len(out)
        return out

    def __getattr__(self, name: str) -> object:
        return getattr(self.model, name)


def _setup(settings: Settings, registry: Registry, docs: list[Document]) -> CollectionStore:
    register(registry, "w2v", words=WORDS)
    model, _ = pooling_model(registry, "w2v", pooling="mean")
    register_encoder(registry, "frases", model, metadata={})
    store = CollectionStore(settings.home)
    create_collection(store, registry, "textos", docs, encoder="frases")
    return store


def _docs(texts: list[str], start: int = 0) -> list[Document]:
    return [Document(f"d{start + i}", t, {"par": str((start + i) % 2)}) for i, t in enumerate(texts)]


def _lexical(searcher: Searcher, query: str, k: int = 20) -> list[tuple[str, float]]:
    return [(h.id, round(h.score, 5)) for h in searcher.search(query, k=k, mode="lexical")]


def _strip_to_old_format(store: CollectionStore, name: str) -> None:
    """What a collection written before generation folders, offsets, terms and the BM25 index looks like."""
    folder = store.path(name)
    info = json.loads((folder / "collection.json").read_text(encoding="utf-8"))
    data = folder / info.pop("data")
    for key in ("files", "sizes", "ann"):  # no checksums, and the index (if any) described in ann.json
        info.pop(key, None)
    for file in ("documents.jsonl", "vectors.npy"):
        (data / file).rename(folder / file)
    shutil.rmtree(data)
    info["format"] = "palavra-collection/1"
    (folder / "collection.json").write_text(json.dumps(info), encoding="utf-8")


def test_collection_searcher_reads_the_saved_bm25_index_without_tokenising_documents(
    settings: Settings, registry: Registry
) -> None:
    store = _setup(settings, registry, _docs(TEXTS))
    info = store.info("textos")
    assert (store.path("textos") / info["data"] / "bm25").is_dir()
    counting = CountingModel(load_text_encoder(registry, info["encoder"]))
    searcher = Searcher(store.read("textos"), counting)  # type: ignore[arg-type]
    assert counting.tokenised == 0  # before: every document was tokenised again by every searcher
    hits = searcher.search("gato", k=5, mode="lexical")
    assert counting.tokenised == 1  # the query only
    assert [h.id for h in hits] == ["d0", "d7"]
    assert (hits[0].text, hits[0].metadata) == (TEXTS[0], {"par": "0"})


def test_collection_lexical_ranking_after_adds_and_deletes_equals_a_fresh_build(
    settings: Settings, registry: Registry
) -> None:
    store = _setup(settings, registry, _docs(TEXTS[:5]))
    cache = SearcherCache(store, registry)
    first = cache.get("textos")
    before = _lexical(first, "gato")
    add_documents(store, registry, "textos", _docs(TEXTS[5:], start=5))
    delete_documents(store, "textos", ["d1", "d3"])
    final = [d for d in _docs(TEXTS) if d.id not in ("d1", "d3")]
    create_collection(store, registry, "fresca", final, encoder="frases")
    changed, fresh = cache.get("textos"), cache.get("fresca")
    assert changed.generation == 3
    for query in QUERIES:
        assert _lexical(changed, query) == _lexical(fresh, query), query
        assert [h.id for h in changed.search(query, k=20, mode="hybrid")] == [
            h.id for h in fresh.search(query, k=20, mode="hybrid")
        ]
    assert (
        _lexical(first, "gato") == before
    )  # a searcher of an older generation still reads its own documents
    assert [h.text for h in first.search("mar", k=5, mode="lexical")] == [
        "o mar e o sol",
        "a lua sobre o mar",
    ]
    assert [h.id for h in changed.search("mar", k=5, mode="lexical", where={"par": "0"})] == ["d2"]
    assert changed.search("mar", k=5, mode="lexical", where={"par": "7"}) == []
    # a document without the field matches no filter (before: "None", Python's text of a missing value, did)
    assert changed.search("casa", k=5, mode="lexical", where={"nada": "None"}) == []
    assert changed.search("casa", k=5, mode="lexical", where={"nada": None}) == []


def test_collection_written_before_the_saved_index_is_still_searched_and_changed(
    settings: Settings, registry: Registry
) -> None:
    store = _setup(settings, registry, _docs(TEXTS[:6]))
    expected = {q: _lexical(SearcherCache(store, registry).get("textos"), q) for q in QUERIES}
    _strip_to_old_format(store, "textos")
    old = SearcherCache(store, registry).get("textos")
    assert store.read("textos").lexical is None
    assert {q: _lexical(old, q) for q in QUERIES} == expected
    add_documents(store, registry, "textos", _docs(TEXTS[6:], start=6))
    delete_documents(store, "textos", ["d0"])
    searcher = SearcherCache(store, registry).get("textos")
    assert [h.id for h in searcher.search("gato", k=5, mode="lexical")] == ["d7"]
    assert searcher.search("porta", k=1, mode="lexical")[0].text == "a porta da casa"


def test_collection_write_that_fails_keeps_the_previous_generation(
    settings: Settings, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _setup(settings, registry, _docs(TEXTS[:4]))

    def broken(self: Bm25, folder: object) -> None:
        raise OSError("disco cheio")

    monkeypatch.setattr(Bm25, "write", broken)
    with pytest.raises(OSError, match="disco cheio"):
        add_documents(store, registry, "textos", _docs(TEXTS[4:], start=4))
    monkeypatch.undo()
    assert store.info("textos")["generation"] == 1
    assert list((store.path("textos") / ".staging").iterdir()) == []
    searcher = SearcherCache(store, registry).get("textos")
    assert [h.id for h in searcher.search("gato", k=5, mode="lexical")] == ["d0"]


def test_collection_writer_that_dies_leaves_the_old_generation_whole_and_its_files_are_swept(
    settings: Settings, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer killed after its generation folder is in place but before collection.json points at it: readers
    keep the old generation (documents, offsets, vectors and BM25 of one generation, never a mix), and the next
    write removes the orphan; a dead writer's staging folder goes too."""
    store = _setup(settings, registry, _docs(TEXTS[:4]))
    folder = store.path("textos")
    first = store.info("textos")["data"]
    real_replace = os.replace

    def dies_at_the_pointer(src: object, dst: object) -> None:
        if str(dst).endswith("collection.json"):
            raise KeyboardInterrupt("morto")
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", dies_at_the_pointer)
    with pytest.raises(KeyboardInterrupt):
        add_documents(store, registry, "textos", _docs(TEXTS[4:], start=4))
    monkeypatch.undo()
    gens = sorted(p.name for p in folder.glob("gen-*"))
    assert len(gens) == 2  # the new generation's folder is there, nothing points at it
    assert first in gens
    assert store.info("textos")["data"] == first
    searcher = SearcherCache(store, registry).get("textos")
    assert [h.text for h in searcher.search("gato", k=5, mode="lexical")] == [TEXTS[0]]
    assert searcher.search("vinho", k=5, mode="lexical") == []
    dead = folder / ".staging" / "abandonado"  # a writer killed while staging: its lock file is free
    dead.mkdir(parents=True)
    (folder / ".staging" / "abandonado.lock").touch()
    add_documents(store, registry, "textos", _docs(TEXTS[4:], start=4))
    now = store.info("textos")["data"]
    assert sorted(p.name for p in folder.glob("gen-*")) == [now]
    assert list((folder / ".staging").iterdir()) == []
    assert [
        h.id for h in SearcherCache(store, registry).get("textos").search("vinho", k=5, mode="lexical")
    ] == ["d4"]


def test_collection_search_in_a_serving_worker_does_not_import_torch(
    settings: Settings, registry: Registry
) -> None:
    """spaCy's tokenizer imports thinc, which imports torch (about 120 MB private per worker); a worker imports
    spaCy at start with torch hidden, so a search tokenises without it, and torch still imports afterwards."""
    _setup(settings, registry, _docs(TEXTS))
    script = (
        "import sys, json\n"
        "from fastapi.testclient import TestClient\n"
        "from services.api.app import create_app\n"
        "from services.settings import Settings\n"
        f"settings = Settings(home={str(settings.home)!r}, local_workers=0)\n"
        "with TestClient(create_app(settings)) as client:\n"
        "    r = client.post('/v1/collections/textos/search', json={'query': 'pôs-se o gato na casa, d\\'água', 'k': 1, 'mode': 'lexical'})\n"
        "    loaded = {m: m in sys.modules for m in ('spacy', 'torch')}\n"
        "import torch\n"
        "print(json.dumps({'status': r.status_code, 'id': r.json()['hits'][0]['id'], **loaded,\n"
        "                  'torch_after': float(torch.ones(2).sum())}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PALAVRA_")}
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"status": 200, "id": "d0", "spacy": True, "torch": False, "torch_after": 2.0}
