"""``compare lm``: a grid of tiny language models on the fixtures' sentences, one prepared corpus for every cell."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from models.errors import DatabaseUnavailable, InvalidConfig
from pipelines.classifier.plots import loss_curves_figure
from pipelines.lm import compare as lm_compare
from pipelines.lm import train as lm_train
from pipelines.lm.compare import compare_lms, grid_axes, parse_axis
from pipelines.lm.config import make_run
from pipelines.reading.datasets import DataCatalog
from pipelines.runs.progress import Progress
from tests.lm_helpers import TINY

FAST = {**TINY, "epochs": 2, "hidden": [16], "dim": 8}


def _compare(
    corpus: Path, tmp_path: Path, grid: list[str], progress: Any = None, **shorthands: Any
) -> dict[str, Any]:
    run = make_run({"name": "compare", "corpus": [str(corpus)], **FAST})
    cache = tmp_path / "cache"
    return compare_lms(
        run,
        axes=grid_axes(grid=[parse_axis(g) for g in grid], **shorthands),
        out_dir=tmp_path / "report",
        catalog=DataCatalog(None, cache),
        cache_dir=cache,
        progress=progress,
    )


def test_a_failing_progress_report_fails_the_comparison_not_the_cell(
    pt_corpus_file: Path, tmp_path: Path
) -> None:
    """The job database going away during a cell's epoch was recorded as that cell failing, and the comparison went
    on (a review): the error is the comparison's."""

    def report(p: Progress) -> None:
        if p.stage == "compare" and p.epoch:
            raise DatabaseUnavailable("the job database is not answering")

    with pytest.raises(DatabaseUnavailable, match="not answering"):
        _compare(pt_corpus_file, tmp_path, ["model.context=2,3"], progress=report)


def test_progress_moves_inside_a_cell_epoch_by_epoch(pt_corpus_file: Path, tmp_path: Path) -> None:
    """The bar sat at "0% 1/1 run" until the cell ended (a hostile probe: minutes at 0% on a real corpus)."""
    seen: list[Progress] = []
    _compare(pt_corpus_file, tmp_path, ["model.context=2"], progress=seen.append)
    inside = [p for p in seen if p.stage == "compare" and p.epoch]
    assert inside, [p.message for p in seen]
    assert all(0.0 < (p.fraction or 0.0) <= 1.0 for p in inside)
    fractions = [p.fraction for p in inside]
    assert fractions == sorted(fractions)
    ends = [p.message for p in inside if p.message]
    assert ends[0].startswith("1/1 run: epoch 1/"), ends


