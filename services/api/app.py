"""``create_app(settings)``: the FastAPI application, its lifespan and its routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.api.errors import install_error_handlers
from services.api.routes import health
from services.context import open_registry
from services.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; heavy objects are created in the lifespan handler, not at import time."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.registry = open_registry(settings)
        yield

    app = FastAPI(
        title="palavra",
        version="0.1.0",
        summary="Portuguese word embeddings and text classification over HTTP.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(health.router)
    return app
