"""How each kind of registered model is loaded for serving (the model store calls these).

Loading only reads: the registry's database and artifacts are never written on the way to serving a model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from models.errors import NotReady
from models.references import VECTOR_KINDS, Kind
from models.registry import ModelVersion, Registry
from pipelines.serving.served_vectors import ServedVectors, load_served_vectors
from pipelines.text_encoder.served import TextEncoderModel, load_text_encoder
from services.api.model_store import Loader
from services.api.threads import limit_compute_threads
from services.factories import ann_config
from services.settings import Settings

if TYPE_CHECKING:
    from pipelines.classifier.predictor import TextClassifier
    from pipelines.lm.predictor import LanguageModel


def loaders_for(settings: Settings) -> dict[str, Loader]:
    """kind -> loader; every artifact is opened through the registry, which checks its sha256 first."""

    def embeddings(registry: Registry, mv: ModelVersion) -> ServedVectors:
        # an index built now goes to the cache; its recall is shown with the version (routes/models.py)
        return load_served_vectors(
            registry.open(mv.ref, kind=VECTOR_KINDS),
            ann_min_vocab=settings.ann_min_vocab,
            cache_dir=settings.cache_dir,
            ann_config=ann_config(settings),
        )

    def classifier(registry: Registry, mv: ModelVersion) -> TextClassifier:
        # imported on first use: torch costs every worker ~140 MB, which embedding-only servers need not pay
        # (nor servers on the default PALAVRA_CLASSIFIER_ENGINE=numpy)
        try:
            from pipelines.classifier.artifact import load_classifier
        except ImportError as exc:
            raise NotReady(f"this build cannot serve classifier models ({exc})", model=mv.ref) from exc
        limit_compute_threads(settings.compute_threads)  # torch is loaded now: cap its threads too
        return load_classifier(
            registry.open(mv.ref, kind=Kind.CLASSIFIER.value), engine=settings.classifier_engine, warm=True
        )

    def encoder(registry: Registry, mv: ModelVersion) -> TextEncoderModel:
        # the encoder's artifact, then the exact word-vector version it records (both checked)
        return load_text_encoder(registry, mv.ref)

    def language_model(registry: Registry, mv: ModelVersion) -> LanguageModel:
        try:  # torch, imported on first use as for classifiers
            from pipelines.lm.predictor import LanguageModel
        except ImportError as exc:
            raise NotReady(f"this build cannot serve language models ({exc})", model=mv.ref) from exc
        limit_compute_threads(settings.compute_threads)
        return LanguageModel.from_artifact(registry.open(mv.ref, kind=Kind.LM.value))

    out: dict[str, Loader] = dict.fromkeys(VECTOR_KINDS, embeddings)
    out[Kind.CLASSIFIER.value] = classifier
    out[Kind.ENCODER.value] = encoder
    out[Kind.LM.value] = language_model
    return out
