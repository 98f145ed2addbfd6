"""``palavra classify MODEL "texto" ...``: labels and class probabilities for texts, as JSON."""

from __future__ import annotations

import sys

import typer

from models.errors import InvalidInput
from pipelines.classifier.artifact import load_classifier
from pipelines.text.normalize import is_blank
from services.cli.app import app
from services.cli.output import emit_json
from services.factories import open_registry
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
        texts = _stdin_texts(explicit=bool(texts))
    classifier = load_classifier(open_registry(get_settings()).open(model, kind="classifier"))
    results = classifier.predict(texts)
    emit_json([{"text": text, **result} for text, result in zip(texts, results, strict=True)])


def _stdin_texts(*, explicit: bool) -> list[str]:
    """One text per line of stdin; every line gets a result, so a blank line is an error, not skipped."""
    if not explicit and sys.stdin.isatty():
        raise InvalidInput("give the texts to classify, or '-' to read one text per line from stdin")
    try:
        texts = [line.rstrip("\r\n") for line in sys.stdin]
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"stdin is not UTF-8 text (byte 0x{exc.object[exc.start]:02X}); convert it, e.g. with iconv"
        ) from None
    blank = [i for i, text in enumerate(texts, start=1) if is_blank(text)]
    if blank:
        shown = ", ".join(map(str, blank[:10])) + (f" and {len(blank) - 10} more" if len(blank) > 10 else "")
        raise InvalidInput(
            f"stdin line(s) {shown} are empty; each line is one text to classify, so drop blank lines"
        )
    if not texts:
        raise InvalidInput("stdin held no text; send one text per line")
    return texts
