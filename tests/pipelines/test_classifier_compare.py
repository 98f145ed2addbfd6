"""Comparison grids on the tiny review data: every cell reported, diverged and failed cells too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipelines.classifier.compare import compare_classifiers, sample_texts
from pipelines.classifier.data import LabelledTexts
from pipelines.classifier.grid import parse_axis
from pipelines.runs.progress import Progress
from tests.conftest import review_run


def _table(report: str) -> list[list[str]]:
    rows = [line for line in report.splitlines() if line.startswith("| ")]
    return [[part.strip() for part in row.strip("|").split("|")] for row in rows]


def test_compare_diverging_cell_is_reported_while_the_others_complete(
    reviews_csv: dict[str, Path], tmp_path: Path
) -> None:
    run = review_run(reviews_csv, training={"epochs": 3, "optimizer": "sgd", "patience": 0})
    axes = [parse_axis("training.lr=1e6,0.5,0.05"), parse_axis("training.batch_size=16,full")]
    result = compare_classifiers(run, axes=axes, out_dir=tmp_path / "cmp")
    rows = result["runs"]
    assert [(r["cell"]["training.lr"], r["cell"]["training.batch_size"]) for r in rows] == [
        (1e6, 16), (1e6, "full"), (0.5, 16), (0.5, "full"), (0.05, 16), (0.05, "full"),
    ]  # fmt: skip
    assert [r["status"] for r in rows[:2]] == ["diverged", "diverged"]
    assert rows[0]["diverged_at"] == 1
    assert all(r["status"] == "ok" and r["epochs"] == 3 for r in rows[2:])
    assert rows[2]["macro_f1"] > 0.8  # mini-batches of 16 learn the easy reviews in 3 epochs
    table = _table((tmp_path / "cmp" / "report.md").read_text(encoding="utf-8"))
    assert table[0] == result["columns"]
    assert table[0][:3] == ["lr", "batch_size", "status"]  # only the keys that vary, then the results
    assert "optimizer" not in table[0]
    assert table[1][:3] == ["1e+06", "16", "diverged at epoch 1"]
    assert table[2][:2] == ["1e+06", "full"]  # one step per epoch: the loss blows up on the second epoch
    assert table[2][2] == f"diverged at epoch {rows[1]['diverged_at']}"
    for name in ("loss_curves.png", "lr_sweep.png"):
        assert (tmp_path / "cmp" / name).read_bytes()[:4] == b"\x89PNG"
    saved = json.loads((tmp_path / "cmp" / "results.json").read_text(encoding="utf-8"))
    assert len(saved["runs"]) == 6


def test_compare_interrupted_by_ctrl_c_keeps_the_cells_that_finished(
    reviews_csv: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C after 4 of 6 cells exited 130 and left no report: the finished cells were lost (a hostile probe)."""
    import pipelines.classifier.compare as compare

    real = compare._train_cell
    calls: list[int] = []

    def train_then_interrupt(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(compare, "_train_cell", train_then_interrupt)
    seen: list[Progress] = []
    run = review_run(reviews_csv, training={"epochs": 1})
    with pytest.raises(KeyboardInterrupt):
        compare_classifiers(
            run, axes=[parse_axis("training.lr=0.5,0.1,0.05")], out_dir=tmp_path / "cmp", progress=seen.append
        )
    report = (tmp_path / "cmp" / "report.md").read_text(encoding="utf-8")
    assert "**Interrupted** (Ctrl-C) after 2 of 3 cells" in report
    assert [row[0] for row in _table(report)[1:]] == ["0.5", "0.1"]
    saved = json.loads((tmp_path / "cmp" / "results.json").read_text(encoding="utf-8"))
    assert len(saved["runs"]) == 2
    assert seen[-1].final
    assert seen[-1].message == f"interrupted: the 2 of 3 cells that finished are in {tmp_path / 'cmp'}"


def test_compare_a_cell_that_fails_does_not_stop_the_others(
    reviews_csv: dict[str, Path], tmp_path: Path
) -> None:
    run = review_run(reviews_csv, training={"epochs": 2})
    axes = [parse_axis("model.features.char_ngram_min=6,3"), parse_axis("model.hidden=[]|8,8")]
    result = compare_classifiers(run, axes=axes, out_dir=tmp_path / "cmp")
    statuses = [r["status"] for r in result["runs"]]
    assert statuses == ["failed", "failed", "ok", "ok"]  # char n-grams from 6 to the run's 5: no such range
    assert "char_ngram_max must be >= char_ngram_min" in result["runs"][0]["error"]
    # a refused cell still says what it asked for (its optimizer and activation were "")
    assert (result["runs"][0]["optimizer"], result["runs"][0]["activation"]) == (
        run.training.optimizer,
        run.model.activation,
    )
    report = (tmp_path / "cmp" / "report.md").read_text(encoding="utf-8")
    assert _table(report)[0][:3] == ["char_ngram_min", "hidden", "status"]
    assert "| 3 | [] | ok |" in report
    assert "| 3 | 8,8 | ok |" in report
    assert "lr_sweep.png" not in report  # no learning-rate axis, no sweep


def test_compare_stopping_criteria_grid_stops_each_cell_its_own_way(
    reviews_csv: dict[str, Path], tmp_path: Path
) -> None:
    run = review_run(reviews_csv, training={"epochs": 8, "lr": 0.05})
    axes = [parse_axis("training.patience=none,1"), parse_axis("training.target_error=none,0.4")]
    rows = compare_classifiers(run, axes=axes, out_dir=tmp_path / "cmp")["runs"]
    by_cell = {(r["cell"]["training.patience"], r["cell"]["training.target_error"]): r for r in rows}
    assert by_cell[(None, None)]["stopped"] == "max_epochs"
    assert by_cell[(None, None)]["epochs"] == 8
    assert by_cell[(None, 0.4)]["stopped"] == "target_error"
    assert by_cell[(None, 0.4)]["epochs"] < 8


def test_compare_sample_keeps_a_seeded_subset_in_file_order() -> None:
    data = LabelledTexts([f"texto {i}" for i in range(100)], ["a", "b"] * 50, "x.csv")
    first, again = sample_texts(data, 30, seed=7), sample_texts(data, 30, seed=7)
    assert first == again
    assert len(first) == 30
    assert first.texts == sorted(first.texts, key=lambda t: int(t.split()[1]))
    assert sample_texts(data, 500, seed=7) is data
