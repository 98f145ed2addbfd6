"""Staging folders that a writer fills before renaming them into place, and the sweep of those dead writers left.

Each folder ``parent/.staging/<tag>`` has a lock file beside it (``<tag>.lock``) that its writer holds while it
lives. A writer killed with SIGKILL (or a SIGTERM nothing handles) leaves the folder behind with nobody holding the
lock; the next writer under the same parent removes it. Used by model versions (models/registry.py) and by
collections (models/collection.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

STAGING_DIR = ".staging"
# a folder without a lock file (a writer of a version that did not lock) is abandoned once this old
UNLOCKED_STALE_S = 24 * 3600.0


@contextlib.contextmanager
def staged(parent: Path) -> Iterator[Path]:
    """A new folder under ``parent/.staging``, its lock held until the block ends, then removed if still there
    (a writer that renamed it into place has nothing left to remove)."""
    staging = parent / STAGING_DIR
    staging.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex
    lock_path = staging / f"{tag}.lock"
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = staging / tag
        path.mkdir()
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)
            lock_path.unlink(missing_ok=True)


def sweep_staging(parent: Path) -> int:
    """Remove what dead writers left under ``parent/.staging``; returns how many folders were removed.

    A folder whose lock nobody holds is removed; so is a folder without a lock file that is older than
    :data:`UNLOCKED_STALE_S`.
    """
    staging = parent / STAGING_DIR
    if not staging.is_dir():
        return 0
    removed = 0
    for lock_path in staging.glob("*.lock"):
        with contextlib.suppress(FileNotFoundError), lock_path.open("a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its writer is alive
            if (staging / lock_path.stem).exists():
                shutil.rmtree(staging / lock_path.stem, ignore_errors=True)
                removed += 1
            lock_path.unlink(missing_ok=True)
    now = time.time()
    for folder in staging.iterdir():
        if folder.is_dir() and not (staging / f"{folder.name}.lock").exists():
            with contextlib.suppress(FileNotFoundError):
                if now - folder.stat().st_mtime > UNLOCKED_STALE_S:
                    shutil.rmtree(folder, ignore_errors=True)
                    removed += 1
    return removed
