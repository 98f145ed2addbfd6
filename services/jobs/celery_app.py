"""The Celery backend: jobs go through a Redis queue to ``palavra worker --backend celery`` on any machine.

The message carries only the job id; the record in the shared database is the truth. A worker claims the job
with the same conditional UPDATE as the local backend, so a duplicate delivery (Redis restores unacknowledged
messages after its visibility timeout) or a message for a cancelled job is skipped. Each worker runs one job
at a time (``--pool solo``, acknowledged late, no prefetch): no message waits in a worker that could die with
it, and scaling is running more workers. Queued jobs live in Redis and the database, so restarting the API
loses none.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import Celery, signals
from kombu.exceptions import OperationalError as KombuOperationalError

from models.errors import DatabaseUnavailable, NotReady
from services.context import open_registry
from services.jobs.reaper import Reaper
from services.jobs.store import JobStore
from services.jobs.supervisor import JobSupervisor, worker_id
from services.settings import Settings

log = logging.getLogger(__name__)

TASK_NAME = "palavra.run_job"
BACKEND = "celery"
# the API records a job and sends it within milliseconds; a record this many heartbeats old was never sent
REPUBLISH_AFTER_HEARTBEATS = 6


def make_celery(settings: Settings) -> Celery:
    """A Celery app on ``PALAVRA_BROKER_URL`` with the settings both the API and workers need."""
    app = Celery("palavra", broker=settings.broker_url)
    app.conf.update(
        task_default_queue=settings.job_queue,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        worker_disable_prefetch=True,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=3.0,
        broker_transport_options={"socket_connect_timeout": 3, "socket_timeout": 10},
    )
    return app


class CeleryBackend:
    """Sends a recorded job's id to the queue; raises :class:`NotReady` when the broker does not answer."""

    name = BACKEND

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = make_celery(settings)

    def publish(self, job_id: str) -> None:
        try:
            with self.app.connection_for_write() as conn:
                # answer a client within a second or two when Redis is down, rather than retrying for long
                conn.ensure_connection(max_retries=1, interval_start=0.2, interval_step=0.5, interval_max=1)
                self.app.send_task(
                    TASK_NAME, args=[job_id], queue=self.settings.job_queue, connection=conn, retry=False
                )
        except (KombuOperationalError, OSError) as exc:
            raise NotReady(
                f"the job broker at {_safe_url(self.settings.broker_url)} does not answer ({exc}); "
                "start Redis or fix PALAVRA_BROKER_URL"
            ) from exc


def _safe_url(url: str) -> str:
    from kombu.utils.url import maybe_sanitize_url

    return str(maybe_sanitize_url(url))


class CeleryWorker:
    """The state of one ``palavra worker --backend celery`` process: its store, supervisor and housekeeping."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = JobStore.from_registry(open_registry(settings))
        self.worker = worker_id("celery")
        self.supervisor = JobSupervisor(settings, self.store, self.worker)
        self.reaper = Reaper(self.store, settings)
        self.backend = CeleryBackend(settings)
        self._stop = threading.Event()

    def run_job(self, job_id: str) -> None:
        if not self.store.claim(job_id, self.worker):
            log.info("job %s is no longer queued (cancelled, or taken by another worker); skipping", job_id)
            return
        state = self.supervisor.run(job_id)
        log.info("job %s %s", job_id, state.value)

    def housekeeping(self) -> None:
        """Reap jobs of dead workers; re-send queued jobs the API recorded but never got to the broker."""
        while not self._stop.wait(self.settings.heartbeat_s):
            try:
                self.reaper.run()
                unsent = self.store.unpublished(REPUBLISH_AFTER_HEARTBEATS * self.settings.heartbeat_s)
                for job_id in unsent:
                    self.backend.publish(job_id)
                    self.store.mark_published(job_id)
                    log.warning("re-sent job %s, which was recorded but never queued", job_id)
            except (DatabaseUnavailable, NotReady) as exc:
                log.warning("housekeeping: %s", exc.detail)

    def main(self, *, loglevel: str = "INFO", argv: list[str] | None = None) -> None:
        """Run the Celery worker in the foreground until it is stopped."""
        app = self.backend.app
        app.task(name=TASK_NAME, ignore_result=True)(self.run_job)

        def _shutting_down(sig: Any = None, how: Any = None, **_kw: Any) -> None:
            self.supervisor.stop(
                f"worker {self.worker} was stopped ({sig}, {how} shutdown) while the job ran; submit it again"
            )

        signals.worker_shutting_down.connect(_shutting_down, weak=False)

        thread = threading.Thread(target=self.housekeeping, name="palavra-housekeeping", daemon=True)
        thread.start()
        try:
            app.worker_main(
                argv=[
                    "worker",
                    "--pool=solo",
                    "--concurrency=1",
                    f"--hostname={self.worker.replace(':', '.')}",
                    f"--queues={self.settings.job_queue}",
                    f"--loglevel={loglevel}",
                    "--without-gossip",
                    "--without-mingle",
                    *(argv or []),
                ]
            )
        finally:
            self._stop.set()
