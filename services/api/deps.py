"""Dependencies routes share: the settings and model store of this app, API-key checks and request limits."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Response
from pydantic import BaseModel

from models.errors import InvalidInput, NotReady, TooLarge
from services.api.model_store import Loaded, ModelStore
from services.api.schemas import ModelInfo
from services.settings import Settings


# Dependencies are ``async def`` on purpose: they do no I/O, and a plain ``def`` dependency costs a hop through the
# thread pool per request (measured: ~20 hops, ~1 ms of CPU per request with them as ``def``).
async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_store(request: Request) -> ModelStore:
    store: ModelStore | None = getattr(request.app.state, "store", None)
    if store is None:  # the lifespan handler has not run (yet)
        raise NotReady("models are not loaded yet; retry in a few seconds")
    return store


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[ModelStore, Depends(get_store)]


def _presented_key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return request.headers.get("x-api-key")


def key_matches(presented: str | None, keys: list[str]) -> bool:
    """Constant-time comparison against every configured key (no early exit on the first match)."""
    if not presented:
        return False
    given = presented.encode()
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(given, key.encode())
    return matched


async def require_key(request: Request, settings: SettingsDep) -> None:
    """Routes that change state need a key from PALAVRA_API_KEYS (``Authorization: Bearer`` or ``X-API-Key``)."""
    if not settings.api_keys:
        raise HTTPException(
            401,
            "this server has no API keys configured, so routes that change state are closed; set PALAVRA_API_KEYS",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not key_matches(_presented_key(request), settings.api_keys):
        raise HTTPException(
            401,
            "send a valid API key as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'",
            headers={"WWW-Authenticate": "Bearer"},
        )


async def read_access(request: Request, settings: SettingsDep) -> None:
    """Read routes are open unless PALAVRA_PROTECT_READS is set."""
    if settings.protect_reads:
        await require_key(request, settings)


def clean_word(word: str) -> str:
    """A query word from a URL: surrounding blanks removed, and something left."""
    word = word.strip()
    if not word:
        raise InvalidInput("word must not be blank", field="word")
    return word


def check_k(k: int, settings: Settings) -> None:
    if k > settings.max_k:
        raise TooLarge(
            f"k={k} is over this server's limit of {settings.max_k} (PALAVRA_MAX_K)", limit=settings.max_k
        )


def check_results(queries: int, k: int, settings: Settings) -> None:
    """The work a request asks for, not only its size: ``queries`` x ``k`` results in one answer."""
    if queries * k > settings.max_results:
        raise TooLarge(
            f"{queries} words x k={k} asks for {queries * k} results in one request; the limit is "
            f"{settings.max_results} (PALAVRA_MAX_RESULTS): lower k or split the words over several requests",
            limit=settings.max_results,
        )


def check_batch(n: int, settings: Settings, *, what: str = "items") -> None:
    if n > settings.max_batch:
        raise TooLarge(
            f"{n} {what} in one request is over this server's limit of {settings.max_batch} (PALAVRA_MAX_BATCH)",
            limit=settings.max_batch,
        )


def check_texts(texts: list[str], settings: Settings) -> None:
    check_batch(len(texts), settings, what="texts")
    for i, text in enumerate(texts):
        if len(text) > settings.max_text_chars:
            raise TooLarge(
                f"text {i} has {len(text)} characters; the limit is {settings.max_text_chars} "
                "(PALAVRA_MAX_TEXT_CHARS)",
                limit=settings.max_text_chars,
                index=i,
            )


def model_info(loaded: Loaded) -> ModelInfo:
    mv = loaded.version
    return ModelInfo(name=mv.name, version=mv.version, kind=mv.kind)


def reply(payload: BaseModel, loaded: Loaded) -> Response:
    """The serialised body, naming the answering version in a header too (handy for watching a swap).

    Returning a ready ``Response`` skips FastAPI's re-validation of the payload, which for a plain ``def`` route
    also costs a second hop through the thread pool; the route's ``response_model`` still documents the shape.
    """
    return Response(
        payload.model_dump_json().encode(),
        media_type="application/json",
        headers={"X-Palavra-Model": loaded.version.ref},
    )
