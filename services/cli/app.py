"""The typer application and its command groups; command modules register themselves on these."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="palavra",
    help="Portuguese word embeddings and text classifiers: train from raw text, evaluate, serve over HTTP.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
train_app = typer.Typer(help="Train a model and register it.", no_args_is_help=True)
evaluate_app = typer.Typer(help="Evaluate a registered model; prints JSON.", no_args_is_help=True)
models_app = typer.Typer(help="The model registry: list, show, move aliases.", no_args_is_help=True)
compare_app = typer.Typer(help="Train a grid of configurations and compare them.", no_args_is_help=True)
jobs_app = typer.Typer(help="Batch training jobs.", no_args_is_help=True)
data_app = typer.Typer(help="The public data set catalogue.", no_args_is_help=True)
collection_app = typer.Typer(help="Document collections for semantic search.", no_args_is_help=True)

app.add_typer(train_app, name="train")
app.add_typer(evaluate_app, name="evaluate")
app.add_typer(models_app, name="models")
app.add_typer(compare_app, name="compare")
app.add_typer(jobs_app, name="jobs")
app.add_typer(data_app, name="data")
app.add_typer(collection_app, name="collection")
