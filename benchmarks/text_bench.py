"""ASSIN 2 sentence similarity and paraphrase retrieval: palavra's encoders and search modes against simple peers.

Usage (one run measures every method on the same pairs):

    PALAVRA_HOME=... PALAVRA_DATA_MIRROR=../shared/data \\
        .venv/bin/python benchmarks/text_bench.py --encoders machado-sif,machado-siames [--split assin2-dev]

STS: Pearson and Spearman of each method's score against the gold similarity. Peers: word overlap (Jaccard of
lowercased word sets) and TF-IDF cosine (scikit-learn, fitted on the split's sentences).
Trained encoders must not be trained on pairs of the split they are scored on: ``--write-clean-train FILE`` writes
assin2-train without the dev pairs it repeats (401 of 500), to train with ``--pairs FILE``.
Peers (``--peers``): gensim skip-gram (300d, negative 10) and fastText's C++ skip-gram (300d, 5 epochs, subwords 3-6)
trained on the same corpus as palavra's default vectors (``--corpus``, tokens normalised as palavra's defaults do),
registered as plain word-vector models (fastText with the vectors it composes for the split's unknown words), and
pooled by palavra's ``mean`` and ``sif`` encoders exactly as palavra's own vectors are.
Retrieval: each pair scored >= 4.5 is a query (its first sentence) with one relevant document (its second) among
every distinct sentence of the split, the query itself excluded; recall@1, recall@10 and MRR@10 for TF-IDF, BM25
(palavra's lexical mode), and palavra's vector and hybrid modes.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from models.collection import CollectionStore, Document
from models.references import Kind
from models.registry import Registry
from models.vectors import WordVectors
from models.vectors import save as save_vectors
from pipelines.serving.search import Searcher
from pipelines.text.normalize import NormalizeConfig, Normalizer
from pipelines.text.preprocess import prepare_corpus
from pipelines.text_encoder.build import pooling_model
from pipelines.text_encoder.evaluate import correlations
from pipelines.text_encoder.pairs import Pair, read_pairs
from pipelines.text_encoder.served import TextEncoderModel, load_text_encoder
from services.factories import open_catalog, open_registry
from services.settings import get_settings

WORD = re.compile(r"\w+")


def jaccard(pairs: list[Pair]) -> list[float]:
    out = []
    for p in pairs:
        a, b = set(WORD.findall(p.sentence1.lower())), set(WORD.findall(p.sentence2.lower()))
        out.append(len(a & b) / max(1, len(a | b)))
    return out


def tfidf_vectors(texts: list[str]) -> Any:
    return TfidfVectorizer(lowercase=True).fit(texts).transform(texts)


def tfidf_cosine(pairs: list[Pair]) -> list[float]:
    texts = [s for p in pairs for s in (p.sentence1, p.sentence2)]
    m = tfidf_vectors(texts)
    return [float(m[2 * i].multiply(m[2 * i + 1]).sum()) for i in range(len(pairs))]


def retrieval_queries(pairs: list[Pair]) -> tuple[list[str], list[tuple[int, int]]]:
    corpus = list(dict.fromkeys(s for p in pairs for s in (p.sentence1, p.sentence2)))
    index = {s: i for i, s in enumerate(corpus)}
    queries = [
        (index[p.sentence1], index[p.sentence2])
        for p in pairs
        if p.score >= 4.5 and p.sentence1 != p.sentence2
    ]
    return corpus, queries


def ranking_scores(ranked: list[list[int]], queries: list[tuple[int, int]]) -> dict[str, float]:
    r1 = r10 = mrr = 0.0
    for (q, rel), ids in zip(queries, ranked, strict=True):
        ids = [i for i in ids if i != q][:10]
        if ids[:1] == [rel]:
            r1 += 1
        if rel in ids:
            r10 += 1
            mrr += 1.0 / (ids.index(rel) + 1)
    n = len(queries)
    return {"recall@1": r1 / n, "recall@10": r10 / n, "mrr@10": mrr / n}


def write_clean_train(out: Path, train: str, heldout: str) -> dict[str, int]:
    """``train`` minus every pair that also occurs (either order) in ``heldout``, as JSONL.

    ASSIN 2's train-only file repeats 401 of the 500 dev pairs (394 with the same score): an encoder trained on it
    and scored on dev is partly scored on its own training pairs.
    """
    catalog = open_catalog(get_settings())
    held = {frozenset((p.sentence1, p.sentence2)) for p in read_pairs(catalog.resolve(heldout)[0])}
    pairs = read_pairs(catalog.resolve(train)[0])
    kept = [p for p in pairs if frozenset((p.sentence1, p.sentence2)) not in held]
    with out.open("w", encoding="utf-8") as fh:
        for p in kept:
            row = {"sentence1": p.sentence1, "sentence2": p.sentence2, "score": p.score}
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return {"train": len(pairs), "kept": len(kept), "dropped": len(pairs) - len(kept)}


def train_peers(registry: Registry, corpus: str, pairs: list[Pair]) -> dict[str, dict[str, float]]:
    """Train the two peer vector models on ``corpus`` and register them as ``peer-gensim`` / ``peer-fasttext``."""
    from word2vec_bench import fasttext_peer, gensim_peer

    settings = get_settings()
    catalog = open_catalog(settings)
    normalize = NormalizeConfig()
    prepared = prepare_corpus(catalog.resolve(corpus), normalize, cache_dir=settings.home / "cache" / "peers")
    split_words = {
        t
        for toks in Normalizer(normalize).pipe(s for p in pairs for s in (p.sentence1, p.sentence2))
        for t in toks
    }
    seconds: dict[str, dict[str, float]] = {}
    gensim_vectors, info = gensim_peer(
        prepared.path, prepared.n_tokens, sg=1, vector_size=300, negative=10, sample=1e-4
    )
    seconds["peer-gensim"] = info
    ft_vectors, info = fasttext_peer(prepared.path, prepared.n_tokens, split_words, dim=300, epochs=5)
    seconds["peer-fasttext"] = info
    unknown = sorted(w for w in split_words if w not in ft_vectors.index)
    composed = [ft_vectors.vector(w) for w in unknown]
    ft_full = WordVectors(
        [*ft_vectors.words, *unknown],
        np.vstack([np.asarray(ft_vectors.vectors, np.float32), *composed])
        if composed
        else ft_vectors.vectors,
        counts=np.concatenate([np.asarray(ft_vectors.counts, np.int64), np.ones(len(unknown), np.int64)]),
    )
    for name, vectors in (("peer-gensim", gensim_vectors), ("peer-fasttext", ft_full)):
        with registry.create(name, Kind.WORD2VEC.value) as writer:
            save_vectors(writer, vectors, normalize=normalize.model_dump(mode="json"), config={"peer": name})
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoders", help="Comma-separated registered encoders.")
    parser.add_argument("--split", default="assin2-dev")
    parser.add_argument(
        "--peers",
        choices=("train", "registered", "none"),
        default="none",
        help="gensim and fastText peers: train and register them on --corpus, or reuse those registered",
    )
    parser.add_argument("--corpus", default="corpus-all", help="the peers' training corpus")
    parser.add_argument(
        "--write-clean-train",
        type=Path,
        help="Write assin2-train minus the --split pairs to this JSONL and stop.",
    )
    args = parser.parse_args()
    if args.write_clean_train:
        print(json.dumps(write_clean_train(args.write_clean_train, "assin2-train", args.split)))
        return
    if not args.encoders and args.peers == "none":
        parser.error("give --encoders, --peers, or both")
    settings = get_settings()
    registry = open_registry(settings)
    pairs = read_pairs(open_catalog(settings).resolve(args.split)[0])
    gold = [p.score for p in pairs]
    sts: dict[str, dict[str, float]] = {
        "jaccard": correlations(jaccard(pairs), gold),
        "tfidf-cosine": correlations(tfidf_cosine(pairs), gold),
    }
    corpus, queries = retrieval_queries(pairs)
    m = tfidf_vectors(corpus)
    sims = (m[[q for q, _ in queries]] @ m.T).toarray()
    retrieval: dict[str, dict[str, float]] = {
        "tfidf": ranking_scores([list(np.argsort(-row, kind="stable")[:11]) for row in sims], queries)
    }
    timing: dict[str, float] = {}
    peer_training: dict[str, dict[str, float]] = {}
    if args.peers == "train":
        peer_training = train_peers(registry, args.corpus, pairs)
    models: list[tuple[str, TextEncoderModel]] = []
    if args.peers != "none":
        for words in ("peer-gensim", "peer-fasttext"):
            for pooling in ("mean", "sif"):
                models.append((f"{words} {pooling}", pooling_model(registry, words, pooling=pooling)[0]))
    for ref in filter(None, (args.encoders or "").split(",")):
        models.append((ref, load_text_encoder(registry, ref)))
    for ref, model in models:
        sts[ref] = correlations(model.similarity([(p.sentence1, p.sentence2) for p in pairs]), gold)
        started = time.perf_counter()
        vectors = model.embed(corpus)
        timing[ref] = len(corpus) / (time.perf_counter() - started)
        with tempfile.TemporaryDirectory() as tmp:
            store = CollectionStore(Path(tmp))
            docs = [Document(str(i), s, {}) for i, s in enumerate(corpus)]
            with store.create("bench", {"encoder": ref.replace(" ", "-"), "dim": model.dim}) as writer:
                writer.add(docs, vectors, model.tokens(corpus))
            searcher = Searcher(store.read("bench"), model)
            for mode in ("lexical", "vector", "hybrid"):
                ranked = [
                    [int(h.id) for h in searcher.search(corpus[q], k=11, mode=mode)] for q, _ in queries
                ]
                name = "bm25" if mode == "lexical" else f"{ref} {mode}"
                retrieval[name] = ranking_scores(ranked, queries)
    print(
        json.dumps(
            {
                "split": args.split,
                "pairs": len(pairs),
                "queries": len(queries),
                "documents": len(corpus),
                "sts": sts,
                "retrieval": retrieval,
                "encode_texts_per_s": timing,
                "peer_training": peer_training,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
