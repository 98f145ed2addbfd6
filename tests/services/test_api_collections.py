"""Collections over HTTP: writes need a write key, searches see adds and deletes at once, errors share one shape."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from models.collection import CollectionStore
from models.registry import Registry
from pipelines.text_encoder.build import pooling_model, register_encoder
from pipelines.text_encoder.served import TextEncoderModel
from services.settings import Settings
from tests.services.vector_models import API_KEY, api_settings, register, serving

AUTH = {"Authorization": f"Bearer {API_KEY}"}
DOCS = [
    {"id": "d1", "text": "O rei e a rainha no castelo", "metadata": {"tipo": "nobreza"}},
    {"id": "d2", "text": "A casa e o lar", "metadata": {"tipo": "moradia"}},
    {"id": "d3", "text": "O homem e a mulher", "metadata": {"tipo": "pessoas"}},
]


NEW = {"documents": [{"id": "d4", "text": "casas e casas"}]}
# a search, an add and a delete of collection "docs"
READ_AND_WRITES = (
    ("POST", "/v1/collections/docs/search", {"query": "casa"}),
    ("POST", "/v1/collections/docs/documents", NEW),
    ("DELETE", "/v1/collections/docs/documents", {"ids": ["d1"]}),
)


def _two_collections(client: TestClient) -> CollectionStore:
    """Collections "docs" and "outra" of DOCS; the server's store."""
    for name in ("docs", "outra"):
        body = {"name": name, "encoder": "frases", "documents": DOCS}
        assert client.post("/v1/collections", json=body, headers=AUTH).status_code == 201
    store: CollectionStore = client.app.state.searchers.store  # type: ignore[attr-defined]
    return store


def _assert_damaged(
    client: TestClient, requests: tuple[tuple[str, str, dict[str, Any]], ...], file: str, detail: str
) -> None:
    """Each request is answered 503 IntegrityError naming collection "docs" and ``file``, its detail starting
    with "collection 'docs' is damaged: " and ``detail``."""
    for method, route, body in requests:
        r = client.request(method, route, json=body, headers=AUTH)
        assert (r.status_code, r.json()["error"]) == (503, "IntegrityError"), r.text
        assert r.json()["detail"].startswith(f"collection 'docs' is damaged: {detail}")
        assert (r.json()["collection"], r.json()["file"]) == ("docs", file)


@pytest.fixture
def client(settings: Settings, registry: Registry) -> Iterator[TestClient]:
    register(registry, "w2v")
    model, _ = pooling_model(registry, "w2v", pooling="sif", sample=[d["text"] for d in DOCS])
    register_encoder(registry, "frases", model, metadata={})
    with serving(api_settings(settings, max_k=20)) as client:
        yield client


