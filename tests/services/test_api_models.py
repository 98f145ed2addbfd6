from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from models.registry import Registry
from services.api.deps import key_matches
from services.settings import Settings
from tests.services.vector_models import API_KEY, api_settings, register, serving

AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def client(settings: Settings, registry: Registry) -> Iterator[TestClient]:
    register(registry, "w2v")
    register(registry, "w2v", seed=3)
    with serving(api_settings(settings)) as client:
        yield client


def test_api_models_list_and_show(client: TestClient) -> None:
    (row,) = client.get("/v1/models").json()["models"]
    assert row == {
        "name": "w2v",
        "kind": "word2vec",
        "latest": 2,
        "aliases": {"latest": 2, "production": 1},  # production stays on the first version
        "loaded": [1],
    }
    detail = client.get("/v1/models/w2v").json()
    assert [v["version"] for v in detail["versions"]] == [1, 2]
    meta = detail["versions"][0]["metadata"]
    assert meta["kind"] == "word2vec"
    # one timestamp format in one answer: the artifact's own created_at was +00:00 with microseconds
    assert meta["created_at"] == detail["versions"][0]["created_at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", meta["created_at"])
    assert "vectors_norm.npy" in meta["files"]
    assert len(meta["files"]["vectors_norm.npy"]) == 64
    assert client.get("/v1/models/nada").status_code == 404


@pytest.mark.parametrize(
    "headers",
    [AUTH, {"X-API-Key": API_KEY}, {"authorization": f"bearer {API_KEY}"}],
    ids=["bearer", "x-api-key", "lower"],
)
def test_api_alias_move_with_key_swaps_the_default(client: TestClient, headers: dict[str, str]) -> None:
    assert client.get("/v1/neighbors", params={"word": "rei"}).json()["model"]["version"] == 1
    r = client.put("/v1/models/w2v/aliases/production", json={"version": 2}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"name": "w2v", "alias": "production", "version": 2, "previous": 1}
    assert client.get("/v1/neighbors", params={"word": "rei"}).json()["model"]["version"] == 2


def test_api_alias_delete_with_key_and_what_cannot_be_deleted(client: TestClient) -> None:
    assert client.put("/v1/models/w2v/aliases/staging", json={"version": 2}, headers=AUTH).status_code == 200
    assert (
        client.post("/v1/similarity", json={"pairs": [["rei", "rainha"]], "model": "w2v@staging"}).status_code
        == 200
    )
    assert client.delete("/v1/models/w2v/aliases/staging").status_code == 401  # a write: needs the key
    r = client.delete("/v1/models/w2v/aliases/staging", headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json() == {"name": "w2v", "alias": "staging", "deleted": True, "previous": 2}
    r = client.post("/v1/similarity", json={"pairs": [["rei", "rainha"]], "model": "w2v@staging"})
    assert r.status_code == 404
    assert client.get("/v1/models").json()["models"][0]["aliases"] == {"latest": 2, "production": 1}
    for path, status, fragment in [
        ("/v1/models/w2v/aliases/staging", 404, "has no alias 'staging'"),
        ("/v1/models/nada/aliases/staging", 404, "nada"),
        ("/v1/models/w2v/aliases/production", 422, "move it to another version instead"),
        ("/v1/models/w2v/aliases/latest", 422, "kept by the registry"),
        ("/v1/models/w2v/aliases/9abc", 422, ""),
    ]:
        r = client.delete(path, headers=AUTH)
        assert r.status_code == status, (path, r.text)
        assert fragment in r.json()["detail"]


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer errada"}, {"X-API-Key": ""}, {"Authorization": API_KEY}]
)
def test_api_alias_move_without_valid_key_is_401(
    client: TestClient, headers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    r = client.put("/v1/models/w2v/aliases/production", json={"version": 1}, headers=headers)
    assert r.status_code == 401
    assert r.json()["error"] == "Unauthorized"
    assert client.get("/v1/models").json()["models"][0]["aliases"] == {"latest": 2, "production": 1}
    assert API_KEY not in caplog.text


def test_api_no_keys_configured_closes_state_changes(settings: Settings, registry: Registry) -> None:
    register(registry, "w2v")
    with serving(settings.model_copy(update={"api_keys": []})) as client:
        r = client.put("/v1/models/w2v/aliases/production", json={"version": 1}, headers=AUTH)
    assert r.status_code == 401
    assert "PALAVRA_API_KEYS" in r.json()["detail"]


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/models/w2v/aliases/production", {"version": 9}, 404),
        ("/v1/models/nada/aliases/production", {"version": 1}, 404),
        ("/v1/models/w2v/aliases/9abc", {"version": 1}, 422),
        ("/v1/models/w2v/aliases/production", {"version": "um"}, 422),
        ("/v1/models/w2v/aliases/production", {"version": 0}, 422),
        ("/v1/models/w2v/aliases/production", {}, 422),
        ("/v1/models/w2v/aliases/production", {"version": 99999999999999999999}, 422),
        ("/v1/models/w2v/aliases/production", {"version": True}, 422),
        ("/v1/models/w2v/aliases/evil%0A", {"version": 1}, 422),
        # a second "production" that bare names would not mean (a hostile probe)
        ("/v1/models/w2v/aliases/PRODUCTION", {"version": 2}, 422),
        ("/v1/models/w2v%40/aliases/staging", {"version": 1}, 422),
    ],
)
def test_api_alias_move_bad_input(client: TestClient, path: str, body: object, status: int) -> None:
    r = client.put(path, json=body, headers=AUTH)
    assert r.status_code == status, r.text
    assert "@@" not in r.text  # a name ending in '@' was quoted as the reference 'w2v@@1' (a hostile probe)


