"""``palavra text-similarity ENCODER TEXT1 TEXT2 [TEXT1 TEXT2 ...]``: cosines of text pairs by an encoder."""

from __future__ import annotations

from typing import Any

import typer

from models.errors import InvalidInput
from pipelines.text_encoder.served import load_text_encoder
from services.cli.app import app
from services.cli.output import emit_json, table
from services.cli.texts import check_texts
from services.factories import open_registry
from services.settings import Settings, get_settings


def text_pairs(texts: list[str], *, max_chars: int) -> list[tuple[str, str]]:
    """``[a, b, c, d]`` -> ``[(a, b), (c, d)]``, each text checked as the API checks it.

    Raises:
        InvalidInput: an odd number of texts, none, or a text :func:`check_texts` refuses.
    """
    if not texts or len(texts) % 2:
        raise InvalidInput(f"give texts in pairs (TEXT1 TEXT2 [TEXT1 TEXT2 ...]); got {len(texts)} text(s)")
    check_texts(texts, max_chars=max_chars)
    return list(zip(texts[0::2], texts[1::2], strict=True))


def text_similarities(ref: str, texts: list[str], *, settings: Settings) -> dict[str, Any]:
    """Cosine of each pair of ``texts`` by encoder ``ref`` (as ``POST /v1/text-similarity`` answers)."""
    pairs = text_pairs(texts, max_chars=settings.max_text_chars)
    model = load_text_encoder(open_registry(settings), ref)
    cosines = model.similarity(pairs)
    return {
        "model": ref,
        "results": [{"texts": list(p), "cosine": round(c, 4)} for p, c in zip(pairs, cosines, strict=True)],
    }


@app.command("text-similarity")
def text_similarity_cli(
    encoder: str = typer.Argument(..., help="NAME, NAME@VERSION or NAME@ALIAS of a text encoder."),
    texts: list[str] = typer.Argument(..., help="Texts in pairs: TEXT1 TEXT2 [TEXT1 TEXT2 ...]."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Print the cosine of each pair of texts, from the encoder's pooled word vectors."""
    result = text_similarities(encoder, texts, settings=get_settings())
    if as_json:
        emit_json(result)
        return
    rows = [
        {"text1": r["texts"][0], "text2": r["texts"][1], "cosine": r["cosine"]} for r in result["results"]
    ]
    table(rows, ["text1", "text2", "cosine"])