def test_api_collection_lifecycle(client: TestClient) -> None:
    body = {"name": "docs", "encoder": "frases", "documents": DOCS}
    assert client.post("/v1/collections", json=body).status_code == 401
    r = client.post("/v1/collections", json=body, headers=AUTH)
    assert r.status_code == 201, r.text
    assert (r.json()["documents"], r.json()["encoder"]) == (3, "frases@1")
    assert [c["name"] for c in client.get("/v1/collections").json()["collections"]] == ["docs"]
    r = client.post("/v1/collections/docs/search", json={"query": "a rainha", "k": 2})
    assert r.status_code == 200, r.text
    hit = r.json()["hits"][0]
    assert (hit["id"], hit["text"], hit["metadata"]) == ("d1", DOCS[0]["text"], {"tipo": "nobreza"})
    filtered = client.post(
        "/v1/collections/docs/search", json={"query": "rainha", "filter": {"tipo": "moradia"}}
    )
    assert [h["id"] for h in filtered.json()["hits"]] == ["d2"]
    new = {"documents": [{"id": "d4", "text": "casas e casas"}]}
    assert client.post("/v1/collections/docs/documents", json=new, headers=AUTH).status_code == 200
    r = client.post("/v1/collections/docs/search", json={"query": "casas", "mode": "lexical"})
    assert r.json()["hits"][0]["id"] == "d4"
    r = client.request("DELETE", "/v1/collections/docs/documents", json={"ids": ["d1"]}, headers=AUTH)
    assert r.json()["documents"] == 3
    r = client.post(
        "/v1/collections/docs/search", json={"query": "rainha castelo", "k": 10, "mode": "vector"}
    )
    assert "d1" not in [h["id"] for h in r.json()["hits"]]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "error"),
    [
        ("POST", "/v1/collections/nenhuma/search", {"query": "casa"}, 404, "CollectionNotFound"),
        ("POST", "/v1/collections/docs/search", {"query": "casa", "k": 21}, 413, "TooLarge"),
        ("POST", "/v1/collections/docs/search", {"query": "casa", "mode": "magia"}, 422, "InvalidInput"),
        ("POST", "/v1/collections/docs/search", {"query": "c" * 2001}, 413, "TooLarge"),
        (
            "POST",
            "/v1/collections/docs/documents",
            {"documents": [{"id": "d2", "text": "x"}]},
            422,
            "InvalidInput",
        ),
        ("POST", "/v1/collections/docs/documents", {"documents": [{"id": "d9"}]}, 422, "InvalidInput"),
        ("DELETE", "/v1/collections/docs/documents", {"ids": ["zz"]}, 422, "InvalidInput"),
        (
            "POST",
            "/v1/collections",
            {"name": "docs", "encoder": "frases", "documents": DOCS},
            409,
            "Conflict",
        ),
        (
            "POST",
            "/v1/collections",
            {"name": "outra", "encoder": "w2v", "documents": DOCS},
            422,
            "InvalidInput",
        ),
        (
            "POST",
            "/v1/collections",
            {"name": "../x", "encoder": "frases", "documents": DOCS},
            422,
            "InvalidInput",
        ),
    ],
)
def test_api_collection_errors(
    client: TestClient, method: str, path: str, body: object, status: int, error: str
) -> None:
    client.post(
        "/v1/collections", json={"name": "docs", "encoder": "frases", "documents": DOCS}, headers=AUTH
    )
    r = client.request(method, path, json=body, headers=AUTH)
    assert r.status_code == status, r.text
    assert r.json()["error"] == error


@pytest.mark.parametrize(
    ("doc_id", "message"),
    [
        ("\u200b", "the id is empty (nothing but whitespace or invisible characters)"),
        ("\u2060\u00ad", "the id is empty"),
        ("a\u0000b", "the id holds the control character U+0000"),
        ("a\nb", "the id holds the control character U+000A"),
        ("a\u2028b", "the id holds the control character U+2028"),  # a line break to str.splitlines
    ],
)
def test_api_collection_ids_show_something_on_one_line(client: TestClient, doc_id: str, message: str) -> None:
    """A zero-width space alone, a NUL or a line break named a document (a hostile probe); the JSONL reader, the CLI's
    path, refuses them the same way."""
    body = {"name": "docs", "encoder": "frases", "documents": [*DOCS, {"id": doc_id, "text": "outra casa"}]}
    r = client.post("/v1/collections", json=body, headers=AUTH)
    assert r.status_code == 422, r.text
    assert message in r.json()["detail"]
    client.post(
        "/v1/collections", json={"name": "docs", "encoder": "frases", "documents": DOCS}, headers=AUTH
    )
    r = client.post(
        "/v1/collections/docs/documents", json={"documents": [{"id": doc_id, "text": "x"}]}, headers=AUTH
    )
    assert r.status_code == 422, r.text
    assert message in r.json()["detail"]
    # deleting only asks that the id exist: one stored before ids were checked can still be removed (a review)
    r = client.request("DELETE", "/v1/collections/docs/documents", json={"ids": [doc_id]}, headers=AUTH)
    assert r.status_code == 422, r.text
    assert message not in r.json()["detail"]


def test_api_collection_ids_may_hold_letters_of_any_script_spaces_and_tabs(client: TestClient) -> None:
    ids = ["ação", "e\u0301", "文書 1", "a\tb", "👍🏽", "❤️"]
    docs = [{"id": i, "text": f"texto {n}"} for n, i in enumerate(ids)]
    r = client.post(
        "/v1/collections", json={"name": "docs", "encoder": "frases", "documents": docs}, headers=AUTH
    )
    assert r.status_code == 201, r.text


