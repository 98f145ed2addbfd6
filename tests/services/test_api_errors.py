"""Malformed requests never get a 5xx: every one answers 4xx in the shared error shape."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from models.registry import Registry
from services.settings import Settings
from tests.services.vector_models import api_settings, register, serving


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    home = tmp_path_factory.mktemp("home")
    registry = Registry(home)
    register(registry, "w2v")
    register(registry, "ft", kind="fasttext", aliases=())
    settings = api_settings(
        Settings(home=home, local_workers=0),
        max_k=50,
        max_batch=8,
        max_text_chars=100,
        max_body_bytes=4096,
        max_results=100,
    )
    with serving(settings) as client:
        yield client


def _assert_error(r, status: int | tuple[int, ...]) -> None:
    statuses = status if isinstance(status, tuple) else (status,)
    assert r.status_code in statuses, (r.status_code, r.text)
    body = r.json()
    assert isinstance(body["error"], str)
    assert isinstance(body["detail"], str)
    assert body["detail"]


BAD_BODIES = [
    ("/v1/neighbors", {}),
    ("/v1/neighbors", {"words": []}),
    ("/v1/neighbors", {"words": "rei"}),
    ("/v1/neighbors", {"words": [1, 2]}),
    ("/v1/neighbors", {"words": [None]}),
    ("/v1/neighbors", {"words": [""]}),
    ("/v1/neighbors", {"words": ["   "]}),
    ("/v1/neighbors", {"words": ["rei"], "k": 0}),
    ("/v1/neighbors", {"words": ["rei"], "k": -3}),
    ("/v1/neighbors", {"words": ["rei"], "k": "dez"}),
    ("/v1/neighbors", {"words": ["rei"], "k": 2.5}),
    ("/v1/neighbors", {"words": ["rei"], "kk": 3}),
    ("/v1/neighbors", {"words": ["rei"], "model": ""}),
    ("/v1/neighbors", {"words": ["rei"], "model": "../../etc"}),
    ("/v1/neighbors", {"words": ["rei"], "model": "w2v@"}),
    ("/v1/neighbors", {"words": ["rei"], "model": "w2v@99999999999999999999"}),
    ("/v1/neighbors", {"words": ["rei"], "model": "w2v@²"}),
    ("/v1/neighbors", {"words": ["rei"], "model": "w2v\n"}),
    ("/v1/neighbors", {"words": ["rei"], "k": True}),
    ("/v1/vectors", {"words": ["rei"], "model": "w2v@9223372036854775808"}),
    ("/v1/classify", {"texts": ["oi"], "model": "w2v@99999999999999999999"}),
    ("/v1/analogy", {"positive": ["rei"], "negative": ["rei"]}),
    ("/v1/analogy", {"positive": ["rei"], "k": True}),
    ("/v1/neighbors", {"words": ["x" * 500]}),
    ("/v1/neighbors", [1, 2, 3]),
    ("/v1/neighbors", "rei"),
    ("/v1/neighbors", None),
    ("/v1/similarity", {"pairs": []}),
    ("/v1/similarity", {"pairs": [["rei"]]}),
    ("/v1/similarity", {"pairs": [["rei", "rainha", "homem"]]}),
    ("/v1/similarity", {"pairs": [[1, 2]]}),
    ("/v1/similarity", {"pairs": "rei,rainha"}),
    ("/v1/analogy", {"positive": []}),
    ("/v1/analogy", {"positive": ["rei"], "method": "3cosdiv"}),
    ("/v1/analogy", {"positive": ["rei"], "negative": "homem"}),
    ("/v1/analogy", {"positive": ["rei"], "k": 0}),
    ("/v1/vectors", {"words": [[]]}),
    ("/v1/vectors", {"words": [{"a": 1}]}),
    ("/v1/classify", {"texts": []}),
    ("/v1/classify", {"texts": [1]}),
    ("/v1/classify", {"text": "oi"}),
]


@pytest.mark.parametrize(("path", "body"), BAD_BODIES)
def test_api_bad_bodies_are_422(client: TestClient, path: str, body: object) -> None:
    _assert_error(client.post(path, json=body), 422)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"not json",
        b'{"words": ["rei"]',
        b"\xff\xfe\x00",
        b'{"words": ["rei"], "k": 1e999}',
        b"[" * 5000,
    ],
)
def test_api_non_json_bodies_are_4xx(client: TestClient, raw: bytes) -> None:
    r = client.post("/v1/neighbors", content=raw, headers={"content-type": "application/json"})
    _assert_error(r, (413, 422))


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"word": ""},
        {"word": "   "},
        {"word": "\u200b"},  # a zero-width space, a NUL: 404 "unknown word" before (a hostile probe)
        {"word": "\u0000"},
        {"word": "\u3164"},
        {"word": "rei", "k": "x"},
        {"word": "rei", "k": "0"},
        {"word": "rei", "k": "-1"},
        {"word": "rei", "k": "1.5"},
        {"word": "x" * 1000},
        {"word": "rei", "model": "a b"},
        {"word": "rei", "model": "x" * 500},
        {"word": "rei", "model": "w2v@99999999999999999999"},
        {"word": "rei", "model": "w2v@²"},
        {"word": "rei", "model": "w2v@production\n"},
    ],
)
def test_api_bad_query_strings_are_422(client: TestClient, params: dict[str, str]) -> None:
    _assert_error(client.get("/v1/neighbors", params=params), 422)


@pytest.mark.parametrize("model", ["w2v", "ft"])
@pytest.mark.parametrize("blank", ["\u200b", "  ", "\u0000", "\u00ad", "\ufeff"])
def test_api_blank_words_in_bodies_are_422_like_the_query_string(
    client: TestClient, model: str, blank: str
) -> None:
    """The POST routes refused nothing: 404 "unknown word" on word2vec, and on FastText a silently wrong 200
    (neighbours, a cosine of 0.99, a vector, a map) from the n-grams of an invisible character."""
    for path, body in [
        ("/v1/neighbors", {"words": ["rei", blank], "k": 3}),
        ("/v1/similarity", {"pairs": [["rei", blank]]}),
        ("/v1/analogy", {"positive": ["rei", blank], "negative": ["rainha"]}),
        ("/v1/vectors", {"words": [blank]}),
        ("/v1/neighbors/map", {"word": blank, "k": 3}),
    ]:
        r = client.post(path, json={**body, "model": model})
        _assert_error(r, 422)
        detail = r.json()["detail"]  # plain whitespace is stripped and found empty by the schema itself
        assert "must not be blank" in detail or "at least 1 character" in detail, (path, r.json())


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/neighbors", {"words": ["rei"], "k": 51}),
        ("/v1/neighbors", {"words": ["rei"], "k": 10**40}),
        ("/v1/neighbors", {"words": ["rei"] * 9}),
        ("/v1/similarity", {"pairs": [["rei", "lar"]] * 9}),
        ("/v1/analogy", {"positive": ["rei"], "k": 1000}),
        ("/v1/classify", {"texts": ["a" * 101]}),
        ("/v1/classify", {"texts": ["oi"] * 9}),
    ],
)
def test_api_over_limits_are_413(client: TestClient, path: str, body: object) -> None:
    r = client.post(path, json=body)
    _assert_error(r, 413)
    assert r.json()["error"] == "TooLarge"


def test_api_total_results_are_capped_not_only_k_and_batch(client: TestClient) -> None:
    """3 words x k=40 asks for 120 results: each is within its own limit, the answer is not."""
    r = client.post("/v1/neighbors", json={"words": ["rei", "casa", "lar"], "k": 40})
    _assert_error(r, 413)
    assert r.json()["limit"] == 100
    assert "120 results" in r.json()["detail"]
    assert "PALAVRA_MAX_RESULTS" in r.json()["detail"]
    assert client.post("/v1/neighbors", json={"words": ["rei", "casa"], "k": 50}).status_code == 200


def test_api_huge_k_in_query_is_413(client: TestClient) -> None:
    _assert_error(client.get("/v1/neighbors", params={"word": "rei", "k": str(10**30)}), 413)


def test_api_too_large_body_is_413_with_or_without_length(client: TestClient) -> None:
    big = b'{"words": [' + b'"rei",' * 2000 + b'"rei"]}'
    _assert_error(
        client.post("/v1/neighbors", content=big, headers={"content-type": "application/json"}), 413
    )

    def chunks() -> Iterator[bytes]:
        yield b'{"words": ['
        for _ in range(2000):
            yield b'"rei",'
        yield b'"rei"]}'

    r = client.post("/v1/neighbors", content=chunks(), headers={"content-type": "application/json"})
    _assert_error(r, 413)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/nada"),
        ("DELETE", "/v1/neighbors"),
        ("PATCH", "/v1/models/w2v"),
        ("GET", "/v1/models/..%2F"),
    ],
)
def test_api_unknown_routes_and_methods_are_4xx(client: TestClient, method: str, path: str) -> None:
    _assert_error(client.request(method, path), (404, 405, 422))


def test_api_multipart_bodies_get_the_json_limit_outside_uploads(client: TestClient) -> None:
    big = b"--x\r\n" + b"0" * 10_000 + b"\r\n--x--\r\n"
    r = client.post("/v1/vectors", content=big, headers={"content-type": "multipart/form-data; boundary=x"})
    _assert_error(r, 413)


def test_api_unknown_versions_leave_no_state_behind(client: TestClient) -> None:
    store = client.app.state.store  # type: ignore[attr-defined]
    before = len(store._locks)
    for version in range(3, 40):
        _assert_error(client.get("/v1/neighbors", params={"word": "rei", "model": f"w2v@{version}"}), 404)
    assert len(store._locks) == before


def test_api_health_and_ready_answer_head(
    client: TestClient, tmp_path_factory: pytest.TempPathFactory
) -> None:
    for path in ("/health", "/ready"):
        r = client.head(path)
        assert r.status_code == 200, path
        assert r.content == b""
    empty = tmp_path_factory.mktemp("empty")  # nothing registered: not ready
    with serving(api_settings(Settings(home=empty, local_workers=0))) as idle:
        assert idle.head("/ready").status_code == 503
        assert idle.head("/health").status_code == 200


def test_api_wrong_content_type_is_422(client: TestClient) -> None:
    r = client.post(
        "/v1/neighbors", content=b"words=rei", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    _assert_error(r, 422)
    # JSON sent as text/plain was refused as "Input should be a valid dictionary or object ..."
    r = client.post("/v1/neighbors", content=b'{"words": ["rei"]}', headers={"content-type": "text/plain"})
    _assert_error(r, 422)
    assert r.json()["detail"] == (
        "body: the body was sent as text/plain; send JSON with Content-Type: application/json"
    )
    r = client.post("/v1/neighbors", content=b'{"words": ["rei"]}', headers={"content-type": ""})
    assert r.json()["detail"].startswith("body: the body was sent without a Content-Type"), r.text
    r = client.post("/v1/neighbors", headers={"content-type": "application/json"})
    assert r.json()["detail"] == "body: the request has no body; send a JSON object", r.text
    r = client.post("/v1/neighbors", json=["rei"])  # JSON of the wrong shape: the schema's own message
    assert "the body was sent" not in r.json()["detail"], r.text


def test_api_error_bodies_render_even_when_they_quote_a_lone_surrogate() -> None:
    from services.api.errors import ErrorResponse, error_body

    r = ErrorResponse(error_body("InvalidInput", "no such file 'a\ud800.txt'"), status_code=422)
    assert json.loads(r.body) == {"error": "InvalidInput", "detail": "no such file 'a\ud800.txt'"}


@pytest.mark.parametrize("ref", ["w2vv", "W2V", "w2vv@1", "w2vv@production"])
def test_api_unknown_model_names_get_suggestions(client: TestClient, ref: str) -> None:
    r = client.get("/v1/neighbors", params={"word": "rei", "model": ref})
    _assert_error(r, 404)
    body = r.json()
    assert body["suggestions"] == ["w2v"]
    assert "did you mean 'w2v'?" in body["detail"]
    assert client.get("/v1/models/w2vv").json()["suggestions"] == ["w2v"]


def test_api_unknown_or_repeated_query_parameters_are_refused(client: TestClient) -> None:
    # ?kk=5 was answered with the default k, and ?k=2&k=5 with one of the two: silently not what was asked
    r = client.get("/v1/neighbors?word=rei&kk=5")
    _assert_error(r, 422)
    assert r.json()["detail"] == "unknown query parameter 'kk' for /v1/neighbors: it reads k, model, word"
    assert r.json()["unknown"] == ["kk"]
    r = client.get("/v1/neighbors?word=rei&k=2&k=5")
    _assert_error(r, 422)
    assert r.json()["detail"] == "query parameter 'k' given more than once; give it once"
    r = client.post("/v1/neighbors?k=3", json={"words": ["rei"]})  # a body route reads no query parameters
    _assert_error(r, 422)
    assert r.json()["detail"].endswith("for /v1/neighbors: it takes no query parameters")
    r = client.get("/v1/jobs?limit=5&stat=queued")  # a route whose parameters come from several places
    _assert_error(r, 422)
    assert "'stat'" in r.json()["detail"]
    # every /v1 route is checked, the web page's own routes too (POST /v1/neighbors/map?k=3 ignored k)
    unchecked = []
    for path, operations in client.app.openapi()["paths"].items():  # type: ignore[attr-defined]
        if not path.startswith("/v1/"):
            continue
        url = re.sub(r"\{[^}]+\}", "1", path) + "?zz=1"
        for method in operations:
            r = client.request(method.upper(), url, json={})
            if "unknown query parameter 'zz'" not in r.text:
                unchecked.append((method, path, r.status_code))
    assert unchecked == []
    # bytes that are not UTF-8 were read as U+FFFD: 404 unknown word 'rei\ufffd'
    r = client.get("/v1/neighbors?word=rei%ff&k=2")
    _assert_error(r, 422)
    assert r.json()["detail"].startswith("query parameter 'word' is not UTF-8 text")
    # ação, percent-encoded UTF-8
    assert client.get("/v1/neighbors?word=a%C3%A7%C3%A3o&k=2").status_code == 200
    # what the routes read still works, and the probes answer whatever a prober adds
    assert client.get("/v1/neighbors?word=rei&k=2").status_code == 200
    assert client.get("/health?probe=lb").status_code == 200
