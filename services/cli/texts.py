"""Texts given on the command line, checked as the API checks them before any model loads."""

from __future__ import annotations

from models.errors import InvalidInput
from pipelines.text.normalize import is_blank, unicode_problem


def check_texts(texts: list[str], *, max_chars: int) -> None:
    """Each text checked as the API checks it.

    Raises:
        InvalidInput: an empty or over-long text, or one that is not valid text (its position is named).
    """
    for i, text in enumerate(texts, start=1):
        if problem := unicode_problem(text):
            raise InvalidInput(f"text {i} is not valid text: {problem}")
        if is_blank(text):
            raise InvalidInput(f"text {i} is empty")
        if len(text) > max_chars:
            raise InvalidInput(f"text {i} has {len(text):,} characters; the limit is {max_chars:,}")
