"""``POST /v1/neighbors/map``: a word and its nearest neighbours as points on a plane (PCA, or t-SNE)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from pipelines.evaluation.projection import project_2d
from pipelines.serving.served_vectors import ServedVectors
from services.api.deps import SettingsDep, StoreDep, check_k, model_info, read_access, reply
from services.api.model_store import EMBEDDINGS, Loaded
from services.api.schemas import ERROR_RESPONSES, ModelInfo, ModelRef, Strict, Word

router = APIRouter(prefix="/v1", tags=["embeddings"], dependencies=[Depends(read_access)])


class NeighborMapRequest(Strict):
    word: Word = Field(description="The word at the centre of the map.")
    k: int = Field(default=50, ge=1, strict=True, description="How many neighbours to place around it.")
    method: Literal["pca", "tsne"] = Field(
        default="pca", description="pca (fast, linear) or tsne (scikit-learn; slower, keeps local clusters)."
    )
    model: ModelRef | None = None

    model_config = ConfigDict(json_schema_extra={"examples": [{"word": "rei", "k": 50, "method": "pca"}]})


class MapPoint(BaseModel):
    word: str
    x: float = Field(description="In [-1, 1].")
    y: float = Field(description="In [-1, 1].")
    score: float = Field(description="Cosine similarity to the query word (1.0 for the word itself).")
    query: bool = Field(description="True for the query word's own point.")


class NeighborMapResponse(BaseModel):
    model: ModelInfo
    word: str
    token: str
    in_vocabulary: bool = Field(description="False when a FastText model built the word from subwords.")
    method: str
    explained_variance: list[float] | None = Field(
        description="PCA only: the share of the points' variance along x and along y."
    )
    points: list[MapPoint]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model": {"name": "corpus-w2v", "version": 3, "kind": "word2vec"},
                    "word": "rei",
                    "token": "rei",
                    "in_vocabulary": True,
                    "method": "pca",
                    "explained_variance": [0.31, 0.18],
                    "points": [
                        {"word": "rei", "x": -0.12, "y": 0.05, "score": 1.0, "query": True},
                        {"word": "rainha", "x": 0.4, "y": -0.8, "score": 0.71, "query": False},
                    ],
                }
            ]
        }
    )


def _map(loaded: Loaded[ServedVectors], body: NeighborMapRequest) -> NeighborMapResponse:
    (found,) = loaded.model.neighbors([body.word], body.k)
    hit, hits = found.word, found.neighbors
    # the query's own unit vector (from its subwords when it is not in the vocabulary), then its neighbours'
    units = loaded.model.word_vectors.unit_matrix([hit.token, *(n.word for n in hits)])
    coords, explained = project_2d(units, body.method)
    labels = [(hit.token, 1.0, True), *((n.word, n.score, False) for n in hits)]
    return NeighborMapResponse(
        model=model_info(loaded),
        word=body.word,
        token=hit.token,
        in_vocabulary=hit.in_vocabulary,
        method=body.method,
        explained_variance=explained,
        points=[
            MapPoint(word=w, x=float(x), y=float(y), score=s, query=q)
            for (w, s, q), (x, y) in zip(labels, coords.tolist(), strict=True)
        ],
    )


@router.post("/neighbors/map", response_model=NeighborMapResponse, responses=ERROR_RESPONSES)
def neighbor_map(body: NeighborMapRequest, settings: SettingsDep, store: StoreDep) -> Response:
    """The word and its k nearest neighbours projected to 2D, each point with its cosine to the word.

    Unknown words answer 404 with spelling suggestions, as ``/v1/neighbors`` does.
    """
    check_k(body.k, settings)
    loaded = store.get(body.model, EMBEDDINGS)
    return reply(_map(loaded, body), loaded)
