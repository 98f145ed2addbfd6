"""``palavra evaluate word2vec``: analogy accuracy and word-pair Spearman of a registered model, as JSON."""

from __future__ import annotations

from typing import Any

import typer

from models.references import VECTOR_KINDS
from pipelines.evaluation.evaluate_embeddings import DEFAULT_RESTRICT_VOCAB, evaluate_embeddings
from pipelines.serving.served_vectors import load_served_vectors
from services.cli.app import evaluate_app
from services.cli.output import emit_json
from services.factories import open_catalog, open_registry
from services.settings import Settings, get_settings


def evaluate_model(
    ref: str,
    *,
    settings: Settings,
    analogies: list[str] | None,
    pairs: list[str] | None,
    restrict_vocab: int = DEFAULT_RESTRICT_VOCAB,
    subwords: bool = True,
) -> dict[str, Any]:
    """Evaluate the registered model ``ref`` (``None`` sets: the defaults); test words use the model's normaliser."""
    registry = open_registry(settings)
    artifact = registry.open(ref, kind=VECTOR_KINDS)
    embeddings = load_served_vectors(artifact)
    results = evaluate_embeddings(
        embeddings.word_vectors,
        open_catalog(settings),
        analogies=analogies,
        pairs=pairs,
        normalize=embeddings.token,
        restrict_vocab=restrict_vocab,
        subwords=subwords,
    )
    return {"model": artifact.version.ref, "kind": artifact.version.kind, **results}


@evaluate_app.command("word2vec")
def evaluate_word2vec_cli(
    model: str = typer.Argument(..., help="NAME, NAME@VERSION or NAME@ALIAS."),
    analogies: list[str] = typer.Option(
        None,
        "--analogies",
        help="Analogy file or catalogue name; repeatable (none given: the defaults, see docs).",
    ),
    pairs: list[str] = typer.Option(
        None,
        "--pairs",
        help="Word-pair similarity TSV or catalogue name; repeatable (none given: simlex-lx-999).",
    ),
    restrict_vocab: int = typer.Option(
        DEFAULT_RESTRICT_VOCAB, "--restrict-vocab", help="Candidate answers: this many most frequent words."
    ),
    subwords: bool = typer.Option(
        True, "--subwords/--no-subwords", help="FastText: give unknown test words vectors from n-grams."
    ),
) -> None:
    """Analogies (3CosAdd, 3CosMul) and word-pair Spearman of a registered model; prints JSON."""
    named = bool(analogies or pairs)
    emit_json(
        evaluate_model(
            model,
            settings=get_settings(),
            analogies=(analogies or []) if named else None,
            pairs=(pairs or []) if named else None,
            restrict_vocab=restrict_vocab,
            subwords=subwords,
        )
    )
