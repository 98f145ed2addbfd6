"""The two classifier engines side by side: numpy (serving's default) and torch (``PALAVRA_CLASSIFIER_ENGINE=torch``).

    PALAVRA_HOME=... .venv/bin/python benchmarks/classifier_engines.py --model told-default [--texts FILE.csv]

Each engine runs in a fresh process of its own (so neither sees the other's libraries or threads), on one thread,
over ToLD-Br validation by default. The model is loaded as a server loads it (vocabulary warmed at load: "load s").
Then: batches of 64 over texts the process has never seen (new chunks are tokenised, normalised and hashed), the
process's private memory, and, with every chunk now known, texts/s for one text per call, batches of 64 and
everything at once. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOLD = ROOT.parent / "shared" / "data" / "classification" / "told-br" / "validation_1annotator.csv"


def private_mb() -> float:
    text = Path("/proc/self/smaps_rollup").read_text()
    return (
        sum(int(re.search(rf"{k}:\s+(\d+)", text).group(1)) for k in ("Private_Clean", "Private_Dirty"))
        / 1024
    )  # type: ignore[union-attr]


def measure(model: str, engine: str, texts_file: Path) -> dict[str, float]:
    sys.path.insert(0, str(ROOT))
    from threadpoolctl import threadpool_limits

    from pipelines.classifier.artifact import load_classifier
    from services.factories import open_registry
    from services.settings import get_settings

    threadpool_limits(1)
    if engine == "torch":
        import torch

        torch.set_num_threads(1)
    started = time.perf_counter()
    # as a server loads it: the vocabulary's character n-grams hashed at load (warm=True)
    clf = load_classifier(
        open_registry(get_settings()).open(model, kind="classifier"),
        engine=engine,  # type: ignore[arg-type]
        warm=True,
    )
    out = {"load_s": time.perf_counter() - started}
    with texts_file.open(encoding="utf-8", newline="") as fh:
        texts = [row["text"] for row in csv.DictReader(fh)]
    clf.predict(["aquecimento"])  # first-call costs (imports, allocations) are not the texts' cost
    started = time.perf_counter()
    for i in range(0, len(texts), 64):  # texts this process has never seen
        clf.predict(texts[i : i + 64])
    out["unseen64_per_s"] = len(texts) / (time.perf_counter() - started)
    out.update(members=float(len(clf.members)), private_mb=private_mb())
    started = time.perf_counter()
    for text in texts[:500]:
        clf.predict([text])
    out["single_ms"] = (time.perf_counter() - started) / 500 * 1000
    started = time.perf_counter()
    for i in range(0, len(texts), 64):
        clf.predict(texts[i : i + 64])
    out["batch64_per_s"] = len(texts) / (time.perf_counter() - started)
    started = time.perf_counter()
    for _ in range(5):
        clf.predict(texts)
    out["all_per_s"] = 5 * len(texts) / (time.perf_counter() - started)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--texts", type=Path, default=TOLD, help="a CSV with a 'text' column")
    parser.add_argument("--engine", help=argparse.SUPPRESS)  # the child process's own run
    args = parser.parse_args()
    if args.engine:
        print(json.dumps(measure(args.model, args.engine, args.texts)))
        return
    print(
        "| engine | networks | load s | private MB | batches of 64, unseen texts/s | one text ms "
        "| batches of 64, texts/s | all at once, texts/s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for engine in ("torch", "numpy"):
        cmd = [
            sys.executable,
            __file__,
            "--model",
            args.model,
            "--texts",
            str(args.texts),
            "--engine",
            engine,
        ]
        r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        print(
            f"| {engine} | {r['members']:.0f} | {r['load_s']:.2f} | {r['private_mb']:.0f} "
            f"| {r['unseen64_per_s']:,.0f} | {r['single_ms']:.2f} "
            f"| {r['batch64_per_s']:,.0f} | {r['all_per_s']:,.0f} |"
        )


if __name__ == "__main__":
    main()
