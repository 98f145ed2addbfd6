"""The CLI's progress bars: units of the stage's own, bars filled when their stage ends, the closing line."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

from pipelines.runs.progress import Progress, counted
from services.cli.progress_bars import ProgressBars
from services.jobs.job import Job, JobState


def _bars() -> tuple[ProgressBars, io.StringIO]:
    out = io.StringIO()
    return ProgressBars(file=out, tick_s=None, interactive=True), out  # drawn as on a terminal


def _last_render(out: io.StringIO, stage: str) -> str:
    """The last state drawn of ``stage``'s bar (tqdm redraws a line after a carriage return)."""
    frames = [f for line in out.getvalue().split("\n") for f in line.split("\r") if f.startswith(f"{stage}:")]
    return frames[-1]


def test_epoch_bar_counts_epochs_and_ends_full() -> None:
    bars, out = _bars()
    for epoch in range(3):
        bars(Progress(stage="train", epoch=epoch, done=epoch, total=3, unit="epoch"))
    bars(Progress(stage="train", epoch=3, done=3, total=3, unit="epoch", loss=0.5))
    assert bars.bar is not None
    assert (bars.bar.n, bars.bar.total) == (3, 3)
    bars.close()
    last = _last_render(out, "train")
    assert "3/3" in last
    assert "epoch" in last
    assert "%/s" not in out.getvalue()


def test_a_later_stage_fills_the_bar_of_the_stage_it_follows() -> None:
    # a job watcher polls: it may see epoch 1 of 2 (fraction only) and next the save stage
    bars, out = _bars()
    bars(Progress(stage="train", fraction=0.5, epoch=1))
    bars(Progress(stage="save", message="registering x"))
    bars.close()
    assert "100%" in _last_render(out, "train")
    assert "%/s" not in out.getvalue()


def test_bytes_bar_reads_in_scaled_bytes() -> None:
    bars, out = _bars()
    total = 45_000_000
    bars(counted("preprocess", 15_000_000, total, "B"))
    bars(counted("preprocess", total, total, "B"))
    bars.close()
    last = _last_render(out, "preprocess")
    assert "45.0M/45.0M" in last
    assert "100%" in last


def test_step_bar_shows_the_running_step() -> None:
    bars, out = _bars()
    bars(counted("prepare", 1, 5, "step", message="character n-grams of 900 distinct words"))
    assert "character n-grams" in _last_render(out, "prepare")
    bars.close()


def test_final_report_closes_the_bar_and_prints_its_line() -> None:
    bars, out = _bars()
    bars(Progress(stage="train", epoch=5, done=5, total=20, unit="epoch"))
    line = "training stopped: early stopping at epoch 5 of 20; best epoch 2 kept; curves in /m/history.png"
    bars(Progress(stage="done", message=line, final=True))
    assert bars.bar is None
    assert out.getvalue().endswith(line + "\n")
    assert bars.final_message == line
    bars.close()


def test_interrupted_stage_is_not_drawn_as_finished() -> None:
    bars, out = _bars()
    bars(Progress(stage="train", epoch=1, done=1, total=4, unit="epoch"))
    bars.close()
    assert "1/4" in _last_render(out, "train")
    assert "4/4" not in out.getvalue()


def test_job_watcher_fills_the_last_epoch_bar_and_prints_the_closing_line(monkeypatch: Any) -> None:
    from services.cli.commands import jobs_cmd

    line = "training stopped after all 2/2 epochs; registered m@1: 120 words in 3 s"
    seen = [
        (JobState.RUNNING, Progress(stage="train", fraction=0.5, epoch=1, message="epoch 1/2")),
        (JobState.RUNNING, Progress(stage="save", message="registering m")),
        (JobState.SUCCEEDED, Progress(stage="done", fraction=1.0, message=line)),
    ]

    class Service:
        def get(self, job_id: str) -> Job:
            state, progress = seen.pop(0) if len(seen) > 1 else seen[0]
            return Job(job_id, "word2vec", state, {}, datetime.now(UTC), progress)

    monkeypatch.setattr(jobs_cmd, "WAIT_POLL_S", 0.0)
    bars, out = _bars()
    job = jobs_cmd.wait_for(Service(), "j1", bars=bars)  # type: ignore[arg-type]
    bars.close()
    assert job.state is JobState.SUCCEEDED
    assert "100%" in _last_render(out, "train")
    assert out.getvalue().endswith(line + "\n")


