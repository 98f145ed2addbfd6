"""Dataset specs on the command line: a path or a catalogue name (``palavra data list``) -> one local file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from models.errors import DatasetError
from services.factories import open_catalog
from services.settings import Settings


def path_resolver(settings: Settings) -> Callable[[str], Path]:
    """Dataset specs -> one local file: a path, or a catalogue name (``palavra data list``).

    The returned function raises :class:`DatasetError` for a spec that names a folder or several files.
    """
    catalog = open_catalog(settings)

    def resolve(spec: str) -> Path:
        files = catalog.resolve(spec)
        if len(files) != 1 or not files[0].is_file():
            raise DatasetError(f"{spec!r} is not a single file; give one CSV / JSONL file or data set name")
        return files[0]

    return resolve