def test_api_collection_metadata_nested_too_deep_is_422_and_searches_keep_working(client: TestClient) -> None:
    """Metadata a search could not send back (pydantic stops at 255 levels) are refused when written (before: 201,
    then a 500 on every search that returned the document); a write to an unknown collection leaves no file."""
    deep: dict[str, object] = {}
    for _ in range(300):
        deep = {"a": deep}
    body = {"name": "fundo", "encoder": "frases", "documents": [{**DOCS[0], "metadata": deep}]}
    r = client.post("/v1/collections", json=body, headers=AUTH)
    assert r.status_code == 422, r.text
    assert "nest deeper than 32 levels" in r.json()["detail"]
    assert (
        client.post(
            "/v1/collections", json={"name": "docs", "encoder": "frases", "documents": DOCS}, headers=AUTH
        ).status_code
        == 201
    )
    new = {"documents": [{"id": "d9", "text": "casa funda", "metadata": deep}]}
    assert client.post("/v1/collections/docs/documents", json=new, headers=AUTH).status_code == 422
    r = client.post("/v1/collections/docs/search", json={"query": "casa", "k": 3})
    assert r.status_code == 200, r.text
    assert "d9" not in [h["id"] for h in r.json()["hits"]]
    twice = {"documents": [{"id": "d8", "text": "um"}, {"id": "d8", "text": "dois"}]}
    r = client.post("/v1/collections/docs/documents", json=twice, headers=AUTH)
    assert (r.status_code, "appears twice" in r.json()["detail"]) == (422, True)
    root = client.app.state.searchers.store.root  # type: ignore[attr-defined]
    r = client.request("DELETE", "/v1/collections/fantasma/documents", json={"ids": ["x"]}, headers=AUTH)
    assert r.status_code == 404
    assert not (root / ".fantasma.lock").exists()


def test_api_collection_filter_takes_json_values(client: TestClient) -> None:
    """A filter value is a string, number, boolean or null, compared as JSON (before: only strings were accepted,
    422 "Input should be a valid string", and a boolean matched only Python's spelling "True")."""
    docs = [
        {"id": "d1", "text": "O rei e a rainha no castelo", "metadata": {"ok": True, "n": 3.0, "nulo": None}},
        {"id": "d2", "text": "A casa e o lar", "metadata": {"ok": False, "n": "3"}},
        {"id": "d3", "text": "O homem e a mulher", "metadata": {"ok": "True", "n": 3}},
    ]
    body = {"name": "docs", "encoder": "frases", "documents": docs}
    assert client.post("/v1/collections", json=body, headers=AUTH).status_code == 201

    def ids(where: object) -> list[str]:
        r = client.post("/v1/collections/docs/search", json={"query": "casa rainha", "filter": where})
        assert r.status_code == 200, r.text
        return sorted(h["id"] for h in r.json()["hits"])

    assert ids({"ok": True}) == ["d1"]
    assert ids({"ok": "True"}) == ["d1", "d3"]  # clients sent Python's spelling when filters were text only
    assert ids({"ok": "true"}) == ["d1"]
    assert ids({"n": 3}) == ["d1", "d2", "d3"]  # 3, 3.0 and the text "3"
    assert ids({"n": "3"}) == ["d1", "d2", "d3"]
    assert ids({"nulo": None}) == ["d1"]
    assert ids({"falta": None}) == []
    assert ids({"ok": False, "n": "3"}) == ["d2"]
    for where, kind in (({"n": ["a"]}, "a list"), ({"n": {"a": 1}}, "an object")):
        r = client.post("/v1/collections/docs/search", json={"query": "casa", "filter": where})
        assert (r.status_code, r.json()["error"]) == (422, "InvalidInput"), r.text
        assert (
            r.json()["detail"]
            == f"filter.n: a filter value is a string, number, true, false or null, not {kind}"
        )
    r = client.post(
        "/v1/collections/docs/search",
        content=b'{"query": "casa", "filter": {"n": NaN}}',
        headers={"content-type": "application/json"},
    )
    assert (r.status_code, r.json()["detail"]) == (
        422,
        "filter.n: a filter value is a finite number, not nan",
    )


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ('{"id": "d9", "text": "casa", "metadata": {"x": NaN}}', "not a finite number"),
        ('{"id": "d9", "text": "casa", "metadata": {"x": [Infinity]}}', "not a finite number"),
        ('{"id": "d9", "text": "casa", "metadata": {"x": "\\ud800"}}', "not Unicode text"),
        ('{"id": "\\ud800", "text": "casa"}', "documents.0.id: Input should be a valid string"),
    ],
)
def test_api_collection_refuses_what_json_cannot_carry(
    client: TestClient, document: str, message: str
) -> None:
    """NaN in metadata was stored and searches sent it back as null (the CLI printed NaN, which is not JSON); a lone
    surrogate could not be written at all."""
    body = '{"name": "docs", "encoder": "frases", "documents": [' + document + "]}"
    r = client.post(
        "/v1/collections", content=body.encode(), headers={**AUTH, "content-type": "application/json"}
    )
    assert (r.status_code, r.json()["error"]) == (422, "InvalidInput"), r.text
    assert message in r.json()["detail"]
    assert client.get("/v1/collections").json()["collections"] == []


