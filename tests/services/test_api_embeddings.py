from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from models.registry import Registry
from services.settings import Settings
from tests.services.vector_models import api_settings, register, serving, vectors


@pytest.fixture
def client(settings: Settings, registry: Registry) -> Iterator[TestClient]:
    register(registry, "w2v")
    register(registry, "ft", kind="fasttext", seed=1)
    registry.set_alias("w2v", "production", 1)
    with serving(api_settings(settings)) as client:
        yield client


def test_api_neighbors_get_names_the_model_and_excludes_the_word(client: TestClient) -> None:
    r = client.get("/v1/neighbors", params={"word": "Casa", "k": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == {"name": "w2v", "version": 1, "kind": "word2vec"}
    assert r.headers["x-palavra-model"] == "w2v@1"
    assert body["token"] == "casa"
    assert body["neighbors"][0]["word"] == "casas"
    assert "casa" not in [n["word"] for n in body["neighbors"]]
    assert len(body["neighbors"]) == 3


def test_api_neighbors_batch_matches_single_queries(client: TestClient) -> None:
    batch = client.post("/v1/neighbors", json={"words": ["rei", "casa"], "k": 4}).json()
    for row in batch["results"]:
        single = client.get("/v1/neighbors", params={"word": row["word"], "k": 4}).json()
        assert [n["word"] for n in single["neighbors"]] == [n["word"] for n in row["neighbors"]]


def test_api_neighbors_phrase_is_joined_like_training(client: TestClient) -> None:
    body = client.get("/v1/neighbors", params={"word": "São Paulo", "k": 2}).json()
    assert body["token"] == "são_paulo"
    assert body["in_vocabulary"] is True


def test_api_unknown_words_404_lists_them_with_suggestions(client: TestClient) -> None:
    r = client.post("/v1/similarity", json={"pairs": [["acao", "rei"], ["rei", "zzzq"]]})
    assert r.status_code == 404
    body = r.json()
    assert body["error"] == "UnknownWord"
    assert body["words"] == ["acao", "zzzq"]
    assert body["suggestions"]["acao"] == ["ação"]


def test_api_similarity_one_cosine_per_pair(client: TestClient) -> None:
    body = client.post("/v1/similarity", json={"pairs": [["rei", "Rei"], ["casa", "casas"]]}).json()
    assert [p["words"] for p in body["results"]] == [["rei", "Rei"], ["casa", "casas"]]
    assert body["results"][0]["cosine"] == pytest.approx(1.0, abs=1e-5)
    assert body["results"][1]["cosine"] > 0.9


@pytest.mark.parametrize("method", ["3cosadd", "3cosmul"])
def test_api_analogy_finds_constructed_answer(client: TestClient, method: str) -> None:
    body = client.post(
        "/v1/analogy", json={"positive": ["rei", "mulher"], "negative": ["homem"], "k": 2, "method": method}
    ).json()
    assert body["answers"][0]["word"] == "rainha"
    assert body["method"] == method


def test_api_vectors_returns_stored_vectors(client: TestClient) -> None:
    body = client.post("/v1/vectors", json={"words": ["rei", "CASA"]}).json()
    assert body["dim"] == 16
    assert [v["token"] for v in body["vectors"]] == ["rei", "casa"]
    assert all(len(v["vector"]) == 16 for v in body["vectors"])


def test_api_fasttext_answers_unknown_words_from_subwords(client: TestClient) -> None:
    body = client.get("/v1/neighbors", params={"word": "casinha", "k": 3, "model": "ft"}).json()
    assert body["model"]["kind"] == "fasttext"
    assert body["in_vocabulary"] is False
    assert len(body["neighbors"]) == 3


@pytest.mark.parametrize(
    ("ref", "version"), [("w2v", 1), ("w2v@2", 2), ("w2v@latest", 2), ("w2v@production", 1), (None, 1)]
)
def test_api_model_refs_pick_versions(
    client: TestClient, registry: Registry, ref: str | None, version: int
) -> None:
    register(registry, "w2v", seed=5)  # version 2 becomes latest; production stays 1
    client.app.state.store.refresh()  # what the poller does within model_refresh_s
    params = {"word": "rei", "k": 1} | ({"model": ref} if ref else {})
    r = client.get("/v1/neighbors", params=params)
    assert r.status_code == 200, r.text
    assert r.json()["model"]["version"] == version


@pytest.mark.parametrize("ref", ["nada", "w2v@9", "w2v@staging"])
def test_api_unknown_models_are_404(client: TestClient, ref: str) -> None:
    r = client.get("/v1/neighbors", params={"word": "rei", "model": ref})
    assert r.status_code == 404
    assert r.json()["error"] == "ModelNotFound"


def test_api_classify_refuses_a_vector_model(client: TestClient) -> None:
    r = client.post("/v1/classify", json={"texts": ["bom dia"], "model": "w2v"})
    assert r.status_code == 422
    assert "word2vec" in r.json()["detail"]


def test_api_serves_trained_word2vec_and_fasttext(settings: Settings, w2v_model, ft_model) -> None:
    with serving(api_settings(settings)) as client:
        body = client.get("/v1/neighbors", params={"word": "Rainha", "k": 3, "model": w2v_model.name}).json()
        assert body["token"] == "rainha"
        assert len(body["neighbors"]) == 3
        r = client.get("/v1/neighbors", params={"word": "rainhaa", "model": w2v_model.name})
        assert r.status_code == 404
        assert "rainha" in r.json()["suggestions"]["rainhaa"]
        body = client.get("/v1/neighbors", params={"word": "rainhazinha", "model": ft_model.name}).json()
        assert body["model"]["kind"] == "fasttext"
        assert body["in_vocabulary"] is False
        assert len(body["neighbors"]) == 10


def test_api_neighbors_from_the_table_match_exact_search_and_subwords_still_work(
    settings: Settings, registry: Registry
) -> None:
    register(registry, "ft", kind="fasttext", seed=2)
    with serving(api_settings(settings, ann_min_vocab=5)) as client:
        ann = client.get("/v1/models/ft").json()["versions"][0]["metadata"]["ann"]
        assert ann["table"]["method"] == "exact"
        assert ann["table"]["width"] == 10
        served = client.get("/v1/neighbors", params={"word": "rei", "k": 10, "model": "ft"}).json()
        exact = vectors(seed=2, ngrams=True)
        expected = exact.top_k(exact.unit_matrix(["rei"]), 10, exclude=[[0]])[0]
        assert [n["word"] for n in served["neighbors"]] == [n.word for n in expected]
        assert [n["score"] for n in served["neighbors"]] == pytest.approx(
            [n.score for n in expected], abs=1e-5
        )
        # an unknown word has no table row: its subword vector is searched instead
        oov = client.get("/v1/neighbors", params={"word": "reizinho", "k": 3, "model": "ft"}).json()
        assert oov["in_vocabulary"] is False
        assert len(oov["neighbors"]) == 3
        # the event-loop path resolves versions and aliases as the threaded one does (bare name: production)
        register(registry, "ft", kind="fasttext", seed=3)
        registry.set_alias("ft", "production", 1)
        deadline = time.monotonic() + 10  # workers see moved aliases within PALAVRA_MODEL_REFRESH_S
        while time.monotonic() < deadline:
            latest = client.get("/v1/neighbors", params={"word": "rei", "k": 2, "model": "ft@latest"})
            if latest.json()["model"]["version"] == 2:
                break
            time.sleep(0.05)
        for ref, version in (("ft@1", 1), ("ft@production", 1), ("ft@2", 2), ("ft@latest", 2), ("ft", 1)):
            r = client.get("/v1/neighbors", params={"word": "rei", "k": 2, "model": ref})
            assert r.status_code == 200, (ref, r.text)
            assert r.json()["model"]["version"] == version, ref
        batch = client.post(
            "/v1/neighbors", json={"words": ["rei", "reizinho"], "k": 3, "model": "ft@1"}
        ).json()
        assert [n["word"] for n in batch["results"][0]["neighbors"]] == [n.word for n in expected[:3]]
        assert batch["results"][1]["neighbors"] == oov["neighbors"]


def test_api_neighbor_table_can_be_turned_off(settings: Settings, registry: Registry) -> None:
    register(registry, "ft", kind="fasttext", seed=2)
    with serving(api_settings(settings, ann_min_vocab=5, neighbor_table_width=0)) as client:
        ann = client.get("/v1/models/ft").json()["versions"][0]["metadata"]["ann"]
        assert "table" not in ann
        served = client.get("/v1/neighbors", params={"word": "rei", "k": 3, "model": "ft"})
        assert served.status_code == 200
        assert len(served.json()["neighbors"]) == 3
    assert not list((settings.cache_dir / "ann").glob("*.ids.npy"))


def test_api_loading_a_model_only_reads_the_registry(settings: Settings, registry: Registry) -> None:
    """A version loaded on its first request, with a search index built for it then, is served from a read-only
    database and leaves its row and its metadata.json as they were."""
    register(registry, "ft", kind="fasttext", seed=2)
    register(registry, "ft", kind="fasttext", seed=3)  # not production: loaded on first use, not at start
    stored = registry.get("ft@2")
    metadata_file = stored.path / "metadata.json"
    before = (metadata_file.read_bytes(), metadata_file.stat().st_mtime_ns)
    read_only = f"sqlite:///file:{settings.home / 'registry.db'}?mode=ro&uri=true"
    with serving(api_settings(settings, ann_min_vocab=5, database_url=read_only)) as client:
        r = client.get("/v1/neighbors", params={"word": "rei", "k": 3, "model": "ft@2"})
        assert r.status_code == 200, r.text
        assert r.json()["model"]["version"] == 2
        shown = client.get("/v1/models/ft").json()["versions"][1]["metadata"]
        assert shown["ann"]["source"] == "cache"  # built at load time, described from the loaded model
    assert registry.get("ft@2").metadata == stored.metadata
    assert "ann" not in stored.metadata
    assert (metadata_file.read_bytes(), metadata_file.stat().st_mtime_ns) == before
