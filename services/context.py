"""Builds the long-lived objects (registry, ...) from :class:`Settings`; shared by the CLI, API and workers."""

from __future__ import annotations

from models.ann import index_hook
from models.registry import Registry
from pipelines.datasets import DataCatalog
from services.settings import Settings


def open_registry(settings: Settings) -> Registry:
    """The model registry that ``settings`` describe (artifacts under PALAVRA_HOME, metadata in its database)."""
    settings.home.mkdir(parents=True, exist_ok=True)
    registry = Registry(settings.home, settings.effective_database_url)
    # word-vector artifacts this large get their approximate-search index built in at registration
    registry.commit_hooks.append(index_hook(min_vocab=settings.ann_min_vocab))
    return registry


def open_catalog(settings: Settings) -> DataCatalog:
    """The public data set catalogue: the configured mirror first, then downloads cached under PALAVRA_HOME."""
    return DataCatalog(settings.data_mirror, settings.cache_dir)
