"""Registered vectors in and out of the standard word2vec files: import (e.g. NILC's embeddings) and export.

An imported model is an ordinary ``word2vec`` artifact (written by :func:`models.vectors.save`): vectors, a config
(where it came from), the normalisation and metadata, so the HTTP layer serves it like a trained one. The normalisation of its
query words is taken from a config the caller gives or inferred from the vocabulary (lowercase when the
frequent words hold no capitals; digits mapped to 0 when the only digit in them is 0).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from models.references import VECTOR_KINDS, Kind
from models.registry import ModelVersion, Registry, sha256_file
from models.vectors import WordVectors
from models.vectors import load as read_vector_artifact
from models.vectors import save as save_vectors
from pipelines.text.normalize import NormalizeConfig
from pipelines.word2vec.io_formats import export_word2vec, import_word2vec

log = logging.getLogger(__name__)

#: How many of the first (most frequent) words the normalisation is inferred from.
INFER_FROM = 20_000
#: Share of those words allowed to break a rule (stray tokens) before the rule is not assumed.
_TOLERANCE = 0.002


def infer_normalize(words: list[str]) -> NormalizeConfig:
    """The normalisation that the (frequency-ordered) vocabulary ``words`` looks like it went through."""
    sample = words[:INFER_FROM]
    limit = int(len(sample) * _TOLERANCE)
    capitalised = sum(1 for w in sample if any(c.isupper() for c in w))
    nonzero_digits = sum(1 for w in sample if any(c.isdigit() and c != "0" for c in w))
    zeros = sum(1 for w in sample if "0" in w)
    return NormalizeConfig(
        lowercase=capitalised <= limit,
        numbers="zero" if zeros > 0 and nonzero_digits <= limit else "keep",
    )


def import_model(
    path: Path,
    *,
    name: str,
    registry: Registry,
    binary: bool = False,
    normalize: NormalizeConfig | None = None,
) -> ModelVersion:
    """Read a word2vec text / binary file and register it as a new version of ``name``.

    Raises:
        CorpusError: the file is missing or not in the format asked for.
        InvalidInput: ``name`` is not a valid model name.
    """
    registry.check_kind(name, Kind.WORD2VEC.value)  # before reading: the name may hold another kind of model
    vectors, report = import_word2vec(path, binary=binary)
    inferred = normalize is None
    config = normalize or infer_normalize(vectors.words)
    source: dict[str, Any] = {
        "imported_from": str(Path(path).resolve()),
        "format": "word2vec-binary" if binary else "word2vec-text",
        "sha256": sha256_file(Path(path)),
    }
    with registry.create(name, Kind.WORD2VEC.value) as writer:
        save_vectors(
            writer,
            vectors,
            normalize=config.model_dump(mode="json"),
            config={"name": name, "source": source, "normalize_inferred": inferred},
        )
        writer.metadata.update(
            data_hash=source["sha256"],
            source=source,
            imported={
                "words": len(vectors),
                "dim": vectors.dim,
                "declared_words": report.declared_words,
                "duplicates_skipped": report.duplicates,
                "undecodable_words": report.undecodable,
                "whitespace_words_skipped": report.whitespace,
                "notes": report.notes,
                "normalize_inferred": inferred,
            },
        )
    version: ModelVersion = writer.version  # type: ignore[attr-defined]
    return version


def load_vectors(registry: Registry, ref: str) -> WordVectors:
    """The (checksum-verified) vectors of a registered word-vector model."""
    return read_vector_artifact(registry.open(ref, kind=VECTOR_KINDS)).vectors


def export_model(registry: Registry, ref: str, output: Path, *, binary: bool = False) -> dict[str, Any]:
    """Write a registered model's word vectors to ``output`` (FastText n-grams are not part of the format)."""
    vectors = load_vectors(registry, ref)
    mv = registry.get(ref)
    words = export_word2vec(vectors, output, binary=binary)
    if vectors.has_subwords:
        log.info("%s: subword n-grams are not exported; unknown words will have no vector", mv.ref)
    return {
        "model": mv.ref,
        "output": str(output),
        "format": "word2vec-binary" if binary else "word2vec-text",
        "words": words,
        "dim": vectors.dim,
        "subwords_dropped": vectors.has_subwords,
    }
