"""Language models on the command line: ``train lm``, ``complete``, ``generate`` and ``evaluate lm``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from models.errors import InvalidInput
from models.registry import ModelVersion
from services.cli.app import app, evaluate_app, train_app
from services.cli.output import echo, emit_json
from services.cli.overrides import run_data, set_option
from services.cli.progress_bars import ProgressBars
from services.factories import open_catalog, open_registry
from services.settings import get_settings

if TYPE_CHECKING:  # torch and scikit-learn load only when a language-model command runs
    from pipelines.lm.predictor import LanguageModel


def _summary(version: ModelVersion) -> dict[str, Any]:
    from pipelines.lm.train import HISTORY_PNG

    training = dict(version.metadata.get("training", {}))
    history = training.pop("history", [])
    return {
        "model": version.ref,
        "kind": version.kind,
        "path": str(version.path),
        "history_png": str(version.path / HISTORY_PNG),
        "training": training,
        # per source: its lines, whether they were hard-wrapped (joined into paragraphs), documents, held out
        "sources": [
            {k: v for k, v in source.items() if k != "data_hash"}
            for source in version.metadata.get("corpus", {}).get("sources", [])
        ],
        "val_perplexity_per_epoch": [row.get("val_perplexity") for row in history],
    }


@train_app.command("lm")
def train_lm_cli(
    corpus: list[str] = typer.Option(
        ..., "--corpus", help="A file, folder or catalogue name; repeat for more."
    ),
    name: str = typer.Option(..., "--name", help="Registry name of the model."),
    context: int | None = typer.Option(None, "--context", help="Previous tokens the model sees (default 5)."),
    embeddings: str | None = typer.Option(
        None, "--embeddings", help="Initialise the embedding from a registered word2vec/fasttext model."
    ),
    freeze_embeddings: bool | None = typer.Option(
        None, "--freeze-embeddings/--train-embeddings", help="With --embeddings: keep the vectors fixed."
    ),
    dim: int | None = typer.Option(None, "--dim", help="Embedding width without --embeddings (default 64)."),
    hidden: list[int] = typer.Option(
        None, "--hidden", help="Hidden layer size; repeat for more (default 256)."
    ),
    activation: str | None = typer.Option(
        None, "--activation", help="tanh (default), relu, leaky_relu, sigmoid."
    ),
    dropout: float | None = typer.Option(
        None, "--dropout", help="Dropout after the concatenation and each layer."
    ),
    ngram: int | None = typer.Option(
        None,
        "--ngram",
        help="Order of the Kneser-Ney n-gram mixed with the network (default 4, at most context + 1; 0: none).",
    ),
    optimizer: str | None = typer.Option(
        None, "--optimizer", help="adam (default), sgd, momentum, adagrad, rmsprop."
    ),
    lr: float | None = typer.Option(None, "--lr", help="Learning rate (default 0.004)."),
    epochs: int | None = typer.Option(None, "--epochs", help="Maximum epochs (default 5)."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Examples per step (default 2048)."),
    patience: int | None = typer.Option(
        None,
        "--patience",
        help="Stop after this many epochs without a better validation perplexity (default 2; 0 = off).",
    ),
    max_vocab: int | None = typer.Option(
        None, "--max-vocab", help="Most frequent tokens kept (default 30000)."
    ),
    min_count: int | None = typer.Option(None, "--min-count", help="Occurrences a word needs (default 2)."),
    max_train_tokens: int | None = typer.Option(
        None, "--max-train-tokens", help="Train on at most this many."
    ),
    max_tokens_trained: int | None = typer.Option(
        None,
        "--max-tokens-trained",
        help="Start no epoch that would take the tokens trained on past this (default 20000000).",
    ),
    seed: int | None = typer.Option(None, "--seed", help="Seed of initialisation and shuffling."),
    overrides: list[str] | None = set_option("training.lr=0.001 or normalize.lowercase=false"),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Train a neural language model (embedding + MLP + adaptive softmax), register it, print its figures."""
    from pipelines.lm.config import SECTIONED_KEYS, LMRun, build_run

    flags = {
        "name": name,
        "corpus": corpus,
        "context": context,
        "embeddings": embeddings,
        "freeze_embeddings": freeze_embeddings,
        "dim": dim,
        "hidden": hidden or None,
        "activation": activation,
        "dropout": dropout,
        "ngram": ngram,
        "optimizer": optimizer,
        "lr": lr,
        "epochs": epochs,
        "batch_size": batch_size,
        "patience": patience,
        "max_vocab": max_vocab,
        "min_count": min_count,
        "max_train_tokens": max_train_tokens,
        "max_tokens_trained": max_tokens_trained,
        "seed": seed,
    }
    run = build_run(run_data(LMRun, flags=flags, overrides=overrides, aliases=SECTIONED_KEYS))
    from pipelines.lm.train import train_lm  # torch: once the run is known to be valid

    settings = get_settings()
    bars = ProgressBars(disable=quiet)
    try:
        version = train_lm(
            run,
            registry=open_registry(settings),
            catalog=open_catalog(settings),
            cache_dir=settings.cache_dir,
            progress=bars,
            limits=settings.corpus_limits,
        )
    finally:
        bars.close()
    emit_json(_summary(version))


