"""``palavra serve``: the HTTP API (see docs/http.md)."""

from __future__ import annotations

import typer

from models.errors import InvalidInput
from services.cli.app import app
from services.settings import get_settings


@app.command("serve")
def serve_cli(
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0 for every interface)."),
    port: int = typer.Option(8000, help="TCP port."),
    workers: int = typer.Option(1, help="Worker processes; they share the memory-mapped word vectors."),
    access_log: bool = typer.Option(False, "--access-log", help="Log every request (costs throughput)."),
    log_level: str = typer.Option("info", help="uvicorn log level: critical, error, warning, info, debug."),
) -> None:
    """Serve word neighbours, similarity, analogies, vectors and classification over HTTP."""
    if not 1 <= port <= 65535:
        raise InvalidInput(f"--port must be between 1 and 65535, got {port}")
    if workers < 1:
        raise InvalidInput(f"--workers must be at least 1, got {workers}")
    if log_level not in ("critical", "error", "warning", "info", "debug", "trace"):
        raise InvalidInput(f"unknown --log-level {log_level!r}; use critical, error, warning, info or debug")
    from services.api.keys import KeyRing
    from services.api.server import check_listen, serve
    from services.jobs.local import local_job_workers

    settings = get_settings()
    ring = KeyRing.from_settings(settings)  # a bad keys file stops here with one line, not in every worker
    check_listen(host, port)  # a busy port stops here, before job workers start and models load
    if log_level in ("info", "debug", "trace"):  # in uvicorn's style: the CLI's own log shows warnings only
        typer.echo(f"INFO:     {ring.summary(settings)}", err=True)
    with local_job_workers(settings):  # PALAVRA_LOCAL_WORKERS job workers beside the API (local backend)
        serve(settings, host=host, port=port, workers=workers, access_log=access_log, log_level=log_level)
