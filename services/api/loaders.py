"""How each kind of registered model is loaded for serving (the model store calls these)."""

from __future__ import annotations

import logging
from typing import Any

from models.registry import ModelVersion, Registry
from pipelines.embedding_model import load_embeddings
from services.api.model_store import CLASSIFIER_KINDS, EMBEDDING_KINDS, Loader
from services.settings import Settings

log = logging.getLogger(__name__)


def loaders_for(settings: Settings) -> dict[str, Loader]:
    """kind -> loader; every artifact is opened through the registry, which checks its sha256 first."""

    def embeddings(registry: Registry, mv: ModelVersion) -> Any:
        artifact = registry.open(mv.ref, kind=EMBEDDING_KINDS)
        emb = load_embeddings(artifact, ann_min_vocab=settings.ann_min_vocab, cache_dir=settings.cache_dir)
        if emb.ann is not None and mv.metadata.get("ann") is None:
            registry.annotate(mv.ref, {"ann": emb.ann})  # recall of an index built at load time
        return emb

    out: dict[str, Loader] = dict.fromkeys(EMBEDDING_KINDS, embeddings)
    try:
        from pipelines.classifier import load_classifier
    except ImportError:
        log.warning("this build has no classifier loader; classifier models will not be served")
        return out

    def classifier(registry: Registry, mv: ModelVersion) -> Any:
        return load_classifier(registry.open(mv.ref, kind=CLASSIFIER_KINDS))

    out["classifier"] = classifier
    return out