def test_grid_over_context_and_activation_multiplies_on_one_prepared_corpus(
    pt_corpus_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prepared: list[str] = []
    real = lm_train.prepare_corpus
    monkeypatch.setattr(lm_train, "prepare_corpus", lambda *a, **k: prepared.append("x") or real(*a, **k))
    plotted: list[dict[str, Any]] = []
    plot = lm_compare.plot_loss_curves
    monkeypatch.setattr(lm_compare, "plot_loss_curves", lambda *a, **k: plotted.append(k) or plot(*a, **k))
    result = _compare(pt_corpus_file, tmp_path, ["model.context=2,3"], activations=["tanh", "relu"])
    assert [r["cell"] for r in result["runs"]] == [
        {"model.activation": a, "model.context": c} for a in ("tanh", "relu") for c in (2, 3)
    ]
    assert prepared == ["x"]  # the corpus is prepared once for the four cells
    assert all(r["status"] == "ok" for r in result["runs"])
    assert all(r["best_perplexity"] and r["best_perplexity"] < r["vocabulary"] for r in result["runs"])
    assert result["columns"] == [
        "activation", "context", "status", "epochs", "best_epoch", "final_perplexity", "best_perplexity",
        "time/epoch", "time",
    ]  # fmt: skip
    report = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    header = next(line for line in report.splitlines() if line.startswith("| "))
    assert header.split(" | ")[:2] == ["| activation", "context"]
    assert "lr" not in header.split(" | ")  # only the varying keys are columns
    assert (tmp_path / "report" / "perplexity_curves.png").stat().st_size > 1000
    saved = json.loads((tmp_path / "report" / "results.json").read_text(encoding="utf-8"))
    assert len(saved["runs"]) == 4
    assert all(r["history"] for r in saved["runs"])
    assert [k.get("share_y") for k in plotted] == [False]
    # training and validation perplexity on scales of their own: on one, the validation curves were a flat line
    # at the bottom of the training panel's scale
    figure = loss_curves_figure(
        {f"cell {i}": r["history"] for i, r in enumerate(saved["runs"])},
        keys=("train_perplexity", "val_perplexity"),
        share_y=False,
    )
    train_axis, val_axis = figure.axes
    worst_val = max(row["val_perplexity"] for r in saved["runs"] for row in r["history"])
    assert val_axis.get_ylim()[1] < 1.5 * worst_val < train_axis.get_ylim()[1], (
        val_axis.get_ylim(),
        train_axis.get_ylim(),
        worst_val,
    )
    import matplotlib.pyplot as plt

    plt.close(figure)


def test_curves_stay_readable_when_half_the_cells_blow_up() -> None:
    """A grid of lr=10,0.004 had half its cells at perplexities near 1e48 (finite, so not "diverged"): the axes ran
    to 1e46 and below zero, every real curve flat at the bottom (a hostile probe)."""
    import matplotlib.pyplot as plt

    calm = [{"epoch": e, "train_perplexity": 900.0 / e, "val_perplexity": 700.0 / e} for e in (1, 2)]
    wild = [{"epoch": e, "train_perplexity": 1e24 * e, "val_perplexity": 1.6e48 * e} for e in (1, 2)]
    histories = {**{f"calm {i}": calm for i in range(4)}, **{f"wild {i}": wild for i in range(4)}}
    figure = loss_curves_figure(histories, keys=("train_perplexity", "val_perplexity"), share_y=False)
    try:
        for axis, first in zip(figure.axes, (900.0, 700.0), strict=True):
            bottom, top = axis.get_ylim()
            # the calm curves on screen, nothing below 0
            assert 0.0 <= bottom <= first / 2, axis.get_ylim()
            assert first <= top <= 2.5 * first, axis.get_ylim()
    finally:
        plt.close(figure)


def test_loss_curves_on_a_shared_scale_keep_every_healthy_curve_in_view() -> None:
    """Two healthy cells that start 2.5x apart were cut off by a ceiling taken from the lower one; on a shared scale
    the bottom came from the validation panel alone, hiding the train curves' low end (a review)."""
    import matplotlib.pyplot as plt

    def epochs(*losses: tuple[float, float]) -> list[dict[str, float]]:
        return [{"epoch": e, "train_loss": t, "val_loss": v} for e, (t, v) in enumerate(losses, start=1)]

    adam, sgd = epochs((0.25, 0.3), (0.15, 0.28)), epochs((0.69, 0.69), (0.66, 0.67))
    calm, wild = epochs((0.70, 0.60), (0.15, 0.50)), epochs((0.72, 0.9), (900.0, 1e4))
    for histories in ({"adam": adam, "sgd": sgd}, {"calm": calm, "wild": wild}):
        figure = loss_curves_figure(histories)
        try:
            for axis in figure.axes:
                bottom, top = axis.get_ylim()
                assert bottom <= 0.15, (histories.keys(), axis.get_ylim())
                assert top >= 0.69, (histories.keys(), axis.get_ylim())
                assert top < 10, (histories.keys(), axis.get_ylim())  # the blown-up cell is cut off
        finally:
            plt.close(figure)


def test_an_lm_comparison_interrupted_by_ctrl_c_keeps_the_cells_that_finished(
    pt_corpus_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = lm_compare._train_cell
    calls: list[int] = []

    def train_then_interrupt(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(lm_compare, "_train_cell", train_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        _compare(pt_corpus_file, tmp_path, ["model.context=2,3"])
    report = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    assert "**Interrupted** (Ctrl-C) after 1 of 2 cells" in report
    assert len(json.loads((tmp_path / "report" / "results.json").read_text(encoding="utf-8"))["runs"]) == 1


def test_a_diverging_cell_is_reported_while_the_others_complete(pt_corpus_file: Path, tmp_path: Path) -> None:
    result = _compare(pt_corpus_file, tmp_path, ["training.lr=0.01,10"], optimizers=["sgd"])
    calm, wild = result["runs"]
    assert calm["status"] == "ok"
    assert calm["best_perplexity"] is not None
    assert wild["status"] == "diverged"
    assert wild["diverged_at"] == 1
    assert wild["best_perplexity"] is None
    report = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    assert "| 10 | diverged at epoch 1 |" in report
    assert result["columns"][0] == "lr"


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ("model.context=2,zero", "grid model.context: 'zero' is not allowed; give an integer from 1 to 32"),
        ("model.activation=tanh,softplus", "one of sigmoid, tanh, relu, leaky_relu"),
        ("model.contxt=2,3", "unknown grid key 'model.contxt' (did you mean model.context?)"),
        ("context", "write KEY=V1,V2,..."),
        ("lr=0.1,,0.01", "grid training.lr: an empty value"),
        ("model.hidden=|", "grid model.hidden: an empty value in '|'"),  # was "the value [] is given twice"
    ],
)
def test_bad_grid_syntax_names_the_key_and_the_allowed_values(grid: str, message: str) -> None:
    with pytest.raises(InvalidConfig) as info:
        parse_axis(grid)
    assert message in info.value.detail
    assert "\n" not in info.value.detail


def test_bare_names_are_the_dotted_keys_and_a_key_twice_is_refused() -> None:
    assert parse_axis("context=3,5").key == "model.context"
    assert parse_axis("training.lr=0.1,0.01").values == (0.1, 0.01)
    with pytest.raises(InvalidConfig, match="given twice"):
        grid_axes(activations=["tanh"], grid=[parse_axis("activation=relu,tanh")])
    with pytest.raises(InvalidConfig, match="unknown optimizer 'lbfgs'"):
        grid_axes(optimizers=["lbfgs"])


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ("model.hidden=0", "grid model.hidden: '0' is not allowed"),  # was trained and reported "ok"
        ("model.hidden=64|-1", "grid model.hidden: '-1' is not allowed"),  # was a "failed" cell
        ("training.seed=-1", "grid training.seed: '-1' is not allowed"),
    ],
)
def test_a_value_no_run_accepts_refuses_the_grid_before_anything_is_read(
    tmp_path: Path, grid: str, message: str
) -> None:
    with pytest.raises(InvalidConfig) as info:
        _compare(tmp_path / "missing.txt", tmp_path, [grid])
    assert message in info.value.detail
    assert not (tmp_path / "report").exists()


