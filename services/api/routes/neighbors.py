"""Nearest words: ``GET /v1/neighbors`` (one word) and ``POST /v1/neighbors`` (a batch, one matrix product)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from services.api.deps import (
    SettingsDep,
    StoreDep,
    check_batch,
    check_k,
    check_results,
    clean_word,
    model_info,
    read_access,
    reply,
)
from services.api.model_store import Loaded, ModelStore
from services.api.schemas import (
    ERROR_RESPONSES,
    MAX_WORD_CHARS,
    REF_PATTERN,
    WHOLE_NUMBER,
    ModelInfo,
    ModelRef,
    Neighbor,
    Strict,
    Word,
)

router = APIRouter(prefix="/v1", tags=["embeddings"], dependencies=[Depends(read_access)])

_HITS: list[Any] = [{"word": "rainha", "score": 0.71}, {"word": "príncipe", "score": 0.66}]


class WordNeighbors(BaseModel):
    word: str = Field(description="The word as sent.")
    token: str = Field(description="The word as the model's normaliser saw it.")
    in_vocabulary: bool = Field(description="False when a FastText model answered from subwords.")
    neighbors: list[Neighbor]


class NeighborsResponse(WordNeighbors):
    model: ModelInfo

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model": {"name": "corpus-w2v", "version": 3, "kind": "word2vec"},
                    "word": "Rei",
                    "token": "rei",
                    "in_vocabulary": True,
                    "neighbors": _HITS,
                }
            ]
        }
    )


class NeighborsRequest(Strict):
    words: list[Word] = Field(min_length=1, description="Query words (or phrases).")
    k: int = Field(default=10, ge=1, strict=True, description="Neighbours per word.")
    model: ModelRef | None = None

    model_config = ConfigDict(json_schema_extra={"examples": [{"words": ["rei", "casa"], "k": 5}]})


class BatchNeighborsResponse(BaseModel):
    model: ModelInfo
    results: list[WordNeighbors]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model": {"name": "corpus-w2v", "version": 3, "kind": "word2vec"},
                    "results": [{"word": "rei", "token": "rei", "in_vocabulary": True, "neighbors": _HITS}],
                }
            ]
        }
    )


def _rows(loaded: Loaded, words: list[str], hits: list[list[tuple[str, float]]]) -> list[WordNeighbors]:
    return [
        WordNeighbors(
            word=h.query,
            token=h.token,
            in_vocabulary=h.in_vocabulary,
            neighbors=[Neighbor(word=w, score=s) for w, s in row],
        )
        for h, row in zip(loaded.model.lookup(words), hits, strict=True)
    ]


def _search(loaded: Loaded, words: list[str], k: int) -> list[WordNeighbors]:
    return _rows(loaded, words, loaded.model.neighbors(words, k))


def _single(store: ModelStore, word: str, k: int, model: str | None) -> Response:
    loaded = store.get(model, "embeddings")
    (row,) = _search(loaded, [word], k)
    return reply(NeighborsResponse(model=model_info(loaded), **row.model_dump()), loaded)


@router.get("/neighbors", response_model=NeighborsResponse, responses=ERROR_RESPONSES)
async def neighbors(
    settings: SettingsDep,
    store: StoreDep,
    word: str = Query(min_length=1, max_length=MAX_WORD_CHARS, description="Query word.", examples=["rei"]),
    k: Annotated[int, Query(ge=1, description="How many neighbours.", examples=[10]), WHOLE_NUMBER] = 10,
    model: str | None = Query(
        default=None,
        max_length=128,
        json_schema_extra={"pattern": REF_PATTERN},
        description="NAME, NAME@VERSION or NAME@ALIAS.",
        examples=["corpus-w2v@production"],
    ),
) -> Response:
    """The k words closest to one word by cosine (the word itself excluded)."""
    check_k(k, settings)
    check_results(1, k, settings)
    word = clean_word(word)
    # a vocabulary word of a loaded model with a neighbour table is a row read: answered on the event loop;
    # everything else (a search, loading a model, an unknown word's suggestions) runs in a worker thread
    loaded = store.peek(model, "embeddings")
    if loaded is not None:
        hits = loaded.model.table_neighbors([word], k)
        if hits is not None:
            (row,) = _rows(loaded, [word], hits)
            return reply(NeighborsResponse(model=model_info(loaded), **row.model_dump()), loaded)
    return await run_in_threadpool(_single, store, word, k, model)


@router.post("/neighbors", response_model=BatchNeighborsResponse, responses=ERROR_RESPONSES)
def neighbors_batch(body: NeighborsRequest, settings: SettingsDep, store: StoreDep) -> Response:
    """The k nearest words to each of many words, searched with one matrix product."""
    check_k(body.k, settings)
    check_batch(len(body.words), settings, what="words")
    check_results(len(body.words), body.k, settings)
    loaded = store.get(body.model, "embeddings")
    return reply(
        BatchNeighborsResponse(model=model_info(loaded), results=_search(loaded, body.words, body.k)), loaded
    )
