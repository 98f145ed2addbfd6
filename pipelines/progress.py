"""Progress reports from long work (training, preprocessing) to whoever watches: a terminal bar, a job record."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Progress:
    """One progress report.

    Args:
        stage: what is running ("tokenize", "train", "evaluate", ...).
        fraction: 0..1 of the whole run, when known.
        epoch: the epoch just finished or running, for training.
        loss: the latest training loss, when there is one.
        message: a human-readable line (also kept as a job log line).
    """

    stage: str
    fraction: float | None = None
    epoch: int | None = None
    loss: float | None = None
    message: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


ProgressCallback = Callable[[Progress], None]


def ignore_progress(_progress: Progress) -> None:
    """The callback for callers that do not watch."""
