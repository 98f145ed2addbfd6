"""The components of an artifact: named groups of its files, recorded in ``metadata["components"]`` when written.

The module that owns a kind of artifact (models/vectors.py, pipelines/classifier/artifact.py) names each
component's files, writes them and records which ones it wrote; readers ask :func:`held` which ones a version has.
Versions registered before the record existed are read by the files they hold.
"""

from __future__ import annotations

from collections.abc import Mapping

from models.artifact import Artifact, ArtifactWriter
from models.errors import IntegrityError, InvalidInput

METADATA_KEY = "components"
Table = Mapping[str, tuple[str, ...]]


def record(writer: ArtifactWriter, table: Table, name: str) -> None:
    """Record that component ``name``'s files were written into a staged artifact."""
    if name not in table:
        raise InvalidInput(f"unknown component {name!r}; expected one of {', '.join(table)}")
    recorded: list[str] = writer.metadata.setdefault(METADATA_KEY, [])
    if name not in recorded:
        recorded.append(name)


def held(artifact: Artifact, table: Table, *, required: str | None = None) -> tuple[str, ...]:
    """The components ``artifact`` holds: as recorded, or by the files of a version from before the record.

    Raises:
        IntegrityError: the ``required`` component is missing (the artifact is not of this kind), or the artifact
            holds a component's files without recording it (written around the owner: no reader would see it).
    """
    present = tuple(name for name, files in table.items() if all(artifact.exists(f) for f in files))
    recorded = artifact.version.metadata.get(METADATA_KEY)
    found = present if recorded is None else tuple(str(name) for name in recorded)
    stray = [name for name in present if name not in found]
    if stray:
        files = ", ".join(f for name in stray for f in table[name])
        raise IntegrityError(f"{artifact.version.ref} holds {files} but does not record it as a component")
    if required is not None and required not in found:
        files = ", ".join(table[required])
        raise IntegrityError(
            f"{artifact.version.ref} holds no {required} ({files}); it is not this kind of model"
        )
    return found
