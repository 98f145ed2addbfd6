"""``palavra analogy MODEL A - B + C``: the words that complete an analogy (3CosAdd or 3CosMul)."""

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

METHODS = ("3cosadd", "3cosmul")


def parse_terms(terms: list[str]) -> tuple[list[str], list[str]]:
    """``["rei", "-", "homem", "+", "mulher"]`` (or ``"rei - homem + mulher"`` as one argument) -> positives,
    negatives. The first word may come without a sign (it is positive); every other word needs one: "rei homem
    mulher" is refused rather than read as three positives.

    Raises:
        InvalidInput: no word, a sign with no word after it, two words with no sign between them, or a word that
            is not valid text.
    """
    tokens = " ".join(terms).replace("+", " + ").replace(" -", " - ").split()
    positive: list[str] = []
    negative: list[str] = []
    sign = "+"
    expecting = False
    for token in tokens:
        if token in ("+", "-"):
            if expecting:
                raise InvalidInput(
                    f"two signs in a row in {' '.join(terms)!r}; write e.g. 'rei - homem + mulher'"
                )
            sign, expecting = token, True
            continue
        if problem := unicode_problem(token):
            raise InvalidInput(f"the word {token!r} is not valid text: {problem}")
        if (positive or negative) and not expecting:
            raise InvalidInput(
                f"no sign between two words in {' '.join(terms)!r}; put + or - before every word after the "
                "first, e.g. 'rei - homem + mulher'"
            )
        (positive if sign == "+" else negative).append(token)
        sign, expecting = "+", False
    if expecting:
        raise InvalidInput(f"{' '.join(terms)!r} ends with a sign; write e.g. 'rei - homem + mulher'")
    if not positive:
        raise InvalidInput("an analogy needs at least one positive word, e.g. 'rei - homem + mulher'")
    return positive, negative


def solve(ref: str, terms: list[str], *, k: int, method: str, settings: Settings) -> dict[str, Any]:
    """The ``k`` best answers of the analogy ``terms`` in model ``ref`` (as ``POST /v1/analogy`` answers)."""
    if k <= 0:
        raise InvalidInput(f"-k must be a positive number of answers, got {k}")
    if method not in METHODS:
        raise InvalidInput(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    positive, negative = parse_terms(terms)
    artifact = open_registry(settings).open(ref, kind=VECTOR_KINDS)
    embeddings = load_served_vectors(artifact)
    answers = embeddings.analogy(positive, negative, k, method=method)  # type: ignore[arg-type]
    return {
        "model": artifact.version.ref,
        "positive": positive,
        "negative": negative,
        "method": method,
        "results": [{"word": n.word, "score": round(n.score, 4)} for n in answers],
    }


@app.command("analogy")
def analogy_cli(
    model: str = typer.Argument(..., help="NAME, NAME@VERSION or NAME@ALIAS of word vectors."),
    terms: list[str] = typer.Argument(..., help="The analogy, e.g. rei - homem + mulher (quote it or not)."),
    k: int = typer.Option(5, "-k", "--k", help="How many answers."),
    method: str = typer.Option("3cosadd", "--method", help="3cosadd or 3cosmul."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Print the words that best complete an analogy; the query words are never answers."""
    result = solve(model, terms, k=k, method=method, settings=get_settings())
    if as_json:
        emit_json(result)
        return
    rows = [{"rank": i, **r} for i, r in enumerate(result["results"], start=1)]
    table(rows, ["rank", "word", "score"])
