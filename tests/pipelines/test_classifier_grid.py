"""Grids over the classifier run config: ``--grid`` syntax, typed values, multiplication, clashing cells."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from models.errors import InvalidConfig
from pipelines.classifier.compare_report import format_seconds, legend_name, table_columns
from pipelines.classifier.grid import (
    MAX_CELLS,
    GridAxis,
    apply,
    axis,
    cells,
    grid_axes,
    labels,
    parse_axis,
    varying,
)
from tests.conftest import review_run


@pytest.mark.parametrize(
    ("text", "key", "values"),
    [
        ("training.lr=0.5,0.1,0.01,0.001", "training.lr", (0.5, 0.1, 0.01, 0.001)),
        ("training.batch_size=1,32,full", "training.batch_size", (1, 32, "full")),
        ("model.hidden=64|256,64", "model.hidden", ([64], [256, 64])),
        ("model.hidden=[]|64", "model.hidden", ([], [64])),
        ("model.hidden=[]|64,64", "model.hidden", ([], [64, 64])),
        ("training.patience=none,0,2", "training.patience", (None, 0, 2)),
        ("training.target_error=off, 0.3", "training.target_error", (None, 0.3)),
        ("training.epochs=5|10", "training.epochs", (5, 10)),
        ("training.optimizer=sgd,adam", "training.optimizer", ("sgd", "adam")),
        ("normalize.lowercase=true,false", "normalize.lowercase", (True, False)),
        ("model.features.word_ngrams=1,2", "model.features.word_ngrams", (1, 2)),
        # "none" is a choice's own name here, not null: the default could not be compared with "balanced"
        ("training.class_weights=balanced,none", "training.class_weights", ("balanced", "none")),
        ("training.class_weights=None,balanced", "training.class_weights", ("none", "balanced")),
    ],
)
def test_grid_parse_gives_typed_values(text: str, key: str, values: tuple[Any, ...]) -> None:
    assert parse_axis(text) == GridAxis(key, values)


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("training.lr", ["write KEY=V1,V2", "training.lr=0.1,0.01"]),
        ("=0.1", ["write KEY=V1,V2"]),
        (
            "training.lrr=0.1",
            ["unknown grid key 'training.lrr'", "did you mean training.lr?", "training.batch_size"],
        ),
        ("training.lr=abc", ["grid training.lr: 'abc' is not allowed", "a number > 0"]),
        ("training.lr=0.1,,0.01", ["grid training.lr: an empty value"]),
        ("training.lr=0.1,0.1", ["the value 0.1 is given twice"]),
        ("training.batch_size=half", ["training.batch_size: 'half'", "full or an integer from 1 to 65536"]),
        ("training.optimizer=lbfgs", ["'lbfgs'", "one of sgd, momentum, adagrad, rmsprop, adam"]),
        ("model.hidden=64|x", ["model.hidden: 'x'", "lists of integers like 256,64 separated by '|'"]),
        # a trailing '|' added a linear cell nobody asked for ([] is written out)
        ("model.hidden=64|", ["grid model.hidden: an empty value in '64|'", "([] for none)"]),
        # a size no run takes was accepted, and its one cell failed after the data were read (a hostile probe)
        ("model.hidden=0", ["model.hidden: '0' is not allowed"]),
        ("model.hidden=64|9000", ["model.hidden: '9000' is not allowed"]),
        ("training.patience=-1", ["training.patience: '-1'", "an integer >= 0 or none"]),
        ("model.dropout=1", ["model.dropout: '1'", ">= 0.0 and < 1.0"]),
        ("name=a,b", ["unknown grid key 'name'"]),  # the data and name are shared by every cell
    ],
)
def test_grid_parse_refuses_bad_syntax_naming_the_key_and_the_allowed_values(
    text: str, fragments: list[str]
) -> None:
    with pytest.raises(InvalidConfig) as info:
        parse_axis(text)
    for fragment in fragments:
        assert fragment in info.value.detail


def test_grid_axes_multiply_first_axis_slowest() -> None:
    axes = [
        parse_axis("training.lr=0.1,0.01"),
        parse_axis("training.batch_size=1,full"),
        parse_axis("training.epochs=3"),
    ]
    assert cells(axes) == [
        {"training.lr": 0.1, "training.batch_size": 1, "training.epochs": 3},
        {"training.lr": 0.1, "training.batch_size": "full", "training.epochs": 3},
        {"training.lr": 0.01, "training.batch_size": 1, "training.epochs": 3},
        {"training.lr": 0.01, "training.batch_size": "full", "training.epochs": 3},
    ]
    assert varying(axes) == ["training.lr", "training.batch_size"]
    assert table_columns(axes)[:3] == ["lr", "batch_size", "status"]
    assert legend_name(cells(axes)[1], axes) == "lr=0.1, batch_size=full"


def test_grid_shorthands_default_to_every_name_only_without_a_grid() -> None:
    plain = grid_axes(optimizers=["sgd"])
    assert [a.key for a in plain] == ["training.optimizer", "model.activation"]
    assert len(plain[1].values) == 4
    with_grid = grid_axes(optimizers=["sgd", "adam"], grid=[parse_axis("training.lr=0.1,0.01")])
    assert [a.key for a in with_grid] == ["training.optimizer", "training.lr"]
    assert grid_axes(grid=[parse_axis("training.lr=0.1")]) == [GridAxis("training.lr", (0.1,))]
    with pytest.raises(InvalidConfig, match=r"training\.optimizer is given twice"):
        grid_axes(optimizers=["sgd"], grid=[parse_axis("training.optimizer=adam")])
    with pytest.raises(InvalidConfig, match="unknown optimizer 'lbfgs'"):
        grid_axes(optimizers=["lbfgs"])


def test_grid_labels_keep_the_whole_key_where_two_would_share_a_name() -> None:
    assert labels(["training.lr", "model.features.word_ngrams"]) == {
        "training.lr": "lr",
        "model.features.word_ngrams": "word_ngrams",
    }
    assert labels(["model.features.min_count", "normalize.min_count"]) == {
        "model.features.min_count": "model.features.min_count",
        "normalize.min_count": "normalize.min_count",
    }


def test_grid_apply_sets_nested_keys_and_refuses_a_clashing_combination(reviews_csv: dict[str, Path]) -> None:
    base = review_run(reviews_csv)
    run = apply(base, {"training.lr": 0.5, "model.hidden": [16, 8], "model.features.word_ngrams": 1})
    assert (run.training.lr, run.model.hidden, run.model.features.word_ngrams) == (0.5, [16, 8], 1)
    assert base.training.lr == 0.02  # the base run is left alone
    with pytest.raises(InvalidConfig, match="char_ngram_max must be >= char_ngram_min"):
        apply(base, {"model.features.char_ngram_min": 6})


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.4213, "0.42 s"),
        (0.998, "1 s"),
        (3.44, "3.4 s"),
        (9.98, "10 s"),
        (42.3, "42 s"),
        (125.2, "2 min 05 s"),
    ],
)
def test_grid_report_rounds_times_to_what_they_mean(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text


def test_grid_refuses_more_cells_than_one_comparison_may_train() -> None:
    """Grids multiply: six axes of 20 values were 64,000,000 cells, accepted, and built as a list of dicts by the
    worker. The count is checked from the axes' sizes before any cell exists; at the limit the grid is fine."""
    lrs = ",".join(str(round(0.01 * (i + 1), 2)) for i in range(10))
    at_limit = [
        parse_axis(f"training.lr={lrs}"),
        parse_axis("training.epochs=" + ",".join(map(str, range(1, 11)))),
    ]
    seeds = parse_axis("training.seed=" + ",".join(map(str, range(10))))
    assert len(cells(grid_axes(optimizers=["sgd"], grid=[*at_limit, seeds]))) == MAX_CELLS == 1000
    with pytest.raises(
        InvalidConfig, match=r"the grid has 2,000 cells \(2 x 10 x 10 x 10\), more than the 1,000"
    ):
        grid_axes(optimizers=["sgd", "adam"], grid=[*at_limit, seeds])


def test_an_empty_value_in_a_json_grid_is_refused_as_on_the_command_line() -> None:
    """A job's JSON grid {"model.hidden": ["", [64]]} still turned "" into a linear cell (a review)."""
    with pytest.raises(InvalidConfig, match=r"grid model\.hidden: an empty value"):
        axis("model.hidden", ["", [64]])
    assert axis("model.hidden", [[], [64]]).values == ([], [64])
