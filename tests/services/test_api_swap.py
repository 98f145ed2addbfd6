"""Hot swap: moving an alias while threads hammer the API fails no request, and the new version takes over."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest

from models.errors import IntegrityError
from models.registry import Registry
from services.settings import Settings
from tests.services.vector_models import API_KEY, api_settings, register, serving


def test_api_alias_move_under_load_drops_no_request(settings: Settings, registry: Registry) -> None:
    register(registry, "w2v", aliases=("latest", "production"))
    register(registry, "w2v", seed=7, aliases=("latest",))
    with serving(api_settings(settings, model_refresh_s=0.05)) as client:
        stop = threading.Event()
        statuses: Counter[int] = Counter()
        versions: list[int] = []
        answered = threading.Condition()

        def hammer() -> None:
            while not stop.is_set():
                r = client.post("/v1/neighbors", json={"words": ["rei", "casa"], "k": 3})
                with answered:
                    statuses[r.status_code] += 1
                    if r.status_code == 200:
                        versions.append(r.json()["model"]["version"])
                    answered.notify_all()

        def under_load(n: int = 20, *, until: int | None = None) -> None:
            """Wait for ``n`` more answers (the last of them from version ``until``, when given)."""
            with answered:
                target = statuses.total() + n
                assert answered.wait_for(
                    lambda: statuses.total() >= target and until in (None, versions and versions[-1]),
                    timeout=30,
                ), (statuses, versions[-5:])

        threads = [threading.Thread(target=hammer) for _ in range(6)]
        for t in threads:
            t.start()
        under_load()
        # moved behind the server's back (as `palavra models alias` does): the poller must notice
        registry.set_alias("w2v", "production", 2)
        under_load(until=2)
        under_load()
        # and back through the API while the load goes on
        moved = client.put(
            "/v1/models/w2v/aliases/production", json={"version": 1}, headers={"X-API-Key": API_KEY}
        )
        under_load()
        stop.set()
        for t in threads:
            t.join()
    assert moved.status_code == 200
    assert set(statuses) == {200}, statuses
    assert 1 in versions
    assert 2 in versions
    assert versions[-1] == 1


def test_api_store_loads_new_targets_before_swapping_and_drops_idle_versions(registry: Registry) -> None:
    from services.api.loaders import loaders_for
    from services.api.model_store import EMBEDDINGS, ModelStore
    from services.settings import Settings

    register(registry, "w2v")
    register(registry, "w2v", seed=2)
    store = ModelStore(registry, loaders_for(Settings(home=registry.home)), max_idle_s=0)
    store.start(poll=False)
    assert [item.key for item in store.loaded()] == [("w2v", 1)]  # production: the first version
    assert store.get("w2v@2", EMBEDDINGS).key == ("w2v", 2)  # pinned versions load on first use
    register(registry, "w2v", seed=3)
    assert store.refresh()
    assert store.get("w2v", EMBEDDINGS).key == ("w2v", 1)  # a new version does not move the bare name
    registry.set_alias("w2v", "production", 3)
    assert store.refresh()
    # the bare name's new target was loaded during the refresh; idle versions nothing points at were dropped
    assert [item.key for item in store.loaded()] == [("w2v", 3)]
    assert store.get("w2v", EMBEDDINGS).key == ("w2v", 3)
    assert not store.refresh()  # nothing moved


def test_api_default_model_does_not_move_when_other_models_are_registered(
    settings: Settings, registry: Registry
) -> None:
    register(registry, "machado")
    with serving(api_settings(settings)) as client:
        store = client.app.state.store  # type: ignore[attr-defined]
        assert client.get("/v1/neighbors", params={"word": "rei"}).json()["model"]["name"] == "machado"
        register(registry, "machado-pequeno", seed=4)
        register(registry, "machado", seed=5)
        store.refresh()  # what the poller does, now rather than within model_refresh_s
        model = client.get("/v1/neighbors", params={"word": "rei"}).json()["model"]
        assert (model["name"], model["version"]) == ("machado", 1)


def test_api_configured_default_model_answers_requests_without_one(
    settings: Settings, registry: Registry
) -> None:
    register(registry, "machado")
    register(registry, "escolhido", seed=4)
    register(registry, "escolhido", seed=5)
    with serving(api_settings(settings, default_model="escolhido@2")) as client:
        model = client.get("/v1/neighbors", params={"word": "rei"}).json()["model"]
        assert (model["name"], model["version"]) == ("escolhido", 2)
    # a configured default that does not answer is the server's fault, not the request's (it was a 404 "model
    # not found" and a 422 "invalid model reference" for a request that named no model: a hostile probe)
    for configured in ("nenhum", "machado@", "escolhido@9"):
        with serving(api_settings(settings, default_model=configured)) as client:
            r = client.get("/v1/neighbors", params={"word": "rei"})
            assert r.status_code == 503, r.text
            assert r.json()["error"] == "NotReady"
            assert r.json()["detail"].startswith(f"this server's default embeddings model, {configured!r}, ")
            assert client.get("/v1/neighbors", params={"word": "rei", "model": "machado"}).status_code == 200
            assert client.get("/v1/neighbors", params={"word": "rei", "model": "nada"}).status_code == 404


def test_api_store_loads_again_a_wanted_version_that_failed_to_load(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker whose production model failed to load once (a file being copied back) loads it on a later poll,
    instead of answering 503 for it for the rest of its life."""
    from services.api import model_store
    from services.api.loaders import loaders_for
    from services.api.model_store import EMBEDDINGS, ModelStore
    from services.settings import Settings

    register(registry, "w2v")
    loaders = loaders_for(Settings(home=registry.home))
    failures = [IntegrityError("vectors.npy: sha256 does not match (a copy in progress)")]

    def flaky(reg: Registry, mv: Any) -> Any:
        if failures:
            raise failures.pop()
        return loaders["word2vec"](reg, mv)

    store = ModelStore(registry, {**loaders, "word2vec": flaky})
    store.start(poll=False)
    assert "w2v@1" in store.errors
    assert not store.loaded()
    monkeypatch.setattr(model_store, "RETRY_FAILED_S", 3600.0)
    assert not store.refresh()  # too soon after the last try: nothing is hashed again
    monkeypatch.setattr(model_store, "RETRY_FAILED_S", 0.0)
    assert store.refresh()
    assert "w2v@1" not in store.errors
    assert store.get("w2v", EMBEDDINGS).key == ("w2v", 1)


def test_api_ready_is_503_when_the_configured_default_is_gone(settings: Settings, registry: Registry) -> None:
    register(registry, "w2v")
    register(registry, "w2v", seed=2)
    registry.set_alias("w2v", "estavel", 2)
    with serving(api_settings(settings, default_model="w2v@estavel")) as client:
        assert client.get("/ready").status_code == 200
        registry.delete_alias("w2v", "estavel")
        client.app.state.store.refresh()  # type: ignore[attr-defined]
        r = client.get("/ready")
        assert r.status_code == 503, r.text
        assert "default embeddings model" in r.json()["detail"]
        assert "estavel" in r.json()["detail"]
