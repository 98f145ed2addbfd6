"""Register a synthetic word2vec model (random vectors, no ANN index built) for memory measurements that need no
trained model, e.g. the second worker's private memory in ``serving_bench.py``:

    PALAVRA_HOME=/tmp/bench/synth PALAVRA_ANN_MIN_VOCAB=10000000 .venv/bin/python benchmarks/synthetic_model.py \
        --words 100000 --dim 300
"""

from __future__ import annotations

import argparse

import numpy as np

from models.vectors import WordVectors, save
from pipelines.text.normalize import NormalizeConfig
from services.factories import open_registry
from services.settings import get_settings


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--name", default="synth")
    parser.add_argument("--words", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=300)
    args = parser.parse_args()
    rnd = np.random.default_rng(0)
    letters = "abcdefghijklmnopqrstuvwxyz"
    # alphabetic words, so serving_bench.frequent_words keeps them
    words = ["".join(letters[(i // 26**k) % 26] for k in range(5)) + "x" for i in range(args.words)]
    vectors = rnd.normal(size=(args.words, args.dim)).astype(np.float32)
    counts = np.arange(args.words, 0, -1, dtype=np.int64)
    registry = open_registry(get_settings())
    with registry.create(args.name, "word2vec", aliases=("latest", "production")) as w:
        save(
            w, WordVectors(words, vectors, counts=counts), normalize=NormalizeConfig().model_dump(mode="json")
        )
    print(f"registered {w.version.ref}: {args.words:,} x {args.dim}")  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
