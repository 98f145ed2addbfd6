"""A worker's health signal for container health checks: a file touched while the worker can reach its database."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

from models.errors import DatabaseUnavailable
from services.jobs.store import JobStore

log = logging.getLogger(__name__)


def _beat(path: Path, store: JobStore, every_s: float, done: threading.Event) -> None:
    while True:
        try:
            store.ping()
        except DatabaseUnavailable as exc:
            log.warning("not touching %s: %s", path, exc.detail)
        else:
            path.touch()
        if done.wait(every_s):
            return


@contextlib.contextmanager
def alive_file(path: Path | None, store: JobStore, *, every_s: float) -> Iterator[None]:
    """Touch ``path`` every ``every_s`` while the block runs and the database answers (no-op for None)."""
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    done = threading.Event()
    thread = threading.Thread(
        target=_beat, args=(path, store, every_s, done), name="palavra-alive", daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        done.set()
        path.unlink(missing_ok=True)
