"""``POST /v1/embed`` (texts -> vectors) and ``POST /v1/text-similarity`` (text pairs -> cosines), by an encoder."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from services.api.deps import SettingsDep, StoreDep, check_batch, check_texts, model_info, read_access, reply
from services.api.model_store import ENCODER
from services.api.schemas import ERROR_RESPONSES, ModelInfo, ModelRef, Strict, Text

router = APIRouter(prefix="/v1", tags=["text"], dependencies=[Depends(read_access)])

ENCODER_REF = "frases-sif@production"


class EmbedRequest(Strict):
    texts: list[Text] = Field(min_length=1, description="Texts to encode, one vector each.")
    model: ModelRef | None = Field(
        default=None,
        description="An encoder: NAME, NAME@VERSION or NAME@ALIAS; default: the first registered.",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"texts": ["O menino está jogando futebol no parque.", "Uma criança brinca com a bola."]},
                {"texts": ["Qual é o prazo de entrega?"], "model": ENCODER_REF},
            ]
        }
    )


class EmbedResponse(BaseModel):
    model: ModelInfo
    dim: int
    vectors: list[list[float]] = Field(
        description="Unit-length vectors in the order of the texts; all zeros for a text without a known word."
    )
    no_known_words: list[int] = Field(
        default_factory=list,
        description="Indices of the texts with no word the encoder knows (e.g. punctuation alone): their vectors "
        "are all zeros, not unit vectors.",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model": {"name": "frases-sif", "version": 1, "kind": "encoder"},
                    "dim": 3,
                    "vectors": [[0.61, -0.2, 0.76]],
                }
            ]
        }
    )


class TextSimilarityRequest(Strict):
    pairs: list[tuple[Text, Text]] = Field(min_length=1, description="Pairs of texts to compare.")
    model: ModelRef | None = Field(default=None, description="An encoder (default: the first registered).")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "pairs": [
                        ["O homem está tocando violão.", "Um homem toca guitarra."],
                        ["A mulher está cortando cebola.", "O cachorro corre na praia."],
                    ]
                }
            ]
        }
    )


class TextPairSimilarity(BaseModel):
    texts: tuple[str, str]
    cosine: float = Field(
        description="Cosine of the two texts' vectors, from -1 to 1 (0 when one has no known word)."
    )


class TextSimilarityResponse(BaseModel):
    model: ModelInfo
    results: list[TextPairSimilarity]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model": {"name": "frases-sif", "version": 1, "kind": "encoder"},
                    "results": [
                        {"texts": ["O homem está tocando violão.", "Um homem toca guitarra."], "cosine": 0.83}
                    ],
                }
            ]
        }
    )


@router.post("/embed", response_model=EmbedResponse, responses=ERROR_RESPONSES)
def embed(body: EmbedRequest, settings: SettingsDep, store: StoreDep) -> Response:
    """One unit vector per text, pooled from the encoder's word vectors (same tokens as its word model saw)."""
    check_texts(body.texts, settings)
    loaded = store.get(body.model, ENCODER)
    vectors = loaded.model.embed(body.texts)
    return reply(
        EmbedResponse(
            model=model_info(loaded),
            dim=int(vectors.shape[1]),
            vectors=vectors.tolist(),
            no_known_words=np.flatnonzero(~vectors.any(axis=1)).tolist(),
        ),
        loaded,
    )


@router.post("/text-similarity", response_model=TextSimilarityResponse, responses=ERROR_RESPONSES)
def text_similarity(body: TextSimilarityRequest, settings: SettingsDep, store: StoreDep) -> Response:
    """Cosine similarity of each pair of texts under one encoder."""
    check_batch(len(body.pairs), settings, what="pairs")
    check_texts(
        [t for pair in body.pairs for t in pair],
        settings,
        label=lambda i: f"pair {i // 2} text {i % 2}",
    )
    loaded = store.get(body.model, ENCODER)
    cosines = loaded.model.similarity(body.pairs)
    return reply(
        TextSimilarityResponse(
            model=model_info(loaded),
            results=[TextPairSimilarity(texts=p, cosine=c) for p, c in zip(body.pairs, cosines, strict=True)],
        ),
        loaded,
    )
