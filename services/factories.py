"""Builds the long-lived objects (registry, ...) from :class:`Settings`; shared by the CLI, API and workers."""

from __future__ import annotations

from models.ann import AnnConfig, index_hook
from models.collection import CollectionStore
from models.registry import Registry
from pipelines.reading.datasets import DataCatalog
from services.settings import Settings


def open_registry(settings: Settings) -> Registry:
    """The model registry that ``settings`` describe (artifacts under PALAVRA_HOME, metadata in its database)."""
    settings.home.mkdir(parents=True, exist_ok=True)
    registry = Registry(settings.home, settings.effective_database_url, map_dir=settings.map_dir)
    # word-vector artifacts this large get their approximate-search index built in at registration
    registry.add_commit_hook(index_hook(min_vocab=settings.ann_min_vocab, config=ann_config(settings)))
    return registry


def ann_config(settings: Settings) -> AnnConfig:
    """The approximate-index parameters ``settings`` ask for (the neighbour table's width)."""
    return AnnConfig(table_width=settings.neighbor_table_width)


def open_catalog(settings: Settings) -> DataCatalog:
    """The public data set catalogue: the configured mirror first, then downloads cached under PALAVRA_HOME."""
    return DataCatalog(settings.data_mirror, settings.cache_dir)


def open_collections(settings: Settings) -> CollectionStore:
    """The document collections under PALAVRA_HOME (shared by the CLI and every serving worker)."""
    return CollectionStore(settings.home, write_wait_s=settings.collection_write_wait_s)
