"""Local job workers: an idle one looks at a file, not the database, five times a second (submitting a job rings
it); those of `palavra serve` run below the API's CPU priority."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from services.jobs import local
from services.jobs.job import JobState
from services.jobs.local import IDLE_DB_POLL_S, LocalBackend, LocalWorker, local_job_workers
from services.jobs.supervisor import JobSupervisor
from services.settings import Settings
from tests.services.jobs_helpers import job_settings


def _counting_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, heartbeat_s: float
) -> tuple[Settings, LocalWorker, list[float]]:
    """Settings, a local worker that runs no job (no forkserver), and the times it queried the database."""
    settings = job_settings(tmp_path, backend="local", heartbeat_s=heartbeat_s)
    settings.home.mkdir(parents=True, exist_ok=True)
    monkeypatch.setattr(JobSupervisor, "warm_up", lambda _self: None)  # no job runs: no forkserver either
    worker = LocalWorker(settings)
    polls: list[float] = []
    claim = worker.store.claim_next

    def counted(*args: Any, **kwargs: Any) -> str | None:
        polls.append(time.monotonic())
        return claim(*args, **kwargs)

    monkeypatch.setattr(worker.store, "claim_next", counted)
    return settings, worker, polls


def test_jobs_idle_local_worker_queries_the_database_rarely_and_a_submit_wakes_it_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a long heartbeat: the reaper's interval (which also bounds an idle worker's wait) is not what is measured
    settings, worker, polls = _counting_worker(tmp_path, monkeypatch, heartbeat_s=30.0)
    ran: list[tuple[str, float]] = []

    def run(job_id: str) -> JobState:
        ran.append((job_id, time.monotonic()))
        return JobState.SUCCEEDED

    monkeypatch.setattr(worker.supervisor, "run", run)
    thread = threading.Thread(target=worker.run, kwargs={"max_jobs": 1}, daemon=True)
    thread.start()
    try:
        time.sleep(1.6)
        idle = len(polls)
        job_id = "d" * 32
        worker.store.create(job_id, "word2vec", {"name": "x"}, backend="local")
        rung = time.monotonic()
        LocalBackend(settings.home).publish(job_id)
        thread.join(timeout=10)
    finally:
        worker.stop("the test is over")
        thread.join(timeout=10)
    # 1.6 s idle: one query at the start (and at most one more), not one every 0.2 s (eight)
    assert 1 <= idle <= 2, idle
    assert [j for j, _ in ran] == [job_id]
    # claimed on the ring, well before the next query of the database would have found it
    assert ran[0][1] - rung < IDLE_DB_POLL_S / 2, ran[0][1] - rung


def test_jobs_idle_local_worker_never_queries_faster_than_five_times_a_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a heartbeat under 0.2 s the idle wait was the heartbeat itself: more queries than before the doorbell
    (a review)."""
    _, worker, polls = _counting_worker(tmp_path, monkeypatch, heartbeat_s=0.02)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    time.sleep(1.0)
    worker.stop("the test is over")
    thread.join(timeout=10)
    assert 2 <= len(polls) <= 7, len(polls)  # one at the start, then at most one per 0.2 s (50 at 0.02 s)


def test_jobs_serve_starts_its_local_workers_at_the_configured_priority(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[dict[str, Any]] = []

    class Pool:
        def __init__(self, _settings: Any, n: int, **options: Any) -> None:
            started.append({"n": n, **options})

        def __enter__(self) -> Pool:
            return self

        def __exit__(self, *_exc: object) -> None:
            return None

    monkeypatch.setattr(local, "LocalWorkerPool", Pool)
    settings = job_settings(tmp_path, backend="local", local_workers=2, local_worker_nice=12)
    with local_job_workers(settings):
        pass
    with local_job_workers(settings.model_copy(update={"local_worker_nice": 0})):
        pass
    assert started == [{"n": 2, "nice": 12}, {"n": 2, "nice": 0}]
