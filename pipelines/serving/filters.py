"""Metadata filters of a collection search: which JSON values a ``field=value`` filter matches.

A filter value is a string, a number, ``true``, ``false`` or ``null``, and it matches a document whose metadata
field holds the same JSON value:

* a number matches an equal number (``3`` matches ``3`` and ``3.0``), never a boolean;
* ``true`` and ``false`` match themselves (not ``1`` or ``0``);
* ``null`` matches an explicit ``null``: a document without the field never matches any filter;
* text and the value it spells are one: a string matches the same string and the number, boolean or null its text
  is as JSON (``"3"`` matches ``"3"``, ``3`` and ``3.0``; ``"true"`` matches ``true``), and a number, boolean or
  null also matches a string that spells it (``3`` matches ``"3"``), so a client that can only send text still
  filters on numbers, and ``--filter ano=2020`` finds documents whose ``ano`` was written as ``"2020"``;
* ``"True"`` and ``"False"``, Python's spelling, also match the booleans (clients sent them when filter values
  could only be text).

A list or an object is refused as a filter value, and a field holding one is matched by no filter. Values are
compared through :func:`value_key`, one canonical text per JSON value, so a searcher codes a field's values once
and a filter is a lookup of one or two codes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from models.errors import InvalidInput

FilterValue = str | int | float | bool | None
# how Python prints a boolean: filters sent as text before they could be JSON used it ("True" matches true too)
PYTHON_SPELLINGS: dict[str, Any] = {"True": True, "False": False}
# the key of a value no filter matches: a missing field, a list, an object (no JSON text is empty)
NO_MATCH = ""


class NotJsonNumber(ValueError):
    """NaN, Infinity or a number too large for a float: Python's json reads them, JSON has no such number."""


def _refuse_constant(name: str) -> Any:
    raise NotJsonNumber(name)


def loads_strict(text: str) -> Any:
    """``json.loads`` without NaN and Infinity, which are not JSON (a number too large for a float is refused too).

    Raises:
        NotJsonNumber: ``text`` holds NaN, Infinity or a number that overflows a float (the message names it).
        ValueError: ``text`` is not JSON (``json.JSONDecodeError``).
    """

    def finite(number: str) -> float:
        value = float(number)
        if not math.isfinite(value):
            raise NotJsonNumber(number)
        return value

    return json.loads(text, parse_constant=_refuse_constant, parse_float=finite)


def value_key(value: Any) -> str:
    """The canonical JSON text of a scalar (equal numbers give one text: ``3.0`` -> ``3``); :data:`NO_MATCH` for
    a list, an object or a number that is not finite."""
    if value is None:
        return "null"
    if isinstance(value, bool):  # before int: True is an int to Python, not to JSON
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return NO_MATCH
        return str(int(value)) if value.is_integer() else repr(value)
    return NO_MATCH


def _kind(value: object) -> str:
    return (
        "a list" if isinstance(value, list | tuple) else "an object" if isinstance(value, dict) else "a value"
    )


def filter_keys(where: Mapping[str, Any]) -> dict[str, list[str]]:
    """Each filtered field -> the :func:`value_key` of every value it matches (a string: also what it spells).

    Raises:
        InvalidInput: a value that is not a string, a finite number, a boolean or null (names the field).
    """
    out: dict[str, list[str]] = {}
    for field, value in where.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidInput(
                f"filter {field!r}: {value} is not a JSON number; filter on a finite number, a string, "
                "true, false or null",
                field=field,
            )
        if value is not None and not isinstance(value, str | int | float | bool):
            raise InvalidInput(
                f"filter {field!r}: a filter value is a string, number, true, false or null, not "
                f"{_kind(value)}; filter on one of the field's values instead",
                field=field,
            )
        keys = [value_key(value)]
        if not isinstance(value, str):  # 3 also matches the text "3", true the text "true"
            keys.append(json.dumps(value_key(value)))
        else:
            try:
                spelled = PYTHON_SPELLINGS[value] if value in PYTHON_SPELLINGS else loads_strict(value)
            except (ValueError, RecursionError):
                spelled = value
            if not isinstance(spelled, str) and (key := value_key(spelled)) != NO_MATCH:
                keys.append(key)
        out[field] = keys
    return out


def parse_filter(items: Sequence[str]) -> dict[str, FilterValue]:
    """``field=value`` strings (the CLI's ``--filter``) -> a filter: ``true``, ``false`` and ``null`` are JSON's,
    a quoted ``"..."`` is the string inside, anything else is the text itself. A number stays text, which matches
    the number it spells and the same text (``versao=1.10`` finds ``"1.10"`` and ``1.1``; read as a number it
    would have lost the ``0``).

    Raises:
        InvalidInput: an item without ``=`` or a field, a value that is a JSON list or object, or a field given
            twice.
    """
    out: dict[str, FilterValue] = {}
    for item in items:
        field, eq, raw = item.partition("=")
        if not eq or not field.strip():
            raise InvalidInput(f"filter {item!r} is not field=value")
        value: Any = raw
        if raw in ("true", "false", "null") or raw.startswith(('"', "[", "{")):
            try:
                value = loads_strict(raw)
            except (ValueError, RecursionError):
                value = raw
        if isinstance(value, list | dict):
            raise InvalidInput(
                f"filter {item!r}: a filter value is a string, number, true, false or null, not "
                f"{_kind(value)}; to match the text itself, quote it as JSON: {field.strip()}={json.dumps(raw)}",
                field=field.strip(),
            )
        name = field.strip()
        if name in out:  # the later one silently replaced the first, though documents must match every filter
            raise InvalidInput(
                f"filter field {name!r} is given twice; a document matches every filter, so give each field once",
                field=name,
            )
        out[name] = value
    return out
