"""Training reports for the web page and scripts: a model version's metrics and learning curves
(``GET /v1/models/{name}/versions/{version}/report``) and a comparison job's loss curves
(``GET /v1/jobs/{job_id}/curves``)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from models.errors import Conflict, InvalidInput, NotReady
from models.registry import Registry
from models.text_encoder import KIND as ENCODER_KIND
from pipelines.classifier.artifact import KIND as CLASSIFIER_KIND
from pipelines.classifier.artifact import read_report
from pipelines.classifier.grid import format_value, labels
from services.api.deps import read_access
from services.api.routes.jobs import JobIdPath, JobsDep
from services.api.schemas import ERROR_RESPONSES
from services.jobs.cleanup import job_output_dir

router = APIRouter(tags=["reports"], dependencies=[Depends(read_access)])

COMPARE_RESULTS = "results.json"


class ModelReport(BaseModel):
    name: str
    version: int
    kind: str
    metrics: dict[str, Any] = Field(
        description="word2vec: analogy accuracy (overall, semantic/syntactic, per section) and word-pair "
        "correlations per evaluation set; classifier: validation accuracy, macro-F1, per-class scores and the "
        "confusion matrix (rows: true label), the decision rule, the data and the baseline."
    )
    curves: list[dict[str, Any]] = Field(
        description="One row per epoch: classifier train_loss, val_loss, accuracy, macro_f1; word2vec loss."
    )
    best_epoch: int | None = Field(description="The epoch whose weights a classifier kept.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "sentimento",
                    "version": 2,
                    "kind": "classifier",
                    "metrics": {
                        "validation": {
                            "accuracy": 0.9,
                            "macro_f1": 0.89,
                            "confusion_matrix": {"labels": ["neg", "pos"], "matrix": [[45, 5], [5, 45]]},
                        }
                    },
                    "curves": [{"epoch": 1, "train_loss": 0.6, "val_loss": 0.5, "macro_f1": 0.8}],
                    "best_epoch": 1,
                }
            ]
        }
    )


class CompareRunCurve(BaseModel):
    name: str = Field(description="The run's values of the grid keys that vary, as the report's legend.")
    status: str
    history: list[dict[str, Any]]


class CompareCurves(BaseModel):
    id: str
    state: str
    runs: list[CompareRunCurve]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "j-3f2a",
                    "state": "succeeded",
                    "runs": [
                        {
                            "name": "optimizer=adam",
                            "status": "ok",
                            "history": [{"epoch": 1, "train_loss": 0.6, "val_loss": 0.5}],
                        }
                    ],
                }
            ]
        }
    )


def _registry(request: Request) -> Registry:
    registry: Registry | None = getattr(request.app.state, "registry", None)
    if registry is None:
        raise NotReady("the registry is not open yet; retry in a few seconds")
    return registry


@router.get(
    "/v1/models/{name}/versions/{version}/report", response_model=ModelReport, responses=ERROR_RESPONSES
)
def model_report(
    request: Request,
    name: str = Path(description="Model name.", examples=["sentimento"], max_length=64),
    version: str = Path(
        description="A version number or an alias.", examples=["2", "production"], max_length=32
    ),
) -> ModelReport:
    """The metrics and per-epoch curves recorded when this version was trained."""
    registry = _registry(request)
    mv = registry.get(f"{name}@{version}")
    meta = mv.metadata
    if mv.kind == CLASSIFIER_KIND:
        # the two report files only, each checked against its sha256 (not every file of the version)
        recorded, history = read_report(registry.open(mv.ref, verify=False))
        metrics = recorded or {"validation": meta.get("metrics") or {}}
        curves = history or []
        best = (metrics.get("training") or {}).get("best_epoch")
    elif mv.kind == ENCODER_KIND:
        # a trained (siamese) encoder keeps its report at the top of its metadata; pooling encoders train nothing
        validation = meta.get("validation")
        metrics = {"validation": validation} if isinstance(validation, dict) else {}
        history = meta.get("history")
        curves = history if isinstance(history, list) else []
        best = meta.get("best_epoch") if isinstance(meta.get("best_epoch"), int) else None
    else:
        metrics = meta.get("metrics") or {}
        training = meta.get("training") or {}
        # word vectors record their epochs as "epochs", a language model as "history" (its curves were [])
        epochs = (
            training.get("epochs") if isinstance(training.get("epochs"), list) else training.get("history")
        )
        curves = epochs if isinstance(epochs, list) else []
        best = training.get("best_epoch") if isinstance(training.get("best_epoch"), int) else None
    return ModelReport(
        name=mv.name, version=mv.version, kind=mv.kind, metrics=metrics, curves=curves, best_epoch=best
    )


@router.get("/v1/jobs/{job_id}/curves", response_model=CompareCurves, responses=ERROR_RESPONSES)
def compare_curves(request: Request, service: JobsDep, job_id: str = JobIdPath) -> CompareCurves:
    """The train and validation loss per epoch of every run of a comparison job (``compare`` or ``compare_lm``: a
    language model's rows add its perplexities), to draw them overlaid."""
    job = service.get(job_id)
    if job.kind not in ("compare", "compare_lm"):  # both comparisons write results.json the same way
        raise InvalidInput(
            f"job {job_id} is a {job.kind} job; only comparison jobs have curves "
            "(a model's own curves: GET /v1/models/NAME/versions/VERSION/report)"
        )
    path = job_output_dir(request.app.state.settings, job.id) / COMPARE_RESULTS
    if not path.is_file():
        raise Conflict(
            f"job {job_id} is {job.state.value} and has written no curves yet", state=job.state.value
        )
    runs = json.loads(path.read_text(encoding="utf-8")).get("runs", [])
    return CompareCurves(
        id=job.id,
        state=job.state.value,
        runs=[
            CompareRunCurve(name=name, status=str(r["status"]), history=r["history"])
            for name, r in zip(_legend_names([r.get("cell", {}) for r in runs]), runs, strict=True)
        ],
    )


def _legend_names(cells: list[dict[str, Any]]) -> list[str]:
    """``optimizer=adam, lr=0.01``: each cell's values of the grid keys that vary, as the report's legend."""
    keys = [k for k in dict.fromkeys(k for c in cells for k in c) if len({repr(c.get(k)) for c in cells}) > 1]
    short = labels(keys)
    return [", ".join(f"{short[k]}={format_value(c.get(k))}" for k in keys) or "run" for c in cells]
