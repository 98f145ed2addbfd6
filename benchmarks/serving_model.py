"""Train and register the word2vec model the serving benchmark uses: every corpus in ../shared/data, CBOW 300d,
min_count 2 (the largest vocabulary), normalised by palavra's default Normalizer; registered through
``services.factories.open_registry`` so the ANN hook builds its index when the vocabulary reaches PALAVRA_ANN_MIN_VOCAB.

    PALAVRA_HOME=/tmp/bench/home nice .venv/bin/python benchmarks/serving_model.py --name corpus-w2v [--copy]

``--copy`` registers the newest version again under the same name (same vectors and index files), so the swap
benchmark has two versions to move the production alias between; ``--copy --reindex`` builds the index anew.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "data" / "corpus"


def texts() -> Iterator[str]:
    for path in sorted(CORPUS.rglob("*")):
        if path.suffix == ".txt":
            yield from path.read_text(encoding="utf-8", errors="replace").splitlines()
        elif path.suffix == ".jsonl":
            with path.open(encoding="utf-8") as fh:
                for line in fh:
                    yield from json.loads(line)["text"].split("\n")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--name", default="corpus-w2v")
    parser.add_argument("--dim", type=int, default=300)
    parser.add_argument("--min-count", type=int, default=2)
    parser.add_argument("--copy", action="store_true")
    parser.add_argument(
        "--reindex", action="store_true", help="with --copy: rebuild the ANN index (current defaults)"
    )
    parser.add_argument(
        "--tokens", type=Path, default=Path(tempfile.gettempdir()) / "palavra-serving-tokens.txt"
    )
    args = parser.parse_args()

    from models.vectors import ANN_FILE, WordVectors, save
    from pipelines.text.normalize import NormalizeConfig, Normalizer
    from services.factories import open_registry
    from services.settings import get_settings

    registry = open_registry(get_settings())
    if args.copy:
        source = registry.open(args.name)
        with registry.create(args.name, source.version.kind) as w:
            for rel in source.version.metadata["files"]:
                if not (args.reindex and rel == ANN_FILE):
                    shutil.copyfile(source.file(rel), w.file(rel))
            if "ann" in source.version.metadata and not args.reindex:
                w.metadata["ann"] = source.version.metadata["ann"]
            if "components" in source.version.metadata:  # the index ones are recorded again when rebuilt
                kept = source.version.metadata["components"]
                w.metadata["components"] = [c for c in kept if not args.reindex or c != "index"]
        print(w.version.ref, w.version.metadata.get("ann"))  # type: ignore[attr-defined]
        return

    import numpy as np
    from gensim.models import Word2Vec

    import pipelines.text.normalize

    # the chunk cache's eviction can drop chunks of the batch being normalised (KeyError, reported);
    # the corpus has well under 10M distinct chunks, so never evict here
    pipelines.text.normalize.MAX_CACHED_CHUNKS = 10**9
    normalizer = Normalizer(NormalizeConfig())
    t = time.perf_counter()
    if not args.tokens.exists():
        with args.tokens.open("w", encoding="utf-8") as out:
            for toks in normalizer.pipe(line for line in texts() if line.strip()):
                if toks:
                    out.write(" ".join(toks) + "\n")
    tokenized = time.perf_counter() - t
    model = Word2Vec(
        corpus_file=str(args.tokens), vector_size=args.dim, min_count=args.min_count, workers=2, sg=0
    )
    trained = time.perf_counter() - t - tokenized
    kv = model.wv
    counts = np.asarray([kv.get_vecattr(w, "count") for w in kv.index_to_key], dtype=np.int64)
    vectors = WordVectors(list(kv.index_to_key), np.asarray(kv.vectors, dtype=np.float32), counts=counts)
    with registry.create(args.name, "word2vec") as w:
        save(w, vectors, normalize=normalizer.describe())
        w.metadata["training"] = {
            "tokenize_s": round(tokenized, 1),
            "train_s": round(trained, 1),
            "dim": args.dim,
        }
    print(w.version.ref, f"{len(vectors):,} words", w.version.metadata.get("ann"))  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
