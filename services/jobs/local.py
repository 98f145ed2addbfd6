"""The embedded backend: worker processes on this machine that take queued jobs straight from the database.

No broker: a worker claims the oldest queued ``local`` job with a conditional UPDATE (so two workers never take
the same job), runs it under a :class:`JobSupervisor`, and polls again. ``palavra serve`` starts
``PALAVRA_LOCAL_WORKERS`` of them beside the API; ``palavra worker --backend local`` runs one in the foreground.

An idle worker does not query the database five times a second: submitting a job rings a doorbell (a file under
``PALAVRA_HOME`` whose modification time changes), which idle workers look at (one ``stat``) every
:data:`POLL_S`; they query the database when it rang, and every :data:`IDLE_DB_POLL_S` anyway, for jobs
submitted where the doorbell cannot be heard (another machine on the same PostgreSQL database).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import Any

from models.errors import DatabaseUnavailable
from services.factories import open_registry
from services.jobs.reaper import Reaper
from services.jobs.store import JobStore
from services.jobs.supervisor import JobSupervisor, worker_id
from services.settings import Settings

log = logging.getLogger(__name__)

POLL_S = 0.2
IDLE_DB_POLL_S = 2.0
BACKEND = "local"
DOORBELL = "jobs.doorbell"


class Doorbell:
    """A file whose modification time says "a local job was queued": ringing it costs a submitter one ``utime``,
    listening to it costs an idle worker one ``stat`` per look, instead of a database query."""

    def __init__(self, home: Path) -> None:
        self.path = home / DOORBELL

    def ring(self) -> None:
        """Set the file's time to now, in nanoseconds (created if missing: the file system's own clock is
        coarse, and two rings a millisecond apart would look like one); a home that cannot be written only
        delays the workers' next look at the database."""
        with contextlib.suppress(OSError):
            self.path.touch()
            now = time.time_ns()
            os.utime(self.path, ns=(now, now))

    def mark(self) -> int:
        """The current ring (0 before the first): read before polling the database, so no ring is missed."""
        try:
            return self.path.stat().st_mtime_ns
        except OSError:
            return 0

    def wait(self, since: int, stop: threading.Event, *, look_s: float, at_most_s: float) -> None:
        """Return when the bell rang after ``since``, ``stop`` is set, or ``at_most_s`` passed."""
        deadline = time.monotonic() + at_most_s
        while not stop.is_set() and self.mark() == since:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            stop.wait(min(look_s, left))


class LocalBackend:
    """Submitting needs nothing beyond the job record and a ring of the doorbell: idle workers then claim it."""

    name = BACKEND

    def __init__(self, home: Path) -> None:
        self.doorbell = Doorbell(home)

    def publish(self, job_id: str) -> None:  # noqa: ARG002 (the interface's: celery sends the id)
        """Nothing to send (the record in the database is the queue): ring the doorbell of this home's workers."""
        self.doorbell.ring()


class LocalWorker:
    """One worker loop: claim, run, repeat, and reap jobs of dead workers between jobs.

    Args:
        settings: where the database, artifacts and data root are; heartbeat and timeout.
        role: prefix of the worker id in job records.
    """

    def __init__(self, settings: Settings, *, role: str = "local") -> None:
        self.settings = settings
        self.store = JobStore.from_registry(open_registry(settings))
        self.worker = worker_id(role)
        self.supervisor = JobSupervisor(settings, self.store, self.worker)
        self.reaper = Reaper(self.store, settings)
        self.doorbell = Doorbell(settings.home)
        self._stop = threading.Event()

    def stop(self, reason: str) -> None:
        """Stop after failing the running job with ``reason`` (the job is not left running)."""
        self._stop.set()
        self.supervisor.stop(reason)

    def run(self, *, max_jobs: int | None = None) -> int:
        """Work until stopped (or ``max_jobs`` jobs ran); returns how many jobs ran."""
        done = 0
        self.supervisor.warm_up()
        log.info("job worker %s polling for local jobs", self.worker)
        while not self._stop.is_set() and (max_jobs is None or done < max_jobs):
            rang = self.doorbell.mark()
            try:
                self.reaper.maybe_run()
                job_id = self.store.claim_next(self.worker, backend=BACKEND)
            except DatabaseUnavailable as exc:
                log.warning("%s; retrying", exc.detail)
                self._stop.wait(max(POLL_S, self.settings.heartbeat_s))
                continue
            if job_id is None:
                # the reaper's interval bounds the wait too: a silent worker's job is failed on time
                idle_s = max(POLL_S, min(IDLE_DB_POLL_S, self.settings.heartbeat_s))
                self.doorbell.wait(rang, self._stop, look_s=POLL_S, at_most_s=idle_s)
                continue
            state = self.supervisor.run(job_id)
            log.info("job %s %s", job_id, state.value)
            done += 1
        return done

    def stop_on_signals(self) -> None:
        """SIGTERM / SIGINT fail the running job with a clear reason and end the loop."""

        def handler(signum: int, _frame: FrameType | None) -> None:
            name = signal.Signals(signum).name
            self.stop(f"worker {self.worker} was stopped ({name}) while the job ran; submit it again")

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)


