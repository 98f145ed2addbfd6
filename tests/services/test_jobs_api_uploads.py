"""The jobs route's multipart form: uploads saved under the data root, their limits, and what is refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.settings import Settings
from tests.services.jobs_api_helpers import KEY, TOML_CONFIG, api_settings, client, upload_job
from tests.services.jobs_helpers import leftovers, word2vec_config

__all__ = ["api_settings", "client"]  # fixtures


def test_jobs_api_multipart_upload_is_saved_under_the_data_root(
    client: TestClient, api_settings: Settings
) -> None:
    r = upload_job(client, TOML_CONFIG, {"frases.txt": b"O rei governa o reino.\n" * 20})
    assert r.status_code == 202, r.text
    job = client.get(r.json()["url"]).json()
    saved = job["config"]["corpus"][0]
    assert saved == f"uploads/{job['id']}/frases.txt"
    assert (api_settings.effective_data_root / saved).read_bytes().startswith(b"O rei governa")
    # cancelling a queued job removes its uploads
    assert client.delete(job["url"], headers=KEY).status_code == 200
    assert leftovers(api_settings) == []


def test_jobs_api_uploads_get_the_upload_limit_not_the_json_one(client: TestClient) -> None:
    corpus = (
        b"O rei governa o reino.\n" * 130
    )  # 2,990 bytes: over the JSON limit (2,048), under the upload one
    assert upload_job(client, TOML_CONFIG, {"frases.txt": corpus}).status_code == 202
    as_json = client.post("/v1/jobs", json={"kind": "word2vec", "config": {"x": "y" * 3000}}, headers=KEY)
    assert as_json.status_code == 413
    assert "PALAVRA_MAX_BODY_BYTES" in as_json.json()["detail"]


def test_jobs_api_upload_config_as_json_file_part(client: TestClient) -> None:
    config = json.dumps(word2vec_config("enviado", "upload:corpus.txt"))
    r = client.post(
        "/v1/jobs",
        data={"kind": "word2vec"},
        files=[
            ("config", ("run.json", config.encode(), "application/json")),
            ("files", ("corpus.txt", b"A rainha visita o castelo.\n" * 10, "text/plain")),
        ],
        headers=KEY,
    )
    assert r.status_code == 202, r.text


@pytest.mark.parametrize(
    ("files", "status", "fragment"),
    [
        ({"frases.txt": b"x" * 5000}, 413, "PALAVRA_MAX_UPLOAD_BYTES"),
        ({"frases.txt": b"o rei\n", "extra.txt": b"a rainha\n"}, 422, "not used by the config"),
        ({"outro.txt": b"o rei\n"}, 422, "no file of that name was uploaded"),
        (
            {"frases.txt": b"o rei\n", "x/frases.txt": b"a rainha\n"},
            422,
            "would both be stored as 'frases.txt'",
        ),
        ({"frases.txt": b"o rei\n", "frases?txt": b"a\n", "frases_txt": b"b\n"}, 422, "would both be stored"),
    ],
)
def test_jobs_api_bad_uploads_are_refused_and_leave_no_files(
    client: TestClient, api_settings: Settings, files: dict[str, bytes], status: int, fragment: str
) -> None:
    r = upload_job(client, TOML_CONFIG, files)
    assert r.status_code == status
    assert fragment in r.json()["detail"]
    assert leftovers(api_settings) == []
    assert client.get("/v1/jobs").json()["total"] == 0


def test_jobs_api_an_upload_with_no_corpus_format_is_refused_and_leaves_no_files(
    client: TestClient, api_settings: Settings
) -> None:
    """An upload named ``corpus`` (or ``.hidden``, stored as ``hidden``) was queued, then failed in the worker."""
    for name in ("corpus", ".hidden"):
        r = upload_job(client, TOML_CONFIG.replace("frases.txt", name), {name: b"o rei governa\n"})
        assert r.status_code == 422, r.text
        assert "unknown corpus format ''" in r.json()["detail"]
    assert leftovers(api_settings) == []
    assert client.get("/v1/jobs").json()["total"] == 0


def test_jobs_api_upload_limit_holds_for_chunked_bodies(client: TestClient, api_settings: Settings) -> None:
    boundary = "palavra"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="kind"\r\n\r\nword2vec\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="config"\r\n\r\n{TOML_CONFIG}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="frases.txt"\r\n\r\n'
        ).encode()
        + b"o rei governa\n" * 1000
        + f"\r\n--{boundary}--\r\n".encode()
    )

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 1000):
            yield body[i : i + 1000]

    r = client.post(
        "/v1/jobs",
        content=chunks(),
        headers={**KEY, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert r.status_code == 413
    assert leftovers(api_settings) == []


def test_jobs_api_multipart_over_the_form_limits_is_not_told_to_send_json(client: TestClient) -> None:
    """A form with too many files was answered "...; send UTF-8 JSON" (a hostile probe)."""
    files = [("files", (f"{i}.txt", b"a", "text/plain")) for i in range(20)]  # over MAX_FORM_FILES (16)
    r = client.post("/v1/jobs", data={"kind": "word2vec", "config": "{}"}, files=files, headers=KEY)
    assert r.status_code == 422, r.text
    assert "Too many files" in r.json()["detail"]
    assert "JSON" not in r.json()["detail"]


def test_jobs_api_config_nested_hundreds_deep_is_422_not_500(client: TestClient) -> None:
    """A config part of lists 500 deep made the TOML parser recurse past Python's limit: a 500."""
    config = ("x = " + "[" * 500 + "]" * 500).encode()
    files = [("config", ("deep.toml", config, "application/toml"))]
    r = client.post("/v1/jobs", data={"kind": "word2vec"}, files=files, headers=KEY)
    assert r.status_code == 422, r.text
    assert "nests too deep" in r.json()["detail"]


def test_jobs_api_json_naming_an_upload_says_uploads_come_in_a_multipart_request(client: TestClient) -> None:
    config = {"name": "x", "corpus": ["upload:frases.txt"], "evaluate": False}
    r = client.post("/v1/jobs", json={"kind": "word2vec", "config": config}, headers=KEY)
    assert r.status_code == 422, r.text
    assert r.json()["detail"].endswith("names a file sent with the job in a multipart request (docs/jobs.md)")


def test_jobs_api_form_fields_given_twice_or_unknown_are_refused(client: TestClient) -> None:
    """A second 'kind' or 'config' was taken silently (the last won), and a field no job reads was ignored, where a
    query string or a JSON body refuses both (a hostile probe)."""
    config = '{"name": "x", "corpus": ["upload:a.txt"], "evaluate": false}'
    files = [("files", ("a.txt", b"o rei\n", "text/plain"))]
    forms: dict[str, dict[str, Any]] = {
        "unknown form field 'foo'": {"kind": "word2vec", "config": config, "foo": "bar"},
        "the form gives 'kind' more than once": {"kind": ["classifier", "word2vec"], "config": config},
    }
    for message, data in forms.items():
        r = client.post("/v1/jobs", data=data, files=files, headers=KEY)
        assert r.status_code == 422, r.text
        assert message in r.json()["detail"]
