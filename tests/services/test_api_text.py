"""``POST /v1/embed`` and ``POST /v1/text-similarity``: one vector per text, one cosine per pair, common errors."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient

from models.registry import Registry, model_aliases, model_versions
from pipelines.text_encoder.build import pooling_model, register_encoder
from services.settings import Settings
from tests.services.vector_models import api_settings, register, serving


def _encoder(registry: Registry, name: str = "frases", words: str = "w2v") -> None:
    model, _ = pooling_model(registry, words, pooling="sif", sample=["o rei e a rainha", "a casa e o lar"])
    register_encoder(registry, name, model, metadata={})


@pytest.fixture
def client(settings: Settings, registry: Registry) -> Iterator[TestClient]:
    register(registry, "w2v")
    _encoder(registry)
    with serving(api_settings(settings, max_text_chars=100, max_batch=4)) as client:
        yield client


def test_api_embed_one_unit_vector_per_text(client: TestClient) -> None:
    r = client.post("/v1/embed", json={"texts": ["O Rei e a Rainha", "casa e lar", "zzz"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == {"name": "frases", "version": 1, "kind": "encoder"}
    assert r.headers["x-palavra-model"] == "frases@1"
    assert body["dim"] == 16
    norms = np.linalg.norm(np.asarray(body["vectors"]), axis=1)
    np.testing.assert_allclose(norms, [1.0, 1.0, 0.0], atol=1e-5)
    assert body["no_known_words"] == [2]  # the zero vector is named, not left to be found


def test_api_embed_names_the_texts_with_no_known_word(client: TestClient) -> None:
    r = client.post("/v1/embed", json={"texts": ["!!!", "casa e lar", "..."]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["no_known_words"] == [0, 2]
    assert not any(body["vectors"][0])


def test_api_text_similarity_follows_the_words(client: TestClient) -> None:
    pairs = [["o rei", "O REI!"], ["o rei", "a casa"]]
    r = client.post("/v1/text-similarity", json={"pairs": pairs, "model": "frases@1"})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [p["texts"] for p in results] == pairs
    assert results[0]["cosine"] == pytest.approx(1.0, abs=1e-5)
    assert results[1]["cosine"] < results[0]["cosine"]


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        ("/v1/embed", {"texts": []}, 422, "InvalidInput"),
        ("/v1/embed", {"texts": ["casa"], "extra": 1}, 422, "InvalidInput"),
        ("/v1/embed", {"texts": ["casa " * 30]}, 413, "TooLarge"),
        ("/v1/embed", {"texts": ["casa"] * 5}, 413, "TooLarge"),
        ("/v1/embed", {"texts": ["casa"], "model": "w2v"}, 422, "InvalidInput"),
        ("/v1/embed", {"texts": ["casa"], "model": "nenhum"}, 404, "ModelNotFound"),
        ("/v1/text-similarity", {"pairs": [["casa"]]}, 422, "InvalidInput"),
        ("/v1/text-similarity", {"pairs": [["a", "b"]] * 5}, 413, "TooLarge"),
    ],
)
def test_api_text_routes_bad_input(
    client: TestClient, path: str, body: object, status: int, error: str
) -> None:
    r = client.post(path, json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"] == error


def test_api_text_routes_refuse_blank_texts_and_name_them(client: TestClient) -> None:
    """Whitespace, NUL and zero-width only texts were encoded as zero vectors (cosine 0) with a 200."""
    r = client.post("/v1/embed", json={"texts": ["casa", "   ", "\u200b\u0000"]})
    assert r.status_code == 422, r.text
    assert r.json()["positions"] == [1, 2]
    r = client.post("/v1/text-similarity", json={"pairs": [["o rei", "a casa"], ["o rei", "\ufeff "]]})
    assert r.status_code == 422, r.text
    assert "empty text at pair 1 text 1" in r.json()["detail"]
    # indices into the flattened pairs would mislead: the detail names the pairs instead
    assert "positions" not in r.json()


def test_api_text_similarity_takes_as_many_pairs_as_the_batch_limit(client: TestClient) -> None:
    """Its texts were counted against PALAVRA_MAX_BATCH (4 here): 3 pairs were refused as "6 texts"."""
    r = client.post("/v1/text-similarity", json={"pairs": [["o rei", "a casa"]] * 4})
    assert r.status_code == 200, r.text
    r = client.post("/v1/text-similarity", json={"pairs": [["o rei", "a casa " * 30]]})
    assert r.status_code == 413, r.text
    assert r.json()["detail"].startswith("pair 0 text 1 has 210 characters")


def test_api_embed_encoder_whose_word_model_is_gone(settings: Settings, registry: Registry) -> None:
    register(registry, "w2v")
    register(registry, "velho", seed=3)
    _encoder(registry, "frases", "w2v")
    _encoder(registry, "orfao", "velho")
    with registry.engine.begin() as conn:
        conn.execute(model_versions.delete().where(model_versions.c.name == "velho"))
        conn.execute(model_aliases.delete().where(model_aliases.c.name == "velho"))
    with serving(api_settings(settings)) as client:
        r = client.post("/v1/embed", json={"texts": ["casa"], "model": "orfao"})
        assert r.status_code == 404, r.text
        assert "stands on word-vector model velho@1" in r.json()["detail"]
        assert client.post("/v1/embed", json={"texts": ["casa"]}).status_code == 200


def test_api_text_routes_are_counted_in_metrics(client: TestClient) -> None:
    client.post("/v1/embed", json={"texts": ["casa"]})
    text = client.get("/metrics").text
    assert 'route="/v1/embed"' in text


def test_api_wrong_kind_of_model_is_named_with_its_article(client: TestClient) -> None:
    r = client.post("/v1/embed", json={"texts": ["casa"], "model": "w2v"})
    assert r.status_code == 422, r.text
    assert "is a word2vec model; this route needs an encoder model" in r.json()["detail"]  # was "a encoder"


def test_api_no_model_of_the_kind_names_the_command_that_trains_one(
    settings: Settings, registry: Registry
) -> None:
    register(registry, "w2v")  # word vectors only: no encoder, no language model
    with serving(api_settings(settings)) as client:
        r = client.post("/v1/embed", json={"texts": ["casa"]})
        assert r.status_code == 404, r.text
        assert r.json()["detail"] == (
            "no encoder model is registered yet; train one first (`palavra train encoder`)"
        )  # was "(`palavra train`)"
        r = client.post("/v1/complete", json={"text": "o rei"})
        assert r.status_code == 404, r.text
        assert r.json()["detail"].endswith("train one first (`palavra train lm`)")
