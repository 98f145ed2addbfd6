"""``palavra evaluate classifier MODEL --test FILE``: metrics of a registered classifier on labelled data (JSON)."""

from __future__ import annotations

import typer

from pipelines.classifier.artifact import load_classifier
from pipelines.classifier.data import read_labelled
from services.cli.app import evaluate_app
from services.cli.dataset_specs import path_resolver
from services.cli.output import echo, emit_json
from services.factories import open_registry
from services.settings import get_settings


@evaluate_app.command("classifier")
def evaluate_classifier_cli(
    model: str = typer.Argument(..., help="NAME, NAME@VERSION or NAME@ALIAS of a classifier."),
    test: str = typer.Option(..., "--test", help="Labelled CSV / TSV / JSONL file or data set name."),
    text_column: str = typer.Option("text", "--text-column", help="Column / field with the text."),
    label_column: str = typer.Option("label", "--label-column", help="Column / field with the label."),
    table: bool = typer.Option(False, "--table", help="A readable table instead of JSON."),
) -> None:
    """Accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix, as JSON on stdout."""
    from pipelines.classifier.evaluate import evaluate_classifier, metrics_table  # scikit-learn: only here

    settings = get_settings()
    artifact = open_registry(settings).open(model, kind="classifier")
    data = read_labelled(path_resolver(settings)(test), text_column=text_column, label_column=label_column)
    metrics = evaluate_classifier(load_classifier(artifact), data)
    metrics["model"] = artifact.version.ref
    if table:
        echo(f"{artifact.version.ref} on {data.source}")
        echo(metrics_table(metrics))
    else:
        emit_json(metrics)
