"""benchmarks/word2vec_halves.py reads a kept FastText half with the n-gram lengths it was trained with."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from gensim.models.fasttext import ft_ngram_hashes

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _halves() -> ModuleType:
    # the script puts benchmarks/ and the repository on sys.path itself, as when run
    spec = importlib.util.spec_from_file_location("word2vec_halves", BENCHMARKS / "word2vec_halves.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _keep(folder: Path, info: dict[str, object]) -> None:
    folder.mkdir(parents=True)
    (folder / "words.json").write_text(json.dumps(["casa", "cidade"]), encoding="utf-8")
    np.save(folder / "vectors.npy", np.eye(2, 4, dtype=np.float32))
    np.save(folder / "counts.npy", np.array([10, 5]))
    np.save(folder / "ngrams.npy", np.arange(4000, dtype=np.float32).reshape(1000, 4))
    (folder / "info.json").write_text(json.dumps(info), encoding="utf-8")


def test_a_kept_half_is_read_with_its_own_n_gram_lengths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    halves = _halves()
    monkeypatch.setattr(halves, "HALVES", tmp_path)
    _keep(tmp_path / "new", {"set": {}, "min_n": 3, "max_n": 5})
    _keep(tmp_path / "given", {"set": {"max_n": 4}})  # kept before info.json recorded the lengths
    _keep(tmp_path / "old", {"set": {}})
    assert [(h.min_n, h.max_n) for h in map(halves.load, ["new", "given", "old"])] == [(3, 5), (3, 4), (3, 6)]
    # an unknown word is built from the n-grams it was trained with: 3-5 hashes only
    new = halves.load("new")
    rows = ft_ngram_hashes("casarão", 3, 5, 1000)
    expected = np.asarray(new.ngrams)[rows].mean(axis=0)
    assert np.allclose(new.vector("casarão"), expected)
