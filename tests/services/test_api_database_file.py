"""The registry's SQLite file deleted or put back while the server runs: the server says so at /ready, refuses every
write rather than losing it in the deleted file, keeps serving the models it has loaded, and uses a file put back."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from models.registry import Registry
from services.jobs.store import JobStore
from services.settings import Settings
from tests.services.jobs_helpers import word2vec_config, write_corpus
from tests.services.vector_models import API_KEY, api_settings, register, serving

AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def database(settings: Settings, registry: Registry) -> Path:
    """The registry's file, holding w2v@1 (production) and w2v@2, with staging -> 1."""
    register(registry, "w2v")
    register(registry, "w2v", seed=3)
    registry.set_alias("w2v", "staging", 1)
    # write-ahead logging, as on any server whose job store has opened: SQLite then commits to a deleted file
    JobStore.from_registry(registry)
    settings.effective_data_root.mkdir(parents=True, exist_ok=True)
    return settings.home / "registry.db"


def _gone(response: Any, database: Path, *, name: str = "metadata database") -> None:
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["error"] == "DatabaseGone"
    assert body["detail"].startswith(f"the {name} file {database} was deleted while palavra had it open")
    assert response.headers["retry-after"] == "5"


def test_api_a_deleted_database_is_not_ready_and_refuses_every_write(
    settings: Settings, database: Path
) -> None:
    """`rm registry.db` under a running server: /ready said ok and alias moves, deletions and job submissions
    answered as if done, written to the deleted file that no other process sees; now they are 503 DatabaseGone."""
    corpus = write_corpus(settings, "frases.txt", 50)
    with serving(api_settings(settings)) as client:
        job = {"kind": "word2vec", "config": word2vec_config("novo", corpus)}
        assert client.post("/v1/jobs", json=job, headers=AUTH).status_code == 202
        assert client.get("/ready").status_code == 200
        database.unlink()
        _gone(client.get("/ready"), database)
        assert client.head("/ready").status_code == 503
        _gone(client.put("/v1/models/w2v/aliases/production", json={"version": 2}, headers=AUTH), database)
        _gone(client.delete("/v1/models/w2v/aliases/staging", headers=AUTH), database)
        _gone(client.post("/v1/jobs", json=job, headers=AUTH), database)  # its model name is checked first
        _gone(client.get("/v1/jobs"), database, name="job database")
        # the models in memory still answer
        near = client.get("/v1/neighbors", params={"word": "rei", "k": 2})
        assert near.status_code == 200, near.text
        assert near.json()["model"]["version"] == 1
    assert not database.exists()  # the server never put an empty database in its place


def test_api_a_database_put_back_is_used_again(settings: Settings, database: Path, tmp_path: Path) -> None:
    """A backup moved back into place: the server reads and writes it again, and other processes see its writes."""
    backup = tmp_path / "backup.db"
    with sqlite3.connect(database) as source, sqlite3.connect(backup) as copy:
        source.backup(copy)
    with serving(api_settings(settings)) as client:
        database.unlink()
        _gone(client.get("/ready"), database)
        backup.rename(database)
        assert client.get("/ready").status_code == 200
        moved = client.put("/v1/models/w2v/aliases/staging", json={"version": 2}, headers=AUTH)
        assert moved.status_code == 200, moved.text
    assert Registry(settings.home).alias_map()[("w2v", "staging")] == 2
