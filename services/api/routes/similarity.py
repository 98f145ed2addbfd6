"""``POST /v1/similarity``: the cosine of each word pair."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from services.api.deps import SettingsDep, StoreDep, check_batch, model_info, read_access, reply
from services.api.model_store import EMBEDDINGS
from services.api.schemas import ERROR_RESPONSES, ModelInfo, ModelRef, Strict, Word

router = APIRouter(prefix="/v1", tags=["embeddings"], dependencies=[Depends(read_access)])


class SimilarityRequest(Strict):
    pairs: list[tuple[Word, Word]] = Field(min_length=1, description="Word pairs to compare.")
    model: ModelRef | None = None

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"pairs": [["rei", "rainha"], ["casa", "lar"]]}]}
    )


class PairSimilarity(BaseModel):
    words: tuple[str, str]
    cosine: float


class SimilarityResponse(BaseModel):
    model: ModelInfo
    results: list[PairSimilarity]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model": {"name": "corpus-w2v", "version": 3, "kind": "word2vec"},
                    "results": [{"words": ["rei", "rainha"], "cosine": 0.71}],
                }
            ]
        }
    )


@router.post("/similarity", response_model=SimilarityResponse, responses=ERROR_RESPONSES)
def similarity(body: SimilarityRequest, settings: SettingsDep, store: StoreDep) -> Response:
    """Cosine similarity per pair; every unknown word across all pairs is reported in one 404."""
    check_batch(len(body.pairs), settings, what="pairs")
    loaded = store.get(body.model, EMBEDDINGS)
    cosines = loaded.model.similarity(body.pairs)
    return reply(
        SimilarityResponse(
            model=model_info(loaded),
            results=[PairSimilarity(words=p, cosine=c) for p, c in zip(body.pairs, cosines, strict=True)],
        ),
        loaded,
    )
