"""Liveness and readiness: ``GET /health`` and ``GET /ready``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict

from models.errors import NotReady
from services.api.deps import StoreDep
from services.api.schemas import ErrorBody

router = APIRouter(tags=["operations"])


class HealthResponse(BaseModel):
    status: str

    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})


class ReadyResponse(BaseModel):
    status: str
    models: list[dict[str, Any]]
    registry: str
    errors: dict[str, str]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ready",
                    "models": [{"name": "corpus-w2v", "version": 3, "kind": "word2vec"}],
                    "registry": "ok",
                    "errors": {},
                }
            ]
        }
    )


@router.get("/health", response_model=HealthResponse)
async def health() -> HealthResponse:
    """The process is alive and answering (says nothing about loaded models; see /ready)."""
    return HealthResponse(status="ok")


@router.head("/health", include_in_schema=False)
async def health_head() -> Response:
    """``HEAD /health`` for load balancers that probe with HEAD: 200, no body."""
    return Response(status_code=200)


@router.head("/ready", include_in_schema=False)
def ready_head(store: StoreDep) -> Response:
    """``HEAD /ready``: the status code of ``GET /ready`` (200 or 503), no body."""
    try:
        ready(store)
    except NotReady:
        return Response(status_code=503)
    return Response(status_code=200)


@router.get("/ready", response_model=ReadyResponse, responses={503: {"model": ErrorBody}})
def ready(store: StoreDep) -> ReadyResponse:
    """Models are loaded: every kind's default model is in memory, and every other production version is loaded or
    failed to load (listed in ``errors``: it answers 503 itself, the rest of the server serves); else 503, also
    when the registry's SQLite file was deleted while the server had it open (writes are refused until it is back)."""
    store.registry.check_file()
    if not store.started:
        raise NotReady("models are still loading; retry in a few seconds")
    wanted = store.snapshot.wanted()
    if not wanted:
        detail = store.last_poll_error or "no model is registered yet; train one (`palavra train`)"
        raise NotReady(detail, errors=store.errors)
    unresolved = {k: v for k, v in store.errors.items() if k.startswith("default ")}
    if (
        unresolved
    ):  # PALAVRA_DEFAULT_MODEL names a model (or alias) that is gone: requests without one would fail
        raise NotReady("; ".join(f"{k}: {v}" for k, v in unresolved.items()), errors=store.errors)
    defaults = set(store.snapshot.defaults.values())
    missing = sorted(
        f"{n}@{v}"
        for n, v in wanted
        if not store.is_loaded([(n, v)]) and ((n, v) in defaults or f"{n}@{v}" not in store.errors)
    )
    if missing:
        raise NotReady(f"not loaded: {', '.join(missing)}", errors=store.errors)
    return ReadyResponse(
        status="ready",
        models=[item.describe() for item in store.loaded()],
        registry="ok" if store.last_poll_error is None else f"unreachable: {store.last_poll_error}",
        errors=store.errors,
    )
