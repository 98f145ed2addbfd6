"""The one way palavra writes a moment for people and programs: ISO 8601 in UTC with ``Z``, to the millisecond."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import PlainSerializer


def utc_iso(value: datetime) -> str:
    """``2026-12-02T06:30:00.123Z``; a naive value is taken as UTC (SQLite hands those back)."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


#: A datetime field of an API schema, serialised by :func:`utc_iso`.
UtcTime = Annotated[datetime, PlainSerializer(utc_iso, return_type=str, when_used="json")]


def public_metadata(metadata: dict[str, Any], created_at: datetime) -> dict[str, Any]:
    """An artifact's metadata as shown to people and programs: its ``created_at`` (written by the registry as
    ``2026-12-02T06:30:00.123456+00:00``) in the one format, from the version's own record."""
    if "created_at" not in metadata:
        return metadata
    return {**metadata, "created_at": utc_iso(created_at)}
