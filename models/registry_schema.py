"""The registry's SQL tables (names, versions, aliases) and what every artifact records of the libraries it was
made with; models/registry.py reads and writes them."""

from __future__ import annotations

import contextlib
import platform
from importlib import metadata as importlib_metadata

import sqlalchemy as sa

meta = sa.MetaData()
model_versions = sa.Table(
    "model_versions",
    meta,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("path", sa.String(512), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("metadata_json", sa.Text, nullable=False),
)
model_aliases = sa.Table(
    "model_aliases",
    meta,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("alias", sa.String(32), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape an artifact, recorded in its metadata."""
    out = {"python": platform.python_version()}
    for dist in ("palavra", "numpy", "gensim", "spacy", "torch", "scikit-learn"):
        with contextlib.suppress(importlib_metadata.PackageNotFoundError):
            out[dist] = importlib_metadata.version(dist)
    return out
