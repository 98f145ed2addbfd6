"""The Celery backend: jobs go through a Redis queue to ``palavra worker --backend celery`` on any machine.

The message carries only the job id; the record in the shared database is the truth. A worker claims the job
with the same conditional UPDATE as the local backend, so a duplicate delivery (Redis restores unacknowledged
messages after its visibility timeout) or a message for a cancelled job is skipped. Each worker runs one job
at a time (``--pool solo``, acknowledged late, no prefetch): no message waits in a worker that could die with
it, and scaling is running more workers. Queued jobs live in Redis and the database, so restarting the API
loses none.

The database, not the broker, says which jobs are queued, so a broker that loses its messages (Redis restarted
without persistence, a key evicted) strands nothing: every worker's housekeeping (:class:`Republisher`) re-sends
each job that is still queued a while after it was sent and whose message is neither waiting in the queue nor
recently delivered. Re-sending is safe by construction: one conditional UPDATE picks the one worker that
re-sends a given job, and a duplicate message is skipped on claim, so a job never runs twice.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from typing import Any

from celery import Celery, signals
from kombu.exceptions import OperationalError as KombuOperationalError

from models.errors import DatabaseUnavailable, NotReady
from services.factories import open_registry
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

    def queued_job_ids(self, *, delivered_within_s: float) -> set[str] | None:
        """Ids of the jobs whose message waits in the queue, or was delivered within ``delivered_within_s``.

        None when the broker cannot be looked into (not Redis): the caller then re-sends nothing.

        Raises:
            NotReady: the broker does not answer.
        """
        try:
            with self.app.connection_for_read() as conn:
                conn.ensure_connection(max_retries=1, interval_start=0.2, interval_step=0.5, interval_max=1)
                if conn.transport.driver_type != "redis":
                    return None
                channel: Any = conn.default_channel
                return _redis_job_ids(channel, self.settings.job_queue, delivered_within_s)
        except (KombuOperationalError, OSError) as exc:
            raise NotReady(
                f"the job broker at {_safe_url(self.settings.broker_url)} does not answer ({exc})"
            ) from exc


def _redis_job_ids(channel: Any, queue: str, delivered_within_s: float) -> set[str]:
    """Job ids in a kombu Redis channel's lists for ``queue`` and in its unacknowledged messages."""
    client = channel.client
    raw: list[bytes] = []
    for step in channel.priority_steps:
        raw += client.lrange(channel._q_for_pri(queue, step), 0, -1)
    recent = client.zrangebyscore(channel.unacked_index_key, time.time() - delivered_within_s, "+inf")
    if recent:
        for entry in client.hmget(channel.unacked_key, recent):
            if entry is not None:
                message, _exchange, routing_key = json.loads(entry)
                if routing_key == queue:
                    raw.append(json.dumps(message).encode())
    ids = set()
    for item in raw:
        job_id = _job_id_of(item)
        if job_id is not None:
            ids.add(job_id)
    return ids


def _job_id_of(raw: bytes | str) -> str | None:
    """The job id a kombu message for :data:`TASK_NAME` carries (its first argument), if it is one."""
    try:
        message = json.loads(raw)
        if message.get("headers", {}).get("task") != TASK_NAME:
            return None
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        return str(args[0]) if args else None
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return None


class Republisher:
    """Re-sends queued Celery jobs whose message never reached the broker or was lost there.

    Args:
        store: the job store.
        backend: the Celery backend (to send, and to look into the queue).
        after_s: how long a job may stay queued after it was recorded or sent before it is looked at.
    """

    def __init__(self, store: JobStore, backend: CeleryBackend, *, after_s: float) -> None:
        self.store = store
        self.backend = backend
        self.after_s = after_s

    def run(self) -> list[str]:
        """Re-send what needs it now; the ids sent."""
        sent = []
        for job_id in self.store.unpublished(self.after_s):
            self.backend.publish(job_id)
            self.store.mark_published(job_id)
            log.warning("re-sent job %s, which was recorded but never queued", job_id)
            sent.append(job_id)
        stranded = self.store.stranded(self.after_s)
        if not stranded:
            return sent
        # read after the candidates: a message present now was either waiting or being taken
        present = self.backend.queued_job_ids(delivered_within_s=self.after_s)
        if present is None:
            return sent
        for job_id, published_at in stranded:
            if job_id in present or not self.store.mark_republished(job_id, published_at):
                continue
            self.backend.publish(job_id)
            log.warning("re-sent job %s: still queued but its message is no longer in the broker", job_id)
            sent.append(job_id)
        return sent


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
        self.republisher = Republisher(
            self.store, self.backend, after_s=REPUBLISH_AFTER_HEARTBEATS * settings.heartbeat_s
        )
        self._stop = threading.Event()

    def run_job(self, job_id: str) -> None:
        if not self.store.claim(job_id, self.worker):
            log.info("job %s is no longer queued (cancelled, or taken by another worker); skipping", job_id)
            return
        state = self.supervisor.run(job_id)
        log.info("job %s %s", job_id, state.value)

    def housekeeping(self) -> None:
        """Reap jobs of dead workers; re-send queued jobs never sent to the broker or lost there."""
        while not self._stop.wait(self.settings.heartbeat_s):
            try:
                self.reaper.run()
                self.republisher.run()
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
        self.supervisor.warm_up()

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
