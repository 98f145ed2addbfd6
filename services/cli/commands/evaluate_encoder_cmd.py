"""``palavra evaluate encoder``: Pearson, Spearman and MSE of a registered encoder on scored sentence pairs."""

from __future__ import annotations

from typing import Any

import typer

from pipelines.text_encoder.evaluate import evaluate_pairs
from pipelines.text_encoder.pairs import read_pairs
from pipelines.text_encoder.served import load_text_encoder
from services.cli.app import evaluate_app
from services.cli.dataset_specs import path_resolver
from services.cli.output import emit_json
from services.factories import open_registry
from services.settings import Settings, get_settings


def evaluate_encoder(ref: str, *, settings: Settings, pairs: str) -> dict[str, Any]:
    """Score the registered encoder ``ref`` on a pairs file or catalogue name."""
    model = load_text_encoder(open_registry(settings), ref)
    scored = read_pairs(path_resolver(settings)(pairs))
    return {
        "model": model.ref,
        "words": model.encoder.spec.words,
        "data": pairs,
        **evaluate_pairs(model, scored),
    }


@evaluate_app.command("encoder")
def evaluate_encoder_cli(
    model: str = typer.Argument(..., help="NAME, NAME@VERSION or NAME@ALIAS."),
    pairs: str = typer.Option(
        "assin2-dev",
        "--pairs",
        help="Scored pairs: a catalogue name (assin2-dev) or an XML / CSV / JSONL file.",
    ),
) -> None:
    """Pearson and Spearman of cosines against gold scores, and MSE on the gold scale; prints JSON."""
    emit_json(evaluate_encoder(model, settings=get_settings(), pairs=pairs))
