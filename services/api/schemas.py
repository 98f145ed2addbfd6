"""Pieces shared by the API's request and response schemas (route-specific ones live beside their route)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from models.registry import ALIAS_RE, NAME_RE, REF_RE
from pipelines.text.normalize import unicode_problem

MAX_WORD_CHARS = 200


def _unicode_text(value: object) -> object:
    """Refuse a string that is not Unicode text (JSON allows a lone surrogate escape such as ``"\\ud800"``)."""
    if isinstance(value, str) and (problem := unicode_problem(value)):
        raise ValueError(f"{problem}; send UTF-8 text")
    return value


# every text a request carries: valid Unicode, so no route meets a string it cannot encode
Text = Annotated[str, BeforeValidator(_unicode_text)]
# a query word (or a phrase such as "São Paulo"): non-empty after stripping, no longer than any vocabulary entry
Word = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_WORD_CHARS),
    BeforeValidator(_unicode_text),
]
# the registry checks names, aliases and references itself (with messages that say what a name may hold); the
# patterns are only documented here, so the schema and the server agree on what is valid
NAME_PATTERN = NAME_RE.pattern
ALIAS_PATTERN = ALIAS_RE.pattern
REF_PATTERN = REF_RE.pattern
ModelRef = Annotated[
    str,
    BeforeValidator(_unicode_text),
    Field(
        min_length=1,
        max_length=128,
        description="NAME, NAME@VERSION or NAME@ALIAS (a bare NAME: its production alias); default: "
        "PALAVRA_DEFAULT_MODEL (PALAVRA_DEFAULT_CLASSIFIER for classify), else the first model registered.",
        examples=["corpus-w2v@production"],
        json_schema_extra={"pattern": REF_PATTERN},
    ),
]


def _whole_number(value: object) -> object:
    """A query string's integer must be written as one: ``5``, not ``5.0`` (as a JSON body requires)."""
    if isinstance(value, str) and not value.strip().lstrip("+-").isdigit():
        raise ValueError("Input should be a valid integer")
    return value


# on an integer query parameter (``Annotated[int, Query(...), WHOLE_NUMBER]``): "5.0" is refused, as 5.0 is in a
# JSON body
WHOLE_NUMBER = BeforeValidator(_whole_number)


class Strict(BaseModel):
    """Request bodies reject unknown fields, so a typo is a 422, not a silently ignored option; and NaN or
    infinite numbers ("should be a finite number", not a message about the range). Number fields say
    ``strict=True`` so that "5", 5.0 or true is not read as an integer."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ModelInfo(BaseModel):
    """The model version that answered a request."""

    name: str
    version: int
    kind: str

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "corpus-w2v", "version": 3, "kind": "word2vec"}]}
    )


class ErrorBody(BaseModel):
    """Every error response: a code, a sentence that says what to fix, and optional structured fields."""

    error: str
    detail: str

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "error": "UnknownWord",
                    "detail": "not in the model's vocabulary: 'acao'",
                    "words": ["acao"],
                    "suggestions": {"acao": ["ação"]},
                }
            ]
        },
    )


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "Unknown model or word."},
    413: {
        "model": ErrorBody,
        "description": "Over a configured limit (k, batch size, text length, body size).",
    },
    422: {"model": ErrorBody, "description": "Invalid input."},
    503: {"model": ErrorBody, "description": "Models are not loaded yet."},
}
WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    401: {"model": ErrorBody, "description": "Missing or wrong API key."},
    403: {"model": ErrorBody, "description": "An API key without the write scope."},
}
