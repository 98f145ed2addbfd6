"""Schemathesis over palavra's own OpenAPI document: every operation, generated requests (valid and not), against
the app in-process with tiny real models. No response may be a 5xx or differ from what the document says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from schemathesis import GenerationMode, checks

from models.registry import Registry
from services.api.app import create_app
from services.settings import Settings
from tests.conftest import review_run
from tests.services.vector_models import API_KEY, api_settings, register

AUTH = {"Authorization": f"Bearer {API_KEY}"}
# examples per operation: 29 operations x this stays around a minute on two cores
EXAMPLES = 25


@pytest.fixture(scope="module")
def api_schema(
    tmp_path_factory: pytest.TempPathFactory, reviews_csv: dict[str, Path], pt_corpus_file: Path
) -> Any:
    from models.collection import CollectionStore, Document
    from pipelines.classifier.train import train_classifier
    from pipelines.serving.search import create_collection
    from pipelines.text_encoder.build import pooling_model, register_encoder
    from tests.lm_helpers import train_tiny_lm

    home = tmp_path_factory.mktemp("home")
    registry = Registry(home)
    register(registry, "w2v", aliases=("latest", "production"))
    register(registry, "ft", kind="fasttext")
    train_classifier(review_run(reviews_csv, training={"epochs": 1}), registry=registry)
    # every kind of model the routes serve, so their answers (not only their errors) are fuzzed too
    encoder, _ = pooling_model(registry, "w2v", pooling="sif", sample=["o rei e a rainha", "a casa e o lar"])
    register_encoder(registry, "frases", encoder, metadata={})
    train_tiny_lm(registry, pt_corpus_file, home / "cache", name="conto")
    docs = [
        Document(f"d{i}", text, {"tema": "reino" if i % 2 else "casa"})
        for i, text in enumerate(
            [
                "o rei governa o reino",
                "a rainha visita o castelo",
                "o menino procura a escola",
                "o gato dorme",
            ]
        )
    ]
    create_collection(CollectionStore(home), registry, "faq", docs, encoder="frases")
    settings = api_settings(
        Settings(home=home, local_workers=0, data_root=home / "data"),
        max_k=50,
        max_batch=16,
        max_text_chars=500,
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(settings))
    schema.validate()  # the document itself is valid OpenAPI
    return schema


# what the document promises about responses; whether the server refuses every request the schema cannot express
# (an unknown word, k over the configured limit) is not part of it
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.allow_header_conformance,
]


def _operations() -> list[tuple[str, str, GenerationMode]]:
    """Every documented operation with valid requests, and with invalid ones where it takes any input.

    Read from the document alone (no models needed to list them).
    """
    spec = create_app(Settings(local_workers=0)).openapi()
    out = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            out.append((path, method.upper(), GenerationMode.POSITIVE))
            if op.get("parameters") or op.get("requestBody"):
                out.append((path, method.upper(), GenerationMode.NEGATIVE))
    return out


@pytest.mark.parametrize(("path", "method", "mode"), _operations())
def test_api_fuzz_every_operation_conforms(
    api_schema: Any, path: str, method: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]

    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.call_and_validate(headers=AUTH, checks=CHECKS)

    run()
