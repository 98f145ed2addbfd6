"""Run configs from their sources: TOML files, dotted ``section.key=value`` overrides, and the one merge of layers.

A run config is a pydantic model; its sections are the fields that are models themselves (``[train]``,
``[training]``, ``[normalize]``). Every training command builds its config the same way (README, "Training
overrides"): the model's defaults, then the ``--config`` TOML file, then the command's common flags, then each
``--set section.key=value``; :func:`merge_config` merges those layers and :func:`assignments` turns ``--set``
values into one, checking every key against the model first.
"""

from __future__ import annotations

import difflib
import json
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ValidationError

from models.errors import InvalidConfig
from models.references import NAME_RE, NAME_RULE

ModelT = TypeVar("ModelT", bound=BaseModel)


def _model_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise ValueError(f"invalid model name: {NAME_RULE}")
    return name


# a run config's ``name`` field: checked when the config is read, before anything trains
ModelName = Annotated[str, AfterValidator(_model_name)]


def _field_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def validation_message(exc: ValidationError, *, source: str) -> str:
    """One readable sentence for a pydantic error: ``source: field 'x': reason; field 'y': reason``."""
    problems = []
    for err in exc.errors():
        field = _field_path(tuple(err["loc"]))
        # a validator's own sentence, without pydantic's prefix (as the API shows it)
        reason = str(err["msg"]).removeprefix("Value error, ")
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
    except RecursionError:  # lists in lists hundreds deep: the parser recurses once a level
        raise InvalidConfig(f"config file {path} nests too deep to read (hundreds of levels)") from None


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


def section_model(annotation: Any) -> type[BaseModel] | None:
    """The config model a field holds (``NormalizeConfig``, also inside ``PhraseConfig | None``), or None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if (found := section_model(arg)) is not None:
                return found
    return None


def _listing(model: type[BaseModel]) -> str:
    return ", ".join(
        f"{name}.*" if section_model(info.annotation) else name for name, info in model.model_fields.items()
    )


def parse_assignment(text: str) -> tuple[str, Any]:
    """``"training.lr=0.01"`` -> ``("training.lr", 0.01)``: the value as JSON when it parses, else the text itself.

    Raises:
        InvalidConfig: no ``=``, or an empty key or key part.
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or not all(key.split(".")):
        raise InvalidConfig(f"--set takes SECTION.KEY=VALUE, e.g. --set training.lr=0.01; not {text!r}")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key, value


def config_key(model: type[BaseModel], key: str, *, aliases: Mapping[str, str] | None = None) -> list[str]:
    """The path of a dotted key in ``model`` (an alias resolved), checked part by part.

    Args:
        model: the run config.
        key: e.g. ``train.epochs``; a section may be given whole (``normalize``), its value then a JSON object.
        aliases: other spellings of whole keys (``model.context`` -> ``context``).

    Raises:
        InvalidConfig: a part that is not a key of its section, naming it and every key of that section; or a
            key below a plain value.
    """
    aliases = aliases or {}
    key = aliases.get(key, key)
    parts = key.split(".")
    alias_sections = {alias.split(".", 1)[0] for alias in aliases if "." in alias}
    if len(parts) > 1 and parts[0] in alias_sections and parts[0] not in model.model_fields:
        known = [a.split(".", 1)[1] for a in aliases if a.startswith(f"{parts[0]}.")]
        raise _unknown(key, parts[1], f"[{parts[0]}]", known)
    current: type[BaseModel] | None = model
    for depth, part in enumerate(parts):
        if current is None:
            value = ".".join(parts[:depth])
            raise InvalidConfig(
                f"unknown key {key!r}: {value!r} is a value, not a section; set it whole, e.g. --set {value}=..."
            )
        if part not in current.model_fields:
            where = f"[{'.'.join(parts[:depth])}]" if depth else "the top level"
            extra = sorted(alias_sections) if depth == 0 else []
            raise _unknown(key, part, where, [*_listing(current).split(", "), *(f"{a}.*" for a in extra)])
        current = section_model(current.model_fields[part].annotation)
    return parts


def _unknown(key: str, part: str, where: str, known: Sequence[str]) -> InvalidConfig:
    close = difflib.get_close_matches(part, [k.removesuffix(".*") for k in known], n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return InvalidConfig(
        f"unknown key {key!r}: {where} has no {part!r}{hint} ({where} has {', '.join(known)})"
    )


def assignments(
    items: Sequence[str], model: type[BaseModel], *, aliases: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """``--set`` values as one config layer (nested dicts), every key checked first (:func:`config_key`).

    A later assignment of the same key wins.
    """
    layer: dict[str, Any] = {}
    for text in items:
        key, value = parse_assignment(text)
        *sections, leaf = config_key(model, key, aliases=aliases)
        target = layer
        for section in sections:
            if not isinstance(target.get(section), dict):
                target[section] = {}
            target = target[section]
        target[leaf] = value
    return layer


def given(values: Mapping[str, Any]) -> dict[str, Any]:
    """Options the user gave: ``None`` (an option left unset) dropped, also inside sections; empty sections too."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            value = given(value)
            if not value:
                continue
        if value is not None:
            out[key] = value
    return out


def merge_config(model: type[BaseModel], *layers: Mapping[str, Any]) -> dict[str, Any]:
    """The layers of a run config merged, each over the ones before it.

    Sections (fields that are config models) merge key by key; any other value, lists and tables such as
    ``label_names`` too, is replaced whole.

    Raises:
        InvalidConfig: a section given as a plain value in one layer and as a table in another.
    """
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = _merge(model, merged, layer, prefix="")
    return merged


def _merge(
    model: type[BaseModel] | None, base: Mapping[str, Any], layer: Mapping[str, Any], *, prefix: str
) -> dict[str, Any]:
    out = dict(base)
    for key, value in layer.items():
        info = model.model_fields.get(key) if model is not None else None
        section = section_model(info.annotation) if info is not None else None
        old = out.get(key)
        if section is not None and isinstance(value, Mapping) and old is not None:
            if not isinstance(old, Mapping):
                raise InvalidConfig(f"'{prefix}{key}' is a section: give it as a table, e.g. [{prefix}{key}]")
            out[key] = _merge(section, old, value, prefix=f"{prefix}{key}.")
        else:
            out[key] = value
    return out
