"""Collections over HTTP: writes need a write key, searches see adds and deletes at once, errors share one shape."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from models.registry import Registry
from pipelines.text_encoder.build import pooling_model, register_encoder
from services.settings import Settings
from tests.services.vector_models import API_KEY, api_settings, register, serving

AUTH = {"Authorization": f"Bearer {API_KEY}"}
DOCS = [
    {"id": "d1", "text": "O rei e a rainha no castelo", "metadata": {"tipo": "nobreza"}},
    {"id": "d2", "text": "A casa e o lar", "metadata": {"tipo": "moradia"}},
    {"id": "d3", "text": "O homem e a mulher", "metadata": {"tipo": "pessoas"}},
]


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
