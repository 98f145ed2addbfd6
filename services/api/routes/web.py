"""The web explorer: ``GET /`` serves the page and ``/web/...`` its script and style sheet (no build step, no
asset from the internet)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from services.api.routes import neighbor_map, reports

WEB_DIR = Path(__file__).resolve().parents[2] / "web"

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    """The explorer's single page."""
    return FileResponse(WEB_DIR / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"})


def static_files() -> StaticFiles:
    """The page's own files, mounted at ``/web``."""
    return StaticFiles(directory=WEB_DIR, check_dir=False)


def install_explorer(app: FastAPI, *, api_dependencies: Sequence[Any] = ()) -> None:
    """Add the explorer's page, its static files and the API routes it reads besides the core ones (those with
    ``api_dependencies``, as the core API routes have them)."""
    for extra in (neighbor_map.router, reports.router):
        app.include_router(extra, dependencies=list(api_dependencies))
    app.include_router(router)
    app.mount("/web", static_files(), name="web")
