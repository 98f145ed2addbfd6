"""Dependencies routes share: the settings and model store of this app, API-key checks and request limits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Union, get_args, get_origin
from urllib.parse import unquote_to_bytes

from fastapi import Depends, HTTPException, Request, Response
from pydantic import BaseModel

from models.errors import InvalidInput, NotReady, TooLarge
from pipelines.text.normalize import is_blank
from services.api.keys import KeyRing, configured_digests
from services.api.model_store import Loaded, ModelStore
from services.api.schemas import ModelInfo
from services.settings import Settings

# A route may answer a text up to this long on the event loop, when what it needs is already loaded; a longer one is
# read in a worker thread (normalising it takes milliseconds). Through the thread pool, 16 short requests at once
# handed the GIL back and forth (benchmarks/results/lm.md, text.md).
EVENT_LOOP_CHARS = 1000


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
    """Whether ``presented`` is one of ``keys`` (compared as digests, in constant time, against every key)."""
    ring = KeyRing(tuple((digest, "write") for digest in configured_digests(keys, where="keys")))
    return ring.scope_of(presented) is not None


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


_SEND_KEY = "send a valid API key as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'"


async def require_key(request: Request) -> None:
    """Routes that change state need a key with the write scope (``Authorization: Bearer`` or ``X-API-Key``):
    401 without a valid key, 403 with a read-only one."""
    keys: KeyRing = request.app.state.keys
    scope = keys.scope_of(_presented_key(request))
    if scope == "write":
        return
    closed = (
        "; this server has no API keys with the write scope, so routes that change state are closed (set "
        "PALAVRA_API_KEYS, or 'write:' lines in PALAVRA_API_KEYS_FILE)"
        if not keys.count("write")
        else ""
    )
    if scope == "read":  # a known key: who it is is settled, what it may do is not (403, not 401)
        raise HTTPException(
            403, f"this API key may only read; changing state needs a key with the write scope{closed}"
        )
    if closed:
        raise _unauthorized(closed.removeprefix("; "))
    raise _unauthorized(_SEND_KEY)


async def read_access(request: Request, settings: SettingsDep) -> None:
    """Read routes are open unless PALAVRA_PROTECT_READS is set; then a key of either scope opens them."""
    if settings.protect_reads:
        keys: KeyRing = request.app.state.keys
        if keys.scope_of(_presented_key(request)) is None:
            raise _unauthorized(_SEND_KEY)


_MANY = (list, tuple, set, frozenset)


def _takes_many(annotation: Any) -> bool:
    if get_origin(annotation) in (Union, type(int | None)):  # Optional[list[str]]
        return any(_takes_many(arg) for arg in get_args(annotation))
    return get_origin(annotation) in _MANY or annotation in _MANY


def _query_names(route: Any) -> tuple[frozenset[str], frozenset[str]]:
    """The query parameters a route reads, its dependencies' included, and those of them that may repeat."""
    names: set[str] = set()
    many: set[str] = set()
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        for field in dependant.query_params:
            names.add(field.alias)
            if _takes_many(field.field_info.annotation):
                many.add(field.alias)
        pending.extend(dependant.dependencies)
    return frozenset(names), frozenset(many)


async def known_query(request: Request) -> None:
    """A query parameter the route does not read, or one it reads given twice, is a 422: ``?kk=5`` or ``?k=5&k=50``
    would otherwise be answered as if it were not there (with the default ``k``, or one of the two)."""
    raw: bytes = request.scope.get("query_string", b"")
    if not raw:
        return
    escaped = b"%" in raw or not raw.isascii()
    for part in raw.split(b"&") if escaped else ():  # the framework reads bytes that are not UTF-8 as U+FFFD
        try:
            unquote_to_bytes(part.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            name = part.split(b"=", 1)[0].decode("ascii", "replace")
            raise InvalidInput(
                f"query parameter {name!r} is not UTF-8 text once its %-escapes are decoded; percent-encode the "
                "UTF-8 bytes of the text"
            ) from None
    route = request.scope.get("route")
    if route is None or not hasattr(route, "dependant"):
        return
    known = getattr(route, "palavra_query_names", None)
    if known is None:
        known = route.palavra_query_names = _query_names(route)  # worked out once per route
    names, many = known
    given = request.query_params
    keys = given.keys()
    if len(keys) == len(given.multi_items()) and names.issuperset(keys):
        return  # every parameter known, none repeated: the usual request, in two set operations
    unknown = sorted(set(given) - names)
    if unknown:
        reads = f"it reads {', '.join(sorted(names))}" if names else "it takes no query parameters"
        listed = ", ".join(repr(name) for name in unknown)
        raise InvalidInput(
            f"unknown query parameter{'s' if len(unknown) > 1 else ''} {listed} for {request.url.path}: {reads}",
            unknown=unknown,
        )
    repeated = sorted(name for name in set(given) if name not in many and len(given.getlist(name)) > 1)
    if repeated:
        raise InvalidInput(
            f"query parameter {', '.join(repr(name) for name in repeated)} given more than once; give it once",
            repeated=repeated,
        )


def clean_word(word: str) -> str:
    """A query word from a URL: surrounding blanks removed, and something left to read (a zero-width space or a NUL
    alone answered 404 "unknown word")."""
    word = word.strip()
    if is_blank(word):
        raise InvalidInput(
            "word must not be blank (nothing but whitespace or invisible characters)", field="word"
        )
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


def check_texts(
    texts: list[str],
    settings: Settings,
    *,
    field: str | None = None,
    label: Callable[[int], str] | None = None,
) -> None:
    """Each text within ``PALAVRA_MAX_TEXT_CHARS`` and not blank (nothing but whitespace or invisible characters).

    A list of texts also counts against ``PALAVRA_MAX_BATCH``. ``field`` names a request's single text
    ("prompt"); ``label(i)`` names text ``i`` when the list is not what the batch limit counts (a pair's sides).
    """
    if field is None and label is None:
        check_batch(len(texts), settings, what="texts")

    def name(i: int) -> str:
        return field if field is not None else label(i) if label is not None else f"text {i}"

    for i, text in enumerate(texts):
        if len(text) > settings.max_text_chars:
            raise TooLarge(
                f"{name(i)} has {len(text)} characters; the limit is {settings.max_text_chars} "
                "(PALAVRA_MAX_TEXT_CHARS)",
                limit=settings.max_text_chars,
                index=i,
            )
    empty = [i for i, text in enumerate(texts) if is_blank(text)]
    if empty:
        if field is not None:
            what = f"empty {field}"
        elif label is not None:
            what = f"empty text at {', '.join(label(i) for i in empty[:10])}"
        else:
            what = f"empty text at position(s) {', '.join(map(str, empty[:10]))}"
        where = {"positions": empty[:100]} if label is None else {}  # the labels name a pair's texts instead
        raise InvalidInput(f"{what} (nothing but whitespace or invisible characters)", **where)


def model_info(loaded: Loaded[Any]) -> ModelInfo:
    mv = loaded.version
    return ModelInfo(name=mv.name, version=mv.version, kind=mv.kind)


def reply(payload: BaseModel, loaded: Loaded[Any]) -> Response:
    """The serialised body, naming the answering version in a header too (handy for watching a swap).

    Returning a ready ``Response`` skips FastAPI's re-validation of the payload, which for a plain ``def`` route
    also costs a second hop through the thread pool; the route's ``response_model`` still documents the shape.
    """
    return Response(
        payload.model_dump_json().encode(),
        media_type="application/json",
        headers={"X-Palavra-Model": loaded.version.ref},
    )