def _load(model: str) -> LanguageModel:
    from models.lm import KIND
    from pipelines.lm.predictor import LanguageModel

    return LanguageModel.from_artifact(open_registry(get_settings()).open(model, kind=KIND))


@app.command("complete")
def complete_cli(
    model: str = typer.Argument(..., help="NAME, NAME@VERSION or NAME@ALIAS of a language model."),
    text: str = typer.Argument(..., help="The words so far."),
    k: int = typer.Option(5, "-k", "--k", help="How many next words."),
) -> None:
    """The most probable next words after TEXT, with their probabilities (JSON)."""
    if k < 1:
        raise InvalidInput(f"-k must be at least 1, not {k}")
    lm = _load(model)
    emit_json({"model": lm.ref, **lm.complete(text, k)})


@app.command("generate")
def generate_cli(
    model: str = typer.Argument(..., help="NAME, NAME@VERSION or NAME@ALIAS of a language model."),
    prompt: str = typer.Argument(..., help="The text to continue."),
    max_tokens: int = typer.Option(40, "--max-tokens", help="Tokens to add at most."),
    temperature: float = typer.Option(0.8, "--temperature", help="0 is greedy; higher is more varied."),
    top_k: int | None = typer.Option(40, "--top-k", help="Sample among the k most probable tokens."),
    top_p: float = typer.Option(
        0.95, "--top-p", help="Sample among the smallest set reaching this probability."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Same seed, same text."),
    as_json: bool = typer.Option(False, "--json", help="Tokens and text as JSON instead of the text alone."),
) -> None:
    """Continue PROMPT by sampling one token at a time; prints readable text."""
    from pipelines.lm.predictor import Sampling

    sampling = Sampling(max_tokens=max_tokens, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
    lm = _load(model)
    result = lm.generate(prompt, sampling)
    if as_json:
        emit_json({"model": lm.ref, **result})
    else:
        echo(result["text"])


@evaluate_app.command("lm")
def evaluate_lm_cli(
    model: str = typer.Argument(..., help="NAME, NAME@VERSION or NAME@ALIAS of a language model."),
    text: Path = typer.Option(
        ...,
        "--text",
        help="Text to score, read as training reads a corpus: a .txt file (one document a line; hard-wrapped lines "
        "are joined as training joins them), .jsonl or .csv (the --text-field of each), .gz, or a folder of them. "
        "A file of any other name is read as plain text.",
    ),
    text_field: str = typer.Option("text", "--text-field", help="The text's field in JSON lines or CSV."),
) -> None:
    """Perplexity and out-of-vocabulary rate of a language model on a text file (JSON)."""
    from pipelines.reading.corpus import Slice, list_files, read_slice

    # a file of any other name (notas.md) is read as a .txt is
    files = list_files([text], unknown_as_text=True)
    lines = [doc for f in files for doc in read_slice(Slice(f), text_field=text_field)]
    emit_json(_load(model).evaluate(lines, plain_text=all(f.fmt == "txt" for f in files)))
