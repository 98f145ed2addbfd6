"""Document collections: list, create, add and delete documents (writes need an API key), and search them."""

from __future__ import annotations

import logging
import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from models.collection import MAX_ID_CHARS, Document, id_problem
from models.errors import CollectionNotFound, IntegrityError, NotReady
from pipelines.serving.search import MODES, Searcher, add_documents, create_collection, delete_documents
from pipelines.serving.searcher_cache import SearcherCache
from services.api.deps import (
    EVENT_LOOP_CHARS,
    SettingsDep,
    check_batch,
    check_k,
    check_texts,
    read_access,
    require_key,
)
from services.api.schemas import ERROR_RESPONSES, NAME_PATTERN, WRITE_RESPONSES, ModelRef, Strict, Text
from services.settings import Settings

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["collections"])


def _visible_id(doc_id: str) -> str:
    problem = id_problem(doc_id)
    if problem is not None:  # a zero-width space alone, a NUL or a line break named a document
        raise ValueError(problem)
    return doc_id


DocId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_ID_CHARS),
    AfterValidator(_visible_id),
]
# an id to delete only has to exist: one stored before ids were checked (a zero-width space) can still go
StoredDocId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_ID_CHARS)]
CollectionName = Annotated[str, StringConstraints(min_length=1, max_length=64)]


def _scalar(value: object) -> object:
    """Refuse a list, an object or a non-finite number as a filter value in one sentence (the union would list
    why each of its four types refuses it)."""
    if isinstance(value, list | dict):
        kind = "a list" if isinstance(value, list) else "an object"
        raise ValueError(f"a filter value is a string, number, true, false or null, not {kind}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"a filter value is a finite number, not {value}")
    return value


# a metadata filter's value: matched as JSON (true matches true, 3 matches 3.0; a string also matches the number,
# boolean or null it spells), the rule of pipelines/serving/filters.py
FilterValue = Annotated[Text | bool | int | float | None, BeforeValidator(_scalar)]


async def get_searchers(request: Request) -> SearcherCache:
    searchers: SearcherCache | None = getattr(request.app.state, "searchers", None)
    if searchers is None:
        raise NotReady("collections are not open yet; retry in a few seconds")
    return searchers


SearchersDep = Annotated[SearcherCache, Depends(get_searchers)]


class DocumentIn(Strict):
    id: DocId
    text: Text = Field(min_length=1)
    metadata: dict[str, Any] = Field(default_factory=dict, description="Kept with the document; filterable.")


class CollectionInfo(BaseModel):
    name: str
    encoder: str
    words: str
    documents: int
    dim: int
    generation: int
    created_at: str
    updated_at: str


class CollectionList(BaseModel):
    collections: list[CollectionInfo]


# a collection's name in a path: a model name's rule (models.collection.check_name; the handler checks it too)
CollectionPath = Path(
    description="Collection name.",
    examples=["faq"],
    max_length=64,
    json_schema_extra={"pattern": NAME_PATTERN},
)


class RemovedCollection(BaseModel):
    name: str
    removed: bool = True
    documents: int | None = Field(
        description="How many documents it held (null: its collection.json was damaged)."
    )

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "faq", "removed": True, "documents": 120}]}
    )


class CreateCollectionRequest(Strict):
    name: CollectionName
    encoder: ModelRef = Field(description="The encoder whose vectors the collection holds.")
    documents: list[DocumentIn] = Field(min_length=1)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "perguntas-frequentes",
                    "encoder": "frases-sif",
                    "documents": [
                        {"id": "p1", "text": "Como troco a minha senha?", "metadata": {"tema": "conta"}},
                        {"id": "p2", "text": "Qual é o prazo de entrega?", "metadata": {"tema": "entrega"}},
                    ],
                }
            ]
        }
    )


class AddDocumentsRequest(Strict):
    documents: list[DocumentIn] = Field(min_length=1)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"documents": [{"id": "p3", "text": "Posso devolver um produto usado?"}]}]
        }
    )


class DeleteDocumentsRequest(Strict):
    ids: list[StoredDocId] = Field(min_length=1)

    model_config = ConfigDict(json_schema_extra={"examples": [{"ids": ["p1"]}]})


class SearchRequest(Strict):
    query: Text = Field(min_length=1)
    k: int = Field(default=10, ge=1, strict=True)
    mode: str = Field(default="hybrid", description=f"One of {', '.join(MODES)}.")
    filter: dict[str, FilterValue] = Field(
        default_factory=dict,
        description="Metadata field -> a string, number, boolean or null; all must match, each comparing as JSON: "
        'true matches true (not "True"), 3 matches 3 and 3.0, null an explicit null, and a string matches '
        'that string and the number, boolean or null it spells ("3" matches "3" and 3). A document '
        "without the field never matches.",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "query": "esqueci a minha senha",
                    "k": 5,
                    "mode": "hybrid",
                    "filter": {"tema": "conta", "publicado": True},
                }
            ]
        }
    )


class SearchHit(BaseModel):
    id: str
    score: float = Field(description="Cosine (vector), BM25 (lexical) or fused reciprocal rank (hybrid).")
    text: str
    metadata: dict[str, Any]


