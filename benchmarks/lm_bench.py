"""palavra's neural language model against IRSTLM's modified Kneser-Ney 5-gram, on the same tokens and vocabulary.

    # needs IRSTLM (Debian: apt-get install irstlm); prints one JSON report
    nice .venv/bin/python benchmarks/lm_bench.py --corpus corpus-machado --max-train-tokens 300000 --epochs 3
    # the whole corpus with the default configuration (its token budget stops it after one epoch there)
    nice .venv/bin/python benchmarks/lm_bench.py --corpus corpus-all --max-train-tokens 0

Both models see the same prepared documents (the LM's normalisation; a hard-wrapped source's lines joined into
paragraphs), split the same way (the last 1% of each source's documents held out), with the same vocabulary: words outside the LM's vocabulary are written as one ``_unk_`` word for
IRSTLM, and the LM's sentence boundary ``</s>`` as ``_eos_``. Each document is one IRSTLM sentence (``<s> ... </s>``),
so IRSTLM's ``</s>`` stands where the LM predicts ``<p>``: both count the same number of predicted tokens.
One difference remains: the LM's context runs across documents, IRSTLM's restarts at each ``<s>``; the report
gives the LM scored both ways (``restart``: each held-out document's context starts from ``<p>`` padding).

Interpolation: IRSTLM's ``compile-lm --eval --debug=2`` prints every scored n-gram with its log10-probability
(two decimals); the LM gives the natural log-probability of each held-out token. The script checks that the two
streams are the same tokens in the same order (IRSTLM's last word of each n-gram against the LM's token mapped as
above), then fits λ of p = λ·p_lm + (1-λ)·p_kn on the first half of the held-out tokens (whole documents) and
reports the mixture and both single models on the second half only. IRSTLM's two decimals move a probability by
at most 1.2%; the report gives IRSTLM's own perplexity and the one recomputed from the printed values side by side.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.lm import EOS, PARAGRAPH, SPECIALS
from models.registry import Registry
from pipelines.lm.config import LMRun, make_run
from pipelines.lm.data import contexts_of, restart_at_boundaries, with_boundaries
from pipelines.lm.mixture import interpolate, perplexity_of
from pipelines.lm.predictor import LanguageModel, Sampling
from pipelines.lm.train import encode_lines, fit_mixture, load_lines, token_log_probs, train_lm
from pipelines.reading.datasets import DataCatalog
from pipelines.runs.progress import ignore_progress

IRSTLM = Path(os.environ.get("IRSTLM", "/usr/lib/irstlm"))


def irstlm_lines(lines: list[str], vocab: set[str]) -> list[str]:
    out = []
    for line in lines:
        toks = [t for t in with_boundaries(line.split(" ")) if t != PARAGRAPH]
        words = ["_eos_" if t == EOS else (t if t in vocab else "_unk_") for t in toks]
        out.append("<s> " + " ".join(words) + " </s>")
    return out


def irstlm_words(tokens: list[str], vocab: set[str]) -> list[str]:
    """The word IRSTLM predicts for each LM token of a held-out document (``<p>`` is IRSTLM's ``</s>``)."""
    table = {EOS: "_eos_", PARAGRAPH: "</s>"}
    return [table.get(t, t if t in vocab else "_unk_") for t in tokens]


_SCORED = re.compile(r"^(.*)\t\d+ \[\d+-gram\] (-?(?:[\d.]+|inf))$")


def kn_token_scores(output: str) -> tuple[list[str], np.ndarray[Any, Any]]:
    """(the predicted word, its natural log-probability) of every n-gram ``compile-lm --debug=2`` printed."""
    words, scores = [], []
    for line in output.splitlines():
        found = _SCORED.match(line)
        if found:
            words.append(found.group(1).split(" ")[-1])
            scores.append(float(found.group(2)) * math.log(10))
    return words, np.array(scores, dtype=np.float64)


def kneser_ney(train: list[str], test: list[str], work: Path, order: int) -> dict[str, Any]:
    env = {**os.environ, "IRSTLM": str(IRSTLM), "PATH": f"{IRSTLM / 'bin'}:{os.environ['PATH']}"}
    (work / "train.txt").write_text("\n".join(train) + "\n", encoding="utf-8")
    (work / "test.txt").write_text("\n".join(test) + "\n", encoding="utf-8")
    started = time.perf_counter()
    subprocess.run(
        ["build-lm.sh", "-i", str(work / "train.txt"), "-n", str(order), "-o", str(work / "kn.ilm.gz"),
         "-k", "1", "-s", "improved-kneser-ney", "-t", str(work / "stat")],
        check=True, env=env, cwd=work, capture_output=True,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    res = subprocess.run(
        ["compile-lm", str(work / "kn.ilm.gz"), f"--eval={work / 'test.txt'}"],
        check=True, env=env, cwd=work, capture_output=True, text=True,
    )  # fmt: skip
    found = re.search(r"Nw=(\d+) PP=([\d.]+).*?OOV=([\d.]+)%", res.stdout + res.stderr)
    if found is None:
        raise RuntimeError(f"no perplexity in compile-lm's output: {res.stdout}{res.stderr}")
    scored = subprocess.run(
        ["compile-lm", str(work / "kn.ilm.gz"), f"--eval={work / 'test.txt'}", "--debug=2"],
        check=True, env=env, cwd=work, capture_output=True, text=True,
    )  # fmt: skip
    words, scores = kn_token_scores(scored.stdout + scored.stderr)
    return {
        "order": order,
        "smoothing": "improved-kneser-ney (IRSTLM's modified shift-beta)",
        "train_seconds": round(seconds, 1),
        "tokens_evaluated": int(found.group(1)),
        "perplexity": float(found.group(2)),
        "oov_percent": float(found.group(3)),
        "words": words,
        "scores": scores,
    }


def aligned_scores(
    model: LanguageModel, held: list[str], kn: dict[str, Any]
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any], int]:
    """(LM log-probs as trained, LM log-probs restarting at documents, KN log-probs, tokens of the first half's
    documents), after checking both models scored the same tokens."""
    vocab = set(model.lm.vocab)
    tokens: list[str] = []
    expected: list[str] = []
    half, total = 0, sum(len(with_boundaries(line.split(" "))) for line in held)
    for line in held:
        toks = with_boundaries(line.split(" "))
        if len(tokens) < total / 2 <= len(tokens) + len(toks):
            half = len(tokens) + len(toks)
        tokens += toks
        expected += irstlm_words(toks, vocab)
    if kn["words"] != expected:
        first = next(
            (i for i, (a, b) in enumerate(zip(kn["words"], expected, strict=False)) if a != b),
            min(len(kn["words"]), len(expected)),
        )
        raise RuntimeError(
            f"IRSTLM scored {len(kn['words'])} tokens, the LM {len(expected)}; first difference at token {first}"
        )
    ids = np.array([model.lm.id_of(t) for t in tokens], dtype=np.int64)
    ctx = contexts_of(ids, model.context, model.pad)
    cut = restart_at_boundaries(ctx, ids, model.pad)
    # the model's probabilities: its network mixed with its n-gram component (the network alone without one)
    running = model.lm.mix(token_log_probs(model.lm.net, ctx, ids), ctx, ids)
    restart = model.lm.mix(token_log_probs(model.lm.net, cut, ids), cut, ids)
    return running, restart, kn["scores"], half


def interpolation_report(model: LanguageModel, held: list[str], kn: dict[str, Any]) -> dict[str, Any]:
    running, restart, kn_scores, half = aligned_scores(model, held, kn)
    out: dict[str, Any] = {
        "tokens_aligned": len(kn_scores),
        "kn_perplexity_all_from_printed_scores": round(perplexity_of(kn_scores), 3),
        "lm_perplexity_all": round(perplexity_of(running), 3),
        "lm_restart_perplexity_all": round(perplexity_of(restart), 3),
    }
    for name, lm_scores in (("lm_as_trained", running), ("lm_restart", restart)):
        fit = interpolate(lm_scores, kn_scores, split=half)
        out[name] = {
            "lambda_lm_fitted_on_first_half": fit.weight,
            "tune_tokens": fit.tune_tokens,
            "test_tokens": fit.test_tokens,
            "lm_perplexity_second_half": round(fit.perplexity_a, 3),
            "kn_perplexity_second_half": round(fit.perplexity_b, 3),
            "interpolated_perplexity_second_half": round(fit.perplexity_mixture, 3),
        }
    return out


def ngram_orders(
    run: LMRun, model: LanguageModel, train: list[str], held: list[str], orders: str
) -> list[dict[str, Any]]:
    """The same trained network mixed with n-gram components of other orders: held-out perplexity, λ, size."""
    out: list[dict[str, Any]] = []
    if not orders:
        return out
    data = encode_lines(run, train, held)
    if data.vocab.tokens != model.lm.vocab:
        raise RuntimeError("the re-encoded corpus has another vocabulary than the trained model")
    for order in (int(o) for o in orders.split(",")):
        started = time.perf_counter()
        ngram, _, facts = fit_mixture(
            run.model_copy(update={"ngram": order}), data, model.lm.net, ignore_progress
        )
        nbytes = sum(a.nbytes for a in ngram.to_arrays().values()) if ngram is not None else 0
        out.append(
            {
                **facts,
                "megabytes": round(nbytes / 2**20, 1),
                "wall_seconds": round(time.perf_counter() - started, 1),
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", default="corpus-machado")
    parser.add_argument(
        "--max-train-tokens",
        type=int,
        default=300_000,
        help="Train on at most this many tokens (0: all of them).",
    )
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--order", type=int, default=5)
    parser.add_argument(
        "--ngram",
        type=int,
        default=None,
        help="palavra's n-gram component order (default: the LM's default).",
    )
    parser.add_argument(
        "--ngram-orders",
        default="",
        help="Also fit the trained network's mixture with n-gram components of these orders (e.g. 3,4,5).",
    )
    parser.add_argument(
        "--data-mirror", type=Path, default=Path(os.environ.get("PALAVRA_DATA_MIRROR", "../shared/data"))
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lm-bench-"))
    try:
        catalog = DataCatalog(args.data_mirror, work / "cache")
        registry = Registry(work / "home")
        run = make_run(
            {
                "name": "bench",
                "corpus": [args.corpus],
                "epochs": args.epochs,
                "max_train_tokens": args.max_train_tokens or None,
                "ngram": args.ngram,
            }
        )
        started = time.perf_counter()
        version = train_lm(run, registry=registry, catalog=catalog, cache_dir=work / "cache")
        lm_seconds = time.perf_counter() - started
        training = version.metadata["training"]
        model = LanguageModel.from_artifact(registry.open(version.ref))
        train, held, _ = load_lines(
            run, catalog=catalog, cache_dir=work / "cache", report=ignore_progress, limits=None
        )
        vocab = set(model.lm.vocab)
        orders = ngram_orders(run, model, train, held, args.ngram_orders)
        kn = kneser_ney(irstlm_lines(train, vocab), irstlm_lines(held, vocab), work, args.order)
        interpolation = interpolation_report(model, held, kn)
        del kn["words"], kn["scores"]
        torch.set_num_threads(1)  # one core, as a serving worker runs it
        sample = model.generate("era uma vez", Sampling(max_tokens=40, seed=7))  # also loads the tokenizer
        times = []
        for _ in range(200):
            t0 = time.perf_counter()
            model.complete("o menino foi para a", k=5)
            times.append(time.perf_counter() - t0)
        # distinct texts: every call runs the model (the repeated one above is answered from complete's cache)
        rng = np.random.default_rng(7)
        words = model.lm.vocab[len(SPECIALS) : 3000]
        fresh = []
        for _ in range(1000):
            text = " ".join(words[i] for i in rng.integers(0, len(words), size=model.context))
            t0 = time.perf_counter()
            model.complete(text, k=5)
            fresh.append(time.perf_counter() - t0)
        sampling = Sampling(max_tokens=200, temperature=0.8, top_k=40, top_p=0.95, seed=7)
        t0 = time.perf_counter()
        generated = sum(1 for _ in model.stream("era uma vez", sampling))
        gen_seconds = time.perf_counter() - t0
        report = {
            "corpus": args.corpus,
            "train_tokens": training["tokens"],
            "held_out_tokens": training["held_out_tokens"],
            "vocabulary": training["vocabulary"],
            "palavra_lm": {
                "perplexity": training["val_perplexity"],
                "network_alone_perplexity": training["val_perplexity_network"],
                "ngram_component": training["ngram"],
                "best_epoch": training["best_epoch"],
                "epochs_run": training["epochs_run"],
                "train_seconds": round(training["train_seconds"], 1),
                "total_seconds": round(lm_seconds, 1),
                "parameters": training["parameters"],
                "generate_tokens_per_second": round(generated / gen_seconds, 1) if gen_seconds else None,
                "generated_tokens": generated,
                "complete_ms_in_process_p50": round(1000 * statistics.median(times), 3),
                "complete_ms_in_process_p99": round(1000 * sorted(times)[int(0.99 * len(times)) - 1], 3),
                "complete_distinct_ms_in_process_p50": round(1000 * statistics.median(fresh), 3),
                "complete_distinct_ms_in_process_p99": round(
                    1000 * sorted(fresh)[int(0.99 * len(fresh)) - 1], 3
                ),
                "sample": sample["text"],
            },
            "kneser_ney": kn,
            "interpolation": interpolation,
            "ngram_orders": orders,
        }
        print(json.dumps(report, indent=2, ensure_ascii=False))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