@pytest.mark.parametrize(
    "failure",
    [
        OSError(errno.ENOSPC, "No space left on device", "docs.jsonl"),
        OSError("6980 requested and 992 written"),
    ],
    ids=["enospc", "numpy-short-write"],
)
def test_api_collection_write_on_a_full_disk_is_503_disk_full(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, failure: OSError
) -> None:
    """A full disk made every collection write a 500 (InternalError); it is a 503 to retry, and nothing is kept."""
    from models import collection

    body = {"name": "docs", "encoder": "frases", "documents": DOCS}
    assert client.post("/v1/collections", json=body, headers=AUTH).status_code == 201

    def full(*_args: object, **_kwargs: object) -> None:
        raise failure

    monkeypatch.setattr(collection, "_write_docs", full)
    new = {"documents": [{"id": "d4", "text": "casas e casas"}]}
    r = client.post("/v1/collections/docs/documents", json=new, headers=AUTH)
    assert r.status_code == 503, r.text
    assert r.json()["error"] == "DiskFull"
    assert "no space left on the device" in r.json()["detail"]
    assert r.headers["retry-after"]
    monkeypatch.undo()
    hits = client.post("/v1/collections/docs/search", json={"query": "casas", "mode": "lexical"}).json()[
        "hits"
    ]
    assert "d4" not in [h["id"] for h in hits]
    assert client.post("/v1/collections/docs/documents", json=new, headers=AUTH).status_code == 200


def test_api_damaged_collection_is_503_for_that_collection_only(client: TestClient) -> None:
    """A truncated vectors.npy made every search of the collection a 500 (a numpy ValueError); it is answered as a
    damaged model is (503 IntegrityError naming the collection and the file), and other collections keep working."""
    store = _two_collections(client)
    gen = store.info("docs")["data"]
    with (store.path("docs") / gen / "vectors.npy").open("r+b") as fh:
        fh.truncate(100)

    _assert_damaged(client, READ_AND_WRITES, f"{gen}/vectors.npy", f"{gen}/vectors.npy has 100 bytes")
    r = client.post("/v1/collections/outra/search", json={"query": "casa", "mode": "lexical"})
    assert (r.status_code, r.json()["hits"][0]["id"]) == (200, "d2")
    assert client.post("/v1/collections/outra/documents", json=NEW, headers=AUTH).status_code == 200
    names = [c["name"] for c in client.get("/v1/collections").json()["collections"]]
    assert names == ["docs", "outra"]
    (store.path("outra") / "collection.json").write_text("{", encoding="utf-8")
    assert [c["name"] for c in client.get("/v1/collections").json()["collections"]] == ["docs"]
    r = client.post("/v1/collections/outra/search", json={"query": "casa"})
    assert (r.status_code, r.json()["file"]) == (503, "collection.json")


class _Signal(logging.Handler):
    """Sets ``event`` when the writer lock logs that a writer waits for another."""

    def __init__(self, event: threading.Event) -> None:
        super().__init__(logging.INFO)
        self.event = event

    def emit(self, record: logging.LogRecord) -> None:
        if "waiting for another writer" in record.getMessage():
            self.event.set()