def test_job_watcher_draws_the_counted_progress_the_job_stored(monkeypatch: Any) -> None:
    from services.cli.commands import jobs_cmd

    line = "training stopped: no better loss for 1 epoch; registered m@1"
    seen = [
        (JobState.QUEUED, None),
        (JobState.RUNNING, Progress(stage="train", fraction=0.25, epoch=1, done=1, total=4, unit="epoch")),
        (JobState.RUNNING, Progress(stage="train", fraction=0.75, epoch=3, done=3, total=4, unit="epoch")),
        (JobState.RUNNING, Progress(stage="done", fraction=0.75, epoch=3, message=line, final=True)),
        (JobState.SUCCEEDED, Progress(stage="done", fraction=1.0, epoch=3, message=line, final=True)),
    ]

    class Service:
        def get(self, job_id: str) -> Job:
            state, progress = seen.pop(0) if len(seen) > 1 else seen[0]
            return Job(job_id, "word2vec", state, {}, datetime.now(UTC), progress)

    monkeypatch.setattr(jobs_cmd, "WAIT_POLL_S", 0.0)
    bars, out = _bars()
    jobs_cmd.wait_for(Service(), "j1", bars=bars)  # type: ignore[arg-type]
    bars.close()
    train = _last_render(out, "train")
    assert "3/4" in train  # the trainer's own count, in its unit, not a percentage
    assert "epoch" in train
    assert "4/4 [" not in out.getvalue()  # training stopped at 3 of 4 epochs: the bar is not filled
    assert out.getvalue().endswith("\n" + line + "\n")  # on a line of its own once the job succeeded


def test_training_stopped_early_keeps_its_epoch_count() -> None:
    bars, out = _bars()
    for epoch in range(1, 6):
        bars(Progress(stage="train", epoch=epoch, done=epoch, total=20, unit="epoch"))
    bars(Progress(stage="done", message="training stopped: early stopping at epoch 5 of 20", final=True))
    assert "5/20" in _last_render(out, "train")
    assert "20/20" not in out.getvalue()


def test_work_done_before_a_bar_opens_is_not_shown_as_a_rate() -> None:
    bars, out = _bars()
    bars(counted("read", 1_000_000, 2_000_000, "text"))  # the bar opens on work already done
    bars(Progress(stage="save", fraction=0.0))  # a later stage fills it at once
    render = _last_render(out, "read")
    assert "100%" in render
    assert "Mtext/s" not in out.getvalue()
    assert "Gtext/s" not in out.getvalue()
    bars.close()


def test_a_count_is_never_drawn_beside_the_previous_report_text() -> None:
    """The newcomer's log read "96.2M/96.2M ... read 95,780,579 of 96,198,428 bytes": the update drew the new count
    before the report's own text was set."""
    bars, out = _bars()
    total = 96_198_428
    for done in (0, 95_780_579, total):
        bars(counted("preprocess", done, total, "B", message=f"read {done:,} of {total:,} bytes"))
        assert bars.bar is not None
        bars.bar.mininterval = 0  # reports seconds apart, as in a real run: each update may draw the bar
    bars.close()
    frames = [
        f for line in out.getvalue().split("\n") for f in line.split("\r") if f.startswith("preprocess:")
    ]
    stale = [
        f
        for f in frames
        if ("95.8M/96.2M" in f and "read 0 of" in f) or ("96.2M/96.2M" in f and "read 95,780,579" in f)
    ]
    assert not stale, frames


def test_bars_written_to_a_log_keep_few_frames_and_end_full() -> None:
    """With stderr redirected to a file, every report drew its frame twice and a clock redrew it each second: 66 KB
    of frames for a quick start (a newcomer's run). A log gets at most one frame a report, none from a clock."""
    out = io.StringIO()  # not a terminal
    bars = ProgressBars(file=out)
    assert bars._ticker is None
    for done in range(1, 41):
        bars(Progress(stage="read", done=done * 1000, total=40_000, unit="text"))
    bars(Progress(stage="train", epoch=1, done=1, total=2, unit="epoch"))  # read finished
    bars.close()
    frames = [f for line in out.getvalue().split("\n") for f in line.split("\r") if f.startswith("read:")]
    assert len(frames) <= 3, frames  # opened, and filled when train began (and perhaps one between)
    assert "40.0k/40.0k" in frames[-1]
