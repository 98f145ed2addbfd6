"""Progress bars on stderr for the CLI: one tqdm bar per stage, in the units the stage counts.

A stage that counts (:attr:`Progress.done` of :attr:`Progress.total` bytes, texts or epochs) gets a bar in that
unit, with a rate in that unit (``12.3MB/s``, ``18.20s/epoch``); one known only as a fraction gets a percentage
without a rate; one with no measure (evaluating, saving) shows its message and a clock. A ticker refreshes the open
bar every second, so the clock moves while a stage works between reports. A later stage starting means the earlier
one finished, so its bar is filled before it closes. A report marked ``final`` closes the bars and prints its
message on a line of its own: why training stopped and where its results went.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, TextIO

from tqdm import tqdm

from pipelines.runs.progress import Progress

TICK_S = 1.0
LOG_INTERVAL_S = 10.0
_STOPS_EARLY = frozenset({"epoch", "batch"})
_SCALED_UNITS = ("B", "word", "token", "text")
_NO_MEASURE = "{desc} [{elapsed}]"
_PERCENT = "{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]"


class ProgressBars:
    """A progress callback that draws a tqdm bar per stage on ``file`` (stderr by default)."""

    def __init__(
        self,
        *,
        disable: bool = False,
        file: TextIO | None = None,
        tick_s: float | None = TICK_S,
        interactive: bool | None = None,
    ) -> None:
        self.disable = disable
        self.file = file
        # a terminal redraws one line; a file or pipe (a log) keeps every frame, so it gets no clock ticking each
        # second and at most one frame a report, and between reports one every LOG_INTERVAL_S
        if interactive is None:
            isatty = getattr(file or sys.stderr, "isatty", None)
            interactive = bool(isatty()) if callable(isatty) else False
        self.interactive = interactive
        if not interactive:
            tick_s = None
        self.stage: str | None = None
        self.bar: tqdm[Any] | None = None
        self.final_message: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        if tick_s and not disable:
            self._ticker = threading.Thread(target=self._tick, args=(tick_s,), daemon=True)
            self._ticker.start()

    def _tick(self, every: float) -> None:
        while not self._stop.wait(every):
            with self._lock:
                if self.bar is not None:
                    self.bar.refresh()

    def _open(self, progress: Progress) -> tqdm[Any]:
        self._finish_bar()
        self.stage = progress.stage
        kwargs: dict[str, Any] = {
            "desc": progress.stage,
            "file": self.file or sys.stderr,
            "disable": self.disable,
        }
        if not self.interactive:
            kwargs.update(mininterval=LOG_INTERVAL_S)
        if progress.total is not None and progress.unit:
            kwargs.update(total=progress.total, unit=progress.unit, unit_scale=progress.unit in _SCALED_UNITS)
            # what was done before the bar opened is not a rate: counting it would show e.g. 1.1Gtext/s
            kwargs.update(initial=progress.done or 0)
        elif progress.fraction is not None:
            kwargs.update(total=100, bar_format=_PERCENT)
        else:
            kwargs.update(total=None, bar_format=_NO_MEASURE)
        return tqdm(**kwargs)

    def __call__(self, progress: Progress) -> None:
        with self._lock:
            if progress.final:
                self._finish_bar()
                self.final_message = progress.message
                if progress.message and not self.disable:
                    print(progress.message, file=self.file or sys.stderr, flush=True)
                return
            if progress.stage != self.stage or self.bar is None:
                self.bar = self._open(progress)
            bar = self.bar
            # the text first: an update may draw the bar, and it must not draw the new count beside the old text
            if progress.loss is not None:
                bar.set_postfix(loss=f"{progress.loss:.4f}", refresh=False)
            elif progress.message and bar.total is None:
                bar.set_description_str(f"{progress.stage}: {progress.message[:60]}", refresh=False)
            elif progress.message:
                bar.set_postfix_str(progress.message[:60], refresh=False)
            delta = 0
            if progress.total is not None and progress.done is not None and bar.total is not None:
                if progress.total != bar.total:
                    bar.total = progress.total
                delta = progress.done - bar.n
            elif progress.fraction is not None and bar.total is not None:
                delta = round(progress.fraction * bar.total) - bar.n
            if delta:
                bar.update(delta)  # update, not assignment, so the rate is the stage's own (it draws, as due)
            if self.interactive or not delta:
                bar.refresh()  # in a log, an update that drew is not drawn a second time

    def _finish_bar(self) -> None:
        """Close the open bar; a bar with a total is filled first (a stage only ends by finishing), except epochs
        and batches: training that stops early ends where it reached, and the closing line says why."""
        if self.bar is None:
            return
        bar = self.bar
        if not bar.disable and bar.total is not None and bar.n < bar.total and bar.unit not in _STOPS_EARLY:
            # a jump to the end in no time is not a rate (it showed 11618.57epoch/s): the rate shown stays the one
            # measured over the reports, since tqdm averages n - initial over the elapsed time
            measured = bar.n - bar.initial
            bar.n = bar.total
            bar.initial = bar.total - measured
        self.bar.close()
        self.bar = None
        self.stage = None

    def close(self) -> None:
        """Stop the ticker and close the open bar as it stands (an interrupted stage stays unfilled)."""
        self._stop.set()
        with self._lock:
            if self.bar is not None:
                self.bar.close()
                self.bar = None
                self.stage = None