def test_api_concurrent_adds_to_one_collection_both_succeed(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Two POSTs of documents to one collection at once: the second got 409 "changed while this request ran; send
    it again" whenever both read the collection before either wrote. The race is forced every time: the first
    request is held inside its write (encoding its documents) until the second has either read the same
    generation and reached the same point (the code before) or is waiting for the first (now)."""
    body = {"name": "docs", "encoder": "frases", "documents": DOCS}
    assert client.post("/v1/collections", json=body, headers=AUTH).status_code == 201
    first_inside, second_ready, release = threading.Event(), threading.Event(), threading.Event()
    entered: list[int] = []
    embed = TextEncoderModel.embed_tokens

    def held(self: TextEncoderModel, tokens: Any) -> Any:
        entered.append(1)
        if len(entered) == 1:
            first_inside.set()
            assert release.wait(60)
        else:
            second_ready.set()  # the second request encodes: it read the generation the first has not replaced
        return embed(self, tokens)

    monkeypatch.setattr(TextEncoderModel, "embed_tokens", held)
    caplog.set_level(logging.INFO, logger="models.collection")
    signal = _Signal(second_ready)
    logging.getLogger("models.collection").addHandler(signal)
    answers: dict[str, Any] = {}

    def add(doc_id: str) -> None:
        new = {"documents": [{"id": doc_id, "text": f"casas e casas {doc_id}"}]}
        answers[doc_id] = client.post("/v1/collections/docs/documents", json=new, headers=AUTH)

    try:
        first = threading.Thread(target=add, args=("d4",))
        first.start()
        assert first_inside.wait(60)
        second = threading.Thread(target=add, args=("d5",))
        second.start()
        assert second_ready.wait(60)
        release.set()
        first.join(60)
        second.join(60)
    finally:
        release.set()
        logging.getLogger("models.collection").removeHandler(signal)
    assert [answers[i].status_code for i in ("d4", "d5")] == [200, 200], answers["d5"].text
    assert sorted(r.json()["documents"] for r in answers.values()) == [4, 5]
    r = client.post("/v1/collections/docs/search", json={"query": "casas", "k": 10, "mode": "lexical"})
    assert {"d4", "d5"} <= {h["id"] for h in r.json()["hits"]}


def test_api_add_waits_for_another_writer_only_so_long(settings: Settings, client: TestClient) -> None:
    """Past PALAVRA_COLLECTION_WRITE_WAIT_S another writer still holding the collection is a 409 to send again."""
    body = {"name": "docs", "encoder": "frases", "documents": DOCS}
    assert client.post("/v1/collections", json=body, headers=AUTH).status_code == 201
    new = {"documents": [{"id": "d4", "text": "casas e casas"}]}
    with serving(api_settings(settings, collection_write_wait_s=0.2)) as impatient:
        with CollectionStore(settings.home).writing("docs"):
            r = impatient.post("/v1/collections/docs/documents", json=new, headers=AUTH)
            assert (r.status_code, r.json()["error"]) == (409, "Conflict"), r.text
            assert "being changed by another writer, still after 0.2 s" in r.json()["detail"]
        assert impatient.post("/v1/collections/docs/documents", json=new, headers=AUTH).status_code == 200


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("generation", "abc"),
        ("documents", "x"),
        ("dim", [1]),
        ("encoder", 5),
        ("data", 5),
        ("files", ["a"]),
        ("sizes", [1, 2]),
        ("ann", "x"),
        ("data", "../outra/gen-x"),  # another collection's folder
    ],
)
def test_api_collection_json_edited_to_wrong_types_is_503_and_the_list_leaves_it_out(
    client: TestClient, field: str, value: object
) -> None:
    """A hand-edited collection.json gave 500s (TypeError, KeyError) on its searches and writes, and on
    `GET /v1/collections` for every collection; now it is that collection's 503 IntegrityError naming the field."""
    store = _two_collections(client)
    assert client.post("/v1/collections/docs/search", json={"query": "casa"}).status_code == 200
    path = store.path("docs") / "collection.json"
    path.write_text(
        json.dumps({**json.loads(path.read_text(encoding="utf-8")), field: value}), encoding="utf-8"
    )

    _assert_damaged(client, READ_AND_WRITES, "collection.json", f"collection.json field {field!r} ")
    r = client.get("/v1/collections")
    assert r.status_code == 200, r.text
    assert [c["name"] for c in r.json()["collections"]] == ["outra"]
    assert client.post("/v1/collections/outra/search", json={"query": "casa"}).status_code == 200


def test_api_documents_changed_in_place_are_503_naming_the_file(client: TestClient) -> None:
    """documents.jsonl with bytes changed at the same size (opening checks sizes, so it opens) made every search
    returning the document and every add a 500 (JSONDecodeError); now 503 IntegrityError naming the file."""
    store = _two_collections(client)
    rel = f"{store.info('docs')['data']}/documents.jsonl"
    path = store.path("docs") / rel
    path.write_bytes(path.read_bytes().replace(b'{"id"', b'x"id"', 1))

    search = ("POST", "/v1/collections/docs/search", {"query": "rei rainha castelo", "k": 3})
    _assert_damaged(client, (search, READ_AND_WRITES[1]), rel, f"{rel} cannot be read at document 1")
    assert client.post("/v1/collections/outra/search", json={"query": "casa"}).status_code == 200


@pytest.mark.parametrize(("file", "size"), [("vectors.npy", 100), ("documents.jsonl", 30)])
def test_api_file_truncated_under_a_cached_searcher_is_503_naming_it(
    client: TestClient, file: str, size: int
) -> None:
    """A file truncated after a search had cached the collection was read through the old maps (a server died of
    SIGBUS on a large file; documents.jsonl cut short gave a 500); now the cached searcher is checked before it
    answers and the search is a 503 naming the file, other collections unaffected."""
    for name in ("docs", "outra"):
        body = {"name": name, "encoder": "frases", "documents": DOCS}
        assert client.post("/v1/collections", json=body, headers=AUTH).status_code == 201
        assert client.post(f"/v1/collections/{name}/search", json={"query": "casa"}).status_code == 200
    store = client.app.state.searchers.store  # type: ignore[attr-defined]
    rel = f"{store.info('docs')['data']}/{file}"
    with (store.path("docs") / rel).open("r+b") as fh:
        fh.truncate(size)

    r = client.post("/v1/collections/docs/search", json={"query": "casa"})
    assert (r.status_code, r.json()["error"]) == (503, "IntegrityError"), r.text
    assert r.json()["detail"].startswith(f"collection 'docs' is damaged: {rel} has {size} bytes where")
    assert (r.json()["collection"], r.json()["file"]) == ("docs", rel)
    assert client.post("/v1/collections/outra/search", json={"query": "casa"}).status_code == 200


def test_api_search_of_an_open_collection_is_answered_on_the_event_loop(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No hop through the thread pool, where 16 searches at once handed the GIL back and forth (server CPU per
    vector search 2.3-2.4 ms there, 1.1-1.8 ms on the event loop; benchmarks/results/text.md). Opening a
    collection, or a long query, still runs in a worker thread."""
    from pipelines.serving.search import Searcher

    assert client.post(
        "/v1/collections", json={"name": "docs", "encoder": "frases", "documents": DOCS}, headers=AUTH
    )
    threads: list[str] = []
    real = Searcher.search

    def spy(self: Searcher, *args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Searcher, "search", spy)
    first = client.post("/v1/collections/docs/search", json={"query": "a rainha", "k": 2})  # opens it
    again = client.post("/v1/collections/docs/search", json={"query": "a rainha", "k": 2})
    assert first.status_code == again.status_code == 200, first.text
    assert first.json() == again.json()
    assert threads[0].startswith("AnyIO worker"), threads
    assert not threads[1].startswith("AnyIO worker"), threads
    monkeypatch.setattr("services.api.routes.collections.EVENT_LOOP_CHARS", 5)
    assert (
        client.post("/v1/collections/docs/search", json={"query": "a rainha", "k": 2}).json() == first.json()
    )
    assert threads[2].startswith("AnyIO worker"), threads


def test_api_search_for_words_the_encoder_does_not_know_finds_nothing_by_meaning(client: TestClient) -> None:
    """A query with no known word has no vector: every document scored 0.0 in vector mode and came back in the
    order it was added, and hybrid fused that order in, with scores like real matches' (a hostile probe)."""
    _two_collections(client)
    for mode in ("vector", "hybrid", "lexical"):
        r = client.post("/v1/collections/docs/search", json={"query": "xyzzy !!!", "mode": mode})
        assert r.status_code == 200, r.text
        assert r.json()["hits"] == [], mode
    lexical = client.post("/v1/collections/docs/search", json={"query": "castelo xyzzy", "mode": "lexical"})
    hybrid = client.post("/v1/collections/docs/search", json={"query": "castelo xyzzy", "mode": "hybrid"})
    assert [h["id"] for h in hybrid.json()["hits"]] == [h["id"] for h in lexical.json()["hits"]] == ["d1"]


def _open_files() -> list[str]:
    """What this process's file descriptors point at."""
    out = []
    for fd in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(FileNotFoundError):  # closed meanwhile (the listing's own descriptor, say)
            out.append(os.readlink(fd))
    return out


def test_api_a_whole_collection_is_removed_and_its_name_free_again(client: TestClient) -> None:
    """Documents could be deleted, a collection could not: neither HTTP nor the CLI removed one (a hostile probe)."""
    store = _two_collections(client)
    assert client.post("/v1/collections/docs/search", json={"query": "rainha"}).status_code == 200  # opened
    assert client.delete("/v1/collections/docs").status_code == 401
    assert client.post("/v1/collections/outra/search", json={"query": "rainha"}).status_code == 200
    searchers = client.app.state.searchers  # type: ignore[attr-defined]
    assert searchers.names() == ["docs", "outra"]
    r = client.delete("/v1/collections/docs", headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json() == {"name": "docs", "removed": True, "documents": 3}
    # its maps and descriptors are let go at once, not held while searches go to other collections
    assert searchers.names() == ["outra"]
    # (moved into staging, then deleted: what is still open of it reads "... (deleted)")
    held = [f for f in _open_files() if f.startswith(f"{store.root}/") and f.endswith(" (deleted)")]
    assert held == []
    r = client.post("/v1/collections/docs/search", json={"query": "rainha"})
    assert (r.status_code, r.json()["error"]) == (404, "CollectionNotFound")
    assert [c["name"] for c in client.get("/v1/collections").json()["collections"]] == ["outra"]
    assert sorted(p.name for p in store.root.iterdir() if not p.name.startswith(".")) == ["outra"]
    assert client.delete("/v1/collections/docs", headers=AUTH).status_code == 404
    body = {"name": "docs", "encoder": "frases", "documents": DOCS[:1]}
    assert client.post("/v1/collections", json=body, headers=AUTH).status_code == 201
    # a damaged one (collection.json unreadable) is removed too: it is what one wants to do with it
    (store.path("outra") / "collection.json").write_text("{ not json", encoding="utf-8")
    dead = store.root / ".staging" / "morto"  # what a remove killed half-way leaves: swept by the next one
    (dead / "outra").mkdir(parents=True)
    (store.root / ".staging" / "morto.lock").touch()
    r = client.delete("/v1/collections/outra", headers=AUTH)
    assert r.json() == {"name": "outra", "removed": True, "documents": None}, r.text
    assert not store.path("outra").exists()
    assert list((store.root / ".staging").iterdir()) == []  # nothing left behind


def test_api_a_collection_removed_by_another_worker_is_let_go_as_others_are_searched(
    settings: Settings, registry: Registry
) -> None:
    """Only get() pruned removed collections; searches of open collections go through cached(), so a worker that
    only searched others kept the removed one's files open (a review)."""
    register(registry, "w2v")
    model, _ = pooling_model(registry, "w2v", pooling="sif", sample=[d["text"] for d in DOCS])
    register_encoder(registry, "frases", model, metadata={})
    with serving(api_settings(settings, max_k=20)) as client:
        store = _two_collections(client)
        searchers = client.app.state.searchers  # type: ignore[attr-defined]
        searchers.prune_s = 0.0
        for name in ("docs", "outra"):
            assert client.post(f"/v1/collections/{name}/search", json={"query": "rainha"}).status_code == 200
        store.remove("docs")  # as another worker's DELETE does
        assert client.post("/v1/collections/outra/search", json={"query": "rainha"}).status_code == 200
        assert searchers.names() == ["outra"]
