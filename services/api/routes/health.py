"""Liveness: ``GET /health``."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

router = APIRouter(tags=["operations"])


class HealthResponse(BaseModel):
    status: str


@router.get("/health", response_model=HealthResponse)
async def health() -> HealthResponse:
    """The process is alive and answering (says nothing about loaded models; see /ready)."""
    return HealthResponse(status="ok")