class SearchResponse(BaseModel):
    collection: str
    mode: str
    hits: list[SearchHit]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "collection": "perguntas-frequentes",
                    "mode": "hybrid",
                    "hits": [
                        {
                            "id": "p1",
                            "score": 0.033,
                            "text": "Como troco a minha senha?",
                            "metadata": {"tema": "conta"},
                        }
                    ],
                }
            ]
        }
    )


def _info(data: dict[str, Any]) -> CollectionInfo:
    return CollectionInfo.model_validate({k: data[k] for k in CollectionInfo.model_fields})


def _docs(docs: list[DocumentIn], settings: Settings) -> list[Document]:
    check_batch(len(docs), settings, what="documents")
    check_texts([d.text for d in docs], settings)
    return [Document(id=d.id, text=d.text, metadata=d.metadata) for d in docs]


@router.get("/collections", response_model=CollectionList, dependencies=[Depends(read_access)])
def list_collections(searchers: SearchersDep) -> CollectionList:
    """Every collection with its encoder and size (a damaged one is left out: searching it names the damage)."""
    store = searchers.store
    listed = []
    for name in store.names():
        try:
            listed.append(_info(store.info(name)))
        except IntegrityError as exc:  # collection.json unreadable or a field of the wrong kind
            log.warning("%s", exc.detail)
        except CollectionNotFound:  # removed since it was listed
            continue
    return CollectionList(collections=listed)


@router.post(
    "/collections",
    response_model=CollectionInfo,
    status_code=201,
    responses=WRITE_RESPONSES,
    dependencies=[Depends(require_key)],
)
def create(body: CreateCollectionRequest, settings: SettingsDep, searchers: SearchersDep) -> CollectionInfo:
    """Create a collection from documents (409 when the name is taken); larger files: `palavra collection create`."""
    docs = _docs(body.documents, settings)
    info = create_collection(
        searchers.store,
        searchers.registry,
        body.name,
        docs,
        encoder=body.encoder,
        models=searchers.model,
        ann_min_docs=settings.collection_ann_min_docs,
    )
    return _info(info)


@router.post(
    "/collections/{name}/documents",
    response_model=CollectionInfo,
    responses=WRITE_RESPONSES,
    dependencies=[Depends(require_key)],
)
def add(
    name: str, body: AddDocumentsRequest, settings: SettingsDep, searchers: SearchersDep
) -> CollectionInfo:
    """Add documents with new ids; searchable by every worker as soon as this returns."""
    docs = _docs(body.documents, settings)
    info = add_documents(
        searchers.store,
        searchers.registry,
        name,
        docs,
        models=searchers.model,
        ann_min_docs=settings.collection_ann_min_docs,
    )
    return _info(info)


@router.delete(
    "/collections/{name}/documents",
    response_model=CollectionInfo,
    responses=WRITE_RESPONSES,
    dependencies=[Depends(require_key)],
)
def delete(
    name: str, body: DeleteDocumentsRequest, settings: SettingsDep, searchers: SearchersDep
) -> CollectionInfo:
    """Remove documents by id; they never appear in a search again."""
    check_batch(len(body.ids), settings, what="ids")
    return _info(
        delete_documents(searchers.store, name, body.ids, ann_min_docs=settings.collection_ann_min_docs)
    )


@router.delete(
    "/collections/{name}",
    response_model=RemovedCollection,
    responses=WRITE_RESPONSES,
    dependencies=[Depends(require_key)],
)
def remove(searchers: SearchersDep, name: str = CollectionPath) -> RemovedCollection:
    """Remove a whole collection (a damaged one too): its documents, vectors and indexes. Searches that started
    before it finish; later ones answer 404."""
    info = searchers.store.remove(name)
    searchers.drop(name)  # this worker's maps of it: released now (other workers' at their next prune)
    return RemovedCollection(name=name, documents=None if info is None else int(info["documents"]))


@router.post(
    "/collections/{name}/search",
    response_model=SearchResponse,
    responses=ERROR_RESPONSES,
    dependencies=[Depends(read_access)],
)
async def search(
    name: str, body: SearchRequest, settings: SettingsDep, searchers: SearchersDep
) -> SearchResponse:
    """The k best documents for a query: by meaning (vector), by words (lexical, BM25) or both (hybrid)."""
    check_k(body.k, settings)
    check_texts([body.query], settings, field="query")
    # a short query on a collection already open is answered on the event loop, in arrival order: through the
    # thread pool, 16 searches at once handed the GIL back and forth (benchmarks/results/text.md). Opening a
    # collection, or a long query, runs in a worker thread.
    searcher = searchers.cached(name) if len(body.query) <= EVENT_LOOP_CHARS else None
    if searcher is not None:
        return _search(name, searcher, body)
    return await run_in_threadpool(lambda: _search(name, searchers.get(name), body))


def _search(name: str, searcher: Searcher, body: SearchRequest) -> SearchResponse:
    hits = searcher.search(body.query, k=body.k, mode=body.mode, where=body.filter)
    return SearchResponse(collection=name, mode=body.mode, hits=[SearchHit(**h.__dict__) for h in hits])
