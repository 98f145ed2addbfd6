"""``palavra jobs submit|list|show|cancel``: batch training jobs, through the same database the API uses."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import typer

from models.errors import InvalidInput
from pipelines.runs.config_io import read_toml
from pipelines.runs.progress import DONE_STAGE, Progress
from services.cli.app import jobs_app
from services.cli.output import echo, emit_json, table, warn
from services.cli.progress_bars import ProgressBars
from services.jobs.job import Job, JobState
from services.jobs.kinds import job_kind
from services.jobs.public import detail_of, job_url, summary_of
from services.jobs.service import JobService
from services.settings import get_settings
from services.timestamps import utc_iso

WAIT_POLL_S = 0.5
NO_WORKER_HINT_S = 10.0


def _service() -> JobService:
    return JobService.open(get_settings())


def wait_for(service: JobService, job_id: str, *, bars: ProgressBars | None = None) -> Job:
    """Poll ``job_id`` until it ends, feeding its progress to ``bars``; hints once if nothing picks it up."""
    last: Progress | None = None
    started = time.monotonic()
    hinted = False
    while True:
        job = service.get(job_id)
        if bars is not None and job.progress is not None:
            # a run's last report ("done") carries its closing line (why training stopped, where results went):
            # the bars print it once the job has succeeded, not while it may still fail registering its model
            final = job.state is JobState.SUCCEEDED and job.progress.stage == DONE_STAGE
            shown = replace(job.progress, final=final)
            if shown != last:
                bars(shown)
                last = shown
        if job.state.terminal:
            return job
        if job.state is JobState.QUEUED and not hinted and time.monotonic() - started > NO_WORKER_HINT_S:
            warn(
                f"job {job_id} is still queued after {NO_WORKER_HINT_S:g} s: is a worker running? "
                f"(`palavra serve` or `palavra worker --backend {job.backend}`)"
            )
            hinted = True
        time.sleep(WAIT_POLL_S)


def _percent(progress: Progress | None) -> str:
    return f"{progress.fraction:.0%}" if progress is not None and progress.fraction is not None else ""


@jobs_app.command("submit")
def submit_cli(
    kind: str = typer.Argument(..., help="word2vec, classifier, compare, lm, compare_lm or collection."),
    config: Path = typer.Option(
        ..., "--config", "-c", help="The run's TOML config (the same as `palavra train`)."
    ),
    wait: bool = typer.Option(
        False, "--wait", help="Show progress until the job ends; exit 1 unless it succeeds."
    ),
) -> None:
    """Queue a training job; input paths in the config are relative to PALAVRA_DATA_ROOT (or catalogue names)."""
    service = _service()
    job = service.submit(kind, read_toml(config))
    if not wait:
        emit_json({"id": job.id, "kind": job.kind, "state": job.state.value, "url": job_url(job.id)})
        return
    warn(f"job {job.id} queued; waiting (Ctrl-C stops waiting, not the job)")
    bars = ProgressBars()
    try:
        job = wait_for(service, job.id, bars=bars)
    finally:
        bars.close()
    emit_json(summary_of(job).model_dump(mode="json"))
    if job.state is not JobState.SUCCEEDED:
        raise typer.Exit(1)


@jobs_app.command("list")
def list_cli(
    state: str | None = typer.Option(None, help="queued, running, succeeded, failed or cancelled."),
    kind: str | None = typer.Option(None, help="word2vec, classifier, compare or collection."),
    limit: int = typer.Option(50, min=1, max=500, help="How many jobs (newest first)."),
    offset: int = typer.Option(0, min=0, help="Skip this many jobs first."),
) -> None:
    """List jobs, newest first."""
    try:
        wanted = JobState(state) if state else None
    except ValueError:
        raise InvalidInput(
            f"unknown state {state!r}; use one of {', '.join(s.value for s in JobState)}"
        ) from None
    if kind is not None:
        job_kind(kind)  # an unknown kind is an error, not an empty list
    jobs, total = _service().list_jobs(state=wanted, kind=kind, limit=limit, offset=offset)
    rows = [
        {
            "id": j.id,
            "kind": j.kind,
            "state": j.state.value,
            "progress": _percent(j.progress),
            "model": j.model_ref or "",
            "worker": j.worker or "",
            "created": utc_iso(j.created_at),
            "error": (j.error or "")[:60],
        }
        for j in jobs
    ]
    table(rows, ["id", "kind", "state", "progress", "model", "worker", "created", "error"])
    if total > offset + len(jobs):
        echo(f"({total - offset - len(jobs)} more; use --offset {offset + len(jobs)})")


@jobs_app.command("show")
def show_cli(job_id: str = typer.Argument(..., help="The job id.")) -> None:
    """Print one job as JSON: state, progress, config, error, model, last log lines."""
    service = _service()
    job = service.get(job_id)
    emit_json(detail_of(job, service.logs(job_id)).model_dump(mode="json"))


@jobs_app.command("cancel")
def cancel_cli(job_id: str = typer.Argument(..., help="The job id.")) -> None:
    """Cancel a queued or running job (its worker stops it; nothing is registered)."""
    job = _service().cancel(job_id)
    emit_json({"id": job.id, "state": job.state.value})
