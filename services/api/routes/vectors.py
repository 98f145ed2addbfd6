"""``POST /v1/vectors``: the stored vector of each word."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from services.api.deps import SettingsDep, StoreDep, check_batch, model_info, read_access, reply
from services.api.model_store import EMBEDDINGS
from services.api.schemas import ERROR_RESPONSES, ModelInfo, ModelRef, Strict, Word

router = APIRouter(prefix="/v1", tags=["embeddings"], dependencies=[Depends(read_access)])


class VectorsRequest(Strict):
    words: list[Word] = Field(min_length=1)
    model: ModelRef | None = None

    model_config = ConfigDict(json_schema_extra={"examples": [{"words": ["rei", "rainha"]}]})


class WordVector(BaseModel):
    word: str
    token: str
    in_vocabulary: bool
    vector: list[float]


class VectorsResponse(BaseModel):
    model: ModelInfo
    dim: int
    vectors: list[WordVector]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model": {"name": "corpus-w2v", "version": 3, "kind": "word2vec"},
                    "dim": 3,
                    "vectors": [
                        {"word": "rei", "token": "rei", "in_vocabulary": True, "vector": [0.1, -0.3, 0.2]}
                    ],
                }
            ]
        }
    )


@router.post("/vectors", response_model=VectorsResponse, responses=ERROR_RESPONSES)
def vectors(body: VectorsRequest, settings: SettingsDep, store: StoreDep) -> Response:
    """Raw (not unit-length) vectors; FastText models compose unknown words from subwords."""
    check_batch(len(body.words), settings, what="words")
    loaded = store.get(body.model, EMBEDDINGS)
    looked, matrix = loaded.model.vectors(body.words)
    return reply(
        VectorsResponse(
            model=model_info(loaded),
            dim=loaded.model.dim,
            vectors=[
                WordVector(word=q.query, token=q.token, in_vocabulary=q.in_vocabulary, vector=row)
                for q, row in zip(looked, matrix.tolist(), strict=True)
            ],
        ),
        loaded,
    )
