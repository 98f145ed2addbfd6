"""Dependencies routes share: the settings and model store of this app, API-key checks and request limits."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Response

from models.errors import InvalidInput, NotReady, TooLarge
from services.api.model_store import Loaded, ModelStore
from services.api.schemas import ModelInfo
from services.settings import Settings


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_store(request: Request) -> ModelStore:
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


def require_key(request: Request, settings: SettingsDep) -> None:
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


def read_access(request: Request, settings: SettingsDep) -> None:
    """Read routes are open unless PALAVRA_PROTECT_READS is set."""
    if settings.protect_reads:
        require_key(request, settings)


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


def answered_by(response: Response, loaded: Loaded) -> ModelInfo:
    """The answering version, also named in a header (handy for clients and for watching a swap)."""
    response.headers["X-Palavra-Model"] = loaded.version.ref
    mv = loaded.version
    return ModelInfo(name=mv.name, version=mv.version, kind=mv.kind)
