"""Faults injected into jobs: a full disk, a database that refuses writes or goes away, a broker that lost its
messages, and inputs that are the data root's only in name (hard links, other owners)."""

from __future__ import annotations

import dataclasses
import errno
import gzip
import io
import multiprocessing
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from models.errors import DatabaseUnavailable, DiskFull, PathNotAllowed
from models.registry import Registry
from pipelines.reading import corpus_cache
from pipelines.text.normalize import NormalizeConfig
from pipelines.text.preprocess import prepare_corpus
from services.api.app import create_app
from services.jobs import kinds
from services.jobs.cleanup import remove_leftovers
from services.jobs.inputs import DataRoot
from services.jobs.job import JobState
from services.jobs.local import LocalBackend
from services.jobs.runner import execute_job
from services.jobs.service import JobService
from services.jobs.store import JobStore, jobs_table
from services.jobs.supervisor import JobSupervisor
from services.settings import Settings
from tests.conftest import REDIS_URL
from tests.services.jobs_helpers import (
    TcpProxy,
    forget_queue,
    job_settings,
    leftovers,
    postgres_database,
    word2vec_config,
    write_corpus,
)

KEY = {"Authorization": "Bearer segredo"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return job_settings(tmp_path, backend="local", api_keys=["segredo"], job_timeout_s=0.5)


@pytest.fixture
def store(settings: Settings) -> Iterator[JobStore]:
    settings.home.mkdir(parents=True, exist_ok=True)
    store = JobStore.from_registry(Registry(settings.home, settings.effective_database_url))
    yield store
    store.engine.dispose()


# -- a full disk ---------------------------------------------------------------------------------------------
class _FullDevice(io.RawIOBase):
    """A file on a device that takes ``room`` bytes, then answers every write with ENOSPC."""

    def __init__(self, room: int) -> None:
        self.room = room

    def writable(self) -> bool:
        return True

    def write(self, block: Any) -> int:
        if len(block) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(block)
        return len(block)


class _FullDataRoot(DataRoot):
    def _create(self, target: Path) -> BinaryIO:
        target.touch()  # what the real open leaves behind: a file, partly written
        return _FullDevice(room=10)  # type: ignore[return-value]


def test_jobs_upload_on_a_full_disk_is_503_and_leaves_nothing(settings: Settings, store: JobStore) -> None:
    with TestClient(create_app(settings)) as client:
        service = JobService(settings, store, backend=LocalBackend(settings.home))
        service.data_root = _FullDataRoot(settings.effective_data_root)
        client.app.state.jobs = service  # type: ignore[attr-defined]
        config = 'name = "cheio"\ncorpus = ["upload:frases.txt"]\nevaluate = false\n'
        r = client.post(
            "/v1/jobs",
            data={"kind": "word2vec", "config": config},
            files=[("files", ("frases.txt", b"O rei governa o reino.\n" * 50, "text/plain"))],
            headers=KEY,
        )
        assert r.status_code == 503, r.text
        assert r.json()["error"] == "DiskFull"
        assert "no space left on device to save the upload 'frases.txt'" in r.json()["detail"]
        assert r.headers["retry-after"] == "5"
        assert client.get("/v1/jobs").json()["total"] == 0
    assert leftovers(settings) == []


def test_jobs_data_root_save_upload_turns_enospc_into_disk_full(tmp_path: Path) -> None:
    root = _FullDataRoot(tmp_path / "data")
    with pytest.raises(DiskFull, match="free disk space"):
        root.save_upload("j1", "a.txt", io.BytesIO(b"x" * 100), max_bytes=1000)
    assert not root.upload_dir("j1").exists()


def _no_space_run(_run: Any, _ctx: Any) -> Any:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/dados/cache/corpus/abc.txt")


class _DiskFullStore:
    """Switches JobStore writes into what SQLite answers on a full disk: in the job's process, always; in the
    worker, for the first ``refusals`` attempts to fail the job (then the disk has room again)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, refusals: int) -> None:
        self.worker_pid = os.getpid()
        self.refusals = refusals
        self.fail_calls = 0
        original_fail, original_log = JobStore.fail, JobStore.log

        def full() -> DatabaseUnavailable:
            return DatabaseUnavailable("the job database is unreachable (sqlite): database or disk is full")

        def fail(store: JobStore, *args: Any, **kwargs: Any) -> bool:
            if os.getpid() != self.worker_pid:
                raise full()
            self.fail_calls += 1
            if self.fail_calls <= self.refusals:
                raise full()
            return original_fail(store, *args, **kwargs)

        def log(store: JobStore, *args: Any, **kwargs: Any) -> None:
            if os.getpid() != self.worker_pid:
                raise full()
            original_log(store, *args, **kwargs)

        monkeypatch.setattr(JobStore, "fail", fail)
        monkeypatch.setattr(JobStore, "log", log)


def test_jobs_disk_full_mid_job_fails_it_with_the_true_reason(
    settings: Settings, store: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = write_corpus(settings, "frases.txt", 20)
    job_id = "f" * 32
    store.create(job_id, "word2vec", word2vec_config("cheio", corpus), backend="local")
    assert store.claim(job_id, "w")
    # the trainer hits the full disk, and the database (SQLite on that disk) refuses the failure record
    monkeypatch.setitem(
        kinds.KINDS, "word2vec", dataclasses.replace(kinds.KINDS["word2vec"], run=_no_space_run)
    )
    disk = _DiskFullStore(monkeypatch, refusals=3)
    supervisor = JobSupervisor(settings, store, "w", ctx=multiprocessing.get_context("fork"))
    supervisor.retry_s = 0.01
    assert supervisor.run(job_id) is JobState.FAILED  # the worker lives on and records it once it can
    assert disk.fail_calls == 4
    job = store.get(job_id)
    assert job.error == (
        "DiskFull: no space left on device writing /dados/cache/corpus/abc.txt; free disk space and submit "
        "the job again"
    )
    assert store.logs(job_id)[-1].line == f"failed: {job.error}"


def test_jobs_reads_answer_while_the_reaper_cannot_write(
    settings: Settings, store: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = "s" * 32
    store.create(job_id, "word2vec", {"name": "x"}, backend="local")
    store.claim(job_id, "w")
    _age(store, "heartbeat_at")  # silent for long: the reaper wants to fail it

    def refuse(*_args: Any, **_kwargs: Any) -> bool:
        raise DatabaseUnavailable("the job database is unreachable: database or disk is full")

    monkeypatch.setattr(JobStore, "fail_if_stale", refuse)
    service = JobService(settings, store, backend=LocalBackend(settings.home))
    assert service.get(job_id).state is JobState.RUNNING
    assert service.list_jobs()[1] == 1


# -- inputs that are not the data root's own -------------------------------------------------------------------
def test_jobs_data_root_refuses_hard_links_and_other_owners(tmp_path: Path) -> None:
    root = DataRoot(tmp_path / "data")
    secret = tmp_path / "segredo.txt"
    secret.write_text("root:x:0:0\n", encoding="utf-8")
    os.link(secret, root.root / "hl.txt")
    (root.root / "pasta").mkdir()
    os.link(secret, root.root / "pasta" / "hl.txt")
    (root.root / "ok.txt").write_text("o rei\n", encoding="utf-8")
    with pytest.raises(PathNotAllowed, match="is a hard link"):
        root.resolve("hl.txt")
    with pytest.raises(PathNotAllowed, match="is a hard link"):
        root.resolve("pasta", allow_dir=True)
    assert root.resolve("ok.txt") == root.root / "ok.txt"
    root.owners = {os.geteuid() + 1}  # as if the data root and palavra belonged to another user than the file
    with pytest.raises(PathNotAllowed, match="not to the data root's owner"):
        root.resolve("ok.txt")


def test_jobs_api_refuses_a_hard_link_into_the_data_root(settings: Settings, tmp_path: Path) -> None:
    write_corpus(settings, "x.txt", 5)
    os.link(settings.effective_data_root / "x.txt", tmp_path / "y.txt")  # x.txt now has two names
    with TestClient(create_app(settings)) as client:
        r = client.post(
            "/v1/jobs", json={"kind": "word2vec", "config": word2vec_config("hl", "x.txt")}, headers=KEY
        )
    assert r.status_code == 422
    assert r.json()["error"] == "PathNotAllowed"
    assert "hard link" in r.json()["detail"]


# -- the database goes away and comes back ---------------------------------------------------------------------
@pytest.mark.services
def test_jobs_api_database_down_then_back_recovers_without_restart(tmp_path: Path) -> None:
    with postgres_database() as database:
        target = sa.make_url(database)
        proxy = TcpProxy((target.host or "127.0.0.1", target.port or 5432))
        url = target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        settings = job_settings(tmp_path, backend="local", database_url=url, api_keys=["segredo"])
        corpus = write_corpus(settings, "frases.txt", 50)
        submit = {"kind": "word2vec", "config": word2vec_config("w", corpus)}
        with TestClient(create_app(settings)) as client:
            first = client.post("/v1/jobs", json=submit, headers=KEY)
            assert first.status_code == 202
            proxy.close()
            for r in (client.post("/v1/jobs", json=submit, headers=KEY), client.get(first.json()["url"])):
                assert r.status_code == 503
                assert r.json()["error"] == "DatabaseUnavailable"
            proxy.reopen()
            again = client.post("/v1/jobs", json=submit, headers=KEY)
            assert again.status_code == 202, again.text
            assert client.get(first.json()["url"]).json()["state"] == "queued"
            assert client.get("/v1/jobs").json()["total"] == 2
        proxy.close()


# -- the broker loses its messages -----------------------------------------------------------------------------
@pytest.mark.services
def test_jobs_celery_jobs_stranded_by_a_broker_restart_are_sent_again_once(tmp_path: Path) -> None:
    import redis

    from services.jobs.celery_app import CeleryBackend, Republisher, _job_id_of

    settings = job_settings(tmp_path, backend="celery")
    settings.home.mkdir(parents=True, exist_ok=True)
    store = JobStore.from_registry(Registry(settings.home, settings.effective_database_url))
    backend = CeleryBackend(settings)
    service = JobService(settings, store, backend=backend)
    corpus = write_corpus(settings, "frases.txt", 20)
    client = redis.Redis.from_url(REDIS_URL)
    queue = settings.job_queue

    def in_queue() -> list[str | None]:
        return sorted(_job_id_of(m) or "" for m in client.lrange(queue, 0, -1))

    try:
        jobs = sorted(service.submit("word2vec", word2vec_config(f"w{i}", corpus)).id for i in range(3))
        republisher = Republisher(store, backend, after_s=60)
        _age(store, "published_at")  # all three sent an hour ago and never started
        assert republisher.run() == []  # their messages wait in the queue: nothing to send
        assert in_queue() == jobs
        assert store.claim(jobs[0], "w")  # one of them starts (its message is taken)
        client.delete(queue)  # Redis restarted without persistence: the queue is gone
        assert sorted(republisher.run()) == jobs[1:]  # the queued ones are sent again, the running one not
        assert in_queue() == jobs[1:]
        _age(store, "published_at")
        assert republisher.run() == []  # their messages are back: no duplicates, however often it runs
        assert in_queue() == jobs[1:]
        # two workers' housekeeping racing on one stranded job: exactly one of them may send it
        (job_id, sent_at), *_ = store.stranded(60)
        assert store.mark_republished(job_id, sent_at) is True
        assert store.mark_republished(job_id, sent_at) is False
    finally:
        client.close()
        forget_queue(settings)
        store.engine.dispose()


def _age(store: JobStore, column: str) -> None:
    """Move a timestamp of every job an hour back."""
    with store.engine.begin() as conn:
        conn.execute(jobs_table.update().values({column: datetime.now(UTC) - timedelta(hours=1)}))


# -- bombs and the cache --------------------------------------------------------------------------------------
def test_jobs_a_line_bomb_fails_the_job_with_the_limit_it_passed(tmp_path: Path) -> None:
    settings = job_settings(tmp_path, backend="local", corpus_max_line_bytes=1000)
    settings.home.mkdir(parents=True, exist_ok=True)
    store = JobStore.from_registry(Registry(settings.home, settings.effective_database_url))
    bomb = settings.effective_data_root / "bomba.txt.gz"
    bomb.write_bytes(gzip.compress(b"o rei governa o reino\n" + b"a" * 100_000 + b"\n"))
    job_id = "b" * 32
    store.create(job_id, "word2vec", word2vec_config("bomba", bomb.name), backend="local")
    store.claim(job_id, "w")
    assert execute_job(settings, job_id, "w") is False
    error = store.get(job_id).error or ""
    assert error.startswith(f"CorpusError: {bomb}:2: a line longer than 1,000 bytes")
    assert "PALAVRA_CORPUS_MAX_LINE_BYTES" in error
    assert corpus_cache.entries(settings.cache_dir / "corpus") == []
    store.engine.dispose()


def test_jobs_a_failed_upload_job_leaves_no_prepared_corpus(settings: Settings, store: JobStore) -> None:
    job_id = "u" * 32
    data_root = DataRoot(settings.effective_data_root)
    saved = data_root.save_upload(
        job_id, "frases.txt", io.BytesIO(b"O rei governa o reino.\n" * 50), max_bytes=10**6
    )
    prepared = prepare_corpus(
        [data_root.resolve(saved)], NormalizeConfig(), cache_dir=settings.cache_dir, workers=1
    )
    corpus_cache.release(prepared.path.with_suffix(".json"))  # the job's process has ended
    store.create(
        job_id, "word2vec", word2vec_config("enviado", saved), backend="local", upload_dir=f"uploads/{job_id}"
    )
    store.claim(job_id, "w")
    store.fail(job_id, "CorpusError: ...", worker="w")
    remove_leftovers(store, job_id, settings=settings)
    assert not data_root.upload_dir(job_id).exists()
    assert not prepared.path.exists()
    assert corpus_cache.entries(settings.cache_dir / "corpus") == []
