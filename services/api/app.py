"""``create_app(settings)``: the FastAPI application, its lifespan and its routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import Depends, FastAPI

from pipelines.serving.searcher_cache import SearcherCache
from pipelines.text.tokenize import import_spacy_without_torch
from services.api.body_limit import BodyLimitMiddleware
from services.api.deps import known_query
from services.api.errors import install_error_handlers
from services.api.job_schemas import JobRequest
from services.api.keys import KeyRing
from services.api.loaders import loaders_for
from services.api.memory import HeapTrimmer
from services.api.metrics import Metrics, MetricsMiddleware
from services.api.model_store import CLASSIFIER, EMBEDDINGS, Loaded, ModelStore
from services.api.routes import (
    analogy,
    classify,
    collections,
    health,
    metrics,
    models,
    neighbors,
    similarity,
    text,
    vectors,
)
from services.api.routes import jobs as job_routes
from services.api.routes import lm as lm_routes
from services.api.routes.docs import install_docs
from services.api.routes.web import install_explorer
from services.api.threads import limit_compute_threads
from services.factories import open_collections, open_registry
from services.settings import Settings, get_settings

DESCRIPTION = """Nearest words, similarities, analogies and vectors from Portuguese word embeddings, and text
classification, served from a versioned model registry. Every response names the model version that answered;
every error has the shape `{"error": CODE, "detail": MESSAGE, ...}`."""


#: the docs' sections, in the order they are read (the routes are matched in another: see create_app)
TAGS = [
    {"name": "operations", "description": "Health, readiness and metrics."},
    {"name": "models", "description": "The registry: models, versions and aliases."},
    {"name": "embeddings", "description": "Word vectors: neighbours, similarity, analogy, vectors."},
    {"name": "classification", "description": "Text classifiers."},
    {"name": "text", "description": "Text embeddings and the similarity of two texts."},
    {"name": "collections", "description": "Collections of documents and their search."},
    {"name": "jobs", "description": "Training and comparison jobs."},
    {"name": "language model", "description": "Next words and generated text."},
    {"name": "reports", "description": "Training reports and curves."},
]


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; models load in the lifespan handler (not at import time) and swap when aliases move."""
    settings = settings or get_settings()
    collectors = Metrics(multiprocess_dir=settings.metrics_dir)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        limit_compute_threads(settings.compute_threads)
        import_spacy_without_torch()  # before any thread that could import torch: this worker takes no request yet
        registry = open_registry(settings)
        store = ModelStore(
            registry,
            loaders_for(settings),
            refresh_s=settings.model_refresh_s,
            defaults={
                EMBEDDINGS.name: settings.default_model or "",
                CLASSIFIER.name: settings.default_classifier or "",
            },
        )
        trimmer = HeapTrimmer(settings.memory_trim_s)

        def changed(loaded: list[Loaded[Any]]) -> None:
            collectors.set_models(loaded)
            if trimmer.enabled:
                trimmer.trim_now()  # the replaced models' memory, and the loading temporaries

        store.on_change = changed
        app.state.registry = registry
        app.state.store = store
        app.state.searchers = SearcherCache(
            open_collections(settings),
            registry,
            ann_min_docs=settings.collection_ann_min_docs,
            check_s=settings.collection_check_s,
        )
        app.state.trimmer = trimmer
        await anyio.to_thread.run_sync(store.start)
        try:
            trimmer.start()
            yield
        finally:
            trimmer.stop()
            await anyio.to_thread.run_sync(store.stop)

    app = FastAPI(
        title="palavra",
        version="0.1.0",
        summary="Portuguese word embeddings and text classification over HTTP.",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by install_docs from packaged assets: no CDN, so they work offline
        redoc_url=None,
        openapi_tags=TAGS,
    )
    app.state.settings = settings
    app.state.keys = KeyRing.from_settings(settings, warn=False)  # `palavra serve` warned already
    app.state.metrics = collectors
    install_error_handlers(app)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        upload_paths=frozenset({job_routes.UPLOAD_PATH}),
    )
    app.add_middleware(MetricsMiddleware, metrics=collectors)
    # Starlette tries the routes in the order they were included, and FastAPI matches an included router's routes
    # one by one, twice a request: the routes with latency goals come first (/v1/complete, its p99 at 16
    # connections: benchmarks/results/lm.md), the management routes after them. The docs keep their own order
    # (TAGS).
    for router in (
        health,
        lm_routes,
        neighbors,
        similarity,
        classify,
        collections,
        analogy,
        vectors,
        text,
        models,
        metrics,
        job_routes,
    ):
        # the probes (/health, /ready) and /metrics answer whatever a prober adds to their URL
        checked = router not in (health, metrics)
        app.include_router(router.router, dependencies=[Depends(known_query)] if checked else None)
    install_docs(app, extra_schemas=(JobRequest,))
    install_explorer(app, api_dependencies=[Depends(known_query)])
    return app
