"""Raw corpus files -> one normalised, tokenised text file for gensim's ``corpus_file`` mode, cached.

The output has one sentence per line (one document per line when ``split_sentences`` is off), tokens separated
by single spaces, UTF-8. Both cores work on it: the input byte stream is cut into one contiguous run per worker
process (big ``.txt``/``.jsonl`` files are cut at line boundaries), each worker (``pipelines.text.preprocess_worker``,
a plain subprocess) writes its own part file, and the parts are joined in order, so the result is identical to
a single-process run.

Results are cached under ``cache_dir/corpus/``, keyed by every input file's path, size and mtime, the
normalisation config, the text field and :data:`CODE_VERSION`: preparing the same corpus the same way again
costs a few ``stat`` calls. Files are written under temporary names and renamed, so a crash never leaves a
half-written cache entry. With ``limits.max_cache_bytes`` the cache is bounded: a corpus that would prepare to
more is refused while it is written, and older entries are evicted (least recently used first, never one in use,
see :mod:`pipelines.reading.corpus_cache`) after each new one; entries whose inputs are gone are removed too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from models.errors import CorpusError, EmptyCorpus, PalavraError
from pipelines.reading import corpus_cache
from pipelines.reading.corpus import (
    CorpusFile,
    CorpusLimits,
    CorpusStats,
    Slice,
    list_files,
    plan_slices,
    read_slice,
)
from pipelines.runs.progress import Progress, ProgressCallback, counted, ignore_progress
from pipelines.text.normalize import NormalizeConfig, Normalizer

log = logging.getLogger(__name__)

#: Bump when tokenisation or output format changes, so old cache entries are not reused.
CODE_VERSION = "preprocess-2"  # 2: byte-order marks inside text are dropped before tokenising
#: Inputs smaller than this are prepared in-process (starting workers would cost more than it saves).
MIN_BYTES_PER_WORKER = 2 * 1024 * 1024
_PROGRESS_EVERY_DOCS = 500
#: The least time between two reports of the bytes the workers have done.
_REPORT_EVERY_S = 0.25
_EOS = "\n"


@dataclass(frozen=True)
class PreparedCorpus:
    """A prepared corpus file and what went into it.

    Attributes:
        path: the UTF-8 token file (one sentence per line, tokens separated by single spaces).
        n_tokens: tokens written.
        n_sentences: lines written.
        n_docs: documents read (lines of .txt, JSON lines, CSV rows), after skipping blanks.
        skipped: documents skipped (blank, empty text, short CSV rows).
        data_hash: sha256 of the prepared file's bytes (same data + same config -> same hash).
        cache_hit: True when the file came from the cache.
        seconds: wall time of this call.
        skipped_files: files inside source folders that are not corpus formats.
    """

    path: Path
    n_tokens: int
    n_sentences: int
    n_docs: int
    skipped: int
    data_hash: str
    cache_hit: bool
    seconds: float
    skipped_files: tuple[str, ...] = ()


@dataclass
class _PartResult:
    n_tokens: int = 0
    n_sentences: int = 0
    stats: CorpusStats = dataclasses.field(default_factory=CorpusStats)


def cache_key(files: Sequence[CorpusFile], config: NormalizeConfig, *, text_field: str) -> str:
    """The cache key of preparing ``files`` with ``config``: paths, sizes, mtimes, config, code version."""
    parts: list[Any] = [CODE_VERSION, config.model_dump(mode="json"), text_field]
    for f in files:
        st = f.path.stat()
        parts.append([str(f.path.resolve()), st.st_size, st.st_mtime_ns])
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:32]


def write_part(
    slices: list[Slice],
    config: NormalizeConfig,
    out_path: Path,
    *,
    text_field: str,
    on_bytes: Any = None,
    limits: CorpusLimits | None = None,
) -> _PartResult:
    """Tokenise and normalise ``slices`` into ``out_path``; ``on_bytes(n)`` gets the input bytes done so far.

    "Done" means written out: the normaliser reads a batch ahead, so the bytes read would run ahead of the work.

    Raises:
        CorpusError: an input passes a bound of ``limits``, or the output grows past ``limits.max_cache_bytes``.
    """
    limits = limits or CorpusLimits()
    normalizer = Normalizer(config)
    result = _PartResult()
    stats = result.stats
    split = config.split_sentences
    room = limits.max_cache_bytes
    written = 0  # characters: UTF-8 bytes, give or take accented letters
    # input bytes read when each document still in the pipeline was handed to it
    read_at: deque[int] = deque()

    def docs() -> Any:
        for sl in slices:
            for text in read_slice(sl, text_field=text_field, stats=stats, limits=limits):
                read_at.append(stats.bytes_read)
                yield text

    with out_path.open("w", encoding="utf-8", newline="\n", buffering=1 << 20) as out:
        for i, toks in enumerate(normalizer.marked_pipe(docs())):
            done_bytes = read_at.popleft()
            if split:
                for sentence in " ".join(toks).split(_EOS):
                    line = sentence.strip()
                    if line:
                        out.write(line + "\n")
                        written += len(line) + 1
                        result.n_sentences += 1
                        result.n_tokens += line.count(" ") + 1
            else:
                words = [t for t in toks if t != _EOS]
                if words:
                    line = " ".join(words)
                    out.write(line + "\n")
                    written += len(line) + 1
                    result.n_sentences += 1
                    result.n_tokens += len(words)
            if room is not None and written > room:
                raise _over_cache_limit(room)
            if on_bytes is not None and i % _PROGRESS_EVERY_DOCS == 0:
                on_bytes(done_bytes)
    if on_bytes is not None:
        on_bytes(stats.bytes_read)
    return result


def _over_cache_limit(room: int) -> CorpusError:
    return CorpusError(
        f"the prepared corpus grows past {room:,} bytes, the corpus cache's limit (PALAVRA_CACHE_MAX_BYTES); "
        "train on less text or raise the limit"
    )


def _reraise(kind: str, payload: Any) -> None:
    if kind == "error":
        from models import errors

        cls = getattr(errors, str(payload.get("type")), PalavraError)
        if not (isinstance(cls, type) and issubclass(cls, PalavraError)):
            cls = PalavraError
        raise cls(str(payload.get("detail")))
    raise RuntimeError(f"a preprocessing worker failed: {payload}")


def _result_from_dict(d: dict[str, Any]) -> _PartResult:
    stats = CorpusStats(**d["stats"])
    return _PartResult(n_tokens=d["n_tokens"], n_sentences=d["n_sentences"], stats=stats)


def _worker_env() -> dict[str, str]:
    """The environment of a worker: this one, with the folder holding ``pipelines`` on PYTHONPATH."""
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def _pump(index: int, stream: IO[str], events: queue.Queue[tuple[int, dict[str, Any] | None]]) -> None:
    """Forward a worker's JSON lines to ``events``; ``None`` at end of stream."""
    try:
        for line in stream:
            try:
                events.put((index, json.loads(line)))
            except json.JSONDecodeError:
                log.warning("preprocessing worker %d: %s", index, line.rstrip())
    finally:
        events.put((index, None))


