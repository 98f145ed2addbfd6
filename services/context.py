"""Builds the long-lived objects (registry, ...) from :class:`Settings`; shared by the CLI, API and workers."""

from __future__ import annotations

from models.registry import Registry
from services.settings import Settings


def open_registry(settings: Settings) -> Registry:
    """The model registry that ``settings`` describe (artifacts under PALAVRA_HOME, metadata in its database)."""
    settings.home.mkdir(parents=True, exist_ok=True)
    return Registry(settings.home, settings.effective_database_url)
