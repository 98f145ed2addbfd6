"""Fails running jobs whose worker went silent, and removes what they left behind.

A worker heartbeats each job it runs every ``PALAVRA_HEARTBEAT_S``. When a job's last heartbeat is older than
``PALAVRA_JOB_TIMEOUT_S``, its worker was killed or lost its machine: the job is failed with that reason (it is
not re-run: a job that killed its worker, by running out of memory say, would kill the next one too; submit it
again). Every worker and the API run the reaper, so it works as long as any of them is up.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

from models.errors import ModelNotFound
from services.factories import open_registry
from services.jobs.cleanup import remove_leftovers
from services.jobs.job import Job
from services.jobs.store import JobStore
from services.settings import Settings
from services.timestamps import utc_iso

log = logging.getLogger(__name__)


class Reaper:
    """Throttled reaping over one store.

    Args:
        store: the job store.
        settings: ``job_timeout_s`` (silence that fails a job) and ``heartbeat_s`` (how often to look).
    """

    def __init__(self, store: JobStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._last = float("-inf")

    def maybe_run(self) -> list[str]:
        """Reap unless this reaper already looked within the last heartbeat interval."""
        if time.monotonic() - self._last < self.settings.heartbeat_s:
            return []
        return self.run()

    def run(self) -> list[str]:
        """Fail every stale running job now; returns their ids."""
        self._last = time.monotonic()
        timeout = self.settings.job_timeout_s
        stale, cutoff = self.store.stale(timeout)
        reaped = []
        for job in stale:
            if self._registered(job, cutoff):
                reaped.append(job.id)
                continue
            seen = utc_iso(job.heartbeat_at) if job.heartbeat_at else "never"
            reason = (
                f"worker {job.worker} stopped sending heartbeats (last at {seen}; the limit is "
                f"{timeout:g} s, PALAVRA_JOB_TIMEOUT_S): it was killed or lost its machine. The job was not "
                "re-run; submit it again"
            )
            if self.store.fail_if_stale(job.id, cutoff, reason):  # logs "failed: <reason>" with the change
                remove_leftovers(self.store, job.id, settings=self.settings)
                log.warning("job %s failed: %s", job.id, reason)
                reaped.append(job.id)
        return reaped

    def _registered(self, job: Job, cutoff: datetime) -> bool:
        """A job whose worker died after registering its model and before recording that: it succeeded."""
        version = registered_version(self.settings, job)
        name = job.config.get("name")
        note = f"its worker stopped sending heartbeats after registering {name}@{version}: the job succeeded"
        if version is None or not self.store.succeed_if_stale(
            job.id, cutoff, model_name=str(name), model_version=version, log_line=note
        ):
            return False
        log.warning("job %s: %s", job.id, note)
        return True


def registered_version(settings: Settings, job: Job) -> int | None:
    """The version of its model that ``job`` registered (its metadata names the job), if it got that far."""
    name = job.config.get("name")
    if not job.committing or not isinstance(name, str):
        return None
    try:
        versions = open_registry(settings).versions(name)
    except ModelNotFound:
        return None
    mine = [mv.version for mv in versions if mv.metadata.get("job_id") == job.id]
    return mine[-1] if mine else None
