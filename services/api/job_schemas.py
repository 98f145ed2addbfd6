"""Request and response schemas of the jobs routes (``/v1/jobs``), separate from the store's :class:`Job`.

A job's own public form (summary and detail) is :mod:`services.jobs.public`, which the CLI prints too.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.api.schemas import Strict
from services.jobs.public import (
    JobDetail,
    JobLogOut,
    JobModelOut,
    JobProgressOut,
    JobStateName,
    JobSummary,
    detail_of,
    job_url,
    summary_of,
)

__all__ = [
    "JobAccepted",
    "JobDetail",
    "JobKindName",
    "JobLogOut",
    "JobModelOut",
    "JobPage",
    "JobProgressOut",
    "JobRequest",
    "JobStateName",
    "JobSummary",
    "detail_of",
    "job_url",
    "summary_of",
]

JobKindName = Literal["word2vec", "classifier", "compare", "lm", "compare_lm", "collection"]

_CLASSIFIER_EXAMPLE: dict[str, Any] = {
    "kind": "classifier",
    "config": {
        "name": "toxic-pt",
        "train": "told-br-1annotator-train",
        "validation": "told-br-1annotator-validation",
        "text_column": "text",
        "label_column": "toxic",
        "training": {"epochs": 5},
    },
}


class JobRequest(Strict):
    """A job: its kind and the same config the CLI reads from TOML (as JSON here).

    Input files in the config are catalogue data set names or paths under the server's data root; with a
    multipart request, ``upload:<filename>`` names a file sent with it.
    """

    kind: JobKindName
    config: dict[str, Any] = Field(description="The training config of that kind (unknown keys are refused).")

    model_config = ConfigDict(json_schema_extra={"examples": [_CLASSIFIER_EXAMPLE]})


class JobAccepted(BaseModel):
    id: str
    kind: str
    state: JobStateName
    url: str = Field(description="Where to watch the job: GET it, or GET its /events stream.")


class JobPage(BaseModel):
    items: list[JobSummary]
    total: int
    limit: int
    offset: int
