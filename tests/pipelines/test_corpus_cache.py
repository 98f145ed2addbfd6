"""The prepared-corpus cache: bounded in size (least recently used out first, never an entry in use), and
entries whose inputs are gone or changed removed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from models.errors import CorpusError
from pipelines.reading import corpus_cache
from pipelines.reading.corpus import CorpusLimits
from pipelines.text import preprocess
from pipelines.text.normalize import NormalizeConfig
from pipelines.text.preprocess import PreparedCorpus, prepare_corpus
from tests.conftest import make_sentences


def _source(folder: Path, name: str, n: int = 200) -> Path:
    path = folder / name
    path.write_text("\n".join(make_sentences(n, seed=len(name) + n)) + "\n", encoding="utf-8")
    return path


def _prepare(src: Path, cache: Path, limits: CorpusLimits | None = None) -> PreparedCorpus:
    prepared = prepare_corpus([src], NormalizeConfig(), cache_dir=cache, workers=1, limits=limits)
    corpus_cache.release(prepared.path.with_suffix(".json"))  # as when the job that used it has ended
    return prepared


def _keys(cache: Path) -> set[str]:
    return {e.key for e in corpus_cache.entries(cache / "corpus")}


def test_cache_evicts_least_recently_used_entries_past_its_cap(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    a, b, c = (_source(tmp_path, name) for name in ("a.txt", "b.txt", "c.txt"))
    first = _prepare(a, cache)
    entry = next(iter(corpus_cache.entries(cache / "corpus")))
    cap = int(entry.size * 2.5)  # room for two entries of this size
    limits = CorpusLimits(max_cache_bytes=cap)
    second = _prepare(b, cache, limits)
    old = os.stat(second.path.with_suffix(".json")).st_mtime - 60
    for p in (first, second):
        os.utime(p.path.with_suffix(".json"), (old, old))
    assert _prepare(a, cache, limits).cache_hit  # a is used again: b is now the least recently used
    third = _prepare(c, cache, limits)
    assert _keys(cache) == {first.path.stem, third.path.stem}
    assert sum(e.size for e in corpus_cache.entries(cache / "corpus")) <= cap


def test_cache_never_evicts_an_entry_in_use(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    in_use = prepare_corpus([_source(tmp_path, "a.txt")], NormalizeConfig(), cache_dir=cache, workers=1)
    assert corpus_cache.evict(cache / "corpus", 0) == []  # still held by this process, as by a training
    assert in_use.path.is_file()
    corpus_cache.release(in_use.path.with_suffix(".json"))
    assert corpus_cache.evict(cache / "corpus", 0) == [in_use.path.stem]
    assert not in_use.path.exists()


def test_cache_removes_entries_whose_inputs_are_gone_or_changed(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    gone, changed, kept = (_source(tmp_path, name) for name in ("gone.txt", "changed.txt", "kept.txt"))
    prepared = {p.name: _prepare(p, cache) for p in (gone, changed, kept)}
    gone.unlink()  # e.g. the upload of a job that failed
    changed.write_text("Outra frase.\n", encoding="utf-8")
    assert sorted(corpus_cache.prune(cache / "corpus")) == sorted(
        prepared[n].path.stem for n in ("gone.txt", "changed.txt")
    )
    assert _keys(cache) == {prepared["kept.txt"].path.stem}


def test_cache_refuses_a_corpus_larger_than_its_cap_and_keeps_nothing(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    src = _source(tmp_path, "a.txt", 600)
    with pytest.raises(CorpusError, match=r"grows past 2,000 bytes.*PALAVRA_CACHE_MAX_BYTES"):
        prepare_corpus(
            [src], NormalizeConfig(), cache_dir=cache, workers=1, limits=CorpusLimits(max_cache_bytes=2000)
        )
    assert list((cache / "corpus").iterdir()) == []


def test_cache_limits_reach_the_preprocessing_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _source(tmp_path, "a.txt", 600)
    with src.open("a", encoding="utf-8") as fh:
        fh.write("palavra " * 100 + "\n")
    monkeypatch.setattr(preprocess, "MIN_BYTES_PER_WORKER", 1)
    with pytest.raises(CorpusError, match="a line longer than 200 bytes"):
        prepare_corpus(
            [src],
            NormalizeConfig(),
            cache_dir=tmp_path / "cache",
            workers=2,
            limits=CorpusLimits(max_line_bytes=200),
        )
