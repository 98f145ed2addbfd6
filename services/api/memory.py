"""Handing a serving worker's freed heap back to the system, so a second worker stays cheap after traffic.

The large matrices are memory-mapped and shared between workers; what a worker holds alone is its heap. Under
traffic that heap grows even though little stays allocated: glibc's malloc keeps freed memory in its arenas (one
per thread that allocated, up to eight per core, and the request thread pool has dozens of threads), and after
the first large numpy temporary is freed it raises the size above which it maps memory directly, so later
temporaries land in those arenas too. The pages stay resident and private to the worker.

:class:`HeapTrimmer` calls glibc's ``malloc_trim(0)`` (every whole free page of every arena back to the kernel)
from a daemon thread every ``PALAVRA_MEMORY_TRIM_S`` seconds, and once after models load or swap. On a C library
without ``malloc_trim`` (musl, macOS) it does nothing. benchmarks/results/serving.md has what it changes.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


def _malloc_trim() -> Callable[[], int] | None:
    """glibc's ``malloc_trim(0)`` as a callable (ctypes releases the GIL while it runs), or None elsewhere."""
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the C library the interpreter already uses
    except (OSError, AttributeError, TypeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int

    def call() -> int:
        return int(trim(0))

    return call


class HeapTrimmer:
    """Trims the heap every ``interval_s`` seconds in a daemon thread.

    A trim locks each malloc arena in turn while it returns that arena's free pages; measured under load in
    benchmarks/results/serving.md (sixth run), it cost no measurable throughput or p99.

    Args:
        interval_s: seconds between trims; 0 turns the trimmer off.
        trim: the trimming call (glibc's ``malloc_trim(0)`` by default; None where there is none).
    """

    def __init__(self, interval_s: float, *, trim: Callable[[], int] | None = None) -> None:
        self.interval_s = interval_s
        self._trim = trim if trim is not None else _malloc_trim()
        if interval_s > 0 and self._trim is None:
            log.warning("this C library has no malloc_trim: freed heap stays with the worker")
        self._lock = threading.Lock()  # one trim at a time (the periodic one and one after a swap)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.trims = 0

    @property
    def enabled(self) -> bool:
        return self.interval_s > 0 and self._trim is not None

    def trim_now(self) -> None:
        """Trim once, now (after models load or swap, when their temporaries have just been freed)."""
        if self._trim is None:
            return
        with self._lock:
            self._trim()
            self.trims += 1

    def start(self) -> None:
        if not self.enabled or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="palavra-heap-trim", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval_s + 5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.trim_now()
            except Exception:  # never let the trimmer take the worker down
                log.exception("malloc_trim failed; heap trimming stops")
                return
