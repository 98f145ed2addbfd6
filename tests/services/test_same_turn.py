"""services/api/same_turn.py: completions asked in one turn of the event loop are answered in one call per model."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.api.same_turn import SameTurn


class Escape(BaseException):
    """Not an Exception: what a KeyboardInterrupt or SystemExit would be in the answering callback."""


class FakeModel:
    """Answers each query with itself, recording the calls; ``fails`` makes every call raise, and a call with the
    query ``"bad"`` raises ValueError, one with ``"escape"`` raises :class:`Escape`."""

    def __init__(self, fails: bool = False) -> None:
        self.calls: list[list[Any]] = []
        self.fails = fails

    def answer(self, queries: list[Any]) -> list[dict[str, Any]]:
        self.calls.append(list(queries))
        if "escape" in queries:
            raise Escape
        if self.fails or "bad" in queries:
            raise ValueError("the model failed")
        return [{"query": q} for q in queries]


def test_one_call_per_model_per_turn_each_request_its_own_answer() -> None:
    first, second = FakeModel(), FakeModel()

    async def main() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        same_turn = SameTurn()
        asks = [(first, "a"), (second, "b"), (first, "c"), (second, "d"), (first, "e")]
        answers = await asyncio.gather(*(same_turn.answer(m, q) for m, q in asks))  # type: ignore[arg-type]
        later = [await same_turn.answer(first, "f")]  # type: ignore[arg-type]  # a later turn: a call of its own
        return list(answers), later

    answers, later = asyncio.run(main())
    assert [a["query"] for a in answers] == ["a", "b", "c", "d", "e"]
    assert later == [{"query": "f"}]
    assert first.calls == [["a", "c", "e"], ["f"]]
    assert second.calls == [["b", "d"]]


def test_an_error_reaches_every_request_of_its_model_and_no_other() -> None:
    broken, fine = FakeModel(fails=True), FakeModel()

    async def main() -> list[Any]:
        same_turn = SameTurn()
        asks = [(broken, "a"), (fine, "b"), (broken, "c")]
        return list(
            await asyncio.gather(*(same_turn.answer(m, q) for m, q in asks), return_exceptions=True)  # type: ignore[arg-type]
        )

    out = asyncio.run(main())
    assert isinstance(out[0], ValueError)
    assert isinstance(out[2], ValueError)
    assert out[1] == {"query": "b"}


def test_a_request_that_left_is_not_answered_and_the_others_are() -> None:
    model = FakeModel()

    async def main() -> dict[str, Any]:
        same_turn = SameTurn()
        gone = asyncio.ensure_future(same_turn.answer(model, "gone"))  # type: ignore[arg-type]
        kept = asyncio.ensure_future(same_turn.answer(model, "kept"))  # type: ignore[arg-type]
        await asyncio.sleep(0)  # both queued; the answering callback is due
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        return await kept

    assert asyncio.run(main()) == {"query": "kept"}
    assert model.calls == [["kept"]]


def test_an_error_from_one_text_reaches_that_request_alone() -> None:
    model = FakeModel()

    async def main() -> list[Any]:
        same_turn = SameTurn()
        asks = ["a", "bad", "c"]
        return list(await asyncio.gather(*(same_turn.answer(model, q) for q in asks), return_exceptions=True))  # type: ignore[arg-type]

    out = asyncio.run(main())
    assert out[0] == {"query": "a"}
    assert isinstance(out[1], ValueError)
    assert out[2] == {"query": "c"}


def test_nothing_waits_forever_when_the_callback_is_escaped() -> None:
    """A BaseException (not an Exception) leaves the callback, and every request queued with it gets an error."""
    model, other = FakeModel(), FakeModel()
    loop = asyncio.new_event_loop()
    try:
        same_turn = SameTurn()
        futures = [loop.create_future() for _ in range(3)]
        same_turn._waiting = [
            (model, "escape", futures[0]),
            (model, "b", futures[1]),
            (other, "c", futures[2]),
        ]  # type: ignore[list-item]
        with pytest.raises(Escape):
            same_turn._run()
        for future in futures:
            assert isinstance(future.exception(), RuntimeError)
    finally:
        loop.close()


def test_a_loop_that_stopped_with_requests_queued_does_not_stop_the_next_one() -> None:
    """Requests queued on a loop that stopped before answering them (a test's app, used again) are dropped; the
    next loop's requests are answered."""
    model = FakeModel()
    same_turn = SameTurn()
    gone = asyncio.new_event_loop()
    same_turn._loop, same_turn._due = gone, True
    same_turn._waiting = [(model, "queued", gone.create_future())]  # type: ignore[list-item]
    gone.close()

    async def main() -> dict[str, Any]:
        return await asyncio.wait_for(same_turn.answer(model, "next"), timeout=5)  # type: ignore[arg-type]

    assert asyncio.run(main()) == {"query": "next"}
    assert model.calls == [["next"]]
