"""The same job scenarios on both backends, with real worker processes.

local: SQLite and two `palavra worker --backend local` processes. celery: PostgreSQL and Redis on loopback and
two `palavra worker --backend celery` processes. Faults are real: a worker is SIGKILLed or SIGTERMed mid-job.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from models.errors import ModelNotFound
from services.factories import open_registry
from services.jobs.job import Job, JobState
from services.jobs.service import JobService
from tests.services.jobs_helpers import (
    JOB_TIMEOUT_S,
    Backend,
    classifier_job,
    compare_job,
    job_pid,
    leftovers,
    long_job,
    long_upload_job,
    pid_alive,
    prepared_from,
    quick_job,
    wait_until,
    word2vec_config,
)

BACKENDS = ["local", pytest.param("celery", marks=pytest.mark.services)]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, job_backends: Callable[[str], Backend]) -> Backend:
    """A backend with at least one worker process; the session's other jobs tests share its workers."""
    b = job_backends(request.param)
    b.ensure_workers(1)
    return b


def _finished(service: JobService, job_id: str, *, timeout: float = 120.0) -> JobState:
    return wait_until(
        lambda: (job := service.get(job_id)).state.terminal and job.state,
        timeout=timeout,
        what=f"job {job_id} to end",
    )


def _at_epoch(service: JobService, job_id: str, epoch: int = 2) -> Job:
    return wait_until(
        lambda: (
            (job := service.get(job_id)).state is JobState.RUNNING
            and job.progress is not None
            and (job.progress.epoch or 0) >= epoch
            and job
        ),
        timeout=120,
        what=f"job {job_id} to reach epoch {epoch}",
    )


def test_jobs_run_to_success_with_progress_logs_and_model(backend: Backend) -> None:
    service = backend.service
    job = quick_job(service, "quick")
    assert job.state is JobState.QUEUED
    assert _finished(service, job.id) is JobState.SUCCEEDED
    done = service.get(job.id)
    assert done.model_ref == "quick@1"
    assert done.progress is not None
    assert done.progress.fraction == 1.0
    assert done.progress.epoch == 2
    assert done.started_at is not None
    assert done.finished_at is not None
    assert done.created_at <= done.started_at <= done.finished_at
    assert done.worker is not None
    assert done.worker.startswith(f"{backend.name}@")
    lines = [line.line for line in service.logs(job.id)]
    assert any(line.startswith("epoch 2/2") for line in lines)
    assert lines[-1] == "succeeded; registered quick@1"
    assert open_registry(backend.settings).get("quick@1").metadata["job_id"] == job.id


def test_jobs_compare_grid_keeps_its_table_and_report(backend: Backend) -> None:
    service = backend.service
    job = compare_job(service)
    assert _finished(service, job.id) is JobState.SUCCEEDED
    done = service.get(job.id)
    assert done.model_ref is None  # a comparison registers no model
    assert done.result is not None
    assert [(r["optimizer"], r["activation"]) for r in done.result["runs"]] == [
        ("sgd", "relu"),
        ("adam", "relu"),
    ]
    report = Path(done.result["report"])
    assert report.parent == backend.settings.home / "reports" / job.id
    assert "| optimizer |" in report.read_text(encoding="utf-8")


def test_jobs_failure_is_recorded_and_the_worker_goes_on(backend: Backend) -> None:
    service = backend.service
    (backend.settings.effective_data_root / "vazio.txt").write_text("\n\n", encoding="utf-8")
    bad = {
        service.submit("word2vec", word2vec_config("empty", "vazio.txt")).id: "EmptyCorpus:",
        classifier_job(service, "one-class", labels=("pos",)).id: "DatasetError:",
    }
    good = [classifier_job(service, f"classifier-{i}") for i in range(2)]
    for job_id, error in bad.items():
        assert _finished(service, job_id) is JobState.FAILED
        failed = service.get(job_id)
        assert failed.error is not None
        assert failed.error.startswith(error)
        assert failed.model_ref is None
    for job in good:
        assert _finished(service, job.id) is JobState.SUCCEEDED
        assert service.get(job.id).model_ref == f"{job.config['name']}@1"
    registry = open_registry(backend.settings)
    for name in ("empty", "one-class"):
        with pytest.raises(ModelNotFound):
            registry.versions(name)
    assert registry.get("classifier-0").kind == "classifier"


