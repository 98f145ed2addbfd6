"""Helpers for the jobs tests: real worker processes, a throwaway PostgreSQL database, job configs, a TCP proxy."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa

from models.errors import JobNotFound
from services.jobs.job import Job, JobState
from services.jobs.service import JobService, new_job_id
from services.jobs.store import JobStore
from services.settings import Settings
from tests.conftest import POSTGRES_URL, REDIS_URL, REPO_ROOT, make_sentences

T = TypeVar("T")
HEARTBEAT_S = 0.3
JOB_TIMEOUT_S = 5.0


def wait_until(
    check: Callable[[], T | None], *, timeout: float = 60.0, every: float = 0.1, what: str = ""
) -> T:
    """Poll ``check`` until it returns something truthy; fail the test with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or check}")
        time.sleep(every)


class Clock:
    """The job store's clock in a test: real UTC time when made, moving only by :meth:`advance`.

    Install it with ``monkeypatch.setattr("services.jobs.store._now", clock)``: every time the store writes
    (heartbeats, claims) and every cutoff it computes (reaping) then reads this clock, so a test ages a heartbeat
    past the timeout without sleeping.
    """

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


# a request's read timeout in tests that talk to a real server: generous, since a loaded machine is slow to
# answer a first request (a job's first submission opens the database and the broker)
HTTP_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def api_healthy(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def job_settings(root: Path, *, backend: str, database_url: str | None = None, **changes: Any) -> Settings:
    """Settings for a jobs test: a fresh home and data root, fast heartbeats, a queue of its own."""
    values: dict[str, Any] = {
        "home": root / "home",
        "data_root": root / "data",
        "database_url": database_url,
        "job_backend": backend,
        "broker_url": REDIS_URL,
        "job_queue": f"palavra-test-{uuid.uuid4().hex[:12]}",
        "heartbeat_s": HEARTBEAT_S,
        "job_timeout_s": JOB_TIMEOUT_S,
        "local_workers": 0,
        **changes,
    }
    settings = Settings(**values)
    settings.effective_data_root.mkdir(parents=True, exist_ok=True)
    return settings


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a ``palavra`` process see ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PALAVRA_")}
    for name in ("home", "data_root", "database_url", "job_backend", "broker_url", "job_queue"):
        value = getattr(settings, name)
        if value is not None:
            env[f"PALAVRA_{name.upper()}"] = str(value)
    for name in ("heartbeat_s", "job_timeout_s", "local_workers"):
        env[f"PALAVRA_{name.upper()}"] = str(getattr(settings, name))
    if settings.api_keys:
        env["PALAVRA_API_KEYS"] = ",".join(settings.api_keys)
    return env


@dataclass
class WorkerProcess:
    proc: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up, as when a machine dies."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def start_worker(settings: Settings, log_dir: Path, *, backend: str | None = None) -> WorkerProcess:
    """A real ``palavra worker`` process for ``settings``, logging to a file under ``log_dir``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"worker-{uuid.uuid4().hex[:8]}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "services.cli.main",
                "worker",
                "--backend",
                backend or settings.job_backend,
            ],
            cwd=REPO_ROOT,
            env=settings_env(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return WorkerProcess(proc, log)


@contextlib.contextmanager
def workers(settings: Settings, log_dir: Path, n: int = 1) -> Iterator[list[WorkerProcess]]:
    started = [start_worker(settings, log_dir) for _ in range(n)]
    try:
        yield started
    finally:
        for w in started:
            w.stop()


@dataclass
class Backend:
    """One job backend with worker processes, shared by the tests of a session (their job names differ).

    Workers start once: each imports torch, gensim and spaCy into its forkserver, seconds of CPU apiece.
    """

    name: str
    settings: Settings
    service: JobService
    logs: Path
    workers: list[WorkerProcess] = field(default_factory=list)

    def ensure_workers(self, n: int) -> None:
        """At least ``n`` live worker processes (a test that killed one leaves a gap for the next to fill)."""
        self.workers = [w for w in self.workers if w.proc.poll() is None]
        while len(self.workers) < n:
            self.workers.append(start_worker(self.settings, self.logs))

    def worker_running(self, job: Job) -> WorkerProcess:
        """The worker process whose id the job record names (role@host:pid)."""
        assert job.worker is not None
        pid = int(job.worker.rsplit(":", 1)[1])
        return next(w for w in self.workers if w.proc.pid == pid)

    def close(self) -> None:
        for w in self.workers:
            w.stop()
        self.service.store.engine.dispose()
        forget_queue(self.settings)


@contextlib.contextmanager
def shared_backends(root: Path) -> Iterator[Callable[[str], Backend]]:
    """``get(name)``: the ``local`` (SQLite) or ``celery`` (PostgreSQL, Redis) backend with two workers, started
    on first use."""
    started: dict[str, Backend] = {}
    with contextlib.ExitStack() as stack:

        def get(name: str) -> Backend:
            if name not in started:
                url = stack.enter_context(postgres_database()) if name == "celery" else None
                settings = job_settings(root / name, backend=name, database_url=url)
                backend = Backend(name, settings, JobService.open(settings), root / name / "logs")
                stack.callback(backend.close)
                backend.ensure_workers(2)  # started together, so they import side by side
                started[name] = backend
            return started[name]

        yield get


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A PostgreSQL database of its own for this test session (created, then dropped)."""
    name = f"palavra_jobs_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def forget_queue(settings: Settings) -> None:
    """Remove the Redis keys a test queue left behind."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    queue = settings.job_queue
    client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
    # messages of killed workers, which Redis would restore into the queue an hour later
    for tag, raw in client.hgetall("unacked").items():
        if json.loads(raw)[-1] == queue:  # [message, exchange, routing key]
            client.hdel("unacked", tag)
            client.zrem("unacked_index", tag)
    client.close()


# -- job configs ---------------------------------------------------------------------------------------------
def write_corpus(settings: Settings, name: str, n_sentences: int) -> str:
    """A corpus file under the data root; returns its path relative to the data root."""
    path = settings.effective_data_root / name
    if not path.exists():
        path.write_text("\n".join(make_sentences(n_sentences, seed=n_sentences)) + "\n", encoding="utf-8")
    return name


def word2vec_config(name: str, corpus: str, *, epochs: int = 2) -> dict[str, Any]:
    return {
        "name": name,
        "corpus": [corpus],
        "evaluate": False,
        "train": {"algorithm": "word2vec", "vector_size": 12, "min_count": 1, "epochs": epochs, "workers": 1},
    }


def quick_job(service: JobService, name: str) -> Job:
    corpus = write_corpus(service.settings, "quick.txt", 300)
    return service.submit("word2vec", word2vec_config(name, corpus, epochs=2))


def long_job(service: JobService, name: str) -> Job:
    """A job that trains for many seconds, reporting progress each epoch (to cancel or kill mid-way)."""
    corpus = write_corpus(service.settings, "long.txt", 5_000)
    return service.submit("word2vec", word2vec_config(name, corpus, epochs=200))


def long_upload_job(service: JobService, name: str) -> Job:
    """:func:`long_job` with its corpus uploaded with the job, saved where a multipart POST saves it."""
    job_id = new_job_id()
    text = "\n".join(make_sentences(5_000, seed=5_000)) + "\n"
    saved = service.data_root.save_upload(
        job_id, "long.txt", io.BytesIO(text.encode()), max_bytes=service.settings.max_upload_bytes
    )
    return service.submit("word2vec", word2vec_config(name, saved, epochs=200), job_id=job_id)


def prepared_from(settings: Settings, folder: Path) -> list[str]:
    """Keys of the prepared corpora in the cache made from files under ``folder``."""
    from pipelines.reading import corpus_cache

    return [
        e.key
        for e in corpus_cache.entries(settings.cache_dir / "corpus")
        if any(str(src[0]).startswith(str(folder)) for src in e.sources or [])
    ]


_REVIEWS = [
    ("o filme é ótimo e emocionante", "pos"),
    ("adorei o livro, recomendo muito", "pos"),
    ("péssimo serviço, nunca mais volto", "neg"),
    ("o produto chegou quebrado e atrasado", "neg"),
]


def reviews_csv(settings: Settings, labels: tuple[str, ...] = ("pos", "neg")) -> str:
    """A tiny labelled CSV under the data root; returns its name."""
    rows = [(t, label) for t, label in _REVIEWS if label in labels]
    path = settings.effective_data_root / f"avaliacoes-{'-'.join(labels)}.csv"
    path.write_text(
        "text,label\n" + "\n".join(f'"{t} {i}",{label}' for i in range(20) for t, label in rows) + "\n",
        encoding="utf-8",
    )
    return path.name


def classifier_job(service: JobService, name: str, *, labels: tuple[str, ...] = ("pos", "neg")) -> Job:
    """A classifier job on a tiny CSV (a second or so of training)."""
    train = reviews_csv(service.settings, labels)
    return service.submit(
        "classifier", {"name": name, "train": train, "training": {"epochs": 2, "threads": 1}}
    )


def compare_job(service: JobService) -> Job:
    """A two-cell comparison grid on the tiny CSV."""
    config = {
        "train": reviews_csv(service.settings),
        "training": {"epochs": 2, "threads": 1},
        "optimizers": ["sgd", "adam"],
        "activations": ["relu"],
    }
    return service.submit("compare", config)


def job_pid(service: JobService, job_id: str) -> int | None:
    """The pid of the process running the job, from its 'running on ... (process N)' log line."""
    for line in service.logs(job_id):
        if line.line.startswith("running on ") and "(process " in line.line:
            return int(line.line.rsplit("(process ", 1)[1].rstrip(")"))
    return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by its parent) counts as gone
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    return True


def leftovers(settings: Settings) -> list[Path]:
    """Staging folders, and report / upload folders of jobs that did not succeed, still on disk."""
    staging = settings.home / "artifacts" / ".staging"
    found = list(staging.iterdir()) if staging.is_dir() else []
    store = JobStore(sa.create_engine(settings.effective_database_url))
    try:
        for folder in (settings.home / "reports", settings.effective_data_root / "uploads"):
            if folder.is_dir():
                found += [p for p in folder.iterdir() if _state(store, p.name) is not JobState.SUCCEEDED]
    finally:
        store.engine.dispose()
    return found


def _state(store: JobStore, job_id: str) -> JobState | None:
    try:
        return store.get(job_id).state
    except JobNotFound:
        return None


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; :meth:`close` drops every connection, as a database going down."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self._socks: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def reopen(self) -> None:
        """Listen again on the same port, as a database coming back."""
        self.server = socket.create_server(("127.0.0.1", self.port))
        self._socks = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._socks += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self.server.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        self.server.close()
        for s in self._socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