def test_the_default_ngram_order_follows_a_short_context_and_survives_a_round_trip() -> None:
    """A given order above context + 1 is refused (it was cut down without a word); the default order is cut down
    to a short context, also once the run is written out and read back (a job's stored config, a grid's cells)."""
    run = make_run({"name": "curto", "corpus": ["x.txt"], "context": 2})
    assert run.ngram_order == 3
    again = type(run).model_validate(run.model_dump(mode="json"))
    assert again.ngram_order == 3
    assert make_run({"name": "curto", "corpus": ["x.txt"], "context": 2, "ngram": 3}).ngram_order == 3
    with pytest.raises(InvalidConfig, match="field 'ngram': order 4 is above context \\+ 1 = 3"):
        make_run({"name": "curto", "corpus": ["x.txt"], "context": 2, "ngram": 4})


def test_a_stored_order_from_before_the_rule_still_runs_and_compare_ignores_the_order() -> None:
    """Configs stored before an order above context + 1 was refused hold the old default written out (4): a job
    queued then must still run (cut to context + 1, as it was), and a comparison (networks alone) never checks it."""
    from services.jobs.kinds import job_kind

    old = {"name": "curto", "corpus": ["x.txt"], "context": 2, "ngram": 4}
    assert job_kind("lm").validate(old, stored=True).ngram_order == 3  # type: ignore[attr-defined]
    with pytest.raises(InvalidConfig, match="order 4 is above context"):
        job_kind("lm").validate(old)  # a new submission is refused
    base = make_run({"name": "curto", "corpus": ["x.txt"], "context": 5, "ngram": 4})
    cells = [lm_compare.apply(base, {"model.context": c}) for c in (1, 2, 5)]
    assert [c.context for c in cells] == [1, 2, 5]
