"""Command-line options -> a run config, in one order for every ``palavra train`` command.

Later layers win: the config's defaults, then the ``--config`` TOML file, then the command's common flags
(``--epochs``, ``--lr``, ...), then each ``--set SECTION.KEY=VALUE`` (any key of the run config, the value read as
JSON when it parses, else as text). The merge itself is :func:`pipelines.runs.config_io.merge_config`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import typer
from pydantic import BaseModel, ValidationError

from models.errors import InvalidConfig
from pipelines.classifier.config import ClassifierRun, load_run_file
from pipelines.runs.config_io import assignments, given, merge_config, validation_message

SET_METAVAR = "SECTION.KEY=VALUE"


def set_option(example: str) -> Any:
    """The ``--set`` option every training command takes; ``example`` is a key of that command's config."""
    return typer.Option(
        None,
        "--set",
        metavar=SET_METAVAR,
        help=f"Any config key, e.g. {example} (the value as JSON when it parses, else text); repeat for more. "
        "Wins over --config and the other options.",
    )


def run_data(
    model: type[BaseModel],
    *,
    file: Mapping[str, Any] | None = None,
    flags: Mapping[str, Any] | None = None,
    overrides: Sequence[str] | None = None,
    aliases: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The layers of a run merged in the one order: ``file``, then ``flags`` (``None``: not given), then ``--set``.

    Raises:
        InvalidConfig: a ``--set`` key that is not one of ``model`` (naming the key and the keys of its section),
            or a malformed ``--set``.
    """
    set_layer = assignments(overrides or [], model, aliases=aliases)
    return merge_config(model, file or {}, given(flags or {}), set_layer)


def classifier_run(
    config: Path | None, flags: Mapping[str, Any], overrides: Sequence[str] | None = None
) -> ClassifierRun:
    """A classifier run from ``--config``, the flags and ``--set`` (``train classifier``, ``compare classifier``).

    Raises:
        InvalidConfig: a field that does not validate (named), a bad ``--set`` key, or a missing name / train.
    """
    file = load_run_file(config) if config is not None else None
    merged = run_data(ClassifierRun, file=file, flags=flags, overrides=overrides)
    for required in ("name", "train"):
        if not merged.get(required):
            raise InvalidConfig(
                f"--{required} is required (on the command line or as `{required}` in --config)"
            )
    try:
        return ClassifierRun.model_validate(merged)
    except ValidationError as exc:
        raise InvalidConfig(validation_message(exc, source="classifier options")) from exc
