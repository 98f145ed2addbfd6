"""The interface both job backends share, and the choice between them (``PALAVRA_JOB_BACKEND``)."""

from __future__ import annotations

from typing import Protocol

from services.settings import Settings


class JobBackend(Protocol):
    """Hands a recorded, queued job to the workers of one backend."""

    name: str

    def publish(self, job_id: str) -> None:
        """Make the queued job ``job_id`` visible to workers.

        Raises:
            NotReady: the backend cannot take jobs now (its broker does not answer).
        """


def open_backend(settings: Settings) -> JobBackend:
    """``local`` (workers claim jobs from the database) or ``celery`` (workers read a Redis queue)."""
    if settings.job_backend == "celery":
        from services.jobs.celery_app import CeleryBackend

        return CeleryBackend(settings)
    from services.jobs.local import LocalBackend

    return LocalBackend(settings.home)
