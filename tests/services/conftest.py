"""Fixtures of the services tests: the CLI's environment, and job backends whose worker processes every jobs test
of a session shares."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from services.settings import Settings, get_settings
from tests.services.jobs_helpers import Backend, shared_backends


@pytest.fixture(scope="session")
def job_backends(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], Backend]]:
    """``get("local" | "celery")``: a backend with its workers, stopped at session end.

    The first call starts the workers of every backend the session's tests use, so that their imports (torch,
    gensim and spaCy, seconds of CPU each) overlap the first tests instead of waiting for a test of that backend.
    """
    used = set()
    for item in request.session.items:
        if "job_backends" in getattr(item, "fixturenames", ()) and not item.get_closest_marker("skip"):
            callspec = getattr(item, "callspec", None)
            used.add(callspec.params.get("backend", "local") if callspec else "local")
    with shared_backends(tmp_path_factory.mktemp("job-backends")) as get:

        def get_first(name: str) -> Backend:
            backend = get(name)
            for other in sorted(used - {name}):
                get(other)
            return backend

        yield get_first


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The test's settings as the CLI reads them: its PALAVRA_HOME, and no data mirror."""
    monkeypatch.setenv("PALAVRA_HOME", str(settings.home))
    monkeypatch.delenv("PALAVRA_DATA_MIRROR", raising=False)
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()