def _start_worker(job: dict[str, Any]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.text.preprocess_worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=_worker_env(),
        text=True,
        encoding="utf-8",
    )
    assert proc.stdin is not None  # noqa: S101  (PIPE was asked for)
    proc.stdin.write(json.dumps(job))
    proc.stdin.close()
    return proc


def _run_workers(
    plan: list[list[Slice]],
    config: NormalizeConfig,
    parts: list[Path],
    *,
    text_field: str,
    total: int,
    progress: ProgressCallback,
    limits: CorpusLimits,
) -> list[_PartResult]:
    events: queue.Queue[tuple[int, dict[str, Any] | None]] = queue.Queue()
    procs: list[subprocess.Popen[str]] = []
    done_bytes = [0] * len(plan)
    results: dict[int, _PartResult] = {}
    reported = time.monotonic()
    try:
        for i, (slices, part) in enumerate(zip(plan, parts, strict=True)):
            job: dict[str, Any] = {
                "slices": [s.to_json() for s in slices],
                "config": config.model_dump(mode="json"),
            }
            job |= {"out_path": str(part), "text_field": text_field, "parent_pid": os.getpid()}
            job["limits"] = limits.to_json()
            proc = _start_worker(job)
            procs.append(proc)
            threading.Thread(target=_pump, args=(i, proc.stdout, events), daemon=True).start()
        while len(results) < len(procs):
            try:
                index, msg = events.get(timeout=0.5)
            except queue.Empty:
                _report(progress, sum(done_bytes), total)
                continue
            if msg is None:
                if index not in results:
                    code = procs[index].wait()
                    raise RuntimeError(f"preprocessing worker {index} exited with code {code} and no result")
            elif "bytes" in msg:
                done_bytes[index] = int(msg["bytes"])
                if (
                    time.monotonic() - reported >= _REPORT_EVERY_S
                ):  # the queue is seldom empty while workers run
                    _report(progress, sum(done_bytes), total)
                    reported = time.monotonic()
            elif "result" in msg:
                results[index] = _result_from_dict(msg["result"])
            else:
                _reraise("error" if "error" in msg else "crash", msg.get("error", msg.get("crash")))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    _report(progress, total, total)
    return [results[i] for i in range(len(procs))]


