"""``palavra embed ENCODER TEXT [TEXT ...]``: one unit vector per text, as JSON lines (as ``POST /v1/embed``)."""

from __future__ import annotations

import json
import sys

import typer

from pipelines.text_encoder.served import load_text_encoder
from services.cli.app import app
from services.cli.texts import check_texts
from services.factories import open_registry
from services.settings import get_settings


@app.command("embed")
def embed_cli(
    encoder: str = typer.Argument(..., help="NAME, NAME@VERSION or NAME@ALIAS of a text encoder."),
    texts: list[str] = typer.Argument(..., help="The texts; each gets one vector."),
    digits: int = typer.Option(6, "--digits", min=1, max=9, help="Decimals written per number."),
) -> None:
    """Print one JSON line per text: {"text", "vector"}, the vector of unit length; a text with no word the
    encoder knows gets all zeros, and a warning on stderr."""
    settings = get_settings()
    check_texts(texts, max_chars=settings.max_text_chars)
    model = load_text_encoder(open_registry(settings), encoder)
    for i, (text, row) in enumerate(zip(texts, model.embed(texts), strict=True), start=1):
        if not row.any():
            sys.stderr.write(
                f"warning: text {i} ({text!r}) has no word the encoder knows: its vector is all zeros\n"
            )
        line = {"text": text, "vector": [round(float(x), digits) for x in row]}
        sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
