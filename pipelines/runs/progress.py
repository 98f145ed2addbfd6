"""Progress reports from long work (training, preprocessing) to whoever watches: a terminal bar, a job record."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class Progress:
    """One progress report.

    Args:
        stage: what is running ("preprocess", "train", "evaluate", ...).
        fraction: 0..1 of the stage, when known.
        epoch: the epoch just finished or running, for training.
        loss: the latest training loss, when there is one.
        message: a human-readable line (also kept as a job log line).
        extra: what else the reporter knows, as JSON values (e.g. the number of epochs planned).
        done: how much of the stage is done, counted in ``unit`` (bytes read, texts, epochs).
        total: how much there is to do in ``unit``; ``done == total`` when the stage is complete.
        unit: what ``done`` and ``total`` count ("B", "text", "epoch").
        final: the run's last report: ``message`` says how it ended (why training stopped, where things went).
    """

    stage: str
    fraction: float | None = None
    epoch: int | None = None
    loss: float | None = None
    message: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    done: float | None = None
    total: float | None = None
    unit: str | None = None
    final: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON values (what a job record keeps)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Progress:
        """The report :meth:`to_dict` gave; keys this version does not know (a newer writer's) are left out."""
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


ProgressCallback = Callable[[Progress], None]

#: The stage of a run's last report (``final``): its message says how the run ended.
DONE_STAGE = "done"


def ignore_progress(_progress: Progress) -> None:
    """The callback for callers that do not watch."""


def counted(stage: str, done: float, total: float, unit: str, *, message: str | None = None) -> Progress:
    """A report of ``done`` out of ``total`` ``unit`` (its ``fraction`` follows from them)."""
    fraction = min(1.0, done / total) if total else 1.0
    return Progress(stage=stage, fraction=fraction, message=message, done=done, total=total, unit=unit)
