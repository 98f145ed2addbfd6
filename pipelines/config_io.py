"""Load a pydantic config model from a TOML file, with errors that name the file and the offending field."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from models.errors import InvalidConfig

ModelT = TypeVar("ModelT", bound=BaseModel)


def _field_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def validation_message(exc: ValidationError, *, source: str) -> str:
    """One readable sentence for a pydantic error: ``source: field 'x': reason; field 'y': reason``."""
    problems = []
    for err in exc.errors():
        field = _field_path(tuple(err["loc"]))
        reason = err["msg"]
        if err["type"] == "extra_forbidden":
            reason = "unknown field (check the spelling)"
        problems.append(f"field '{field}': {reason}")
    return f"{source}: " + "; ".join(problems)


def read_toml(path: Path) -> dict[str, Any]:
    """The TOML document at ``path`` as a dict.

    Raises:
        InvalidConfig: the file is missing, unreadable or not valid TOML.
    """
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise InvalidConfig(f"config file {path} does not exist") from exc
    except OSError as exc:
        raise InvalidConfig(f"config file {path} cannot be read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise InvalidConfig(f"config file {path} is not UTF-8 text") from exc
    except tomllib.TOMLDecodeError as exc:
        raise InvalidConfig(f"config file {path} is not valid TOML: {exc}") from exc


def load_toml_config(path: Path, model_cls: type[ModelT], *, section: str | None = None) -> ModelT:
    """Validate the TOML file at ``path`` (or one ``[section]`` of it) as ``model_cls``.

    Args:
        path: a TOML file whose keys are the model's fields.
        model_cls: a pydantic model, ideally with ``extra="forbid"`` so misspelt keys are caught.
        section: read only this top-level table (e.g. ``"normalize"``) instead of the whole document.

    Raises:
        InvalidConfig: the file cannot be read or parsed, the section is missing, or a field does not
            validate; the message names the file and every offending field.
    """
    data: Any = read_toml(path)
    if section is not None:
        if section not in data:
            raise InvalidConfig(f"{path}: no [{section}] table (found: {', '.join(sorted(data)) or 'none'})")
        data = data[section]
        if not isinstance(data, dict):
            raise InvalidConfig(f"{path}: '{section}' must be a table, e.g. [{section}]")
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        raise InvalidConfig(validation_message(exc, source=str(path))) from exc
