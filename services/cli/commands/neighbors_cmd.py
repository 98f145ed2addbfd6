"""``palavra neighbors MODEL WORD``: the nearest words of one word in a registered model."""

from __future__ import annotations

from typing import Any

import typer

from models.errors import InvalidInput
from models.references import VECTOR_KINDS
from pipelines.serving.served_vectors import load_served_vectors
from pipelines.text.normalize import unicode_problem
from services.cli.app import app
from services.cli.output import echo, emit_json, table
from services.factories import open_registry
from services.settings import Settings, get_settings


def nearest(ref: str, word: str, *, k: int, settings: Settings) -> dict[str, Any]:
    """The ``k`` nearest vocabulary words of ``word`` (normalised the way the model's training text was)."""
    if k <= 0:
        raise InvalidInput(f"-k must be a positive number of neighbours, got {k}")
    if problem := unicode_problem(word):
        raise InvalidInput(f"the word is not valid text: {problem}")
    artifact = open_registry(settings).open(ref, kind=VECTOR_KINDS)
    embeddings = load_served_vectors(artifact)
    (found,) = embeddings.neighbors([word], k=k)
    return {
        "model": artifact.version.ref,
        "word": word,
        "token": found.word.token,
        "in_vocabulary": found.word.in_vocabulary,
        "neighbors": [{"word": n.word, "similarity": round(n.score, 4)} for n in found.neighbors],
    }


@app.command("neighbors")
def neighbors_cli(
    model: str = typer.Argument(..., help="NAME, NAME@VERSION or NAME@ALIAS."),
    word: str = typer.Argument(..., help="The query word (normalised like the model's training text)."),
    k: int = typer.Option(10, "-k", "--k", help="How many neighbours."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Print the K nearest words of WORD by cosine similarity."""
    result = nearest(model, word, k=k, settings=get_settings())
    if as_json:
        emit_json(result)
        return
    if not result["in_vocabulary"]:  # what the API says with in_vocabulary: false
        echo(
            f"{result['token']!r} is not in {result['model']}'s vocabulary; "
            "its neighbours are built from its subword n-grams"
        )
    rows = [{"rank": i, **n} for i, n in enumerate(result["neighbors"], start=1)]
    table(rows, ["rank", "word", "similarity"])
