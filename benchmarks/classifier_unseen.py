"""A served classifier's first pass over text it has never seen, then a second pass, in batches of 64.

    PALAVRA_HOME=... .venv/bin/python benchmarks/classifier_unseen.py --model told-default [--root PATH]
        [--texts FILE.csv] [--engine numpy|torch] [--clock wall|cpu]

The model is loaded as a server loads it (vocabulary warmed) in this process, one thread. ``--root`` imports palavra
from another checkout (a ``git worktree`` of an older commit), so two versions of the encoder can be compared in
alternating fresh processes on the same machine. Texts: the ``text`` column of ToLD-Br train by default
(16,800 tweets). Prints one line.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOLD = ROOT.parent / "shared" / "data" / "classification" / "told-br" / "train_1annotator.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--root", type=Path, default=ROOT, help="the palavra checkout to import")
    parser.add_argument("--texts", type=Path, default=TOLD)
    parser.add_argument("--engine", default="numpy", choices=["numpy", "torch"])
    parser.add_argument("--clock", default="wall", choices=["wall", "cpu"])
    args = parser.parse_args()
    sys.path.insert(0, str(args.root.resolve()))
    from threadpoolctl import threadpool_limits

    from pipelines.classifier.artifact import load_classifier
    from services.factories import open_registry
    from services.settings import get_settings

    threadpool_limits(1)
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    started = clock()
    clf = load_classifier(
        open_registry(get_settings()).open(args.model, kind="classifier"),
        engine=args.engine,
        warm=True,
    )
    load = clock() - started
    with args.texts.open(encoding="utf-8", newline="") as fh:
        texts = [row["text"] for row in csv.DictReader(fh)]
    clf.predict(["aquecimento"])  # first-call costs are not the texts' cost
    rates = []
    for _ in range(2):
        started = clock()
        for i in range(0, len(texts), 64):
            clf.predict(texts[i : i + 64])
        rates.append(len(texts) / (clock() - started))
    print(
        f"{args.root} ({args.engine}, {args.clock} clock): load {load:.2f} s, first pass {rates[0]:,.0f} texts/s, "
        f"second pass {rates[1]:,.0f} texts/s"
    )


if __name__ == "__main__":
    main()
