"""``palavra similarity MODEL WORD1 WORD2 [WORD1 WORD2 ...]``: cosine similarity of word pairs in a model."""

from __future__ import annotations

from typing import Any

import typer

from models.errors import InvalidInput
from models.references import VECTOR_KINDS
from pipelines.serving.served_vectors import load_served_vectors
from pipelines.text.normalize import unicode_problem
from services.cli.app import app
from services.cli.output import emit_json, table
from services.factories import open_registry
from services.settings import Settings, get_settings


def word_pairs(words: list[str]) -> list[tuple[str, str]]:
    """``[a, b, c, d]`` -> ``[(a, b), (c, d)]``; the words are checked as text first.

    Raises:
        InvalidInput: an odd number of words, none, or a word that is not valid text.
    """
    if not words or len(words) % 2:
        raise InvalidInput(f"give words in pairs (WORD1 WORD2 [WORD1 WORD2 ...]); got {len(words)} word(s)")
    for word in words:
        if problem := unicode_problem(word):
            raise InvalidInput(f"the word {word!r} is not valid text: {problem}")
    return list(zip(words[0::2], words[1::2], strict=True))


def similarities(ref: str, words: list[str], *, settings: Settings) -> dict[str, Any]:
    """Cosine similarity of each pair of ``words`` in model ``ref`` (as ``POST /v1/similarity`` answers)."""
    pairs = word_pairs(words)
    artifact = open_registry(settings).open(ref, kind=VECTOR_KINDS)
    embeddings = load_served_vectors(artifact)
    cosines = embeddings.similarity(pairs)
    return {
        "model": artifact.version.ref,
        "results": [{"pair": list(p), "cosine": round(c, 4)} for p, c in zip(pairs, cosines, strict=True)],
    }


@app.command("similarity")
def similarity_cli(
    model: str = typer.Argument(..., help="NAME, NAME@VERSION or NAME@ALIAS of word vectors."),
    words: list[str] = typer.Argument(..., help="Words in pairs: WORD1 WORD2 [WORD1 WORD2 ...]."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Print the cosine similarity of each pair of words (normalised like the model's training text)."""
    result = similarities(model, words, settings=get_settings())
    if as_json:
        emit_json(result)
        return
    rows = [{"word1": r["pair"][0], "word2": r["pair"][1], "cosine": r["cosine"]} for r in result["results"]]
    table(rows, ["word1", "word2", "cosine"])
