"""palavra's default classifier against TF-IDF + LogisticRegression and fastText supervised, on the same splits.

Data sets (from the data mirror, ``PALAVRA_DATA_MIRROR`` or ../shared/data):

* ToLD-Br 1annotator: official train -> validation (16,800 / 2,100 tweets, binary ``toxic``).
* B2W-10k ``recommend_to_a_friend`` (Yes/No) and ``overall_rating`` (1-5) on ``review_text``: a stratified 80/20
  split with seed 7.

palavra trains through ``train_classifier`` (reading CSV, fitting features, training, tuning thresholds on its
own 10% holdout of train, writing the artifact) with no option changed, so "training seconds" is end to end.
Inference speed is measured on the evaluation texts in batches with one torch thread: "cold" is the first pass
(every chunk new to the model), "warm" the steady state of a serving process that has seen such text before.
palavra trains and predicts on one thread, so its CPU seconds are what a quiet machine takes in wall time; on
this shared machine wall time runs 2-4x longer (both are printed).
fastText (``fasttext-numpy2``) runs with default settings and with ``wordNgrams=2``; it sometimes fails with
"Encountered NaN" (see MACHINE-NOTES), so each configuration runs on several seeds, a failed seed is retried
with the next one and counted, and the table gives the mean over the seeds that trained.

    nice -n 10 .venv/bin/python benchmarks/classifier_bench.py [--datasets told,b2w-recommend,b2w-rating]
        [--fasttext-seeds 3] [--palavra-seeds 1 | --seeds 7,8,9] [--set KEY=JSON ...] [--threads N]
        [--out results.json]

Prints one markdown table per data set. Timings on a shared machine are noisy: compare the ratios in one run.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models.registry import Registry  # noqa: E402
from pipelines.classifier.artifact import load_classifier  # noqa: E402
from pipelines.classifier.baseline import tfidf_logreg  # noqa: E402
from pipelines.classifier.config import ClassifierRun, classifier_normalize_default  # noqa: E402
from pipelines.classifier.train import torch_threads, train_classifier  # noqa: E402

DATA = Path(os.environ.get("PALAVRA_DATA_MIRROR", ROOT.parent / "shared" / "data"))
Split = tuple[
    list[str], list[str], list[str], list[str]
]  # train texts, train labels, test texts, test labels


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def told() -> Split:
    base = DATA / "classification" / "told-br"
    train, test = _read(base / "train_1annotator.csv"), _read(base / "validation_1annotator.csv")
    return (
        [r["text"] for r in train],
        [r["toxic"] for r in train],
        [r["text"] for r in test],
        [r["toxic"] for r in test],
    )


def b2w(column: str) -> Split:
    rows = _read(DATA / "classification" / "b2w-10k" / "b2w-10k.csv")
    texts, labels = [r["review_text"] for r in rows], [r[column] for r in rows]
    a, b, c, d = train_test_split(texts, labels, test_size=0.2, stratify=labels, random_state=7)
    return a, c, b, d


DATASETS: dict[str, Callable[[], Split]] = {
    "told": told,
    "b2w-recommend": lambda: b2w("recommend_to_a_friend"),
    "b2w-rating": lambda: b2w("overall_rating"),
}
NAMES = {
    "told": "ToLD-Br 1annotator (train -> validation)",
    "b2w-recommend": "B2W-10k recommend_to_a_friend (80/20, seed 7)",
    "b2w-rating": "B2W-10k overall_rating, 5 classes (80/20, seed 7)",
}


def _scores(y_true: list[str], y_pred: list[str]) -> dict[str, float]:
    return {
        "macro_f1": float(f1_score(y_true, y_pred, average="macro")),
        "accuracy": float(accuracy_score(y_true, y_pred)),
    }


def run_palavra(
    split: Split, *, seed: int, threads: int | None, workdir: Path, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    xtr, ytr, xte, yte = split
    path = workdir / "train.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows(zip(xtr, ytr, strict=True))
    registry = Registry(workdir / f"home-{seed}")
    training: dict[str, Any] = {"seed": seed}
    model: dict[str, Any] = {}
    normalize = classifier_normalize_default().model_dump()
    for key, value in (overrides or {}).items():
        if key.startswith("normalize."):
            normalize[key.removeprefix("normalize.")] = value
        elif key.startswith("features."):
            model.setdefault("features", {})[key.removeprefix("features.")] = value
        elif key.startswith("model."):
            model[key.removeprefix("model.")] = value
        else:
            training[key.removeprefix("training.")] = value
    if threads:
        training["threads"] = threads
    run = ClassifierRun(
        name="bench",
        train=str(path),
        text_column="text",
        label_column="label",
        training=training,
        model=model,
        normalize=normalize,
    )
    started, cpu = time.perf_counter(), time.process_time()
    version = train_classifier(run, registry=registry)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    clf = load_classifier(registry.open(version.ref))
    with torch_threads(threads or 1):  # as a serving process sets it (PALAVRA_COMPUTE_THREADS)
        started = time.perf_counter()
        index, _ = clf.predict_indices(xte)
        cold = time.perf_counter() - started
        started, warm_cpu = time.perf_counter(), time.process_time()
        for _ in range(3):
            clf.predict_indices(xte)
        warm, warm_cpu = (time.perf_counter() - started) / 3, (time.process_time() - warm_cpu) / 3
    pred = [str(clf.labels[int(i)]) for i in index]
    return {
        **_scores(yte, pred),
        "train_seconds": seconds,
        "train_cpu_seconds": cpu,
        "texts_per_s": len(xte) / warm,
        "texts_per_s_cpu": len(xte) / warm_cpu,
        "texts_per_s_cold": len(xte) / cold,
        "epochs": len(json.loads((version.path / "history.json").read_text())),
    }


def run_tfidf(split: Split) -> dict[str, Any]:
    xtr, ytr, xte, yte = split
    pipe = tfidf_logreg()
    started, cpu = time.perf_counter(), time.process_time()
    pipe.fit(xtr, ytr)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    started = time.perf_counter()
    pred = list(pipe.predict(xte))
    infer = time.perf_counter() - started
    return {
        **_scores(yte, pred),
        "train_seconds": seconds,
        "train_cpu_seconds": cpu,
        "texts_per_s": len(xte) / infer,
    }


def _ft_line(text: str) -> str:
    return " ".join(text.split())


def run_fasttext(split: Split, *, seeds: int, threads: int, workdir: Path, **params: Any) -> dict[str, Any]:
    import fasttext

    xtr, ytr, xte, yte = split
    path = workdir / "fasttext-train.txt"
    path.write_text(
        "".join(f"__label__{label} {_ft_line(text)}\n" for text, label in zip(xtr, ytr, strict=True)),
        encoding="utf-8",
    )
    runs, failed, seed = [], 0, 0
    while len(runs) < seeds and seed < seeds + 10:
        seed += 1
        started = time.perf_counter()
        try:
            model = fasttext.train_supervised(str(path), seed=seed, thread=threads, verbose=0, **params)
        except RuntimeError as exc:  # "Encountered NaN."
            failed += 1
            print(f"  fastText {params or 'defaults'} seed {seed}: {exc}", file=sys.stderr)
            continue
        seconds = time.perf_counter() - started
        lines = [_ft_line(t) for t in xte]
        started = time.perf_counter()
        labels = model.predict(lines)[0]
        infer = time.perf_counter() - started
        pred = [ls[0].removeprefix("__label__") for ls in labels]
        runs.append({**_scores(yte, pred), "train_seconds": seconds, "texts_per_s": len(xte) / infer})
    if not runs:
        return {"failed_seeds": failed}
    out = {k: statistics.mean(r[k] for r in runs) for k in runs[0]}
    out["macro_f1_sd"] = statistics.pstdev(r["macro_f1"] for r in runs)
    out["seeds"], out["failed_seeds"] = len(runs), failed
    return out


def _mean(results: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {k: statistics.mean(r[k] for r in results) for k in results[0]}
    out["macro_f1_sd"] = statistics.pstdev(r["macro_f1"] for r in results)
    out["seeds"] = len(results)
    return out


def table(name: str, rows: dict[str, dict[str, Any]]) -> str:
    ref = rows.get("TF-IDF + LogisticRegression", {}).get("train_seconds")
    lines = [
        f"### {name}",
        "",
        "| model | macro-F1 | accuracy | train s (wall) | train CPU s | wall vs TF-IDF+LR | texts/s warm (per CPU s) "
        "| texts/s cold | notes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for model, r in rows.items():
        if "macro_f1" not in r:
            lines.append(f"| {model} | – | – | – | – | – | – | – | failed on all seeds |")
            continue
        sd = f" ± {r['macro_f1_sd']:.4f}" if r.get("seeds", 1) > 1 else ""
        notes = []
        if "seeds" in r:
            notes.append(f"mean of {r['seeds']} seeds")
        if r.get("failed_seeds"):
            notes.append(f"{r['failed_seeds']} seed(s) hit NaN")
        if "epochs" in r:
            notes.append(f"{r['epochs']:.0f} epochs")
        if "per_seed" in r:
            notes.append("seeds " + ", ".join(f"{s}: {f1}" for s, f1 in r["per_seed"].items()))
        ratio = f"{r['train_seconds'] / ref:.2f}x" if ref else "–"
        cold = f"{r['texts_per_s_cold']:,.0f}" if "texts_per_s_cold" in r else "–"
        cpu = f"{r['train_cpu_seconds']:.1f}" if "train_cpu_seconds" in r else "–"
        speed = f"{r['texts_per_s']:,.0f}"
        if "texts_per_s_cpu" in r:
            speed += f" ({r['texts_per_s_cpu']:,.0f})"
        lines.append(
            f"| {model} | {r['macro_f1']:.4f}{sd} | {r['accuracy']:.4f} | {r['train_seconds']:.1f} | {cpu} | "
            f"{ratio} | {speed} | {cold} | {', '.join(notes)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", default="told,b2w-recommend,b2w-rating")
    runs = parser.add_mutually_exclusive_group()
    runs.add_argument(
        "--palavra-seeds",
        type=int,
        default=1,
        help="Runs of palavra: the default seed 7, then seeds 1, 2, ...",
    )
    runs.add_argument(
        "--seeds",
        type=lambda text: [int(x) for x in text.split(",")],
        default=None,
        help="palavra's seeds, e.g. 7,8,9 (instead of --palavra-seeds).",
    )
    parser.add_argument("--fasttext-seeds", type=int, default=3, help="0 leaves fastText out.")
    parser.add_argument("--fasttext-threads", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch threads for palavra (default: 1).")
    parser.add_argument("--out", type=Path, default=None, help="Also write the figures as JSON here.")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="Override a key of palavra's run (not the default config any more): [training] keys as they are "
        "(patience=3), [model] keys as model.KEY (model.hidden=[128]), feature keys as features.KEY, normalisation "
        "keys as normalize.KEY (normalize.fold_accents=true).",
    )
    args = parser.parse_args()
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    everything: dict[str, Any] = {}
    for key in args.datasets.split(","):
        split = DATASETS[key]()
        rows: dict[str, dict[str, Any]] = {}
        with tempfile.TemporaryDirectory() as tmp:
            seeds = args.seeds or [7, *range(1, args.palavra_seeds)]  # the default seed first
            results = [
                run_palavra(split, seed=s, threads=args.threads, workdir=Path(tmp), overrides=overrides)
                for s in seeds
            ]
            rows["palavra (default config)"] = results[0] if len(results) == 1 else _mean(results)
            if len(results) > 1:
                rows["palavra (default config)"]["per_seed"] = {
                    s: round(r["macro_f1"], 4) for s, r in zip(seeds, results, strict=True)
                }
            rows["TF-IDF + LogisticRegression"] = run_tfidf(split)
            for label, params in (
                ("fastText (defaults)", {}),
                ("fastText (wordNgrams=2)", {"wordNgrams": 2}),
            )[: 2 if args.fasttext_seeds > 0 else 0]:
                rows[label] = run_fasttext(
                    split,
                    seeds=args.fasttext_seeds,
                    threads=args.fasttext_threads,
                    workdir=Path(tmp),
                    **params,
                )
        everything[key] = rows
        print(table(NAMES[key], rows), flush=True)
        print(flush=True)
    if args.out:
        args.out.write_text(json.dumps(everything, indent=1), encoding="utf-8")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
