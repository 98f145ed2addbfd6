"""palavra's neural language model against IRSTLM's modified Kneser-Ney 5-gram, on the same tokens and vocabulary.

    # needs IRSTLM (Debian: apt-get install irstlm); prints one JSON report
    nice .venv/bin/python benchmarks/lm_bench.py --corpus corpus-machado --max-train-tokens 300000 --epochs 3

Both models see the same prepared lines (the LM's normalisation), split the same way (the last 1% of the source's
lines held out), with the same vocabulary: words outside the LM's vocabulary are written as one ``_unk_`` word for
IRSTLM, and the LM's sentence boundary ``</s>`` as ``_eos_``. Each document is one IRSTLM sentence (``<s> ... </s>``),
so IRSTLM's ``</s>`` stands where the LM predicts ``<p>``: both count the same number of predicted tokens.
One difference remains: the LM's context runs across documents, IRSTLM's restarts at each ``<s>``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from models.lm import EOS, PARAGRAPH
from models.registry import Registry
from pipelines.lm.config import make_run
from pipelines.lm.data import with_boundaries
from pipelines.lm.predictor import LanguageModel, Sampling
from pipelines.lm.train import load_lines, train_lm
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
    return {
        "order": order,
        "smoothing": "improved-kneser-ney (IRSTLM's modified shift-beta)",
        "train_seconds": round(seconds, 1),
        "tokens_evaluated": int(found.group(1)),
        "perplexity": float(found.group(2)),
        "oov_percent": float(found.group(3)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", default="corpus-machado")
    parser.add_argument("--max-train-tokens", type=int, default=300_000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--order", type=int, default=5)
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
                "max_train_tokens": args.max_train_tokens,
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
        kn = kneser_ney(irstlm_lines(train, vocab), irstlm_lines(held, vocab), work, args.order)
        torch.set_num_threads(1)  # one core, as a serving worker runs it
        sample = model.generate("era uma vez", Sampling(max_tokens=40, seed=7))  # also loads the tokenizer
        times = []
        for _ in range(200):
            t0 = time.perf_counter()
            model.complete("o menino foi para a", k=5)
            times.append(time.perf_counter() - t0)
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
                "best_epoch": training["best_epoch"],
                "epochs_run": training["epochs_run"],
                "train_seconds": round(training["train_seconds"], 1),
                "total_seconds": round(lm_seconds, 1),
                "parameters": training["parameters"],
                "generate_tokens_per_second": round(generated / gen_seconds, 1) if gen_seconds else None,
                "generated_tokens": generated,
                "complete_ms_in_process_p50": round(1000 * statistics.median(times), 3),
                "complete_ms_in_process_p99": round(1000 * sorted(times)[int(0.99 * len(times)) - 1], 3),
                "sample": sample["text"],
            },
            "kneser_ney": kn,
        }
        print(json.dumps(report, indent=2, ensure_ascii=False))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