def test_jobs_cancelled_jobs_register_nothing_leave_nothing_and_queued_ones_never_run(
    backend: Backend,
) -> None:
    backend.ensure_workers(2)
    service = backend.service
    running = [long_job(service, f"cancelled-{i}") for i in range(2)]  # one per worker
    pids = [job_pid(service, _at_epoch(service, job.id).id) for job in running]
    queued = quick_job(service, "cancelled-queued")  # both workers are busy
    assert service.cancel(queued.id).state is JobState.CANCELLED
    for job in running:
        assert service.cancel(job.id).state is JobState.CANCELLED
    for pid in pids:
        assert pid is not None
        wait_until(lambda pid=pid: not pid_alive(pid), timeout=15, what="the cancelled job's process to stop")
    probe = quick_job(service, "after-cancel")
    assert _finished(service, probe.id) is JobState.SUCCEEDED
    registry = open_registry(backend.settings)
    for job in [*running, queued]:
        record = service.get(job.id)
        assert record.state is JobState.CANCELLED
        assert record.model_ref is None
        with pytest.raises(ModelNotFound):
            registry.versions(str(job.config["name"]))
    assert service.get(queued.id).started_at is None
    assert leftovers(backend.settings) == []


def test_jobs_a_recorded_job_is_never_lost_even_if_never_sent(backend: Backend) -> None:
    service = backend.service
    config = service.store.get(quick_job(service, "sent").id).config
    # what the API leaves behind when it dies between recording a job and sending it (Celery: to Redis)
    unsent = service.store.create("d" * 32, "word2vec", {**config, "name": "unsent"}, backend=backend.name)
    assert _finished(service, unsent.id) is JobState.SUCCEEDED
    assert service.get(unsent.id).model_ref == "unsent@1"


def test_jobs_killed_worker_fails_its_job_and_loses_nothing(backend: Backend) -> None:
    backend.ensure_workers(2)
    service = backend.service
    # its corpus uploaded with it: the upload and the corpus prepared from it must go with the failed job
    doomed = _at_epoch(service, long_upload_job(service, "doomed").id)
    uploads = service.data_root.upload_dir(doomed.id)
    assert prepared_from(backend.settings, uploads) != []
    victim = backend.worker_running(doomed)
    pid = job_pid(service, doomed.id)
    assert pid is not None
    victim.kill()
    # the job's own process dies with its worker: nothing trains on without heartbeats
    wait_until(lambda: not pid_alive(pid), timeout=10, what="the orphaned job process to exit")
    after = quick_job(service, "after-kill")
    assert _finished(service, after.id) is JobState.SUCCEEDED  # the surviving worker takes it
    assert _finished(service, doomed.id, timeout=JOB_TIMEOUT_S + 60) is JobState.FAILED
    failed = service.get(doomed.id)
    assert failed.error is not None
    assert "stopped sending heartbeats" in failed.error
    assert failed.model_ref is None
    with pytest.raises(ModelNotFound):
        open_registry(backend.settings).versions("doomed")
    assert leftovers(backend.settings) == []
    assert not uploads.exists()
    assert prepared_from(backend.settings, uploads) == []


def test_jobs_worker_stopped_with_sigterm_fails_its_job_with_that_reason(backend: Backend) -> None:
    service = backend.service
    job = _at_epoch(service, long_job(service, "interrupted").id)
    victim = backend.worker_running(job)
    victim.stop()
    assert victim.proc.returncode == 0, victim.output()
    failed = service.get(job.id)
    assert failed.state is JobState.FAILED
    assert failed.error is not None
    assert "was stopped (SIGTERM" in failed.error
    with pytest.raises(ModelNotFound):
        open_registry(backend.settings).versions("interrupted")
    assert leftovers(backend.settings) == []
