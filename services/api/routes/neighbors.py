"""Nearest words: ``GET /v1/neighbors`` (one word) and ``POST /v1/neighbors`` (a batch, one matrix product)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from models.vectors import Neighbor
from pipelines.serving.served_vectors import QueryNeighbors, QueryWord, ServedVectors
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
from services.api.model_store import EMBEDDINGS, Loaded, ModelStore
from services.api.schemas import (
    ERROR_RESPONSES,
    MAX_WORD_CHARS,
    REF_PATTERN,
    WHOLE_NUMBER,
    ModelInfo,
    ModelRef,
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


def _rows(found: list[QueryNeighbors]) -> list[WordNeighbors]:
    return [
        WordNeighbors(
            word=f.word.query, token=f.word.token, in_vocabulary=f.word.in_vocabulary, neighbors=f.neighbors
        )
        for f in found
    ]


def _single(loaded: Loaded[ServedVectors], found: QueryNeighbors) -> Response:
    w = found.word
    body = NeighborsResponse(
        model=model_info(loaded),
        word=w.query,
        token=w.token,
        in_vocabulary=w.in_vocabulary,
        neighbors=found.neighbors,
    )
    return reply(body, loaded)


def _search(
    store: ModelStore,
    word: str,
    k: int,
    model: str | None,
    looked: tuple[Loaded[ServedVectors], Sequence[QueryWord]] | None,
) -> Response:
    """The threaded path: the model the event loop already looked the word up in, else the one the store gives."""
    if looked is None:
        loaded = store.get(model, EMBEDDINGS)
        looked = (loaded, loaded.model.lookup([word]))
    loaded, query = looked
    (found,) = loaded.model.nearest(query, k)
    return _single(loaded, found)


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
    loaded = store.peek(model, EMBEDDINGS)
    looked = None
    if loaded is not None:
        looked = (loaded, loaded.model.lookup([word]))
        found = loaded.model.from_table(looked[1], k)
        if found is not None:
            return _single(loaded, found[0])
    return await run_in_threadpool(_search, store, word, k, model, looked)


@router.post("/neighbors", response_model=BatchNeighborsResponse, responses=ERROR_RESPONSES)
def neighbors_batch(body: NeighborsRequest, settings: SettingsDep, store: StoreDep) -> Response:
    """The k nearest words to each of many words, searched with one matrix product."""
    check_k(body.k, settings)
    check_batch(len(body.words), settings, what="words")
    check_results(len(body.words), body.k, settings)
    loaded = store.get(body.model, EMBEDDINGS)
    found = loaded.model.neighbors(body.words, body.k)
    return reply(BatchNeighborsResponse(model=model_info(loaded), results=_rows(found)), loaded)
