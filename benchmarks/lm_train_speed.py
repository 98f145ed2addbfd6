"""Training throughput of language-model settings on one corpus slice, to extrapolate a full-corpus run.

    # prints one JSON line per setting; run niced, and note the load average (the machine is shared)
    PALAVRA_DATA_MIRROR=/work/shared/data nice .venv/bin/python benchmarks/lm_train_speed.py \
        --corpus corpus-all --tokens 1000000 --set batch_size=512 --set batch_size=2048 --set threads=2

The corpus is prepared as ``palavra train lm`` prepares it (cached under ``--cache``), the vocabulary is built from
the whole training part (as a full run builds it: the adaptive softmax's head is the same size), and every setting
trains one epoch on the first ``--tokens`` training tokens and is scored on the first ``--held-tokens`` held-out
tokens. ``--set`` takes ``key=value[,key=value]`` over :class:`pipelines.lm.config.LMRun`'s fields; the default
configuration is always measured first. Full-run time per epoch = training tokens / tokens per second.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from models.lm import PARAGRAPH
from pipelines.classifier.train import torch_threads
from pipelines.lm.config import make_run
from pipelines.lm.data import contexts_of
from pipelines.lm.train import Encoded, encode_lines, fit_lm, load_lines
from pipelines.reading.datasets import DataCatalog
from pipelines.runs.progress import ignore_progress


def parse_setting(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in filter(None, text.split(",")):
        key, _, value = part.partition("=")
        out[key.strip()] = json.loads(value) if value[:1] in "[0123456789" else value
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", default="corpus-all")
    parser.add_argument("--tokens", type=int, default=1_000_000)
    parser.add_argument("--held-tokens", type=int, default=200_000)
    parser.add_argument("--set", action="append", default=[], dest="settings")
    parser.add_argument("--cache", type=Path, default=Path("benchmarks/out/lm-cache"))
    parser.add_argument(
        "--data-mirror", type=Path, default=Path(os.environ.get("PALAVRA_DATA_MIRROR", "../shared/data"))
    )
    args = parser.parse_args()
    catalog = DataCatalog(args.data_mirror, args.cache)
    base = make_run({"name": "speed", "corpus": [args.corpus]})
    train, held, _ = load_lines(
        base, catalog=catalog, cache_dir=args.cache, report=ignore_progress, limits=None
    )
    full = encode_lines(base, train, held)
    print(json.dumps({"corpus": args.corpus, "train_tokens_full": len(full.train_ids),
                      "held_out_tokens_full": len(full.val_ids), "vocabulary": len(full.vocab.tokens)}),
          flush=True)  # fmt: skip
    for text in ["", *args.settings]:
        changes = parse_setting(text)
        run = make_run({"name": "speed", "corpus": [args.corpus], **changes})
        data = full
        if run.context != base.context or run.max_vocab != base.max_vocab or run.min_count != base.min_count:
            data = encode_lines(run, train, held)
        pad = data.vocab.index()[PARAGRAPH]
        n, m = min(args.tokens, len(data.train_ids)), min(args.held_tokens, len(data.val_ids))
        sliced = Encoded(data.vocab, data.train_ids[:n], data.train_ctx[:n], data.val_ids[:m],
                         contexts_of(data.val_ids[:m], run.context, pad))  # fmt: skip
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        with torch_threads(run.threads):
            fit = fit_lm(run.model_copy(update={"epochs": 1}), sliced)
        row = fit.history[0]
        print(json.dumps({
            "setting": changes or "default",
            "tokens": n,
            "tokens_per_second": row["tokens_per_second"],
            "epoch_seconds": row["seconds"],
            "val_perplexity": row["val_perplexity"],
            "parameters": fit.net.parameters_count(),
            "cutoffs": list(fit.shape.cutoffs),
            "full_epoch_minutes_at_this_speed": round(len(data.train_ids) / row["tokens_per_second"] / 60, 1),
            "wall_seconds": round(time.perf_counter() - started, 1),
            "load_average_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        }), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
