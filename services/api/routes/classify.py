"""``POST /v1/classify``: a label and class probabilities per text."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from models.errors import TooLarge
from services.api.deps import SettingsDep, StoreDep, check_texts, model_info, read_access, reply
from services.api.model_store import CLASSIFIER
from services.api.schemas import ERROR_RESPONSES, ModelInfo, ModelRef, Strict, Text

router = APIRouter(prefix="/v1", tags=["classification"], dependencies=[Depends(read_access)])


class ClassifyRequest(Strict):
    texts: list[Text] = Field(
        min_length=1, description="Raw texts; normalised the way the model's training data was."
    )
    model: ModelRef | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"texts": ["que produto excelente, recomendo", "péssimo atendimento"]}]
        }
    )


class Prediction(BaseModel):
    label: str = Field(description="The label's name (given at training, or the label as in the data).")
    scores: dict[str, float] = Field(description="Probability of every label, by name.")


class Decision(BaseModel):
    rule: str = Field(
        description="'argmax' (the top score is the label) or 'argmax of log(score) + bias' (per-label biases "
        "tuned on validation data at training: a label may then win with less than the top score)."
    )
    biases: dict[str, float] | None = Field(description="The tuned bias of every label, by name.")
    threshold: dict[str, float] | None = Field(
        description="Two labels: the probability the second label needs to be chosen."
    )


class ClassifyResponse(BaseModel):
    model: ModelInfo
    results: list[Prediction]
    decision: Decision = Field(description="How each label follows from its scores.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model": {"name": "told-mlp", "version": 1, "kind": "classifier"},
                    "results": [{"label": "nao_toxico", "scores": {"nao_toxico": 0.91, "toxico": 0.09}}],
                    "decision": {
                        "rule": "argmax of log(score) + bias",
                        "biases": {"nao_toxico": 0.0, "toxico": 0.08},
                        "threshold": {"toxico": 0.48},
                    },
                }
            ]
        }
    )


@router.post("/classify", response_model=ClassifyResponse, responses=ERROR_RESPONSES)
def classify(body: ClassifyRequest, settings: SettingsDep, store: StoreDep) -> Response:
    """Predict a label per text, with the probability of every label."""
    check_texts(body.texts, settings)
    loaded = store.get(body.model, CLASSIFIER)
    labels = len(getattr(loaded.model, "names", ()))
    if (
        len(body.texts) * labels > settings.max_results
    ):  # every text gets a score per label: the answer's size
        raise TooLarge(
            f"{len(body.texts)} texts x {labels} labels asks for {len(body.texts) * labels} scores in one request; "
            f"the limit is {settings.max_results} (PALAVRA_MAX_RESULTS): send fewer texts per request",
            limit=settings.max_results,
        )
    results = [Prediction(label=c.label, scores=c.scores) for c in loaded.model.classify(body.texts)]
    decision = Decision(**loaded.model.decision())
    return reply(ClassifyResponse(model=model_info(loaded), results=results, decision=decision), loaded)
