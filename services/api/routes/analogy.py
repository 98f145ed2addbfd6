"""``POST /v1/analogy``: a is to b as c is to ? (3CosAdd or 3CosMul)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from models.vectors import Neighbor
from services.api.deps import (
    SettingsDep,
    StoreDep,
    check_batch,
    check_k,
    check_results,
    model_info,
    read_access,
    reply,
)
from services.api.model_store import EMBEDDINGS
from services.api.schemas import ERROR_RESPONSES, ModelInfo, ModelRef, Strict, Word

router = APIRouter(prefix="/v1", tags=["embeddings"], dependencies=[Depends(read_access)])


class AnalogyRequest(Strict):
    positive: list[Word] = Field(min_length=1, description="Words added (e.g. rainha, homem).")
    negative: list[Word] = Field(default_factory=list, description="Words subtracted (e.g. mulher).")
    k: int = Field(default=5, ge=1, strict=True)
    method: Literal["3cosadd", "3cosmul"] = "3cosadd"
    model: ModelRef | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"positive": ["rainha", "homem"], "negative": ["mulher"], "k": 5, "method": "3cosadd"}
            ]
        }
    )


class AnalogyResponse(BaseModel):
    model: ModelInfo
    method: str
    answers: list[Neighbor]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model": {"name": "corpus-w2v", "version": 3, "kind": "word2vec"},
                    "method": "3cosadd",
                    "answers": [{"word": "rei", "score": 0.62}],
                }
            ]
        }
    )


@router.post("/analogy", response_model=AnalogyResponse, responses=ERROR_RESPONSES)
def analogy(body: AnalogyRequest, settings: SettingsDep, store: StoreDep) -> Response:
    """The k words best completing the analogy; the query words themselves are never answers."""
    check_k(body.k, settings)
    check_results(1, body.k, settings)
    check_batch(len(body.positive) + len(body.negative), settings, what="words")
    loaded = store.get(body.model, EMBEDDINGS)
    answers = loaded.model.analogy(body.positive, body.negative, body.k, method=body.method)
    return reply(AnalogyResponse(model=model_info(loaded), method=body.method, answers=answers), loaded)
