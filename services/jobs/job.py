"""What a job is: its kind, validated config, state, progress, timestamps, error and the model it registered.

A job's progress is the trainer's own :class:`~pipelines.runs.progress.Progress`, kept whole by the store and shown as
it is by the API and the CLI's bars.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pipelines.runs.progress import Progress


class JobState(StrEnum):
    """queued -> running -> succeeded | failed | cancelled (a queued job may also be cancelled)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


@dataclass(frozen=True)
class Job:
    """One job record as the store holds it.

    ``progress`` is the job's latest progress report, with what earlier reports said that it leaves out (None until
    the job first reports; see :meth:`~services.jobs.store.JobStore.report`).
    ``result`` is what a job that registers no model produced (a comparison's table and report files).
    ``committing`` is true while the job's process registers its model: from then on it can no longer be
    cancelled, so a cancelled job never registers a model.
    """

    id: str
    kind: str
    state: JobState
    config: dict[str, Any]
    created_at: datetime
    progress: Progress | None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None
    worker: str | None = None
    attempts: int = 0
    error: str | None = None
    model_name: str | None = None
    model_version: int | None = None
    committing: bool = False
    backend: str = "local"
    result: dict[str, Any] | None = None

    @property
    def model_ref(self) -> str | None:
        if self.model_name is None or self.model_version is None:
            return None
        return f"{self.model_name}@{self.model_version}"


@dataclass(frozen=True)
class JobLogLine:
    """One log line of a job (progress messages, lifecycle events, warnings from the trainer)."""

    seq: int
    at: datetime
    line: str