def _report(progress: ProgressCallback, done: int, total: int) -> None:
    progress(counted("preprocess", min(done, total), total, "B", message=f"read {done:,} of {total:,} bytes"))


def _concat(parts: list[Path], out_path: Path) -> str:
    """Join ``parts`` into ``out_path``; the sha256 of the bytes written."""
    digest = hashlib.sha256()
    with out_path.open("wb") as out:
        for part in parts:
            with part.open("rb") as fh:
                while block := fh.read(1 << 20):
                    digest.update(block)
                    out.write(block)
    return digest.hexdigest()


def _source_stats(files: list[CorpusFile]) -> list[list[Any]]:
    """Each input's resolved path, size and mtime: what the cache key was made of, to spot it gone or changed."""
    out: list[list[Any]] = []
    for f in files:
        st = f.path.stat()
        out.append([str(f.path.resolve()), st.st_size, st.st_mtime_ns])
    return out


def _worker_count(requested: int, total_bytes: int) -> int:
    by_size = max(1, total_bytes // MIN_BYTES_PER_WORKER)
    return max(1, min(requested, os.cpu_count() or 1, by_size))


def _from_meta(meta: dict[str, Any], data_path: Path, *, cache_hit: bool, started: float) -> PreparedCorpus:
    return PreparedCorpus(
        path=data_path,
        n_tokens=int(meta["n_tokens"]),
        n_sentences=int(meta["n_sentences"]),
        n_docs=int(meta["n_docs"]),
        skipped=int(meta["skipped"]),
        data_hash=str(meta["data_hash"]),
        cache_hit=cache_hit,
        seconds=time.perf_counter() - started,
        skipped_files=tuple(meta.get("skipped_files", ())),
    )


def _load_cached(meta_path: Path, data_path: Path, started: float) -> PreparedCorpus | None:
    if not (meta_path.is_file() and data_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        return _from_meta(meta, data_path, cache_hit=True, started=started)
    except (OSError, ValueError, KeyError, TypeError):
        log.warning("ignoring unreadable cache entry %s", meta_path)
        return None


def _write_parts(
    files: list[CorpusFile],
    config: NormalizeConfig,
    parts: list[Path],
    *,
    text_field: str,
    report: ProgressCallback,
    limits: CorpusLimits,
) -> list[_PartResult]:
    """Write one part file per worker (``len(parts)`` workers), in order; what each saw."""
    total = sum(f.size for f in files)
    plan = plan_slices(files, len(parts))
    if len(parts) == 1:
        on_bytes = lambda n: _report(report, n, total)  # noqa: E731
        return [
            write_part(plan[0], config, parts[0], text_field=text_field, on_bytes=on_bytes, limits=limits)
        ]
    results = _run_workers(
        plan, config, parts, text_field=text_field, total=total, progress=report, limits=limits
    )
    room = limits.max_cache_bytes
    if room is not None and sum(p.stat().st_size for p in parts) > room:
        raise _over_cache_limit(room)
    return results


def _summarise(
    results: list[_PartResult], listing: CorpusStats, *, data_hash: str, sources: list[Path]
) -> dict[str, Any]:
    """The cache entry's metadata; EmptyCorpus when no token was written."""
    stats = CorpusStats()
    for r in results:
        stats.merge(r.stats)
    stats.skipped_files.extend(listing.skipped_files)
    n_tokens = sum(r.n_tokens for r in results)
    if n_tokens == 0:
        raise EmptyCorpus(
            f"no tokens left in {', '.join(map(str, sources))}: {stats.docs} documents read, "
            f"{stats.skipped} skipped; check --text-field and the normalisation config"
        )
    return {
        "n_tokens": n_tokens,
        "n_sentences": sum(r.n_sentences for r in results),
        "n_docs": stats.docs,
        "skipped": stats.skipped,
        "data_hash": data_hash,
        "skipped_files": stats.skipped_files,
    }


def prepare_corpus(
    sources: list[Path],
    config: NormalizeConfig,
    *,
    cache_dir: Path,
    workers: int = 2,
    progress: ProgressCallback | None = None,
    text_field: str = "text",
    limits: CorpusLimits | None = None,
) -> PreparedCorpus:
    """Tokenise and normalise ``sources`` into one cached file for gensim's ``corpus_file`` mode.

    Args:
        sources: files (.txt, .jsonl, .csv, optionally .gz) and folders (read recursively, sorted).
        config: how tokens are normalised; ``split_sentences`` chooses a line per sentence or per document.
        cache_dir: where prepared files are kept (``cache_dir/corpus/<key>.txt`` and ``.json``).
        workers: processes to use (capped at the CPU count; small inputs use one).
        progress: called with the fraction of input bytes read.
        text_field: the JSON field / CSV column that holds the text.
        limits: bounds on line length, decompression and the cache's size (none on the cache by default).

    Raises:
        CorpusError: a source is missing or unreadable (the message names ``file:line``), or passes a limit.
        EmptyCorpus: no tokens are left after reading and normalising.
    """
    started = time.perf_counter()
    limits = limits or CorpusLimits()
    report = progress or ignore_progress
    listing = CorpusStats()
    files = list_files(sources, stats=listing)
    if not files:
        raise EmptyCorpus(f"no corpus files (.txt, .jsonl, .csv, .gz) in {', '.join(map(str, sources))}")
    key = cache_key(files, config, text_field=text_field)
    store = cache_dir / "corpus"
    data_path, meta_path = store / f"{key}.txt", store / f"{key}.json"
    cached = _load_cached(meta_path, data_path, started)
    if cached is not None and corpus_cache.hold(meta_path):
        report(
            Progress(
                stage="preprocess", message=f"prepared corpus found in cache ({cached.n_tokens:,} tokens)"
            )
        )
        return cached

    store.mkdir(parents=True, exist_ok=True)
    tag = f".tmp-{os.getpid()}-{time.time_ns()}"
    tmp_data, tmp_meta = store / f"{key}.txt{tag}", store / f"{key}.json{tag}"
    n_workers = _worker_count(workers, sum(f.size for f in files))
    parts = [store / f"{key}.part{i}{tag}" for i in range(n_workers)]
    try:
        results = _write_parts(files, config, parts, text_field=text_field, report=report, limits=limits)
        data_hash = _concat(parts, tmp_data)
        meta = _summarise(results, listing, data_hash=data_hash, sources=sources)
        extra: dict[str, Any] = {"config": config.model_dump(mode="json"), "text_field": text_field}
        extra |= {"sources": [str(f.path) for f in files], "code_version": CODE_VERSION}
        extra["source_stats"] = _source_stats(files)
        os.replace(tmp_data, data_path)
        tmp_meta.write_text(json.dumps(meta | extra, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp_meta, meta_path)
    finally:
        for leftover in [*parts, tmp_data, tmp_meta]:
            leftover.unlink(missing_ok=True)
    corpus_cache.hold(meta_path)
    if limits.max_cache_bytes is not None:
        corpus_cache.evict(store, limits.max_cache_bytes, keep=key)
    total = sum(f.size for f in files)
    report(counted("preprocess", total, total, "B", message=f"prepared {meta['n_tokens']:,} tokens"))
    return _from_meta(meta, data_path, cache_hit=False, started=started)
