"""The registry over HTTP: ``GET /v1/models``, ``GET /v1/models/{name}``, ``PUT|DELETE /v1/models/{name}/aliases/{alias}``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from models.errors import NotReady
from models.references import KINDS, PRODUCTION
from models.registry import MAX_VERSION, ModelVersion, Registry
from pipelines.serving.served_vectors import ServedVectors
from services.api.deps import StoreDep, read_access, require_key
from services.api.model_store import Loaded
from services.api.schemas import ALIAS_PATTERN, ERROR_RESPONSES, NAME_PATTERN, WRITE_RESPONSES, Strict
from services.timestamps import UtcTime, public_metadata

router = APIRouter(prefix="/v1/models", tags=["models"])

NamePath = Path(
    description="Model name.",
    examples=["corpus-w2v"],
    max_length=64,
    json_schema_extra={"pattern": NAME_PATTERN},
)


def alias_path(description: str, example: str) -> Any:
    """The ``{alias}`` of an alias route: its rule (pattern, length) once, its meaning per route."""
    return Path(
        description=description,
        examples=[example],
        max_length=32,
        json_schema_extra={"pattern": ALIAS_PATTERN},
    )


class ModelSummary(BaseModel):
    name: str
    kind: str
    latest: int
    aliases: dict[str, int]
    loaded: list[int] = Field(description="Versions loaded in the worker that answered.")


class ModelList(BaseModel):
    models: list[ModelSummary]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "models": [
                        {
                            "name": "corpus-w2v",
                            "kind": "word2vec",
                            "latest": 3,
                            "aliases": {"latest": 3, "production": 2},
                            "loaded": [2],
                        }
                    ]
                }
            ]
        }
    )


class VersionDetail(BaseModel):
    version: int
    kind: str
    created_at: UtcTime
    aliases: list[str]
    metadata: dict[str, Any] = Field(
        description="Kind, config, metrics, sha256 of every file, library versions."
    )


class ModelDetail(BaseModel):
    name: str
    kind: str = Field(
        description="The kind of the version a bare name answers with (its production alias); each version "
        "names its own, since versions of one name may differ (word2vec and fasttext)."
    )
    aliases: dict[str, int]
    versions: list[VersionDetail]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "corpus-w2v",
                    "kind": "word2vec",
                    "aliases": {"latest": 2, "production": 2},
                    "versions": [
                        {
                            "version": 2,
                            "kind": "word2vec",
                            "created_at": "2025-01-01T12:00:00Z",
                            "aliases": ["latest", "production"],
                            "metadata": {
                                "kind": "word2vec",
                                "metrics": {"analogy_accuracy": 0.12},
                                "files": {},
                            },
                        }
                    ],
                }
            ]
        }
    )


class AliasRequest(Strict):
    version: int = Field(
        ge=1, le=MAX_VERSION, strict=True, description="The version the alias should point at."
    )

    model_config = ConfigDict(json_schema_extra={"examples": [{"version": 2}]})


class AliasResponse(BaseModel):
    name: str
    alias: str
    version: int
    previous: int | None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "corpus-w2v", "alias": "production", "version": 2, "previous": 1}]
        }
    )


def _registry(request: Request) -> Registry:
    registry: Registry | None = getattr(request.app.state, "registry", None)
    if registry is None:
        raise NotReady("the registry is not open yet; retry in a few seconds")
    return registry


@router.get("", response_model=ModelList, dependencies=[Depends(read_access)], responses=ERROR_RESPONSES)
def list_models(
    request: Request,
    store: StoreDep,
    kind: str | None = Query(
        None,
        description=f"Only models whose newest version is of this kind (the `kind` this list shows): {', '.join(KINDS)}.",
        examples=["lm"],
    ),
) -> ModelList:
    """Every registered model: newest version, aliases, and which versions this worker has loaded."""
    registry = _registry(request)
    aliases = registry.alias_map()
    loaded = [item.key for item in store.loaded()]
    return ModelList(
        models=[
            ModelSummary(
                name=mv.name,
                kind=mv.kind,
                latest=mv.version,
                aliases={a: v for (n, a), v in sorted(aliases.items()) if n == mv.name},
                loaded=[v for n, v in loaded if n == mv.name],
            )
            for mv in registry.list(kind=kind)
        ]
    )


@router.get(
    "/{name}", response_model=ModelDetail, dependencies=[Depends(read_access)], responses=ERROR_RESPONSES
)
def show_model(request: Request, store: StoreDep, name: str = NamePath) -> ModelDetail:
    """Every version of one model with its metadata (config, metrics, file checksums, ANN recall)."""
    versions = _registry(request).versions(name)
    loaded = {item.key: item for item in store.loaded()}
    aliases = {a: mv.version for mv in versions for a in mv.aliases}
    bare = next((mv for mv in versions if mv.version == aliases.get(PRODUCTION)), versions[-1])
    return ModelDetail(
        name=name,
        kind=bare.kind,
        aliases=aliases,
        versions=[
            VersionDetail(
                version=mv.version,
                kind=mv.kind,
                created_at=mv.created_at,
                aliases=list(mv.aliases),
                metadata=public_metadata(
                    _with_load_facts(mv, loaded.get((mv.name, mv.version))), mv.created_at
                ),
            )
            for mv in versions
        ],
    )


def _with_load_facts(mv: ModelVersion, loaded: Loaded[Any] | None) -> dict[str, Any]:
    """A version's metadata, with the facts of an index this worker built when it loaded the version.

    Loading never writes to the registry, so an index built at load time (for a version registered without one)
    is described here, from the loaded model, rather than in the stored metadata.
    """
    model = loaded.model if loaded is not None else None
    if "ann" in mv.metadata or not isinstance(model, ServedVectors) or model.ann is None:
        return mv.metadata
    return {**mv.metadata, "ann": model.ann}


@router.put(
    "/{name}/aliases/{alias}",
    response_model=AliasResponse,
    dependencies=[Depends(require_key)],
    responses=WRITE_RESPONSES,
)
def move_alias(
    request: Request,
    body: AliasRequest,
    store: StoreDep,
    name: str = NamePath,
    alias: str = alias_path("Alias to create or move ('latest' is kept by the registry).", "production"),
) -> AliasResponse:
    """Point NAME@ALIAS at a version (needs an API key). Every worker serves it within a few seconds."""
    registry = _registry(request)
    previous = registry.alias_map().get((name, alias))
    mv = registry.set_alias(name, alias, body.version)
    store.refresh()  # this worker swaps now; the others on their next poll
    return AliasResponse(name=mv.name, alias=alias, version=mv.version, previous=previous)


class AliasDeleted(BaseModel):
    name: str
    alias: str
    deleted: bool
    previous: int

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "corpus-w2v", "alias": "staging", "deleted": True, "previous": 2}]
        }
    )


@router.delete(
    "/{name}/aliases/{alias}",
    response_model=AliasDeleted,
    dependencies=[Depends(require_key)],
    responses=WRITE_RESPONSES,
)
def delete_alias(
    request: Request,
    store: StoreDep,
    name: str = NamePath,
    alias: str = alias_path(
        "Alias to remove (not 'production', which a bare name means, nor 'latest').", "staging"
    ),
) -> AliasDeleted:
    """Remove NAME@ALIAS (needs an API key); requests naming it then get 404. Workers follow within seconds."""
    previous = _registry(request).delete_alias(name, alias)
    store.refresh()
    return AliasDeleted(name=name, alias=alias, deleted=True, previous=previous)
