"""``palavra doctor``: check artifacts and collections against their checksums and jobs against the registry."""

from __future__ import annotations

import typer

from services.cli.app import app
from services.cli.output import echo, emit_json
from services.doctor import diagnose
from services.factories import open_collections, open_registry
from services.jobs.store import JobStore
from services.settings import get_settings


@app.command("doctor")
def doctor(
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Check every artifact's and collection's files against their sha256 and every job against the registry; exit
    1 on problems."""
    settings = get_settings()
    registry = open_registry(settings)
    report = diagnose(
        registry,
        JobStore.from_registry(registry),
        timeout_s=settings.job_timeout_s,
        collections=open_collections(settings),
    )
    if as_json:
        emit_json(report.as_dict())
    else:
        echo(
            f"checked {_count(report.models_checked, 'model version')}, "
            f"{_count(report.collections_checked, 'collection')} ({_count(report.files_checked, 'file')}) and "
            f"{_count(report.jobs_checked, 'job')}"
        )
        for p in report.problems:
            echo(f"{p.area} {p.subject}: {p.problem}")
        echo("healthy" if report.healthy else f"{len(report.problems)} problem(s) found")
    if not report.healthy:
        raise typer.Exit(1)


def _count(n: int, thing: str) -> str:
    return f"{n:,} {thing}{'' if n == 1 else 's'}"
