"""Watches one claimed job's child process: heartbeats, cancellation, crashes, and what a stopped job leaves.

Each job runs in its own process, forked from a forkserver that has the trainers imported already, so starting
one costs milliseconds and ending one (cancel, shutdown) is a signal rather than a cooperative flag. The
supervisor polls the job record: once the job is no longer running on this worker (cancelled through the API,
or failed by the reaper) it stops the process; the process's ``JobRegistry`` refuses to commit a model for a
job in that state, so a cancelled or failed job never registers one.

A database that refuses writes (an outage, or SQLite on a disk that just filled up) never kills the worker:
what the supervisor must record (the job's failure, with the reason its process sent over the pipe when it
could not record it itself) is retried until the database takes it, heartbeats going on meanwhile.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.context import DefaultContext, ForkContext, ForkServerContext
from multiprocessing.process import BaseProcess
from typing import TypeVar

from models.errors import DatabaseUnavailable
from services.jobs.cleanup import remove_leftovers
from services.jobs.job import JobState
from services.jobs.reaper import registered_version
from services.jobs.runner import job_process_main
from services.jobs.store import JobStore
from services.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")
JobContextType = ForkServerContext | ForkContext | DefaultContext
POLL_S = 0.25
TERMINATE_GRACE_S = 5.0
PRELOAD = [
    # the worker's main module: each job process would import it again (multiprocessing's spawn preparation)
    "__main__",
    "services.jobs.runner",
    "pipelines.classifier.train",
    "pipelines.word2vec.train",
    "pipelines.classifier.baseline",
    "torch",
    "torch._dynamo",  # imported by the first torch optimizer a process builds: ~5 s per job otherwise
    "gensim.models",
    "matplotlib.pyplot",  # training plots (headless: MPLBACKEND=Agg below)
    # the tokenizer imports spaCy on first use: seconds that every job would pay again after its fork
    "spacy",
    "spacy.lang.pt",
]


def worker_id(role: str) -> str:
    """``role@host:pid``: unique among live workers, and readable in job records."""
    return f"{role}@{socket.gethostname()}:{os.getpid()}"


def job_context() -> ForkServerContext:
    """The multiprocessing context job processes start from, its forkserver running with the trainers imported.

    Workers start it as they start (:meth:`JobSupervisor.warm_up`), before any job is claimed: importing torch
    and gensim takes seconds that the first job would otherwise wait.
    """
    os.environ.setdefault("MPLBACKEND", "Agg")  # inherited by the forkserver: workers have no display
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    warmup = ctx.Process(target=_noop, name="palavra-forkserver-warmup")
    warmup.start()
    warmup.join()
    return ctx


def describe_exit(exitcode: int | None) -> str:
    if exitcode is None:
        return "no exit status"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (out of memory?)" if name == "SIGKILL" else ""
        return f"{name}{hint}"
    return f"exit code {exitcode}"


class JobSupervisor:
    """Runs claimed jobs one at a time in child processes for one worker.

    Args:
        settings: passed on to each job process.
        store: the job store (the worker's connection).
        worker: this worker's id; the job records name it.
        ctx: where job processes start from (default: :func:`job_context`, a forkserver with the trainers
            imported, started by :meth:`warm_up` or by the first job).
    """

    def __init__(
        self, settings: Settings, store: JobStore, worker: str, *, ctx: JobContextType | None = None
    ) -> None:
        self.settings = settings
        self.store = store
        self.worker = worker
        self.stopping: str | None = None
        self.retry_s = POLL_S
        self._ctx = ctx
        self._ctx_lock = threading.Lock()

    def warm_up(self) -> None:
        """Start the forkserver (importing the trainers) in the background, so the first job need not wait.

        Workers call it as they start; a supervisor that never runs a job never pays for the imports.
        """
        threading.Thread(target=self._warm, name="palavra-forkserver-start", daemon=True).start()

    def _warm(self) -> None:
        try:
            self.context()
        except Exception as exc:  # the first job tries again and fails with the reason
            log.warning("could not start the job processes' forkserver: %s: %s", type(exc).__name__, exc)

    def context(self) -> JobContextType:
        """Where job processes start from: the ``ctx`` given, else :func:`job_context` started on first use."""
        with self._ctx_lock:
            if self._ctx is None:
                self._ctx = job_context()
            return self._ctx

    def stop(self, reason: str) -> None:
        """Ask the running job (if any) to stop now and fail with ``reason`` (worker shutdown)."""
        self.stopping = reason

    def run(self, job_id: str) -> JobState:
        """Run the job this worker has claimed until it ends; returns its final state."""
        with _Heartbeat(self.store, job_id, self.worker, every_s=self.settings.heartbeat_s):
            exitcode, reason = self._run_process(job_id)
            state = self._persist(
                job_id, "record how it ended", lambda: self._settle(job_id, exitcode, reason)
            )
        return state if state is not None else JobState.RUNNING

    def _persist(self, job_id: str, what: str, call: Callable[[], T]) -> T | None:
        """``call()``, again every ``retry_s`` while the database refuses it; None if the worker stops first."""
        warned = False
        while True:
            try:
                return call()
            except DatabaseUnavailable as exc:
                if self.stopping:
                    log.error("job %s: could not %s before the worker stopped: %s", job_id, what, exc.detail)
                    return None
                if not warned:
                    log.warning("job %s: cannot %s yet, retrying: %s", job_id, what, exc.detail)
                    warned = True
                time.sleep(self.retry_s)

    def _run_process(self, job_id: str) -> tuple[int | None, str | None]:
        """Run the job's process to its end: its exit code, and the failure it could not record itself."""
        # the child reads until EOF: when this process dies, the child exits too; it writes back only a failure
        # that the database refused (a full disk, say), for this process to record
        try:
            ctx = self.context()
        except Exception as exc:  # the forkserver could not start (its imports failed, say)
            return None, f"could not start the job's process on {self.worker}: {type(exc).__name__}: {exc}"
        mine, theirs = ctx.Pipe(duplex=True)
        proc = ctx.Process(
            target=job_process_main,
            args=(self.settings.model_dump(), job_id, self.worker, theirs),
            name=f"palavra-job-{job_id}",
            daemon=False,
        )
        try:
            proc.start()
        except Exception as exc:
            mine.close()
            return None, f"could not start the job's process on {self.worker}: {type(exc).__name__}: {exc}"
        finally:
            theirs.close()
        try:
            self.store.log(job_id, f"running on {self.worker} (process {proc.pid})")
        except DatabaseUnavailable as exc:
            log.warning("job %s: %s", job_id, exc.detail)
        try:
            self._watch(job_id, proc)
            return proc.exitcode, _unrecorded_failure(mine)
        finally:
            mine.close()

    def _watch(self, job_id: str, proc: BaseProcess) -> None:
        while True:
            proc.join(POLL_S)
            if proc.exitcode is not None:
                return
            try:
                if self.stopping:
                    self.store.fail(job_id, self.stopping, worker=self.worker)
                    _terminate(proc)
                    return
                mine = self.store.still_running(job_id, self.worker)
                if not mine and self.store.get(job_id).state is not JobState.SUCCEEDED:
                    log.info("job %s was cancelled or failed elsewhere; stopping its process", job_id)
                    _terminate(proc)
                    return
            except DatabaseUnavailable as exc:
                # keep training through a database outage; the reaper decides if it lasts too long
                log.warning("job %s: %s", job_id, exc.detail)
                if self.stopping:
                    _terminate(proc)
                    return

    def _settle(self, job_id: str, exitcode: int | None, unrecorded: str | None = None) -> JobState:
        job = self.store.get(job_id)
        version = registered_version(self.settings, job) if job.state is JobState.RUNNING else None
        if version is not None and job.worker == self.worker:
            # the process died between registering its model and recording that: the job did succeed
            name = job.config["name"]
            self.store.succeed(
                job_id,
                self.worker,
                model_name=name,
                model_version=version,
                log_line=f"the job's process ended after registering {name}@{version}: succeeded",
            )
            job = self.store.get(job_id)
        if job.state is JobState.RUNNING and job.worker == self.worker:
            reason = unrecorded or (
                f"the job's process ended with {describe_exit(exitcode)} before recording a result"
            )
            self.store.fail(job_id, reason, worker=self.worker, log_line=f"failed: {reason}")
            job = self.store.get(job_id)
        if job.state is not JobState.SUCCEEDED:
            remove_leftovers(self.store, job_id, settings=self.settings)
        return job.state


class _Heartbeat:
    """A thread that heartbeats one job every ``every_s`` while the block runs, whatever the main thread does."""

    def __init__(self, store: JobStore, job_id: str, worker: str, *, every_s: float) -> None:
        self.store = store
        self.job_id = job_id
        self.worker = worker
        self.every_s = every_s
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"palavra-heartbeat-{job_id}", daemon=True)

    def _beat(self) -> None:
        while not self._done.wait(self.every_s):
            try:
                if not self.store.heartbeat(self.job_id, self.worker):
                    return  # cancelled or reaped: the main loop sees it and stops the process
            except DatabaseUnavailable as exc:
                log.warning("job %s heartbeat: %s", self.job_id, exc.detail)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._thread.join()


def _unrecorded_failure(conn: Connection) -> str | None:
    """The failure a finished job's process sent because the database refused it, if it sent one."""
    try:
        return str(conn.recv()) if conn.poll() else None
    except (EOFError, OSError):
        return None


def _noop() -> None:
    """Started once per worker so the forkserver finishes importing the trainers before the first job."""


def _terminate(proc: BaseProcess) -> None:
    """SIGTERM (the job unwinds and removes its staging folder), then SIGKILL if it does not end in time."""
    proc.terminate()
    proc.join(TERMINATE_GRACE_S)
    if proc.exitcode is None:
        proc.kill()
        proc.join()
