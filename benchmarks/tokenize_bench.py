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
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.reading.corpus import iter_documents, list_files
from pipelines.text.normalize import NormalizeConfig, Normalizer
from pipelines.text.preprocess import prepare_corpus
from pipelines.text.tokenize import Tokenizer, _kind

WORD_RE = re.compile(r"\w+")


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


ROWS: list[tuple[str, float, float]] = []  # label, wall seconds, CPU seconds


def timed(label: str, fn: Callable[[], int]) -> int:
    start, cpu = time.perf_counter(), _cpu()
    n = fn()
    secs, cpu_secs = time.perf_counter() - start, _cpu() - cpu
    print(f"  {label}: {secs:.1f} s wall, {cpu_secs:.1f} s CPU", file=sys.stderr)
    ROWS.append((label, secs, cpu_secs))
    return n


def loaded() -> Tokenizer:
    """A fresh Tokenizer with spaCy already loaded, so no timed row pays for importing spaCy."""
    tok = Tokenizer()
    tok.nlp.tokenizer("aquecer")
    return tok


def spacy_count(tok: Tokenizer, docs: list[str]) -> int:
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

    timed("regex `\\w+` (not spaCy's tokens)", lambda: sum(len(WORD_RE.findall(d)) for d in docs))
    reference, fast, for_normalizer = loaded(), loaded(), loaded()
    timed("spaCy `nlp.tokenizer.pipe`, 1 process", lambda: spacy_count(reference, docs))
    n_tokens = timed("palavra `Tokenizer.pipe`, 1 process", lambda: sum(map(len, fast.pipe(docs))))
    normalizer = Normalizer(NormalizeConfig(), tokenizer=for_normalizer)
    timed(
        "palavra `Normalizer.pipe` (tokenise + normalise), 1 process",
        lambda: sum(map(len, normalizer.pipe(docs))),
    )
    with tempfile.TemporaryDirectory() as tmp:
        if args.limit is None:
            sources = [args.corpus]
        else:
            sources = [Path(tmp) / "sample.txt"]
            sources[0].write_text("\n".join(d.replace("\n", " ") for d in docs) + "\n", encoding="utf-8")
        out_tokens = timed(
            "palavra `prepare_corpus`, 2 workers (read, normalise, write)",
            lambda: prepare_corpus(sources, NormalizeConfig(), cache_dir=Path(tmp), workers=2).n_tokens,
        )

    load_after = os.getloadavg()[0]
    agree = agreement(docs)
    n = int(agree["tokens"])
    spacy_wall, spacy_cpu = ROWS[1][1], ROWS[1][2]
    print(f"\nCorpus: {args.corpus} ({size / 1e6:.0f} MB, {len(docs):,} documents, {n:,} spaCy tokens)\n")
    print("| tokenizer | wall s | tokens/s | vs spaCy (wall) | CPU s | tokens/CPU-s | vs spaCy (CPU) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, secs, cpu in ROWS:
        print(
            f"| {label} | {secs:.1f} | {n / secs / 1e6:.2f}M | {spacy_wall / secs:.2f}x "
            f"| {cpu:.1f} | {n / cpu / 1e6:.2f}M | {spacy_cpu / cpu:.2f}x |"
        )
    print(
        f"\nAgreement with spaCy: {agree['exact_docs_share']:.4%} of spaCy's tokens lie in documents tokenised "
        f"identically; {agree['aligned_share']:.4%} align token by token; kinds identical for "
        f"{agree['kinds_share']:.4%}. palavra produced {n_tokens:,} tokens; prepare_corpus wrote "
        f"{out_tokens:,} normalised tokens."
    )
    print(
        f"\nLoad average (2 cores, shared): {load_before:.1f} at start, {load_after:.1f} after the timed runs."
    )


if __name__ == "__main__":
    main()
