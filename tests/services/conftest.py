"""Fixtures of the services tests: job backends whose worker processes every jobs test of a session shares."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.services.jobs_helpers import Backend, shared_backends


@pytest.fixture(scope="session")
def job_backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Backend]]:
    """``get("local" | "celery")``: a backend with its workers, started on first use, stopped at session end."""
    with shared_backends(tmp_path_factory.mktemp("job-backends")) as get:
        yield get
