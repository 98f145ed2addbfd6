"""Completions asked during one turn of the event loop, answered together at the start of the next.

When 16 connections share two workers, a worker's event loop reads several requests in one turn. Answered one by
one, each request's pass through the language model found the network's weights evicted from the CPU's caches by
the HTTP work in between (0.55-0.74 ms for one text, against 0.28-0.49 ms with them in cache:
benchmarks/results/lm.md). Queued here, the turn's new texts go through the model one after the other, the weights
read from memory once; each answer is still computed from its own text alone.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch: only servers that serve language models import it
    from pipelines.lm.predictor import LanguageModel, Query


class SameTurn:
    """Queues ``(model, query)`` pairs and answers every queued pair in one callback, scheduled by the first."""

    def __init__(self) -> None:
        self._waiting: list[tuple[LanguageModel, Query, asyncio.Future[dict[str, Any]]]] = []

    async def answer(self, model: LanguageModel, query: Query) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._waiting.append((model, query, future))
        if len(self._waiting) == 1:
            # runs after the callbacks already due in this turn: the other requests read in it queue first
            loop.call_soon(self._run)
        return await future

    def _run(self) -> None:
        waiting, self._waiting = self._waiting, []
        by_model: dict[int, list[tuple[LanguageModel, Query, asyncio.Future[dict[str, Any]]]]] = {}
        for item in waiting:
            if not item[2].done():  # a cancelled request (its client left) needs no answer
                by_model.setdefault(id(item[0]), []).append(item)
        for group in by_model.values():
            try:
                answers = group[0][0].answer([query for _, query, _ in group])
            except Exception as exc:  # every request of the group gets the error, as it would have alone
                for *_, future in group:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (*_, future), answer in zip(group, answers, strict=True):
                if not future.done():
                    future.set_result(answer)
