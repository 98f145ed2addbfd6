"""``palavra classify MODEL "texto" ...``: labels and class probabilities for texts, as JSON."""

from __future__ import annotations

import sys

import typer

from pipelines.classifier.predictor import load_classifier
from services.cli.app import app
from services.cli.output import emit_json
from services.context import open_registry
from services.settings import get_settings


@app.command("classify")
def classify_cli(
    model: str = typer.Argument(..., help="NAME, NAME@VERSION or NAME@ALIAS of a classifier."),
    texts: list[str] = typer.Argument(
        None, help="Texts to classify; '-' reads one text per line from stdin."
    ),
) -> None:
    """Classify texts with a registered classifier; prints [{"text", "label", "scores"}, ...]."""
    if not texts or texts == ["-"]:
        texts = [line.rstrip("\n") for line in sys.stdin if line.strip()]
    classifier = load_classifier(open_registry(get_settings()).open(model, kind="classifier"))
    results = classifier.predict(texts)
    emit_json([{"text": text, **result} for text, result in zip(texts, results, strict=True)])
