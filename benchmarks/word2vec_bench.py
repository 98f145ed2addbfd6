"""Word vectors on the real corpus: palavra's default run against gensim and fastText peers; prints markdown.

    nohup nice .venv/bin/python benchmarks/word2vec_bench.py > benchmarks/out/word2vec.log 2>&1 &

Everything is trained in one run on the same machine, so ratios compare; absolute times move with the load.

1. The corpus (default ``corpus-all``, ~15M tokens) is tokenised and normalised once by ``prepare_corpus`` with
   palavra's default normalisation, into a fresh cache (that cold time is the "prepare" figure).
2. Peers train on that same token file: gensim ``Word2Vec`` defaults (CBOW, 100 dimensions, 5 epochs),
   optionally gensim skip-gram 300d / negative 10 / sample 1e-4 (``--gensim-sg``), and fastText's own C++
   skip-gram, 300 dimensions, subwords 3-6, 2 threads (``fasttext`` module of fasttext-numpy2).
3. palavra's default config trained by gensim alone on the token file (``fit``: no preprocessing, no artifact),
   then the full pipeline from raw text (``train_word2vec`` with an empty cache: read, tokenise, train,
   post-process, register), then the pipeline again (the prepared corpus now comes from the cache).
   End-to-end / gensim-alone ratios are the targets: <= 1.5 cold, <= 1.05 with the cache.

Every model is evaluated by palavra's evaluator: LX-4WAnalogiesBr-dev (3CosAdd and 3CosMul; accuracy over
answered questions and over all questions, unknown-word questions counted wrong; candidates = 300k most frequent
words) and LX-SimLex-999 Spearman. Models with subwords (palavra FastText, fastText C++) are scored both ways:
with subword vectors for unknown test words, and vocabulary-only (the gensim rule) for comparison with word-only
peers. Results are also written as JSON to benchmarks/out/<tag>.json (``--tag``, default word2vec).
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.registry import Registry
from models.vectors import WordVectors
from pipelines.evaluation.evaluate_embeddings import (
    evaluate_analogies,
    evaluate_word_pairs,
    orthographic_echo,
    read_analogies,
    read_word_pairs,
)
from pipelines.reading.datasets import DataCatalog
from pipelines.text.normalize import NormalizeConfig, Normalizer
from pipelines.text.preprocess import prepare_corpus
from pipelines.word2vec.config import Word2VecConfig, Word2VecRun
from pipelines.word2vec.convert import from_keyed_vectors
from pipelines.word2vec.postprocess import all_but_the_top
from pipelines.word2vec.train import fit, train_word2vec

OUT = Path(__file__).resolve().parent / "out"
DEFAULT_MIRROR = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
log = logging.getLogger("word2vec_bench")


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (less sensitive than wall time to other load)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def stamp(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Evaluator:
    """Scores any WordVectors on the analogy and SimLex sets, both with and without subwords."""

    def __init__(self, catalog: DataCatalog, analogies: str, pairs: str) -> None:
        self.questions = [q for p in catalog.resolve(analogies) for q in read_analogies(p)]
        self.pairs = [x for p in catalog.resolve(pairs) for x in read_word_pairs(p)]
        self.normalize = Normalizer(NormalizeConfig()).word
        self.test_words = {self.normalize(w) for q in self.questions for w in q.words} | {
            self.normalize(w) for p in self.pairs for w in (p.first, p.second)
        }

    def score(self, vectors: WordVectors) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for subwords in (True, False) if vectors.has_subwords else (False,):
            a = evaluate_analogies(vectors, self.questions, normalize=self.normalize, subwords=subwords)
            p = evaluate_word_pairs(vectors, self.pairs, normalize=self.normalize, subwords=subwords)
            out["subwords" if subwords else "vocabulary"] = {
                "answered": a["answered"],
                "questions": a["questions"],
                "add": a["3cosadd"]["accuracy"],
                "add_all": a["3cosadd"]["accuracy_all"],
                "mul": a["3cosmul"]["accuracy"],
                "mul_all": a["3cosmul"]["accuracy_all"],
                "semantic_all": a["semantic"]["3cosadd"]["accuracy_all"],
                "syntactic_all": a["syntactic"]["3cosadd"]["accuracy_all"],
                "simlex": p["spearman"],
                "simlex_oov": p["oov_ratio"],
            }
        echo = orthographic_echo(vectors, examples=("cidade", "casa", "feliz"))
        out["neighbours"] = {"echo": echo["echo"], "examples": echo["examples"]}
        return out


def gensim_peer(token_file: Path, n_tokens: int, **kwargs: Any) -> tuple[WordVectors, dict[str, Any]]:
    from gensim.models import Word2Vec

    started = time.perf_counter()
    model = Word2Vec(corpus_file=str(token_file), workers=2, **kwargs)
    seconds = time.perf_counter() - started
    epochs = kwargs.get("epochs", 5)
    return from_keyed_vectors(model), {"seconds": seconds, "words_per_s": n_tokens * epochs / seconds}


def fasttext_peer(
    token_file: Path, n_tokens: int, test_words: set[str], *, dim: int, epochs: int
) -> tuple[WordVectors, dict[str, Any]]:
    """fastText's C++ skip-gram; its n-gram rows are copied for the test words' n-grams only (lazy zeros)."""
    import fasttext
    from gensim.models.fasttext import ft_ngram_hashes

    started = time.perf_counter()
    model = fasttext.train_unsupervised(
        str(token_file), model="skipgram", dim=dim, epoch=epochs, minn=3, maxn=6, thread=2, verbose=0
    )
    seconds = time.perf_counter() - started
    words = list(model.words)
    vectors = np.vstack([model.get_word_vector(w) for w in words]).astype(np.float32)
    _, freqs = model.get_words(include_freq=True)
    args = model.f.getArgs()
    bucket, nwords = int(args.bucket), len(words)
    ngrams = np.zeros((bucket, dim), dtype=np.float32)  # pages stay unallocated except the rows filled below
    for word in test_words - set(words):
        for h in ft_ngram_hashes(word, 3, 6, bucket):
            ngrams[h] = model.get_input_vector(nwords + h)
    wv = WordVectors(words, vectors, counts=np.asarray(freqs), ngrams=ngrams, min_n=3, max_n=6)
    return wv, {"seconds": seconds, "words_per_s": n_tokens * epochs / seconds}


def palavra_runs(
    corpus: str,
    catalog: DataCatalog,
    home: Path,
    token_file: Path,
    overrides: dict[str, Any],
    runs: list[str],
) -> list[tuple[str, WordVectors, dict[str, Any]]]:
    """palavra's config trained by gensim alone on the token file ("alone"), then the pipeline from raw text
    with an empty cache ("cold") and again with the prepared corpus cached ("cached").

    ``overrides`` replaces default training settings (a trial of another configuration); ``runs`` picks which of
    the three to do. The ratios to gensim alone need "alone" in the same run.
    """
    config = Word2VecConfig(**overrides)
    label = "palavra default" if not overrides else "palavra trial " + json.dumps(overrides, sort_keys=True)
    rows: list[tuple[str, WordVectors, dict[str, Any]]] = []
    alone = alone_cpu = None
    if "alone" in runs:
        stamp(f"{label}, gensim alone on the token file")
        cpu_started = cpu_seconds()
        trained = fit(token_file, config)
        alone, alone_cpu = trained.seconds + trained.vocab_seconds, cpu_seconds() - cpu_started
        rows.append(
            (
                f"{label}, gensim alone",
                trained.vectors,
                {"seconds": alone, "cpu_seconds": alone_cpu, "words_per_s": trained.words_per_second},
            )
        )
    registry = Registry(home)
    cache = home / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    run = Word2VecRun(name="bench", corpus=[corpus], evaluate=False, train=config)
    for key, name in (
        ("cold", f"{label} end-to-end (cold)"),
        ("cached", f"{label} end-to-end (cached corpus)"),
    ):
        if key not in runs:
            continue
        stamp(name)
        started, cpu_started = time.perf_counter(), cpu_seconds()
        mv = train_word2vec(run, registry=registry, catalog=catalog, cache_dir=cache)
        seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu_started
        artifact = registry.open(mv.ref)
        vectors = WordVectors.load(artifact, mmap=False)
        info = {
            "disk_mb": sum(f.stat().st_size for f in Path(artifact.path).rglob("*") if f.is_file()) / 2**20,
            "epoch_seconds": _epoch_seconds(mv.metadata["training"]["epochs"]),
            "train_seconds": mv.metadata["training"]["seconds"],
            "seconds": seconds,
            "words_per_s": mv.metadata["training"]["words_per_second"],
            "cpu_seconds": cpu,
            "prepare_seconds": mv.metadata["corpus"]["prepare_seconds"],
            "cache_hit": mv.metadata["corpus"]["cache_hit"],
        }
        if alone is not None and alone_cpu is not None:
            info["ratio_to_gensim_alone"] = seconds / alone
            info["cpu_ratio_to_gensim_alone"] = cpu / alone_cpu
        rows.append((name, vectors, info))
    return rows


def _epoch_seconds(epochs: list[dict[str, Any]]) -> dict[str, float]:
    """Training seconds per model of the run (a joined model trains FastText, then a word-level half)."""
    out: dict[str, float] = {}
    for e in epochs:
        out[e.get("model", "train")] = out.get(e.get("model", "train"), 0.0) + e["seconds"]
    return out


def table(results: list[dict[str, Any]]) -> str:
    head = (
        "| model | train s | words/s | 3CosAdd answered | 3CosAdd all | 3CosMul answered | 3CosMul all "
        "| answered | semantic all | syntactic all | SimLex ρ | SimLex OOV | echo |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    examples = [
        "",
        "Neighbours (exact top 10) of three words, and the orthographic echo (share of the top-10",
        "neighbours of the 1,000 most frequent words that contain the word or share its first five letters):",
        "",
    ]
    for r in results:
        echo = r["scores"].get("neighbours", {})
        for mode, s in r["scores"].items():
            if mode == "neighbours":
                continue
            lines.append(
                f"| {r['name']} ({mode}) | {r['seconds']:.0f} | {r['words_per_s'] / 1e6:.2f}M "
                f"| {s['add']:.1%} | {s['add_all']:.1%} | {s['mul']:.1%} | {s['mul_all']:.1%} "
                f"| {s['answered']}/{s['questions']} | {s['semantic_all']:.1%} | {s['syntactic_all']:.1%} "
                f"| {s['simlex']:.3f} | {s['simlex_oov']:.1%} | {_share(echo.get('echo'))} |"
            )
        examples.append(f"* {r['name']}: echo {_share(echo.get('echo'))}")
        for word, neighbours in echo.get("examples", {}).items():
            examples.append(f"  * *{word}*: {', '.join(neighbours)}")
    return "\n".join(lines + examples)


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default="corpus-all")
    parser.add_argument("--mirror", type=Path, default=DEFAULT_MIRROR)
    parser.add_argument("--analogies", default="analogies-lx-br-dev")
    parser.add_argument("--pairs", default="simlex-lx-999")
    parser.add_argument("--skip-fasttext", action="store_true")
    parser.add_argument("--gensim-sg", action="store_true", help="also gensim skip-gram 300d (slow)")
    parser.add_argument("--skip-palavra", action="store_true")
    parser.add_argument("--tag", default="word2vec", help="names benchmarks/out/<tag>.json and <tag>-home/")
    parser.add_argument("--skip-gensim", action="store_true", help="no gensim-defaults peer")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="override a palavra training setting for a trial, e.g. --set vector_size=200 (repeatable)",
    )
    parser.add_argument(
        "--fit-only", action="store_true", help="palavra: gensim alone only (same as --palavra-runs alone)"
    )
    parser.add_argument(
        "--abtt",
        default="",
        type=lambda v: [int(x) for x in v.split(",") if x],
        help="also score every model post-processed by all-but-the-top with these component counts (e.g. 1,3)",
    )
    parser.add_argument(
        "--palavra-runs",
        default="alone,cold,cached",
        help="palavra runs to do: alone (gensim on the token file), cold (raw text, empty cache), cached",
    )
    args = parser.parse_args()
    overrides: dict[str, Any] = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set takes KEY=JSON, got {item!r}")
        overrides[key] = json.loads(value)
    logging.basicConfig(level=logging.WARNING)
    OUT.mkdir(parents=True, exist_ok=True)
    home = OUT / f"{args.tag}-home"
    shutil.rmtree(home, ignore_errors=True)
    catalog = DataCatalog(args.mirror, home / "datasets")
    evaluator = Evaluator(catalog, args.analogies, args.pairs)
    stamp("prepare the token file (palavra default normalisation, cold cache)")
    prepared = prepare_corpus(catalog.resolve(args.corpus), NormalizeConfig(), cache_dir=home / "tokens")
    stamp(f"{prepared.n_tokens:,} tokens in {prepared.seconds:.0f} s")
    results: list[dict[str, Any]] = []

    def record(name: str, vectors: WordVectors, info: dict[str, Any]) -> None:
        results.append({"name": name, **info, "vocabulary": len(vectors), "scores": evaluator.score(vectors)})
        stamp(f"{name}: {json.dumps(results[-1], default=float)}")
        (OUT / f"{args.tag}.json").write_text(json.dumps(results, indent=1, default=float), encoding="utf-8")
        for components in args.abtt:  # the same vectors post-processed: costs an evaluation, not a training
            processed, _ = all_but_the_top(vectors, components)
            results.append(
                {
                    "name": f"{name} + abtt {components}",
                    **info,
                    "vocabulary": len(processed),
                    "scores": evaluator.score(processed),
                }
            )
            stamp(f"{results[-1]['name']}: {json.dumps(results[-1]['scores'], default=float)}")

    token_file, n = prepared.path, prepared.n_tokens
    if not args.skip_gensim:
        stamp("gensim defaults")
        record("gensim defaults (CBOW 100d, 5 ep)", *gensim_peer(token_file, n))
    if args.gensim_sg:
        stamp("gensim skip-gram 300d")
        record(
            "gensim skip-gram 300d neg10",
            *gensim_peer(token_file, n, sg=1, vector_size=300, negative=10, sample=1e-4),
        )
    if not args.skip_palavra:
        for name, vectors, info in palavra_runs(
            args.corpus,
            catalog,
            home,
            token_file,
            overrides,
            ["alone"] if args.fit_only else args.palavra_runs.split(","),
        ):
            record(name, vectors, info)
    if not args.skip_fasttext:
        stamp("fastText C++ skip-gram 300d")
        record(
            "fastText skip-gram 300d (C++)",
            *fasttext_peer(token_file, n, evaluator.test_words, dim=300, epochs=5),
        )
    print(f"corpus: {args.corpus}, {n:,} tokens; prepare (cold, 2 workers): {prepared.seconds:.0f} s\n")
    print(table(results))


if __name__ == "__main__":
    main()
