"""``palavra data list|fetch``: the public data set catalogue."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from services.cli.app import data_app
from services.cli.output import echo, table
from services.factories import open_catalog
from services.settings import get_settings


def _source(mirror_has: bool, cached: bool, mirror_only: bool) -> str:
    if mirror_has:
        return "mirror"
    if cached:
        return "cache"
    return "mirror only" if mirror_only else "download"


@data_app.command("list")
def list_data() -> None:
    """List the catalogue: name, kind, files, where the files would come from, description."""
    settings = get_settings()
    catalog = open_catalog(settings)
    rows = []
    for name in catalog.names:
        ds = catalog.get(name)
        files = [f for part in ds.parts for f in catalog.get(part).files] if ds.parts else list(ds.files)
        mirror_has = settings.data_mirror is not None and all(
            (settings.data_mirror / f.mirror).is_file() for f in files
        )
        cached = all((settings.cache_dir / "datasets" / f.mirror).is_file() for f in files)
        rows.append(
            {
                "name": name,
                "kind": ds.kind,
                "files": len(files),
                "source": _source(mirror_has, cached, any(f.url is None for f in files)),
                "license": ds.license,
                "description": ds.description,
            }
        )
    table(rows, ["name", "kind", "files", "source", "license", "description"])


def _size(n_bytes: int) -> str:
    if n_bytes < 1000:
        return f"{n_bytes} B"
    value = n_bytes / 1000
    for unit in ("kB", "MB"):
        if value < 1000:
            return f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def fetch_summary(name: str, paths: list[Path]) -> str:
    """One line for a fetched data set: ``corpus-machado: 116 files, 11.3 MB under /data/corpus/machado-de-assis``."""
    total = sum(p.stat().st_size for p in paths)
    if len(paths) == 1:
        return f"{name}: 1 file, {_size(total)}: {paths[0]}"
    folder = os.path.commonpath([str(p) for p in paths]) if paths else ""
    return f"{name}: {len(paths)} files, {_size(total)} under {folder}"


@data_app.command("fetch")
def fetch_data(
    names: list[str] = typer.Argument(..., help="Catalogue names (see `palavra data list`)."),
    paths: bool = typer.Option(
        False, "--paths", help="Print every file path, one a line, instead of a summary."
    ),
) -> None:
    """Make data sets available locally (mirror or verified download); print one summary line per data set."""
    catalog = open_catalog(get_settings())
    for name in names:
        catalog.get(name)  # unknown names fail before anything is downloaded
    for name in names:
        files = catalog.resolve(name)
        if paths:
            for path in files:
                echo(str(path))
        else:
            echo(fetch_summary(name, files))
