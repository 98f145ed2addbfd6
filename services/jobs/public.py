"""A job as people and programs see it: what ``GET /v1/jobs/{id}`` answers and ``palavra jobs show`` prints.

The store's :class:`~services.jobs.job.Job` is the record; these are its one public form (timestamps as
``utc_iso``), shared by the API's routes and the CLI so the two can never drift apart.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from pipelines.runs.progress import Progress
from services.jobs.job import Job, JobLogLine
from services.timestamps import UtcTime

JobStateName = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class JobProgressOut(BaseModel):
    stage: str | None = Field(description="preprocess, train, evaluate, save ...")
    fraction: float | None = Field(description="0..1 of the whole run, when known.")
    epoch: int | None
    loss: float | None
    message: str | None
    done: float | None = Field(
        description="How much of the stage is done, counted in `unit`, when the stage counts (as the CLI's bars do)."
    )
    total: float | None = Field(
        description="How much the stage has to do in `unit`; `done == total` when complete."
    )
    unit: str | None = Field(description="What `done` and `total` count: B (bytes read), text, epoch ...")


def progress_of(progress: Progress | None) -> JobProgressOut:
    """The public form of a job's progress (all null before its first report)."""
    return JobProgressOut(**{f: getattr(progress, f, None) for f in JobProgressOut.model_fields})


class JobModelOut(BaseModel):
    name: str
    version: int
    ref: str


class JobSummary(BaseModel):
    id: str
    kind: str
    state: JobStateName
    url: str
    created_at: UtcTime
    started_at: UtcTime | None
    finished_at: UtcTime | None
    progress: JobProgressOut
    error: str | None = Field(description="Why the job failed (or was stopped), when it did.")
    model: JobModelOut | None = Field(description="The model version the job registered.")
    worker: str | None = Field(description="The worker that ran (or runs) it: role@host:pid.")


class JobLogOut(BaseModel):
    seq: int
    at: UtcTime
    line: str


class JobDetail(JobSummary):
    config: dict[str, Any] = Field(description="The validated config, defaults filled in.")
    backend: str
    attempts: int
    heartbeat_at: UtcTime | None
    result: dict[str, Any] | None = Field(
        description="What a job that registers no model produced: a comparison's table and report files."
    )
    logs: list[JobLogOut] = Field(description="The last log lines (progress messages, lifecycle, warnings).")


def job_url(job_id: str) -> str:
    return f"/v1/jobs/{job_id}"


def summary_of(job: Job) -> JobSummary:
    model = None
    if job.model_name is not None and job.model_version is not None:
        model = JobModelOut(name=job.model_name, version=job.model_version, ref=job.model_ref or "")
    return JobSummary(
        id=job.id,
        kind=job.kind,
        state=job.state.value,
        url=job_url(job.id),
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        progress=progress_of(job.progress),
        error=job.error,
        model=model,
        worker=job.worker,
    )


def detail_of(job: Job, logs: list[JobLogLine]) -> JobDetail:
    return JobDetail(
        **summary_of(job).model_dump(),
        config=job.config,
        backend=job.backend,
        attempts=job.attempts,
        heartbeat_at=job.heartbeat_at,
        result=job.result,
        logs=[JobLogOut(seq=line.seq, at=line.at, line=line.line) for line in logs],
    )
