"""Run the API under uvicorn with the process settings serving needs (``palavra serve`` calls :func:`serve`)."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

from models.errors import InvalidInput
from services.api.threads import THREAD_VARIABLES
from services.settings import Settings

APP = "services.api.app:create_app"


def _spawn_without_cli() -> None:
    """Keep spawned workers from re-importing ``__main__`` (the whole CLI, torch included: ~150 MB each).

    multiprocessing's spawn imports the parent's main module in every child; the workers only need the app,
    which uvicorn imports by name.
    """
    main = sys.modules.get("__main__")
    if main is not None:
        main.__spec__ = None
        with contextlib.suppress(AttributeError):
            del main.__file__


def check_listen(host: str, port: int, *, option: str = "--port") -> None:
    """Refuse, in one line, an address the server could not listen on (a port in use, a host not of this
    machine), before job workers start and models load: uvicorn finds out only after its startup. ``option`` is
    what the user sets the port with (``--port``; ``PORT`` for ``make quickstart``).

    Raises:
        InvalidInput: naming the address, the system's reason and what to change.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise InvalidInput(f"cannot listen on --host {host!r}: {exc.strerror}") from None
    except UnicodeError:  # a name the IDNA codec refuses (a label over 63 characters, say)
        raise InvalidInput(f"cannot listen on --host {host[:100]!r}: not a valid host name") from None
    try:
        with socket.socket(family, kind, proto) as probe:
            # SO_REUSEADDR as uvicorn binds: a port in TIME_WAIT is free
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        other = f"{option} (e.g. {option}={port + 1})" if port < 65535 else option
        hint = {
            errno.EADDRINUSE: f"another process listens there; stop it or choose another {other}",
            errno.EACCES: f"ports below 1024 need more privileges; choose another {option} (e.g. 8000)",
            errno.EADDRNOTAVAIL: "no network interface of this machine has that address; try 127.0.0.1",
        }.get(exc.errno or 0, f"choose another --host or {option}")
        raise InvalidInput(f"cannot listen on {host}:{port} ({exc.strerror}): {hint}") from None


def serve(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    access_log: bool = False,
    log_level: str = "info",
) -> None:
    """Serve until interrupted; ``workers`` processes share the memory-mapped matrices.

    Worker processes start from a fresh interpreter, so the thread variables set here reach their numpy before it
    loads; the current process's numpy is capped at runtime by the app's lifespan handler.
    """
    import uvicorn

    for var in THREAD_VARIABLES:
        os.environ[var] = str(settings.compute_threads)
    metrics_dir: Path | None = None
    if workers > 1:
        _spawn_without_cli()
        settings.cache_dir.mkdir(parents=True, exist_ok=True)
        metrics_dir = Path(tempfile.mkdtemp(prefix="metrics-", dir=settings.cache_dir))
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        os.environ["PALAVRA_METRICS_DIR"] = str(metrics_dir)
    try:
        uvicorn.run(
            APP,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            access_log=access_log,
            log_level=log_level,
            timeout_graceful_shutdown=10,
            # a worker importing numpy/faiss on a busy machine can take longer than uvicorn's 5 s default to
            # answer the supervisor's first ping, and would be killed and restarted in a loop
            timeout_worker_healthcheck=60,
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
