"""prepare_corpus: the gensim corpus_file output, counts, caching, workers, progress and errors."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import pytest

from models.errors import CorpusError, EmptyCorpus
from pipelines.reading.corpus import list_files, plan_slices
from pipelines.runs.progress import Progress
from pipelines.text import preprocess
from pipelines.text.normalize import NormalizeConfig
from pipelines.text.preprocess import prepare_corpus, write_part
from tests.conftest import SHARED_DATA


def test_output_is_one_sentence_per_line_with_single_spaces(tmp_path: Path) -> None:
    src = tmp_path / "c.txt"
    src.write_text("O Sr. Silva chegou. Depois saiu!\n\nEla ficou  em   casa\n", encoding="utf-8")
    prepared = prepare_corpus([src], NormalizeConfig(), cache_dir=tmp_path / "cache")
    assert prepared.path.read_text(encoding="utf-8") == "o sr. silva chegou\ndepois saiu\nela ficou em casa\n"
    assert (prepared.n_tokens, prepared.n_sentences, prepared.n_docs, prepared.skipped) == (10, 3, 2, 1)
    assert prepared.data_hash == hashlib.sha256(prepared.path.read_bytes()).hexdigest()
    assert not prepared.cache_hit


def test_documents_per_line_when_sentence_split_is_off(tmp_path: Path) -> None:
    src = tmp_path / "c.txt"
    src.write_text("Um. Dois.\nTrês\n", encoding="utf-8")
    prepared = prepare_corpus([src], NormalizeConfig(split_sentences=False), cache_dir=tmp_path)
    assert prepared.path.read_text(encoding="utf-8") == "um dois\ntrês\n"
    assert prepared.n_sentences == 2


def test_second_run_is_a_cache_hit_until_input_or_config_changes(
    tmp_path: Path, pt_corpus_file: Path
) -> None:
    src = tmp_path / "c.txt"
    src.write_bytes(pt_corpus_file.read_bytes())
    cache = tmp_path / "cache"
    first = prepare_corpus([src], NormalizeConfig(), cache_dir=cache)
    again = prepare_corpus([src], NormalizeConfig(), cache_dir=cache)
    assert again.cache_hit
    assert (again.path, again.n_tokens, again.data_hash) == (first.path, first.n_tokens, first.data_hash)

    other = prepare_corpus([src], NormalizeConfig(fold_accents=True), cache_dir=cache)
    assert not other.cache_hit
    assert other.path != first.path

    with src.open("a", encoding="utf-8") as fh:
        fh.write("Uma frase nova.\n")
    os.utime(src, ns=(src.stat().st_atime_ns, src.stat().st_mtime_ns + 10**9))
    changed = prepare_corpus([src], NormalizeConfig(), cache_dir=cache)
    assert not changed.cache_hit
    assert changed.n_sentences == first.n_sentences + 1
    leftovers = [p.name for p in (cache / "corpus").iterdir() if ".tmp-" in p.name]
    assert leftovers == []


def test_two_workers_write_exactly_what_one_writes(
    tmp_path: Path, pt_sentences: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("\n".join(pt_sentences[:300]), encoding="utf-8")
    jsonl = "".join(json.dumps({"text": s}, ensure_ascii=False) + "\n" for s in pt_sentences[300:])
    (tmp_path / "in" / "b.jsonl").write_text(jsonl, encoding="utf-8")
    one = prepare_corpus([tmp_path / "in"], NormalizeConfig(), cache_dir=tmp_path / "c1", workers=1)
    monkeypatch.setattr(preprocess, "MIN_BYTES_PER_WORKER", 1)
    seen: list[Progress] = []
    two = prepare_corpus(
        [tmp_path / "in"], NormalizeConfig(), cache_dir=tmp_path / "c2", progress=seen.append
    )
    assert two.path.read_bytes() == one.path.read_bytes()
    assert (two.n_tokens, two.n_sentences, two.n_docs) == (one.n_tokens, one.n_sentences, one.n_docs)
    assert one.n_docs == len(pt_sentences)
    fractions = [p.fraction for p in seen if p.fraction is not None]
    assert fractions[-1] == 1.0
    assert fractions == sorted(fractions)
    read = [p for p in seen if p.total is not None]
    assert {p.unit for p in read} == {"B"}
    assert read[-1].done == read[-1].total == sum(f.stat().st_size for f in (tmp_path / "in").iterdir())


def test_workers_progress_moves_while_they_work(
    tmp_path: Path, pt_sentences: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers report often, so the queue is seldom empty: their bytes must reach the bar anyway."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("\n".join(pt_sentences * 4), encoding="utf-8")
    monkeypatch.setattr(preprocess, "MIN_BYTES_PER_WORKER", 1)
    monkeypatch.setattr(preprocess, "_PROGRESS_EVERY_DOCS", 10)
    monkeypatch.setattr(preprocess, "_REPORT_EVERY_S", 0.0)
    seen: list[Progress] = []
    prepare_corpus([tmp_path / "in"], NormalizeConfig(), cache_dir=tmp_path / "c", progress=seen.append)
    total = (tmp_path / "in" / "a.txt").stat().st_size
    between = {p.done for p in seen if p.done is not None and 0 < p.done < total}
    assert len(between) >= 3


def test_worker_errors_keep_their_type_and_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "c.jsonl"
    src.write_text('{"text": "ok"}\n' * 20 + '{"body": "sem texto"}\n', encoding="utf-8")
    monkeypatch.setattr(preprocess, "MIN_BYTES_PER_WORKER", 1)
    with pytest.raises(CorpusError, match=r"c.jsonl:21: no field 'text'"):
        prepare_corpus([src], NormalizeConfig(), cache_dir=tmp_path / "cache", workers=2)
    assert [p.name for p in (tmp_path / "cache" / "corpus").iterdir()] == []


def test_nothing_to_train_on_is_empty_corpus(tmp_path: Path) -> None:
    blank = tmp_path / "blank.txt"
    blank.write_text("\n\n   \n", encoding="utf-8")
    with pytest.raises(EmptyCorpus, match="no tokens left"):
        prepare_corpus([blank], NormalizeConfig(), cache_dir=tmp_path)
    punct = tmp_path / "punct.txt"
    punct.write_text("... !!! ,\n", encoding="utf-8")
    with pytest.raises(EmptyCorpus):
        prepare_corpus([punct], NormalizeConfig(), cache_dir=tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(EmptyCorpus, match="no corpus files"):
        prepare_corpus([tmp_path / "empty"], NormalizeConfig(), cache_dir=tmp_path)


@pytest.mark.slow
def test_prepare_real_corpus_with_two_workers(tmp_path: Path) -> None:
    src = SHARED_DATA / "corpus" / "machado-de-assis" / "romance"
    prepared = prepare_corpus([src], NormalizeConfig(), cache_dir=tmp_path, workers=2)
    assert prepared.n_tokens > 500_000
    with prepared.path.open(encoding="utf-8") as fh:
        lines = [next(fh) for _ in range(2000)]
    assert all(line.endswith("\n") and line.strip() and "  " not in line for line in lines)
    assert prepared_again_is_hit(src, tmp_path)


def prepared_again_is_hit(src: Path, cache: Path) -> bool:
    return prepare_corpus([src], NormalizeConfig(), cache_dir=cache, workers=2).cache_hit


def test_worker_protocol_reports_bytes_result_and_errors(tmp_path: Path) -> None:
    from pipelines.reading.corpus import Slice, list_files
    from pipelines.text.preprocess_worker import run

    src = tmp_path / "c.txt"
    src.write_text("Olá mundo. Tudo bem?\n", encoding="utf-8")
    job = {
        "slices": [Slice(f).to_json() for f in list_files([src])],
        "config": NormalizeConfig().model_dump(mode="json"),
        "out_path": str(tmp_path / "part"),
        "text_field": "text",
    }
    out = io.StringIO()
    assert run(job, out) == 0
    messages = [json.loads(line) for line in out.getvalue().splitlines()]
    assert messages[-1]["result"]["n_tokens"] == 4
    assert any(m.get("bytes") == src.stat().st_size for m in messages)
    assert (tmp_path / "part").read_text(encoding="utf-8") == "olá mundo\ntudo bem\n"

    src.write_bytes(b"\x00\x01binario")
    out = io.StringIO()
    job["slices"] = [Slice(f).to_json() for f in list_files([src])]
    assert run(job, out) == 1
    assert json.loads(out.getvalue().splitlines()[-1])["error"]["type"] == "CorpusError"


def test_bytes_reported_are_those_written_out_not_those_read_ahead(tmp_path: Path) -> None:
    # the normaliser takes texts in batches of 1,000: bytes read run a batch ahead of the bytes done
    src = tmp_path / "a.txt"
    src.write_text(
        "".join(f"frase número {i} sobre a casa e o rei.\n" for i in range(3000)), encoding="utf-8"
    )
    seen: list[int] = []
    write_part(
        plan_slices(list_files([src]), 1)[0],
        NormalizeConfig(),
        tmp_path / "out.txt",
        text_field="text",
        on_bytes=seen.append,
    )
    size = src.stat().st_size
    assert seen[0] < size // 100  # the first text done, not the first batch read
    assert seen == sorted(seen)
    assert seen[-1] == size
    assert len(seen) >= 6  # several reports on the way, not a jump from nothing to everything
