"""The OpenAPI document matches what the server does: every reference resolves, name and alias patterns are
documented, a 405 names every method of its path, integers are integers in a query string as in a body."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from models.errors import InvalidInput
from models.registry import ALIAS_RE, NAME_RE, REF_RE, Registry
from services.settings import Settings
from tests.services.vector_models import API_KEY, api_settings, register, serving

AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    home = tmp_path_factory.mktemp("home")
    register(Registry(home), "w2v")
    with serving(api_settings(Settings(home=home, local_workers=0))) as client:
        yield client


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_api_openapi_every_reference_resolves(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    refs = set(_refs(spec))
    assert "#/components/schemas/JobRequest" in refs
    missing = [r for r in refs if r.removeprefix("#/components/schemas/") not in schemas]
    assert missing == []
    from services.jobs.kinds import KINDS

    assert schemas["JobRequest"]["properties"]["kind"]["enum"] == list(KINDS)


def test_api_openapi_documents_name_alias_and_reference_patterns(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    alias_op = spec["paths"]["/v1/models/{name}/aliases/{alias}"]["put"]
    params = {p["name"]: p["schema"] for p in alias_op["parameters"]}
    assert params["name"]["pattern"] == NAME_RE.pattern
    assert params["alias"]["pattern"] == ALIAS_RE.pattern
    query = {p["name"]: p["schema"] for p in spec["paths"]["/v1/neighbors"]["get"]["parameters"]}
    assert REF_RE.pattern in str(query["model"])
    body = spec["components"]["schemas"]["SimilarityRequest"]["properties"]["model"]
    assert REF_RE.pattern in str(body)


@pytest.mark.parametrize(
    ("ref", "valid"),
    [
        ("w2v", True),
        ("w2v@3", True),
        ("w2v@production", True),
        ("a.b-c_d@x-1", True),
        ("w2v@", False),
        ("@3", False),
        ("w2v@3x", False),
        ("-w2v", False),
        ("w2v@prod uction", False),
        ("w2v\n", False),
    ],
)
def test_registry_reference_pattern_agrees_with_the_parser(ref: str, valid: bool) -> None:
    from models.registry import parse_ref

    assert bool(re.fullmatch(REF_RE.pattern.strip("^$"), ref)) is valid
    if valid:
        parse_ref(ref)
    else:
        with pytest.raises(InvalidInput):
            parse_ref(ref)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("delete", "/v1/neighbors", "GET, POST"),
        ("patch", "/v1/jobs", "GET, POST"),
        ("post", "/v1/models", "GET"),
    ],
)
def test_api_405_allow_lists_every_method_of_the_path(
    client: TestClient, method: str, path: str, allowed: str
) -> None:
    r = client.request(method.upper(), path)
    assert r.status_code == 405
    assert r.headers["allow"] == allowed
    assert r.json()["error"] == "MethodNotAllowed"


@pytest.mark.parametrize("k", ["5.0", "5.5", "1e1", ""])
def test_api_query_integer_refuses_what_a_body_refuses(client: TestClient, k: str) -> None:
    r = client.get("/v1/neighbors", params={"word": "rei", "k": k})
    assert r.status_code == 422, r.text
    assert r.json()["problems"][0]["field"] == "query.k"
    body = client.post("/v1/neighbors", json={"words": ["rei"], "k": 5.0})
    assert body.status_code == 422
    assert client.get("/v1/neighbors", params={"word": "rei", "k": "5"}).status_code == 200


def test_api_jobs_page_refuses_fractional_limits(client: TestClient) -> None:
    r = client.get("/v1/jobs", params={"limit": "10.0"}, headers=AUTH)
    assert r.status_code == 422, r.text


@pytest.mark.parametrize("alias", ["LATEST", "Latest", "latest"])
def test_api_alias_latest_is_reserved_in_any_case(client: TestClient, alias: str) -> None:
    r = client.put(f"/v1/models/w2v/aliases/{alias}", json={"version": 1}, headers=AUTH)
    assert r.status_code == 422
    assert "kept by the registry" in r.json()["detail"]


def test_api_routes_with_latency_goals_are_matched_before_the_management_routes(client: TestClient) -> None:
    # routes are tried in order, each included router's one by one: /v1/complete (p99 goal at 16 connections)
    # and the other serving routes first; the document lists paths in that same order
    paths = list(client.get("/openapi.json").json()["paths"])
    first_management = min(paths.index(p) for p in ("/v1/models", "/v1/jobs", "/v1/collections"))
    for serving_path in ("/v1/complete", "/v1/neighbors", "/v1/similarity", "/v1/classify"):
        assert paths.index(serving_path) < first_management, serving_path


def test_api_docs_sections_keep_their_reading_order_and_name_every_tag(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    sections = [t["name"] for t in doc["tags"]]
    assert sections[:3] == ["operations", "models", "embeddings"]
    used = {
        tag
        for operations in doc["paths"].values()
        for op in operations.values()
        for tag in op.get("tags", [])
    }
    assert used <= set(sections)
