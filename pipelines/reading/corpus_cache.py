"""Upkeep of the prepared-corpus cache (``cache_dir/corpus/``): marks of use, eviction of the least recently used
entries under a size cap, and removal of entries whose inputs are gone or changed (they can never be hit again).

An entry is ``<key>.txt`` (the token file) and ``<key>.json`` (its metadata, with every source's resolved path,
size and mtime). A process that uses an entry holds a shared ``flock`` on its ``.json`` until it exits, and
removal takes an exclusive one without waiting, skipping entries it cannot lock: an entry never disappears under
a training that reads it. The ``.json``'s mtime is the entry's last use.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Temporary files of a preparation this old were left by a process that died (none takes this long).
STALE_TEMP_S = 24 * 3600

_held: dict[str, int] = {}


@dataclass(frozen=True)
class Entry:
    """One cache entry on disk."""

    meta: Path
    data: Path
    size: int
    used: float
    sources: list[Any] | None

    @property
    def key(self) -> str:
        return self.meta.stem


def hold(meta: Path) -> bool:
    """Mark the entry of ``meta`` as in use by this process until it exits; false if it was just removed."""
    if str(meta) in _held:
        return True
    try:
        fd = os.open(meta, os.O_RDONLY)
    except FileNotFoundError:
        return False
    fcntl.flock(fd, fcntl.LOCK_SH)
    if os.fstat(fd).st_nlink == 0 or not meta.with_suffix(".txt").is_file():
        os.close(fd)  # evicted between our read and our lock
        return False
    _held[str(meta)] = fd
    with contextlib.suppress(OSError):
        os.utime(meta)  # its last use, for the LRU order
    return True


def release(meta: Path) -> None:
    """Stop marking the entry of ``meta`` as in use by this process (it may be evicted from now on)."""
    fd = _held.pop(str(meta), None)
    if fd is not None:
        os.close(fd)


def entries(store: Path) -> list[Entry]:
    """The complete entries under ``store`` (a ``.txt`` and its ``.json``), least recently used first."""
    found = []
    for meta in store.glob("*.json"):
        data = meta.with_suffix(".txt")
        try:
            st_meta, st_data = meta.stat(), data.stat()
            info = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        sources = info.get("source_stats") if isinstance(info, dict) else None
        size = st_meta.st_size + st_data.st_size
        found.append(
            Entry(meta, data, size, st_meta.st_mtime, sources if isinstance(sources, list) else None)
        )
    return sorted(found, key=lambda e: e.used)


def inputs_gone(entry: Entry) -> bool:
    """True when a source of the entry no longer exists or has changed (its key can never match again)."""
    if entry.sources is None:
        return False  # an entry written before sources were recorded: only the size cap removes it
    for item in entry.sources:
        try:
            path, size, mtime_ns = item
            st = Path(path).stat()
        except (OSError, TypeError, ValueError):
            return True
        if (st.st_size, st.st_mtime_ns) != (size, mtime_ns):
            return True
    return False


def remove(entry: Entry) -> bool:
    """Remove an entry unless a process holds it; true when removed."""
    try:
        fd = os.open(entry.meta, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        entry.data.unlink(missing_ok=True)
        entry.meta.unlink(missing_ok=True)
        return True
    finally:
        os.close(fd)


def prune(store: Path) -> list[str]:
    """Remove entries whose inputs are gone or changed, and temporary files of dead preparations; their keys."""
    if not store.is_dir():
        return []
    removed = [e.key for e in entries(store) if inputs_gone(e) and remove(e)]
    cutoff = time.time() - STALE_TEMP_S
    for temp in store.glob("*.tmp-*"):
        with contextlib.suppress(OSError):
            if temp.stat().st_mtime < cutoff:
                temp.unlink()
    if removed:
        log.info("removed %d prepared corpora whose inputs are gone: %s", len(removed), ", ".join(removed))
    return removed


def evict(store: Path, max_bytes: int, *, keep: str | None = None) -> list[str]:
    """Prune, then remove least recently used entries (never ``keep``, never one in use) until the cache holds
    at most ``max_bytes``; the keys removed."""
    removed = prune(store)
    current = entries(store)
    total = sum(e.size for e in current)
    for entry in current:
        if total <= max_bytes:
            break
        if entry.key != keep and remove(entry):
            total -= entry.size
            removed.append(entry.key)
    if total > max_bytes:
        log.warning(
            "the corpus cache holds %d bytes, over its %d limit: the rest is in use", total, max_bytes
        )
    return removed
