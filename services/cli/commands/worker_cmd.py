"""``palavra worker``: run training jobs, from the local database queue or from the Celery queue in Redis."""

from __future__ import annotations

from pathlib import Path

import typer

from models.errors import InvalidInput
from services.cli.app import app
from services.settings import get_settings


@app.command("worker")
def worker_cli(
    backend: str | None = typer.Option(
        None,
        help="local (poll the database) or celery (read PALAVRA_BROKER_URL); default PALAVRA_JOB_BACKEND.",
    ),
    processes: int = typer.Option(1, min=1, max=64, help="local: worker processes, one job each at a time."),
    log_level: str = typer.Option("info", help="critical, error, warning, info or debug."),
    alive_file: Path | None = typer.Option(
        None, help="Touch this file every PALAVRA_HEARTBEAT_S while the database answers (for health checks)."
    ),
) -> None:
    """Run jobs until stopped (SIGTERM/Ctrl-C fail the running job with that reason, then exit).

    Every worker of a backend shares PALAVRA_DATABASE_URL, PALAVRA_HOME (artifacts) and PALAVRA_DATA_ROOT with
    the API; celery workers may run on any number of machines.
    """
    import logging

    settings = get_settings()
    chosen = backend or settings.job_backend
    if chosen not in ("local", "celery"):
        raise InvalidInput(f"unknown --backend {chosen!r}; use local or celery")
    level = log_level.upper()
    if level not in ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"):
        raise InvalidInput(f"unknown --log-level {log_level!r}; use critical, error, warning, info or debug")
    logging.getLogger().setLevel(level)
    from services.factories import open_registry
    from services.jobs.alive import alive_file as touching
    from services.jobs.store import JobStore

    store = JobStore.from_registry(open_registry(settings))
    with touching(alive_file, store, every_s=settings.heartbeat_s):
        if chosen == "celery":
            from services.jobs.celery_app import CeleryWorker

            CeleryWorker(settings).main(loglevel=level)
        else:
            from services.jobs.local import run_local_workers

            run_local_workers(settings, processes=processes)
