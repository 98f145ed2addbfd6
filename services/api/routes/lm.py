"""``POST /v1/complete`` (next words with probabilities) and ``POST /v1/generate`` (sampled text, optionally as
server-sent events while the tokens are drawn)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

from anyio import from_thread
from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from pipelines.lm.config import MAX_NEW_TOKENS, MAX_SEED, MAX_TEMPERATURE
from services.api.deps import (
    EVENT_LOOP_CHARS,
    SettingsDep,
    StoreDep,
    check_k,
    check_texts,
    model_info,
    read_access,
    reply,
)
from services.api.model_store import LM, Loaded, ModelStore
from services.api.schemas import ERROR_RESPONSES, ModelInfo, ModelRef, Strict, Text

if TYPE_CHECKING:  # torch: only servers that serve language models import it
    from pipelines.lm.predictor import LanguageModel

router = APIRouter(prefix="/v1", tags=["language model"], dependencies=[Depends(read_access)])

#: the status a response for a client that hung up is counted under (nginx's "client closed request")
CLIENT_GONE = 499


class CompleteRequest(Strict):
    text: Text = Field(min_length=1, description="The words so far (normalised as the model's corpus was).")
    k: int = Field(default=5, ge=1, strict=True, description="How many next words.")
    model: ModelRef | None = None

    model_config = ConfigDict(json_schema_extra={"examples": [{"text": "o menino foi para a", "k": 5}]})


class Candidate(BaseModel):
    word: str
    probability: float


class CompleteResponse(BaseModel):
    model: ModelInfo
    tokens: list[str] = Field(description="The text as the model read it (with </s> at sentence ends).")
    unknown: list[str] = Field(description="Tokens outside the vocabulary (read as <unk>).")
    candidates: list[Candidate]


class GenerateRequest(Strict):
    prompt: Text = Field(min_length=1, description="The text to continue.")
    max_tokens: int = Field(default=40, ge=1, le=MAX_NEW_TOKENS, strict=True)
    temperature: float = Field(
        default=0.8,
        ge=0.0,
        le=MAX_TEMPERATURE,
        strict=True,
        description="0 is greedy (the most probable token).",
    )
    top_k: int | None = Field(
        default=40, ge=1, strict=True, description="Sample among the k most probable tokens."
    )
    top_p: float = Field(
        default=0.95, gt=0.0, le=1.0, strict=True, description="Nucleus: the smallest set reaching top_p."
    )
    seed: int | None = Field(
        default=None, ge=0, le=MAX_SEED, strict=True, description="Same seed, same text."
    )
    stream: bool = Field(
        default=False, strict=True, description="Send tokens as server-sent events as they are sampled."
    )
    model: ModelRef | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"prompt": "era uma vez", "max_tokens": 40, "temperature": 0.8, "seed": 7}]
        }
    )


class GenerateResponse(BaseModel):
    model: ModelInfo
    tokens: list[str]
    completion: str = Field(description="The new text alone, detokenised.")
    text: str = Field(description="Prompt and completion as readable text.")


def _complete(loaded: Loaded[LanguageModel], body: CompleteRequest) -> Response:
    result = loaded.model.complete(body.text, body.k)
    return reply(CompleteResponse(model=model_info(loaded), **result), loaded)


def _complete_threaded(store: ModelStore, body: CompleteRequest) -> Response:
    return _complete(store.get(body.model, LM), body)


@router.post("/complete", response_model=CompleteResponse, responses=ERROR_RESPONSES)
async def complete(body: CompleteRequest, settings: SettingsDep, store: StoreDep) -> Response:
    """The k most probable next words after a text, with their probabilities."""
    check_texts([body.text], settings, field="text")
    check_k(body.k, settings)
    # a short text on a loaded model costs well under a millisecond (a cached answer, or one small forward pass):
    # answered on the event loop, in arrival order. Through the thread pool, 16 requests at once fought for the
    # GIL (the p99 before and after: benchmarks/results/lm.md). Loading a model or a long text runs in a thread.
    loaded = store.peek(body.model, LM)
    if loaded is not None and len(body.text) <= EVENT_LOOP_CHARS:
        return _complete(loaded, body)
    return await run_in_threadpool(_complete_threaded, store, body)


def _event(name: str, data: object) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


@router.post(
    "/generate",
    response_model=GenerateResponse,
    responses={
        **ERROR_RESPONSES,
        200: {
            "content": {"text/event-stream": {}},
            "description": "With stream=true: `token` events ({token}) as they are sampled, then one `done` "
            "event with the whole response.",
        },
    },
)
def generate(body: GenerateRequest, settings: SettingsDep, store: StoreDep, request: Request) -> Response:
    """Continue a prompt by sampling one token at a time (reproducible with a seed; temperature 0 is greedy)."""
    from pipelines.lm.predictor import (  # torch: only servers that serve LMs import it
        Abandoned,
        Sampling,
        detokenize,
    )

    check_texts([body.prompt], settings, field="prompt")
    loaded = store.get(body.model, LM)
    lm = loaded.model
    sampling = Sampling(
        max_tokens=body.max_tokens,
        temperature=body.temperature,
        top_k=body.top_k,
        top_p=body.top_p,
        seed=body.seed,
    )
    if not body.stream:
        # a client that hung up stops the drawing (a thousand tokens went on costing seconds of CPU for nobody);
        # the streamed form stops by itself, at its next write
        try:
            result = lm.generate(body.prompt, sampling, stop=lambda: from_thread.run(request.is_disconnected))
        except Abandoned:
            return Response(status_code=CLIENT_GONE)  # never delivered; counted in /metrics under this status
        return reply(GenerateResponse(model=model_info(loaded), **result), loaded)
    prompt_tokens = lm.tokens(body.prompt, what="prompt")  # errors answer before the stream starts

    def events() -> Iterator[bytes]:
        new: list[str] = []
        for token in lm.stream(body.prompt, sampling):
            new.append(token)
            yield _event("token", {"token": token})
        done = GenerateResponse(
            model=model_info(loaded),
            tokens=new,
            completion=detokenize(new, capitalize_first=False),
            text=detokenize(prompt_tokens + new),
        )
        yield _event("done", done.model_dump())

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"X-Palavra-Model": loaded.version.ref, "Cache-Control": "no-cache"},
    )
