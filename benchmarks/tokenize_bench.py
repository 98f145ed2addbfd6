"""Tokenisation speed and agreement with spaCy on the real corpus; prints a markdown table.

    nice .venv/bin/python benchmarks/tokenize_bench.py [--corpus ../shared/data/corpus] [--limit DOCS]

Rows: a regex ``\\w+`` (a speed ceiling, not spaCy's tokens), spaCy ``spacy.blank("pt").tokenizer.pipe`` in one
process, palavra's :class:`Tokenizer` in one process (cold cache), palavra's :class:`Normalizer` (tokenise +
normalise, one process), and :func:`prepare_corpus` with 2 workers (read + tokenise + normalise + write, cold
cache). Speeds are spaCy (non-space) input tokens per second, so every row divides the same numerator.
Agreement: the share of spaCy's tokens inside documents where palavra's token sequence (and kinds) is identical;
differing documents are also aligned token by token.
"""

from __future__ import annotations

import argparse
import difflib
import itertools
import os
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.corpus import iter_documents, list_files
from pipelines.normalize import NormalizeConfig, Normalizer
from pipelines.preprocess import prepare_corpus
from pipelines.tokenize import Tokenizer, _kind

WORD_RE = re.compile(r"\w+")


def timed(label: str, fn: object) -> tuple[float, int]:
    start = time.perf_counter()
    n = fn()  # type: ignore[operator]
    secs = time.perf_counter() - start
    print(f"  {label}: {secs:.1f} s", file=sys.stderr)
    return secs, n


def spacy_count(docs: list[str]) -> int:
    tok = Tokenizer()
    n = 0
    for doc in tok.nlp.tokenizer.pipe(docs, batch_size=1000):
        n += len(doc)
    return n


def agreement(docs: list[str]) -> dict[str, float]:
    fast, ref = Tokenizer(), Tokenizer()
    total = same_docs_tokens = aligned = kinds_ok = 0
    for raws, doc in zip(fast.pipe(docs), ref.nlp.tokenizer.pipe(docs, batch_size=1000), strict=True):
        texts = [t.text for t in doc if not t.is_space]
        total += len(texts)
        got = [r.text for r in raws]
        if got == texts:
            same_docs_tokens += len(texts)
            aligned += len(texts)
            kinds = [_kind(t) for t in doc if not t.is_space]
            kinds_ok += sum(r.kind == k for r, k in zip(raws, kinds, strict=True))
        else:
            matcher = difflib.SequenceMatcher(a=texts, b=got, autojunk=False)
            aligned += sum(block.size for block in matcher.get_matching_blocks())
    return {
        "tokens": total,
        "exact_docs_share": same_docs_tokens / total,
        "aligned_share": aligned / total,
        "kinds_share": kinds_ok / total,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    default = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "corpus"
    parser.add_argument("--corpus", type=Path, default=default)
    parser.add_argument("--limit", type=int, default=None, help="only the first N documents")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    docs = list(itertools.islice(iter_documents([args.corpus]), args.limit))
    size = sum(f.size for f in list_files([args.corpus]))
    print(f"{len(docs):,} documents", file=sys.stderr)

    rows: list[tuple[str, float, int]] = []  # label, seconds, unused
    secs, _ = timed("regex", lambda: sum(len(WORD_RE.findall(d)) for d in docs))
    rows.append(("regex `\\w+` (not spaCy's tokens)", secs, 0))
    secs, _ = timed("spacy", lambda: spacy_count(docs))
    rows.append(("spaCy `nlp.tokenizer.pipe`, 1 process", secs, 0))
    secs, n_tokens = timed("palavra tokenizer", lambda: sum(map(len, Tokenizer().pipe(docs))))
    rows.append(("palavra `Tokenizer.pipe`, 1 process", secs, 0))
    secs, _ = timed("palavra normalizer", lambda: sum(map(len, Normalizer(NormalizeConfig()).pipe(docs))))
    rows.append(("palavra `Normalizer.pipe` (tokenise + normalise), 1 process", secs, 0))
    with tempfile.TemporaryDirectory() as tmp:
        if args.limit is None:
            sources = [args.corpus]
        else:
            sources = [Path(tmp) / "sample.txt"]
            sources[0].write_text("\n".join(d.replace("\n", " ") for d in docs) + "\n", encoding="utf-8")
        secs, out_tokens = timed(
            "prepare_corpus",
            lambda: prepare_corpus(sources, NormalizeConfig(), cache_dir=Path(tmp), workers=2).n_tokens,
        )
    rows.append(("palavra `prepare_corpus`, 2 workers (read, normalise, write)", secs, 0))

    worker_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    load_after = os.getloadavg()[0]
    agree = agreement(docs)
    n = int(agree["tokens"])
    spacy_rate = n / rows[1][1]
    print(f"\nCorpus: {args.corpus} ({size / 1e6:.0f} MB, {len(docs):,} documents, {n:,} spaCy tokens)\n")
    print("| tokenizer | seconds | tokens/s | vs spaCy |")
    print("|---|---:|---:|---:|")
    for label, secs, _ in rows:
        print(f"| {label} | {secs:.1f} | {n / secs / 1e6:.2f}M | {n / secs / spacy_rate:.2f}x |")
    print(
        f"\nAgreement with spaCy: {agree['exact_docs_share']:.4%} of spaCy's tokens lie in documents tokenised "
        f"identically; {agree['aligned_share']:.4%} align token by token; kinds identical for "
        f"{agree['kinds_share']:.4%}. palavra produced {n_tokens:,} tokens; prepare_corpus wrote "
        f"{out_tokens:,} normalised tokens."
    )
    print(
        f"\nLoad average (2 cores, shared): {load_before:.1f} at start, {load_after:.1f} after the timed runs; "
        f"peak RSS of a prepare_corpus worker {worker_rss:.0f} MB."
    )


if __name__ == "__main__":
    main()