def test_api_protected_reads_need_a_key(settings: Settings, registry: Registry) -> None:
    register(registry, "w2v")
    with serving(api_settings(settings, protect_reads=True)) as client:
        assert client.get("/v1/neighbors", params={"word": "rei"}).status_code == 401
        assert client.get("/v1/models").status_code == 401
        assert client.get("/v1/neighbors", params={"word": "rei"}, headers=AUTH).status_code == 200
        assert client.get("/health").status_code == 200


def test_api_key_comparison() -> None:
    assert key_matches("b", ["a", "b"])
    assert not key_matches("", ["a"])
    assert not key_matches(None, ["a"])
    assert not key_matches("ab", ["a"])


@pytest.mark.services
def test_api_models_on_postgresql(settings: Settings) -> None:
    from tests.conftest import POSTGRES_URL

    pg = settings.model_copy(update={"database_url": POSTGRES_URL})
    name = f"api-{uuid.uuid4().hex[:8]}"
    registry = Registry(pg.home, POSTGRES_URL)
    register(registry, name)
    register(registry, name, seed=2)
    with serving(api_settings(pg)) as client:
        ref = {"word": "rei", "model": name}
        assert client.get("/v1/neighbors", params=ref).json()["model"]["version"] == 1
        r = client.put(f"/v1/models/{name}/aliases/production", json={"version": 2}, headers=AUTH)
        assert r.status_code == 200, r.text
        assert client.get("/v1/neighbors", params=ref).json()["model"]["version"] == 2
        assert client.get(f"/v1/models/{name}").json()["aliases"]["production"] == 2


def test_api_a_name_answers_by_the_kind_of_the_version_it_means(
    settings: Settings, registry: Registry
) -> None:
    """A registry written before a name kept one kind: its production version still answers its routes."""
    from tests.models.test_registry import UncheckedRegistry

    register(registry, "misto")  # production: word2vec
    legacy = UncheckedRegistry(registry.home, str(registry.db.engine.url))
    # newest: a classifier (a bare name still means version 1)
    with legacy.create("misto", "classifier") as w:
        w.write_json("config.json", {})
    with serving(api_settings(settings)) as client:
        for body in ({}, {"model": "misto"}, {"model": "misto@1"}):
            r = client.post("/v1/neighbors", json={"words": ["rei"], "k": 2, **body})
            assert r.status_code == 200, r.text
        r = client.post("/v1/classify", json={"texts": ["olá"], "model": "misto"})
        assert r.status_code == 422
        assert r.json()["detail"] == "model misto@1 is a word2vec model; this route needs a classifier model"
        r = client.post("/v1/neighbors", json={"words": ["rei"], "model": "misto@2"})
        assert r.status_code == 422
        assert "misto" in r.json()["detail"]
        assert "is a classifier model" in r.json()["detail"]


def test_api_alias_is_not_moved_to_a_damaged_version(client: TestClient, registry: Registry) -> None:
    """Moving production to a version whose file no longer matched its sha256 was accepted (200), and then every
    request for the model answered 503 until it was moved back (a hostile probe)."""
    damaged = registry.get("w2v@2").path / "vectors.npy"
    damaged.chmod(0o644)
    data = bytearray(damaged.read_bytes())
    data[-1] ^= 0xFF
    damaged.write_bytes(bytes(data))
    r = client.put("/v1/models/w2v/aliases/production", json={"version": 2}, headers=AUTH)
    assert r.status_code == 409, r.text
    assert r.json()["error"] == "Conflict"
    assert r.json()["detail"].startswith("w2v@2: vectors.npy ")
    assert "w2v@production was not moved" in r.json()["detail"]
    assert registry.alias_map()[("w2v", "production")] == 1
    assert client.get("/v1/neighbors", params={"word": "rei", "model": "w2v"}).status_code == 200


def test_api_model_detail_names_the_kind_a_bare_name_answers_with_and_each_versions_own(
    settings: Settings, registry: Registry
) -> None:
    # the top-level kind was the newest version's, though a bare name answers with production's (version 1)
    register(registry, "vetores")
    register(registry, "vetores", kind="fasttext", seed=2)
    with serving(api_settings(settings)) as client:
        detail = client.get("/v1/models/vetores").json()
        assert detail["kind"] == "word2vec"
        assert [(v["version"], v["kind"]) for v in detail["versions"]] == [(1, "word2vec"), (2, "fasttext")]
        r = client.get("/v1/neighbors", params={"word": "rei", "k": 2, "model": "vetores"})
        assert r.json()["model"] == {"name": "vetores", "version": 1, "kind": "word2vec"}


def test_api_models_list_by_kind_as_the_cli_does(settings: Settings, registry: Registry) -> None:
    # `palavra models list --kind` had no HTTP counterpart: ?kind=lm was ignored and every model listed
    register(registry, "vetores")
    register(registry, "sub", kind="fasttext")
    with serving(api_settings(settings)) as client:
        assert [m["name"] for m in client.get("/v1/models?kind=fasttext").json()["models"]] == ["sub"]
        assert client.get("/v1/models?kind=lm").json()["models"] == []
        r = client.get("/v1/models?kind=vetor")
        assert r.status_code == 422
        assert r.json()["detail"].startswith("unknown model kind 'vetor'; use word2vec, fasttext")
