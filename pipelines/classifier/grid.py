"""Grids over a classifier run's config: ``training.lr=0.1,0.01`` x ``model.hidden=64|256,64`` -> one run per cell.

A grid axis is one config key (dotted as in the run config: ``training.lr``, ``model.features.word_ngrams``,
``normalize.lowercase``) and the values it takes. Values are checked one by one against the key's own type and
bounds when the grid is read, so a typo stops everything before training starts; a value that only fails in
combination with another (``model.features.char_ngram_max`` below ``char_ngram_min``) fails its cells only.

Text syntax (the CLI's ``--grid``): ``KEY=V1,V2,...``. For list keys (``model.hidden``) values are separated by
``|`` and a value's items by ``,`` (``64|256,64``; ``[]`` or nothing is the empty list). ``none`` (or ``null``,
``off``) is the null value of keys that take one (``training.patience=none,2``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from pydantic import BaseModel, ValidationError

from models.errors import InvalidConfig
from pipelines.classifier.config import ACTIVATIONS, OPTIMIZERS, ClassifierRun
from pipelines.runs.config_io import validation_message
from pipelines.runs.grid import (
    MAX_CELLS,
    NONE_WORDS,
    GridAxis,
    GridKeys,
    cells,
    check_axes,
    check_names,
    format_value,
    labels,
    leaves,
    varying,
)

__all__ = [
    "MAX_CELLS",
    "NONE_WORDS",
    "GridAxis",
    "allowed",
    "apply",
    "axis",
    "cells",
    "check_axes",
    "coerce",
    "format_value",
    "grid_axes",
    "grid_keys",
    "labels",
    "parse_axis",
    "varying",
]

#: the run config's sections a grid may vary (the data files and the model name stay the same for every cell)
SECTIONS = ("model", "training", "normalize")


@cache
def classifier_keys() -> GridKeys:
    """The keys of the classifier's run config a grid may vary."""
    out: dict[str, Any] = {}
    for section in SECTIONS:
        model = ClassifierRun.model_fields[section].annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            out.update(leaves(model, f"{section}."))
    return GridKeys(out)


def grid_keys() -> dict[str, Any]:
    """Every key a grid may vary, dotted, in the run config's order."""
    return classifier_keys().fields


def allowed(key: str) -> str:
    """What ``key`` accepts, in words (for error messages)."""
    return classifier_keys().allowed(key)


def coerce(key: str, value: Any) -> Any:
    """``value`` (a text or a JSON value) as the type ``key`` takes (see :func:`pipelines.runs.grid.coerce`)."""
    return classifier_keys().coerce(key, value)


def parse_axis(text: str) -> GridAxis:
    """One ``--grid KEY=V1,V2,...`` option (see :func:`pipelines.runs.grid.parse_axis`)."""
    return classifier_keys().parse_axis(text)


def axis(key: str, values: Sequence[Any]) -> GridAxis:
    """The axis ``key`` over ``values`` (see :func:`pipelines.runs.grid.axis`)."""
    return classifier_keys().axis(key, values)


def apply(run: ClassifierRun, assignment: Mapping[str, Any]) -> ClassifierRun:
    """``run`` with each dotted key of ``assignment`` set, validated as a whole.

    Raises:
        InvalidConfig: the combination does not validate (a value that clashes with another key).
    """
    spec = run.model_dump()
    for key, value in assignment.items():
        *parents, leaf = key.split(".")
        node = spec
        for part in parents:
            node = node[part]
        node[leaf] = value
    try:
        return ClassifierRun.model_validate(spec)
    except ValidationError as exc:
        raise InvalidConfig(validation_message(exc, source="this cell")) from None


def grid_axes(
    *,
    optimizers: Sequence[str] | None = None,
    activations: Sequence[str] | None = None,
    grid: Sequence[GridAxis] = (),
) -> list[GridAxis]:
    """The axes of a comparison: the ``optimizers`` / ``activations`` shorthands, then ``grid``.

    With no grid, a shorthand left out means every optimizer (activation): the optimizer x activation
    comparison. With a grid, a shorthand left out keeps the run's own optimizer (activation).

    Raises:
        InvalidConfig: an unknown optimizer or activation, or a key given twice.
    """
    if not grid:
        optimizers = list(OPTIMIZERS) if optimizers is None else optimizers
        activations = list(ACTIVATIONS) if activations is None else activations
    axes: list[GridAxis] = []
    if optimizers is not None:
        check_names("optimizer", optimizers, OPTIMIZERS)
        axes.append(axis("training.optimizer", list(optimizers)))
    if activations is not None:
        check_names("activation", activations, ACTIVATIONS)
        axes.append(axis("model.activation", list(activations)))
    return check_axes([*axes, *grid])
