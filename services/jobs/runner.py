"""Runs one claimed job in the current process: its trainer, with progress, log lines and the outcome in the store.

:func:`execute_job` is the in-process entry (tests call it directly); :func:`job_process_main` is what a
supervisor's child process runs: it also dies with its supervisor, so a killed worker leaves no orphan training.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
import traceback
from collections.abc import Iterator
from multiprocessing.connection import Connection
from types import FrameType
from typing import Any

from threadpoolctl import threadpool_limits

from models.errors import DatabaseUnavailable, PalavraError
from models.registry import ArtifactWriter, ModelVersion, Registry
from pipelines.runs.progress import Progress
from services.factories import open_collections, open_registry
from services.jobs.cleanup import job_output_dir
from services.jobs.inputs import DataRoot, no_space
from services.jobs.kinds import DataRootCatalog, JobContext, job_kind
from services.jobs.store import JobStore
from services.settings import Settings

log = logging.getLogger(__name__)

PROGRESS_MIN_INTERVAL_S = 0.5
EXIT_PARENT_GONE = 70


class FailureNotRecorded(Exception):
    """The job failed but the database refused the record (e.g. SQLite on the disk that just filled up).

    The job's process hands ``reason`` to its supervisor, which records it once the database takes writes again.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class JobStopped(BaseException):
    """The job was cancelled or reaped while it ran; unwinding removes its staging folder.

    A ``BaseException`` like ``KeyboardInterrupt``: a trainer's ``except Exception`` must not swallow it.
    """


class JobRegistry(Registry):
    """The registry as a job sees it: versions commit only while the job is still running.

    Its last commit hook turns the job ``committing`` (no longer cancellable) or, when the job was cancelled or
    reaped meanwhile, raises :class:`JobStopped` so the staged version is discarded. Each staging folder is
    recorded on the job so whoever ends a killed job can remove it.
    """

    def __init__(self, base: Registry, *, store: JobStore, job_id: str, worker: str) -> None:
        # share the base registry's engine, paths and hooks rather than opening a second connection pool
        self.__dict__.update(base.__dict__)
        self._commit_hooks = [*base.commit_hooks]  # its own list: the guard must not reach the base registry
        self.add_commit_hook(self._guard)
        self._store = store
        self._job_id = job_id
        self._worker = worker

    @contextlib.contextmanager
    def create(
        self, name: str, kind: str, *, aliases: tuple[str, ...] = ("latest",)
    ) -> Iterator[ArtifactWriter]:
        with super().create(name, kind, aliases=aliases) as writer:
            self._store.record_staging(self._job_id, str(writer.path))
            writer.metadata.setdefault("job_id", self._job_id)
            yield writer

    def _guard(self, _writer: ArtifactWriter) -> None:
        self.guard_commit()

    def guard_commit(self) -> None:
        """Running -> committing, or :class:`JobStopped` when the job was cancelled or reaped meanwhile (nothing
        may then be put in place: a model version, or a collection renamed under its name)."""
        if not self._store.begin_commit(self._job_id, self._worker):
            raise JobStopped(f"job {self._job_id} was cancelled or failed before its result was put in place")


class StoreProgress:
    """A progress callback that writes to the job record (at most every half second, except epoch ends)."""

    def __init__(self, store: JobStore, job_id: str) -> None:
        self.store = store
        self.job_id = job_id
        self._last_write = 0.0
        self._last_key: tuple[Any, ...] = ()

    def __call__(self, progress: Progress) -> None:
        key = (progress.stage, progress.epoch, progress.message)
        now = time.monotonic()
        if key == self._last_key and now - self._last_write < PROGRESS_MIN_INTERVAL_S:
            return
        self._last_key, self._last_write = key, now
        if not self.store.report(self.job_id, progress):
            raise JobStopped(f"job {self.job_id} is no longer running")
        if progress.message:
            self.store.log(self.job_id, progress.message)


class JobLogHandler(logging.Handler):
    """Copies palavra's own INFO lines, and everyone's warnings, into the job's log."""

    def __init__(self, store: JobStore, job_id: str) -> None:
        super().__init__(level=logging.INFO)
        self.store = store
        self.job_id = job_id

    def filter(self, record: logging.LogRecord) -> bool:
        ours = record.name.split(".", 1)[0] in ("pipelines", "models")
        return record.levelno >= logging.WARNING or ours

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            level = "" if record.levelno == logging.INFO else f"{record.levelname}: "
            self.store.log(self.job_id, level + record.getMessage())


