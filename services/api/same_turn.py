"""Completions asked during one turn of the event loop, answered together at the start of the next.

When 16 connections share two workers, a worker's event loop reads several requests in one turn. Answered one by
one, each request's pass through the language model found the network's weights evicted from the CPU's caches by
the HTTP work in between (0.55-0.74 ms for one text, against 0.40-0.49 ms with them in cache:
benchmarks/results/lm.md). Queued here, the turn's new texts go through the model one after the other, the weights
read from memory once; each answer is still computed from its own text alone.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch: only servers that serve language models import it
    from pipelines.lm.predictor import LanguageModel, Query


Pending = tuple["LanguageModel", "Query", "asyncio.Future[dict[str, Any]]"]


class SameTurn:
    """Queues ``(model, query)`` pairs and answers every queued pair in one callback, scheduled by the first."""

    def __init__(self) -> None:
        self._waiting: list[Pending] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._due = False  # the answering callback is scheduled

    async def answer(self, model: LanguageModel, query: Query) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # first use, or a loop that stopped with requests queued: theirs is gone
            self._loop, self._waiting, self._due = loop, [], False
        future: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._waiting.append((model, query, future))
        if not self._due:
            # runs after the callbacks already due in this turn: the other requests read in it queue first
            self._due = True
            loop.call_soon(self._run)
        return await future

    def _run(self) -> None:
        waiting, self._waiting, self._due = self._waiting, [], False
        by_model: dict[int, list[Pending]] = {}
        for item in waiting:
            if not item[2].done():  # a cancelled request (its client left) needs no answer
                by_model.setdefault(id(item[0]), []).append(item)
        try:
            for group in by_model.values():
                _answer(group)
        finally:  # nothing is left waiting forever, whatever escaped
            for *_, future in waiting:
                if not future.done():
                    future.set_exception(RuntimeError("the completion was not answered"))


def _answer(group: list[Pending]) -> None:
    """One model's queries in one call; if that raises, each query alone, so that an error reaches only the
    requests whose own text raises it, as it would have without grouping."""
    model = group[0][0]
    try:
        answers = model.answer([query for _, query, _ in group])
    except Exception as exc:
        if len(group) > 1:
            for item in group:
                _answer([item])
        elif not group[0][2].done():
            group[0][2].set_exception(exc)
        return
    for (*_, future), answer in zip(group, answers, strict=True):
        if not future.done():
            future.set_result(answer)
