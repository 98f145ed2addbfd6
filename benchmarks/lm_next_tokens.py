"""In process: what one new text costs ``complete`` (the k best next tokens), and generation's tokens/s.

    # a registered language model in PALAVRA_HOME; texts from the data mirror's Machado de Assis
    PALAVRA_HOME=... PALAVRA_DATA_MIRROR=/work/shared/data .venv/bin/python benchmarks/lm_next_tokens.py \
        --model pt-lm --threads 1

The texts are ``lm_http_bench.py``'s distinct set (the first 2-8 words of lines of every work but *Memorial de
Aires*, k cycling through 1, 5 and 10), read into token ids once. ``NextTokens.top`` scores each of them, without
``complete``'s cache, for the network alone and for the model's mixture with its n-gram (when it has one): the
best of ``--passes`` passes, in ms per text. Then ``generate`` from "era uma vez": 200 tokens, temperature 0.8,
top-k 40, top-p 0.95, seeds 0-2, tokens per second. ``--threads`` caps BLAS and torch as the server's workers are
capped (``PALAVRA_COMPUTE_THREADS``, default 1). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lm_http_bench import write_bodies

from models.lm import NextTokens
from models.registry import Registry
from pipelines.lm.predictor import LanguageModel, Sampling
from services.api.threads import limit_compute_threads


def ms_per_text(scorer: NextTokens, contexts: list[tuple[tuple[int, ...], int]], passes: int) -> float:
    for context, k in contexts[:300]:  # warm-up
        scorer.top(context, k)
    best = float("inf")
    for _ in range(passes):
        start = time.perf_counter()
        for context, k in contexts:
            scorer.top(context, k)
        best = min(best, time.perf_counter() - start)
    return round(1000 * best / len(contexts), 4)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", required=True, help="A registered language model (name, name@version, alias)."
    )
    parser.add_argument("--texts", type=int, default=4000)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    limit_compute_threads(args.threads)
    import torch  # after the limit, as in a worker

    torch.set_num_threads(args.threads)
    home = Path(os.environ.get("PALAVRA_HOME", Path.home() / ".palavra"))
    mirror = Path(os.environ.get("PALAVRA_DATA_MIRROR", "../shared/data"))
    model = LanguageModel.from_artifact(Registry(home).open(args.model))
    with tempfile.TemporaryDirectory() as out:
        _, distinct, _ = write_bodies(mirror, args.model, Path(out))
        lines = distinct.read_text(encoding="utf-8").splitlines()[: args.texts]
    bodies = [json.loads(line) for line in lines]
    contexts = [(model._context_ids(model._ids(model.tokens(b["text"]))), b["k"]) for b in bodies]
    lm = model.lm
    never = (model.unk, model.pad)
    result: dict[str, object] = {
        "model": args.model,
        "vocab": lm.shape.vocab_size,
        "ngram_order": lm.ngram.order if lm.ngram else 0,
        "network_weight": lm.network_weight,
        "texts": len(contexts),
        "threads": args.threads,
        "top_ms_network_alone": ms_per_text(NextTokens(lm.net, never), contexts, args.passes),
    }
    if lm.ngram is not None:
        mixed = NextTokens(lm.net, never, ngram=lm.ngram, network_weight=lm.network_weight)
        result["top_ms_mixture"] = ms_per_text(mixed, contexts, args.passes)
    rates = []
    for seed in range(3):
        start = time.perf_counter()
        generated = model.generate("era uma vez", Sampling(max_tokens=200, temperature=0.8, seed=seed))
        rates.append(round(len(generated["tokens"]) / (time.perf_counter() - start), 1))
    result["generate_tokens_per_s"] = rates
    print(json.dumps(result))


if __name__ == "__main__":
    main()
