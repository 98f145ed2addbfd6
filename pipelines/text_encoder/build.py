"""Build and register ``mean`` and ``sif`` encoders over a registered word-vector model (no training)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from models.errors import InvalidInput
from models.references import VECTOR_KINDS
from models.registry import ModelVersion, Registry
from models.text_encoder import KIND, EncoderSpec, TextEncoder, common_components, sif_weights
from pipelines.serving.served_vectors import load_served_vectors
from pipelines.text_encoder.served import TextEncoderModel

SAMPLE_TEXTS = 20_000  # texts used to estimate the common component (more change it very little)
VOCAB_SAMPLE = 20_000  # most frequent words standing in for a corpus when no sample texts are given


def base_spec(words: ModelVersion, *, pooling: str, dim: int, **fields: Any) -> EncoderSpec:
    return EncoderSpec(
        pooling=pooling,
        words=words.ref,
        words_kind=words.kind,
        normalize=fields.pop("normalize"),
        dim=dim,
        **fields,
    )


def pooling_model(
    registry: Registry,
    words_ref: str,
    *,
    pooling: str,
    sif_a: float = 1e-3,
    components: int = 1,
    sample: Sequence[str] | None = None,
) -> tuple[TextEncoderModel, dict[str, Any]]:
    """A ``mean`` or ``sif`` encoder over ``words_ref`` (not registered), and how it was estimated.

    SIF weights come from the word model's own counts; the common component is the first singular vector of the
    SIF-pooled ``sample`` texts, or, without a sample, of the model's most frequent word vectors weighted as SIF
    weighs them (what every text's mean shares).
    """
    if pooling not in ("mean", "sif"):
        raise InvalidInput(f"unknown encoder kind {pooling!r}; use mean, sif, or --pairs to train one")
    if not 0 < sif_a < 1:
        raise InvalidInput(f"--sif-a must lie between 0 and 1, got {sif_a}")
    if not 0 <= components <= 10:
        raise InvalidInput(f"--components must be from 0 to 10, got {components}")
    artifact = registry.open(words_ref, kind=VECTOR_KINDS)
    embeddings = load_served_vectors(artifact)
    vectors = embeddings.word_vectors
    normalize = embeddings.normalizer.config.model_dump(mode="json")
    estimated: dict[str, Any] = {}
    if pooling == "mean":
        spec = base_spec(artifact.version, pooling="mean", dim=vectors.dim, normalize=normalize, components=0)
        return TextEncoderModel(TextEncoder(spec), embeddings), estimated
    weights = sif_weights(vectors.counts, len(vectors), a=sif_a)
    estimated["weights_from"] = "counts" if vectors.counts is not None else "rank (no counts in the model)"
    spec = base_spec(
        artifact.version,
        pooling="sif",
        dim=vectors.dim,
        normalize=normalize,
        sif_a=sif_a,
        components=components,
    )
    model = TextEncoderModel(TextEncoder(spec, word_weights=weights), embeddings)
    if components:
        if sample:
            pooled = model.pooled(list(sample[:SAMPLE_TEXTS]))
            known = int(np.count_nonzero(np.any(pooled, axis=1)))
            if known < max(2, components):  # no direction to estimate: the encoder would remove none
                raise InvalidInput(
                    f"only {known} of the {len(pooled)} sample texts hold a word that {words_ref} knows; "
                    f"{max(2, components)} are needed to estimate {components} common component(s) (give "
                    "texts in the model's language, or no sample to estimate it from the vocabulary)"
                )
            estimated["common_from"] = f"{min(len(sample), SAMPLE_TEXTS)} sample texts"
        else:
            top = min(VOCAB_SAMPLE, len(vectors))
            pooled = np.asarray(vectors.vectors[:top], np.float32) * weights[:top, None]
            estimated["common_from"] = f"{top} most frequent words"
        model.encoder.common = common_components(pooled, components)
    return model, estimated


def register_encoder(
    registry: Registry, name: str, model: TextEncoderModel, *, metadata: dict[str, Any]
) -> ModelVersion:
    """Save ``model``'s encoder as a new version of ``name``; nothing is registered unless it completes."""
    with registry.create(name, KIND) as writer:
        model.encoder.save(writer)
        writer.metadata.update(
            {
                "pooling": model.encoder.spec.pooling,
                "words": model.encoder.spec.words,
                "dim": model.dim,
                **metadata,
            }
        )
    version: ModelVersion = writer.version  # type: ignore[attr-defined]
    return version
