"""The two halves of a joined word-vector model, trained once and re-joined offline; prints one line per join.

A joined model (pipelines/word2vec/convert.py ``join``) is a deterministic function of its FastText half, its
word-level half, the all-but-the-top post-processing and the per-word weights. Training a half costs minutes;
joining and scoring one takes about 30 s, so weights and word-level settings are compared here on the same halves:

    PALAVRA_DATA_MIRROR=../shared/data .venv/bin/python benchmarks/word2vec_halves.py train ft8 \
        --set algorithm='"fasttext"' --set epochs=8
    .venv/bin/python benchmarks/word2vec_halves.py train cbow-w10e10 --set algorithm='"word2vec"' \
        --set architecture='"cbow"' --set alpha=0.05 --set window=10 --set epochs=10 --set sample=3e-5
    .venv/bin/python benchmarks/word2vec_halves.py join ft8 cbow-w10e10 --weights 0.38,0.70,300 --weights 0.35,0.65,200
    .venv/bin/python benchmarks/word2vec_halves.py join ft8 cbow-w10e10 --abtt 3,2 --abtt 3,3   # directions per half
    .venv/bin/python benchmarks/word2vec_halves.py score ft8          # one half alone

(the default's two halves; a plain Word2Vec half takes its own keys, not the word_* ones).

Halves are kept under benchmarks/out/halves/<name>/ (the FastText half with its n-gram rows: about 0.5 GB at
500k buckets). The token file is ``prepare_corpus`` of ``corpus-all`` with the default normalisation, as in
word2vec_bench.py; each ``--set`` is a ``[train]`` key (JSON value), ``--weights`` is rare,frequent,halfway-count
and ``--abtt`` the directions all-but-the-top removes from the FastText half and the word-level half (default: as
``fit`` does). Scores: 3CosAdd and 3CosMul over all LX-4WAnalogiesBr-dev questions (unknown words counted wrong),
its semantic and syntactic sections, LX-SimLex-999 Spearman (all pairs / pairs in the vocabulary) and the
orthographic echo.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from word2vec_bench import DEFAULT_MIRROR, Evaluator

from models.vectors import WordVectors
from pipelines.reading.datasets import DataCatalog
from pipelines.text.normalize import NormalizeConfig
from pipelines.text.preprocess import prepare_corpus
from pipelines.word2vec.config import Word2VecConfig
from pipelines.word2vec.convert import join
from pipelines.word2vec.postprocess import all_but_the_top
from pipelines.word2vec.train import fit

OUT = Path(__file__).resolve().parent / "out"
HALVES = OUT / "halves"


def catalog() -> DataCatalog:
    mirror = Path(os.environ.get("PALAVRA_DATA_MIRROR", DEFAULT_MIRROR))
    return DataCatalog(mirror, OUT / "halves-datasets")


def token_file() -> Path:
    cat = catalog()
    prepared = prepare_corpus(cat.resolve("corpus-all"), NormalizeConfig(), cache_dir=OUT / "halves-tokens")
    return prepared.path


def train(name: str, sets: dict[str, Any]) -> None:
    """Train one half alone (no join, no post-processing) and keep its matrices."""
    plain = {"word_weight": 0.0} if sets.get("algorithm", "fasttext") == "fasttext" else {}
    config = Word2VecConfig(**{**plain, "postprocess": "none", **sets})
    started = time.perf_counter()
    trained = fit(token_file(), config)
    wv = trained.vectors
    folder = HALVES / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "words.json").write_text(json.dumps(wv.words, ensure_ascii=False), encoding="utf-8")
    np.save(folder / "vectors.npy", np.asarray(wv.vectors, np.float32))
    np.save(folder / "counts.npy", np.asarray(wv.counts))
    if wv.ngrams is not None:
        np.save(folder / "ngrams.npy", np.asarray(wv.ngrams, np.float32))
    info = {
        "set": sets,
        "min_n": wv.min_n,  # load() hashes unknown words' n-grams with these (a 3-5 half read as 3-6 is wrong)
        "max_n": wv.max_n,
        "vocabulary_s": round(trained.vocab_seconds, 1),
        "train_s": round(trained.seconds, 1),
        "wall_s": round(time.perf_counter() - started, 1),
    }
    (folder / "info.json").write_text(json.dumps(info), encoding="utf-8")
    print(name, json.dumps(info), flush=True)


def load(name: str) -> WordVectors:
    """A kept half, with the n-gram lengths it was trained with (halves kept before info.json recorded them: the
    ``--set`` given, else 3-6, the default until 2026-12-05)."""
    folder = HALVES / name
    ngrams = folder / "ngrams.npy"
    info = json.loads((folder / "info.json").read_text(encoding="utf-8"))
    return WordVectors(
        json.loads((folder / "words.json").read_text(encoding="utf-8")),
        np.load(folder / "vectors.npy"),
        counts=np.load(folder / "counts.npy"),
        ngrams=np.load(ngrams, mmap_mode="r") if ngrams.exists() else None,
        min_n=int(info.get("min_n", info["set"].get("min_n", 3))),
        max_n=int(info.get("max_n", info["set"].get("max_n", 6))),
    )


def summary(scores: dict[str, Any]) -> str:
    s = scores.get("subwords") or scores["vocabulary"]
    v = scores["vocabulary"]
    return (
        f"3CosAdd {s['add_all']:.1%} 3CosMul {s['mul_all']:.1%} semantic {s['semantic_all']:.1%} "
        f"syntactic {s['syntactic_all']:.1%} SimLex {s['simlex']:.3f} / {v['simlex']:.3f} "
        f"echo {scores['neighbours']['echo']:.1%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train one half and keep it")
    t.add_argument("name")
    t.add_argument("--set", action="append", default=[], metavar="KEY=JSON")
    j = sub.add_parser("join", help="join two kept halves as palavra does and score each weighting")
    j.add_argument("fasttext")
    j.add_argument("word")
    j.add_argument("--weights", action="append", default=[], metavar="RARE,FREQUENT,COUNT")
    j.add_argument("--abtt", action="append", default=[], metavar="FASTTEXT,WORD")
    s = sub.add_parser("score", help="score one kept half alone")
    s.add_argument("name")
    args = parser.parse_args()
    if args.command == "train":
        sets = {}
        for item in args.set:
            key, sep, value = item.partition("=")
            if not sep:
                parser.error(f"--set takes KEY=JSON, got {item!r}")
            sets[key] = json.loads(value)
        train(args.name, sets)
        return
    evaluator = Evaluator(catalog(), "analogies-lx-br-dev", "simlex-lx-999")
    if args.command == "score":
        print(args.name, summary(evaluator.score(load(args.name))), flush=True)
        return
    raw_subword, raw_word = load(args.fasttext), load(args.word)
    first, second = Word2VecConfig(
        vector_size=raw_subword.dim, word_vector_size=raw_word.dim
    ).abtt_directions()
    default = f"{first},{second}"  # as fit() counts them for a joined model
    library = Word2VecConfig()  # its word-level weights, unless --weights
    ramp = f"{library.word_weight_rare},{library.word_weight},{library.word_weight_count}"
    for abtt in args.abtt or [default]:
        ft_components, word_components = (int(x) for x in abtt.split(","))
        subword, _ = all_but_the_top(raw_subword, ft_components)  # as fit() does, half by half
        word, _ = all_but_the_top(raw_word, word_components)
        for weights in args.weights or [ramp]:
            rare, frequent, count = weights.split(",")
            config = Word2VecConfig(
                word_weight=float(frequent), word_weight_rare=float(rare), word_weight_count=int(count)
            )
            counts = subword.counts if subword.counts is not None else np.ones(len(subword))
            joined = join(subword, word, weight=config.word_weights(counts))
            label = f"{args.fasttext} {args.word} {weights} abtt {abtt}"
            print(label, summary(evaluator.score(joined)), flush=True)


if __name__ == "__main__":
    main()
