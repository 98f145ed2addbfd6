"""``GET /metrics``: Prometheus text format."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from services.api.deps import read_access
from services.api.metrics import CONTENT_TYPE, Metrics

# a read like any other: with PALAVRA_PROTECT_READS it needs a key (Prometheus sends one as a bearer token);
# /health and /ready stay open for load balancers and probes, which send none
router = APIRouter(tags=["operations"], dependencies=[Depends(read_access)])

EXAMPLE = 'palavra_http_requests_total{method="GET",route="/v1/neighbors",status="200"} 1042.0\n'


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {"example": EXAMPLE}}, "description": "Prometheus metrics."}},
)
def metrics(request: Request) -> Response:
    """Requests, latency histograms and errors per route, and the model versions loaded (Prometheus format)."""
    collectors: Metrics = request.app.state.metrics
    collectors.set_models(request.app.state.store.loaded())
    return Response(collectors.exposition(), media_type=CONTENT_TYPE)
