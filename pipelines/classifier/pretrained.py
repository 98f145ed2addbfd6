"""Initialising the word rows of a classifier's embedding from a registered Word2Vec / FastText model.

Each classifier word is looked up after normalising it the way the embeddings' own words were (the artifact's
normalisation, read by :func:`read_normalize` as serving reads it, for trained and imported models alike),
so a model trained with folded accents still finds "ação". Words the model lacks get FastText subword vectors
when it has them, otherwise they keep their random start. Vectors are scaled to unit mean norm so they start on
the same footing as the trained rows; character and word n-gram rows, which no word-vector model provides, start
random and are always trained.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from models.errors import InvalidInput, ModelNotFound, PalavraError
from models.mlp import BagOfFeaturesMLP
from models.references import VECTOR_KINDS
from models.registry import Registry
from models.vectors import WordVectors
from models.vectors import load as read_vector_artifact
from pipelines.serving.served_vectors import read_normalize
from pipelines.text.normalize import NormalizeConfig, Normalizer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pretrained:
    """Vectors for a classifier vocabulary: one row per word, and which rows were found."""

    ref: str
    matrix: npt.NDArray[np.float32]
    found: npt.NDArray[np.bool_]

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    def describe(self) -> dict[str, Any]:
        return {
            "model": self.ref,
            "dim": self.dim,
            "coverage": float(self.found.mean()) if self.found.size else 0.0,
        }


def open_vectors(registry: Registry, ref: str) -> tuple[WordVectors, str, NormalizeConfig]:
    """The word vectors of a registered model, with its resolved ref and the normalisation of its words.

    Raises:
        ModelNotFound: no such model (the message says how to list the available ones).
        InvalidInput: the model is not a word2vec or fasttext model.
        InvalidConfig: the model's ``normalize.json`` is not a valid normalisation config.
    """
    try:
        artifact = registry.open(ref, kind=VECTOR_KINDS)
    except ModelNotFound as exc:
        raise ModelNotFound(
            f"unknown embeddings model {ref!r}: {exc.detail}; list them with `palavra models list --kind word2vec` "
            "(or --kind fasttext)",
            model=ref,
        ) from exc
    stored = read_vector_artifact(artifact)
    return stored.vectors, stored.ref, read_normalize(stored)


def word_matrix(
    vectors: WordVectors, words: list[str], *, ref: str, normalize: NormalizeConfig | None, seed: int
) -> Pretrained:
    """Rows for ``words`` from ``vectors`` (subwords for unknown words when the model has them)."""
    mapper = Normalizer(normalize) if normalize is not None else None
    rng = np.random.default_rng(seed)
    matrix = np.zeros((len(words), vectors.dim), dtype=np.float32)
    found = np.zeros(len(words), dtype=bool)
    for i, word in enumerate(words):
        key = mapper.word(word) if mapper is not None else word
        row = vectors.index.get(key)
        if row is not None:
            matrix[i], found[i] = vectors.vectors[row], True
        elif vectors.has_subwords:
            with contextlib.suppress(PalavraError):
                matrix[i], found[i] = vectors.vector(key), True
    norms = np.linalg.norm(matrix[found], axis=1)
    scale = float(norms.mean()) if norms.size and norms.mean() > 0 else 1.0
    matrix /= scale
    matrix[~found] = rng.uniform(
        -1.0 / vectors.dim, 1.0 / vectors.dim, size=(int((~found).sum()), vectors.dim)
    )
    log.info("pretrained %s: %d of %d words found", ref, int(found.sum()), len(words))
    return Pretrained(ref, matrix, found)


def apply_pretrained(model: BagOfFeaturesMLP, pretrained: Pretrained, *, freeze: bool) -> None:
    """Copy the word rows into ``model``; with ``freeze``, those rows never change (their gradients are dropped).

    Raises:
        InvalidInput: the model's embedding width differs from the vectors'.
    """
    weight = model.embedding.weight
    if weight.shape[1] != pretrained.dim:
        raise InvalidInput(
            f"embedding width {weight.shape[1]} differs from {pretrained.ref}'s {pretrained.dim}"
        )
    n = pretrained.matrix.shape[0]
    with torch.no_grad():
        weight[:n] = torch.from_numpy(pretrained.matrix)
    if not freeze:
        return
    if n >= weight.shape[0]:
        weight.requires_grad_(False)
        return
    weight.register_hook(lambda grad: _drop_rows(grad, n))


def _drop_rows(grad: torch.Tensor, n: int) -> torch.Tensor:
    """The gradient without its first ``n`` rows (the frozen word vectors)."""
    if grad.is_sparse:
        grad = grad.coalesce()
        keep = grad.indices()[0] >= n
        return torch.sparse_coo_tensor(
            grad.indices()[:, keep], grad.values()[keep], grad.shape, check_invariants=False
        )
    grad = grad.clone()
    grad[:n] = 0
    return grad
