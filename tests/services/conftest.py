"""Fixtures of the services tests: the CLI's environment, and job backends whose worker processes every jobs test
of a session shares."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from services.settings import Settings, get_settings
from tests.services.jobs_helpers import Backend, shared_backends


@pytest.fixture(scope="session")
def job_backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Backend]]:
    """``get("local" | "celery")``: a backend with its workers, started on first use, stopped at session end."""
    with shared_backends(tmp_path_factory.mktemp("job-backends")) as get:
        yield get


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The test's settings as the CLI reads them: its PALAVRA_HOME, and no data mirror."""
    monkeypatch.setenv("PALAVRA_HOME", str(settings.home))
    monkeypatch.delenv("PALAVRA_DATA_MIRROR", raising=False)
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()