def _worker_process_main(settings_data: dict[str, Any], parent: Connection, nice: int) -> None:
    settings = Settings(**settings_data)
    # below the API's priority before anything else: the forkserver's imports and every job inherit it
    if nice:
        os.nice(nice)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    worker = LocalWorker(settings)
    worker.stop_on_signals()

    def watch() -> None:
        # the process that started this pool died without stopping it: stop as on SIGTERM
        with contextlib.suppress(EOFError, OSError):
            while True:
                parent.recv()
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="palavra-pool-watch", daemon=True).start()
    worker.run()


class LocalWorkerPool:
    """``n`` worker processes beside the API (``palavra serve``); they stop when :meth:`stop` runs or it dies.

    They run ``nice`` below this process's CPU priority, jobs included: beside the API,
    ``PALAVRA_LOCAL_WORKER_NICE`` (default 10), so that a training job on the server's machine uses the cores that
    requests leave idle rather than delaying the requests.

    A worker that dies (killed, out of memory) is started again, so queued jobs always have a worker; its running
    job is failed by the reaper as for any silent worker. Restarts of one slot are spaced by ``restart_s``. A worker
    that exits cleanly (code 0: it was stopped) is not started again.
    """

    def __init__(
        self, settings: Settings, n: int, *, nice: int = 0, check_s: float = 1.0, restart_s: float = 5.0
    ) -> None:
        self.settings = settings
        self.n = n
        self.nice = nice
        self.check_s = check_s
        self.restart_s = restart_s
        self.processes: list[BaseProcess] = []
        self.restarts = 0
        self._links: list[Connection] = []
        self._started_at: list[float] = []
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._monitor: threading.Thread | None = None
        self.rounds = 0  # times the monitor looked over every worker
        self._rounds = threading.Condition()

    def _spawn(self, i: int) -> tuple[BaseProcess, Connection]:
        ctx = multiprocessing.get_context("spawn")
        child_end, parent_end = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=_worker_process_main,
            args=(self.settings.model_dump(), child_end, self.nice),
            name=f"palavra-worker-{i}",
        )
        proc.start()
        child_end.close()
        return proc, parent_end

    def start(self) -> None:
        self._stopping.clear()
        for i in range(self.n):
            proc, link = self._spawn(i)
            self.processes.append(proc)
            self._links.append(link)
            self._started_at.append(time.monotonic())
        self._monitor = threading.Thread(target=self._watch, name="palavra-pool-monitor", daemon=True)
        self._monitor.start()

    def _watch(self) -> None:
        while not self._stopping.wait(self.check_s):
            for i in range(len(self.processes)):
                with self._lock:
                    proc = self.processes[i]
                    if self._stopping.is_set() or proc.is_alive() or proc.exitcode == 0:
                        continue  # exit code 0: it was asked to stop (SIGTERM, or Ctrl-C sent to the group)
                    if time.monotonic() - self._started_at[i] < self.restart_s:
                        continue  # a worker that dies at once is not restarted in a tight loop
                    proc.join(0)  # reap it
                    log.warning(
                        "job worker %s exited with code %s; starting another", proc.name, proc.exitcode
                    )
                    self._links[i].close()
                    self.processes[i], self._links[i] = self._spawn(i)
                    self._started_at[i] = time.monotonic()
                    self.restarts += 1
            with self._rounds:
                self.rounds += 1
                self._rounds.notify_all()

    def wait_rounds(self, n: int, *, timeout_s: float | None = None) -> bool:
        """Wait until the monitor has looked over every worker ``n`` more times; false on timeout."""
        with self._rounds:
            target = self.rounds + n
            return self._rounds.wait_for(lambda: self.rounds >= target, timeout_s)

    def stop(self, *, timeout_s: float = 15.0) -> None:
        """SIGTERM every worker (each fails its running job, if any) and wait for them."""
        self._stopping.set()
        if self._monitor is not None:
            self._monitor.join()
            self._monitor = None
        with self._lock:
            for proc in self.processes:
                proc.terminate()
            for proc in self.processes:
                proc.join(timeout_s)
                if proc.exitcode is None:
                    proc.kill()
                    proc.join()
            for link in self._links:
                link.close()
            self.processes.clear()
            self._links.clear()
            self._started_at.clear()

    def __enter__(self) -> LocalWorkerPool:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def local_job_workers(settings: Settings) -> Iterator[LocalWorkerPool | None]:
    """``PALAVRA_LOCAL_WORKERS`` worker processes for as long as the block runs (``palavra serve``).

    Nothing starts with the Celery backend (its workers run apart) or with ``PALAVRA_LOCAL_WORKERS=0``.
    """
    if settings.job_backend != BACKEND or settings.local_workers < 1:
        yield None
        return
    with LocalWorkerPool(settings, settings.local_workers, nice=settings.local_worker_nice) as pool:
        yield pool


def run_local_workers(settings: Settings, *, processes: int = 1) -> None:
    """``palavra worker --backend local``: one worker in this process, or a pool, until SIGTERM / Ctrl-C."""
    if processes == 1:
        worker = LocalWorker(settings)
        worker.stop_on_signals()
        worker.run()
        return
    stop = threading.Event()

    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    with LocalWorkerPool(settings, processes):
        while not stop.wait(1.0):  # the pool starts again any worker that dies
            pass