def describe_error(exc: BaseException) -> str:
    """The sentence a user reads in ``error``: palavra errors as they are, anything else with its type."""
    if isinstance(exc, PalavraError):
        return f"{exc.code}: {exc.detail}"
    if isinstance(exc, OSError) and no_space(exc):
        where = f" writing {exc.filename}" if exc.filename else ""
        return f"DiskFull: no space left on device{where}; free disk space and submit the job again"
    return f"{type(exc).__name__}: {exc}"


def execute_job(settings: Settings, job_id: str, worker: str) -> bool:
    """Run the claimed job ``job_id`` to its end in this process; true when it succeeded.

    Failures are recorded on the job (the error, and the traceback in its log) rather than raised, so the
    worker goes on with the next job.
    """
    base = open_registry(settings)
    store = JobStore.from_registry(base)
    registry = JobRegistry(base, store=store, job_id=job_id, worker=worker)
    data_root = DataRoot(settings.effective_data_root)
    ctx = JobContext(
        registry=registry,
        catalog=DataRootCatalog(settings.data_mirror, settings.cache_dir, data_root=data_root),
        data_root=data_root,
        cache_dir=settings.cache_dir,
        output_dir=job_output_dir(settings, job_id),
        progress=StoreProgress(store, job_id),
        limits=settings.corpus_limits,
        collections=open_collections(settings),
        collection_ann_min_docs=settings.collection_ann_min_docs,
        before_commit=registry.guard_commit,
    )
    handler = JobLogHandler(store, job_id)
    logging.getLogger().addHandler(handler)
    try:
        job = store.get(job_id)
        kind = job_kind(job.kind)
        outcome = kind.run(kind.validate(job.config, stored=True), ctx)
    except JobStopped as stop:
        log.info("job %s stopped: %s", job_id, stop)
        return False
    except Exception as exc:
        _record_failure(store, job_id, worker, exc)
        return False
    finally:
        logging.getLogger().removeHandler(handler)
    return _record_success(store, job_id, worker, outcome)


def _record_failure(store: JobStore, job_id: str, worker: str, exc: Exception) -> None:
    """Fail the job with what went wrong; log lines are a bonus that a full database may refuse.

    Raises:
        FailureNotRecorded: the database refused the failure itself (its supervisor records it later).
    """
    message = describe_error(exc)
    with contextlib.suppress(DatabaseUnavailable):
        if not isinstance(exc, PalavraError):
            store.log(job_id, *traceback.format_exception(exc)[-12:])
        store.log(job_id, f"failed: {message}")
    try:
        store.fail(job_id, message, worker=worker)
    except DatabaseUnavailable as db:
        raise FailureNotRecorded(message) from db


def _record_success(
    store: JobStore, job_id: str, worker: str, outcome: ModelVersion | dict[str, Any]
) -> bool:
    if isinstance(outcome, ModelVersion):
        return store.succeed(
            job_id,
            worker,
            model_name=outcome.name,
            model_version=outcome.version,
            log_line=f"succeeded; registered {outcome.ref}",
        )
    return store.succeed(
        job_id, worker, model_name=None, model_version=None, result=outcome, log_line="succeeded"
    )


def _exit_with_parent(parent: Connection) -> None:
    """Exit at once when the supervisor's end of ``parent`` closes (it died, or the whole worker was killed)."""

    def watch() -> None:
        with contextlib.suppress(EOFError, OSError):
            while True:
                parent.recv()
        os._exit(EXIT_PARENT_GONE)

    threading.Thread(target=watch, name="palavra-parent-watch", daemon=True).start()


def _stop_on_sigterm() -> None:
    def handler(_signum: int, _frame: FrameType | None) -> None:
        raise JobStopped("the supervisor asked the job to stop")

    signal.signal(signal.SIGTERM, handler)


def job_process_main(settings_data: dict[str, Any], job_id: str, worker: str, parent: Connection) -> None:
    """Entry of a job's child process (started by :class:`services.jobs.supervisor.JobSupervisor`)."""
    _exit_with_parent(parent)
    _stop_on_sigterm()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for ours in ("pipelines", "models", "services"):
        logging.getLogger(ours).setLevel(logging.INFO)
    settings = Settings(**settings_data)
    # jobs run side by side on a worker machine: BLAS pools of all cores each would oversubscribe it (torch and
    # gensim threads are the job config's own `threads` / `workers`)
    threadpool_limits(limits=settings.compute_threads, user_api="blas")
    try:
        ok = execute_job(settings, job_id, worker)
    except JobStopped:
        ok = False
    except FailureNotRecorded as unrecorded:
        with contextlib.suppress(OSError):
            parent.send(unrecorded.reason)
        ok = False
    # os._exit: training libraries may leave non-daemon threads behind that would keep the process alive
    os._exit(0 if ok else 1)
