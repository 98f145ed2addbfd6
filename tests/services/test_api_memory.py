from __future__ import annotations

import threading

import numpy as np
import pytest

from models.registry import Registry
from services.api.memory import HeapTrimmer, _malloc_trim
from services.settings import Settings
from tests.services.vector_models import api_settings, register, serving


class Counter:
    def __init__(self, *, fail_after: int | None = None) -> None:
        self.calls = 0
        self.fail_after = fail_after
        self.called = threading.Event()

    def __call__(self) -> int:
        self.calls += 1
        self.called.set()
        if self.fail_after is not None and self.calls > self.fail_after:
            raise OSError("trim failed")
        return 1


@pytest.mark.skipif(_malloc_trim() is None, reason="a C library without malloc_trim (not glibc)")
def test_memory_glibc_trim_returns_freed_heap() -> None:
    trim = _malloc_trim()
    assert trim is not None
    blocks = [np.ones(1000, dtype=np.float64) for _ in range(4_000)]  # 8 KB each: heap, not mmap
    del blocks[1:]  # ~32 MB of heap freed behind a block still in use
    assert trim() == 1  # glibc returns 1 when it gave memory back


def test_memory_trimmer_runs_on_its_interval_and_stops() -> None:
    counter = Counter()
    trimmer = HeapTrimmer(0.01, trim=counter)
    trimmer.start()
    assert counter.called.wait(5)
    thread = trimmer._thread
    assert thread is not None
    trimmer.stop()
    after = counter.calls
    assert after >= 1
    assert trimmer.trims == after
    assert not thread.is_alive()  # stopped: its thread has ended, so no more trims can come
    assert counter.calls == after
    trimmer.start()  # and it starts again
    counter.called.clear()
    assert counter.called.wait(5)
    trimmer.stop()


def test_memory_trimmer_off_at_zero_interval_and_survives_a_failing_trim() -> None:
    counter = Counter()
    off = HeapTrimmer(0, trim=counter)
    off.start()
    assert not off.enabled
    off.trim_now()  # an explicit trim still runs
    assert counter.calls == 1
    failing = Counter(fail_after=0)
    trimmer = HeapTrimmer(0.01, trim=failing)
    trimmer.start()
    assert failing.called.wait(5)
    trimmer.stop()  # the thread ended on the error; stop() returns
    assert failing.calls == 1


def test_memory_server_trims_after_models_load(settings: Settings, registry: Registry) -> None:
    register(registry, "w2v")
    with serving(api_settings(settings, memory_trim_s=60)) as client:
        trimmer = client.app.state.trimmer
        assert trimmer.enabled == (_malloc_trim() is not None)
        assert client.get("/v1/neighbors", params={"word": "rei"}).status_code == 200
        if trimmer.enabled:
            assert trimmer.trims >= 1  # once the models had loaded
    with serving(api_settings(settings, memory_trim_s=0)) as client:
        assert not client.app.state.trimmer.enabled
        assert client.app.state.trimmer.trims == 0
