"""What the jobs-route tests share: a keyed app with small body and upload limits, and how they submit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.api.app import create_app
from services.settings import Settings
from tests.services.jobs_helpers import job_settings

KEY = {"Authorization": "Bearer segredo"}


@pytest.fixture
def api_settings(tmp_path: Path) -> Settings:
    return job_settings(
        tmp_path, backend="local", api_keys=["segredo"], max_upload_bytes=4096, max_body_bytes=2048
    )


@pytest.fixture
def client(api_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings)) as c:
        yield c


def submit_job(client: TestClient, config: dict[str, Any], kind: str = "word2vec") -> Any:
    return client.post("/v1/jobs", json={"kind": kind, "config": config}, headers=KEY)


def upload_job(client: TestClient, config: str, files: dict[str, bytes], kind: str = "word2vec") -> Any:
    parts = [("files", (name, data, "text/plain")) for name, data in files.items()]
    return client.post("/v1/jobs", data={"kind": kind, "config": config}, files=parts, headers=KEY)


TOML_CONFIG = """
name = "enviado"
corpus = ["upload:frases.txt"]
evaluate = false
[train]
algorithm = "word2vec"
min_count = 1
"""
