"""Streaming corpus readers: ``.txt``, ``.jsonl``, ``.csv`` (each optionally ``.gz``) and folders of them.

A document is one line of a ``.txt`` file, the ``text_field`` of one JSON line, or the ``text_field`` column of
one CSV row. Nothing loads a whole file. Files are read in a stable order (folders recursively, sorted by path),
and plain ``.txt`` / ``.jsonl`` files can be cut into byte ranges so several processes share one big file.

What is skipped (and counted in :class:`CorpusStats`) and what stops the run with :class:`CorpusError`:

* skipped, counted: blank lines / empty or ``null`` text (``blank``); CSV rows too short to have the text column
  (``bad_rows``); files inside a folder whose extension is not a corpus format, and hidden files (``skipped_files``).
* fatal, naming ``file:line``: a missing file, a file replaced since it was listed (another file, a hard or
  symbolic link moved to its name: each file is opened only if it is still the one :func:`list_files` saw, so a
  check made on the listed files holds for what is read), a binary file (NUL bytes), bytes that are not UTF-8, a JSON line that
  does not parse or is not an object, a JSON object without the text field or whose text is not a string, a CSV
  without the text column, a broken gzip stream, an explicitly named file of an unknown format.
* fatal, past a :class:`CorpusLimits` bound: a line longer than ``max_line_bytes`` (it is never read whole into
  memory), a compressed file that expands past ``max_decompressed_bytes`` or more than ``max_compression_ratio``
  times its size (a decompression bomb).
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import gzip
import io
import json
import logging
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeAlias

from models.errors import CorpusError

log = logging.getLogger(__name__)

Format = Literal["txt", "jsonl", "csv"]
_FORMATS: dict[str, Format] = {
    ".txt": "txt",
    ".text": "txt",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
}
_SNIFF_BYTES = 8192
_SKIP_BLOCK = 1 << 20
_BOM = codecs.BOM_UTF8

_ByteStream: TypeAlias = "gzip.GzipFile | io.BufferedReader"

csv.field_size_limit(2**31 - 1)

MiB = 1024 * 1024


@dataclass(frozen=True)
class CorpusLimits:
    """What reading one corpus may cost; past a bound the read stops with a :class:`CorpusError` naming it.

    Attributes:
        max_line_bytes: the longest line (a document of .txt / .jsonl, a line of .csv), newline excluded.
        max_decompressed_bytes: the most bytes one compressed file may expand to.
        max_compression_ratio: decompressed bytes per compressed byte a file may reach once it has expanded past
            ``ratio_floor_bytes`` (text gzips 3-5x; a bomb, hundreds).
        max_cache_bytes: the most bytes prepared corpora may take in the cache (least recently used entries are
            evicted to make room); None for no bound.
        ratio_floor_bytes: below this many decompressed bytes the ratio is not checked (tiny files vary).
    """

    max_line_bytes: int = 16 * MiB
    max_decompressed_bytes: int = 8 * 1024 * MiB
    max_compression_ratio: float = 100.0
    max_cache_bytes: int | None = None
    ratio_floor_bytes: int = 16 * MiB

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CorpusLimits:
        return cls(**data)

    def check_expansion(self, f: CorpusFile, decompressed: int) -> None:
        """Raise when ``decompressed`` bytes read from compressed ``f`` pass a bound."""
        if decompressed > self.max_decompressed_bytes:
            raise CorpusError(
                f"{f.path}: expands to more than {self.max_decompressed_bytes:,} bytes when decompressed, over "
                "the limit (PALAVRA_CORPUS_MAX_DECOMPRESSED_BYTES); split the file or raise the limit"
            )
        if decompressed > self.ratio_floor_bytes and decompressed > self.max_compression_ratio * max(
            f.size, 1
        ):
            raise CorpusError(
                f"{f.path}: expands more than {self.max_compression_ratio:g} times ({f.size:,} compressed bytes "
                f"gave over {decompressed:,}), over the limit (PALAVRA_CORPUS_MAX_COMPRESSION_RATIO); this looks "
                "like a decompression bomb, not text"
            )

    def line_too_long(self, path: Path, line: int) -> CorpusError:
        return CorpusError(
            f"{path}:{line}: a line longer than {self.max_line_bytes:,} bytes, over the limit "
            "(PALAVRA_CORPUS_MAX_LINE_BYTES); put one document per line, or raise the limit"
        )


@dataclass
class CorpusStats:
    """What a read saw: documents yielded, what was skipped, bytes consumed (compressed bytes for ``.gz``)."""

    docs: int = 0
    blank: int = 0
    bad_rows: int = 0
    bytes_read: int = 0
    skipped_files: list[str] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        """Documents skipped (blank + bad rows); skipped files are listed separately."""
        return self.blank + self.bad_rows

    def merge(self, other: CorpusStats) -> None:
        self.docs += other.docs
        self.blank += other.blank
        self.bad_rows += other.bad_rows
        self.bytes_read += other.bytes_read
        self.skipped_files.extend(other.skipped_files)


@dataclass(frozen=True)
class CorpusFile:
    """One readable file of a corpus."""

    path: Path
    fmt: Format
    compressed: bool
    size: int
    #: ``(st_dev, st_ino)`` when listed: the file that is read must still be this one (None: not checked)
    identity: tuple[int, int] | None = None

    def open(self) -> io.BufferedReader:
        """The file's bytes, refusing a file that is no longer the one listed.

        Raises:
            CorpusError: the name now holds another file (replaced, or a link to one moved in its place).
        """
        fh = self.path.open("rb")
        if self.identity is not None:
            st = os.fstat(fh.fileno())
            if (st.st_dev, st.st_ino) != self.identity:
                fh.close()
                raise CorpusError(
                    f"{self.path}: the file was replaced after the corpus was listed (another file, or a link to "
                    "one, now has its name); nothing of it was read: run again once the corpus stays put"
                )
        return fh

    @property
    def splittable(self) -> bool:
        """Plain line formats can be cut into byte ranges; gzip and CSV (quoted newlines) cannot."""
        return not self.compressed and self.fmt != "csv"


@dataclass(frozen=True)
class Slice:
    """Lines of ``file`` whose first byte lies in ``[start, end)``; ``end=None`` means to the end."""

    file: CorpusFile
    start: int = 0
    end: int | None = None

    def to_json(self) -> dict[str, Any]:
        f = self.file
        return {
            "path": str(f.path),
            "fmt": f.fmt,
            "compressed": f.compressed,
            "size": f.size,
            "identity": None if f.identity is None else list(f.identity),
            "start": self.start,
            "end": self.end,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Slice:
        identity = data.get("identity")
        file = CorpusFile(
            Path(data["path"]),
            data["fmt"],
            bool(data["compressed"]),
            int(data["size"]),
            None if identity is None else (int(identity[0]), int(identity[1])),
        )
        return cls(file, int(data["start"]), None if data["end"] is None else int(data["end"]))


def file_format(path: Path) -> tuple[Format, bool] | None:
    """``(format, gzipped)`` from the file name, or None when it is not a corpus format."""
    suffixes = [s.lower() for s in path.suffixes]
    compressed = bool(suffixes) and suffixes[-1] == ".gz"
    if compressed:
        suffixes = suffixes[:-1]
        if not suffixes or suffixes[-1] not in _FORMATS:
            return "txt", True
    if not suffixes or suffixes[-1] not in _FORMATS:
        return None
    return _FORMATS[suffixes[-1]], compressed


def _corpus_file(path: Path, fmt: tuple[Format, bool]) -> CorpusFile:
    st = path.stat()
    return CorpusFile(
        path=path, fmt=fmt[0], compressed=fmt[1], size=st.st_size, identity=(st.st_dev, st.st_ino)
    )


def list_files(
    sources: list[Path], *, stats: CorpusStats | None = None, unknown_as_text: bool = False
) -> list[CorpusFile]:
    """The corpus files of ``sources`` in reading order: folders recursively, sorted by relative path.

    ``unknown_as_text``: a file named directly whose name is no corpus format (``notas.md``) is read as plain text
    rather than refused.

    Raises:
        CorpusError: a source does not exist, or a file named directly is not a corpus format.
    """
    out: list[CorpusFile] = []
    for source in sources:
        if source.is_dir():
            for path in sorted(source.rglob("*"), key=lambda p: p.relative_to(source).as_posix()):
                if not path.is_file():
                    continue
                rel = path.relative_to(source)
                fmt = file_format(path)
                if fmt is None or any(part.startswith(".") for part in rel.parts):
                    log.info("skipping %s: not a corpus file (.txt, .jsonl, .csv, optionally .gz)", path)
                    if stats is not None:
                        stats.skipped_files.append(str(path))
                    continue
                out.append(_corpus_file(path, fmt))
        elif source.is_file():
            fmt = file_format(source)
            if fmt is None and unknown_as_text:
                fmt = ("txt", False)
            if fmt is None:
                raise CorpusError(
                    f"{source}: unknown corpus format '{source.suffix}'; use .txt (a line per document), "
                    ".jsonl, .csv, or any of them gzipped (.gz)"
                )
            out.append(_corpus_file(source, fmt))
        elif source.exists():  # a pipe or a device: read in slices, by offset, a corpus must be a file
            raise CorpusError(
                f"{source}: not a regular file (a pipe or a device); save the text to a file first"
            )
        else:
            raise CorpusError(f"{source}: no such file or folder")
    return out


def plan_slices(files: list[CorpusFile], parts: int) -> list[list[Slice]]:
    """Cut the byte stream of ``files`` into ``parts`` contiguous, roughly equal runs of slices, in order.

    Concatenating what each part reads, part after part, gives exactly what one reader would read.
    """
    total = sum(f.size for f in files)
    bounds = [total * k // parts for k in range(parts + 1)]
    plan: list[list[Slice]] = [[] for _ in range(parts)]
    offset = 0
    for f in files:
        lo, hi = offset, offset + f.size
        offset = hi
        if not f.splittable or f.size == 0:
            mid = (lo + hi) // 2
            owner = next((k for k in range(parts) if mid < bounds[k + 1]), parts - 1)
            plan[owner].append(Slice(f))
            continue
        for k in range(parts):
            a, b = max(lo, bounds[k]), min(hi, bounds[k + 1])
            if a < b:
                end = None if b == hi else b - lo
                plan[k].append(Slice(f, a - lo, end))
    return plan


def _check_binary(path: Path, head: bytes) -> None:
    if b"\x00" in head:
        raise CorpusError(f"{path}: binary file (NUL bytes); give UTF-8 text, JSON lines or CSV")


def _line_number(f: CorpusFile, offset: int) -> int:
    """1-based number of the line that starts at byte ``offset`` (decompressed offset for gzip)."""
    count = 0
    with _open_bytes(f) as fh:
        remaining = offset
        while remaining > 0:
            block = fh.read(min(remaining, 1 << 20))
            if not block:
                break
            count += block.count(b"\n")
            remaining -= len(block)
    return count + 1


def _open_bytes(f: CorpusFile) -> _ByteStream:
    raw = f.open()
    return gzip.GzipFile(fileobj=raw, mode="rb") if f.compressed else raw


def _decode_error(path: Path, line: int, exc: UnicodeDecodeError) -> CorpusError:
    return CorpusError(
        f"{path}:{line}: not UTF-8 (byte {exc.object[exc.start : exc.start + 1]!r} at column {exc.start + 1}); "
        "convert the file, e.g. `iconv -f latin1 -t utf-8`"
    )


def _lines(sl: Slice, stats: CorpusStats, limits: CorpusLimits) -> Iterator[tuple[int, str]]:
    """``(byte offset, text)`` of each line of a line-format slice, newline stripped."""
    f = sl.file
    raw = f.open()
    fh: _ByteStream = gzip.GzipFile(fileobj=raw, mode="rb") if f.compressed else raw
    longest = limits.max_line_bytes + 1  # the newline
    with raw, fh:
        pos = 0
        if sl.start == 0:
            _check_binary(f.path, fh.peek(_SNIFF_BYTES))
        else:
            fh.seek(sl.start - 1)
            pos = sl.start - 1 + _skip_line(fh)
        last_tell = sl.start
        n = 0
        while sl.end is None or pos < sl.end:
            line = fh.readline(longest)
            if not line:
                break
            start = pos
            pos += len(line)
            if len(line) == longest and not line.endswith(b"\n"):
                raise limits.line_too_long(f.path, _line_number(f, start))
            if f.compressed:
                limits.check_expansion(f, pos)
            if pos == len(line) and line.startswith(_BOM):
                line = line[len(_BOM) :]
            if b"\x00" in line:
                _check_binary(f.path, line)
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _decode_error(f.path, _line_number(f, start), exc) from None
            if n % 256 == 0:
                # compressed position for gzip; the buffered read-ahead makes this approximate, which is fine
                tell = min(raw.tell(), f.size if sl.end is None else sl.end)
                stats.bytes_read += max(0, tell - last_tell)
                last_tell = max(tell, last_tell)
            n += 1
            yield start, text.rstrip("\r\n")
        end = f.size if sl.end is None else sl.end
        stats.bytes_read += max(0, end - last_tell)


def _skip_line(fh: _ByteStream) -> int:
    """Read past the rest of the current line, a block at a time; the bytes skipped."""
    skipped = 0
    while block := fh.readline(_SKIP_BLOCK):
        skipped += len(block)
        if block.endswith(b"\n"):
            break
    return skipped


def _bounded_text(
    text_fh: io.TextIOWrapper, path: Path, f: CorpusFile, limits: CorpusLimits
) -> Iterator[str]:
    """The lines of a CSV's text stream, each checked against the line limit (and expansion, when gzipped)."""
    longest = limits.max_line_bytes + 1
    n = read = 0
    while line := text_fh.readline(longest):
        n += 1
        read += len(line)
        if len(line) == longest and not line.endswith("\n"):
            raise limits.line_too_long(path, n)
        if f.compressed:
            limits.check_expansion(f, read)
        yield line


def _read_txt(sl: Slice, stats: CorpusStats, limits: CorpusLimits) -> Iterator[str]:
    for _, text in _lines(sl, stats, limits):
        if text.strip():
            stats.docs += 1
            yield text
        else:
            stats.blank += 1


def _read_jsonl(sl: Slice, stats: CorpusStats, text_field: str, limits: CorpusLimits) -> Iterator[str]:
    path = sl.file.path
    for start, line in _lines(sl, stats, limits):
        if not line.strip():
            stats.blank += 1
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            where = _line_number(sl.file, start)
            raise CorpusError(f"{path}:{where}: not a JSON line ({exc.msg}, column {exc.colno})") from None
        if not isinstance(obj, dict) or text_field not in obj:
            where = _line_number(sl.file, start)
            keys = ", ".join(sorted(obj)) if isinstance(obj, dict) else type(obj).__name__
            raise CorpusError(
                f"{path}:{where}: no field '{text_field}' (found: {keys}); choose it with --text-field"
            )
        text = obj[text_field]
        if text is None or (isinstance(text, str) and not text.strip()):
            stats.blank += 1
            continue
        if not isinstance(text, str):
            where = _line_number(sl.file, start)
            raise CorpusError(f"{path}:{where}: field '{text_field}' is {type(text).__name__}, not text")
        stats.docs += 1
        yield text


def _read_csv(sl: Slice, stats: CorpusStats, text_field: str, limits: CorpusLimits) -> Iterator[str]:
    path = sl.file.path
    with sl.file.open() as raw:
        fh: _ByteStream = gzip.GzipFile(fileobj=raw, mode="rb") if sl.file.compressed else raw
        with fh, io.TextIOWrapper(fh, encoding="utf-8-sig", newline="") as text_fh:
            reader = csv.reader(_bounded_text(text_fh, path, sl.file, limits))
            try:
                _check_binary(path, fh.peek(_SNIFF_BYTES))
                header = next(reader, None)
                if header is None:
                    return
                if text_field not in header:
                    raise CorpusError(
                        f"{path}:1: no column '{text_field}' (columns: {', '.join(header)}); "
                        "choose it with --text-field"
                    )
                col = header.index(text_field)
                last_tell = 0
                for n, row in enumerate(reader):
                    if n % 256 == 0:
                        tell = raw.tell()
                        stats.bytes_read += tell - last_tell
                        last_tell = tell
                    if len(row) <= col:
                        if any(cell.strip() for cell in row):
                            stats.bad_rows += 1
                        else:
                            stats.blank += 1
                        continue
                    text = row[col]
                    if not text.strip():
                        stats.blank += 1
                        continue
                    stats.docs += 1
                    yield text
                stats.bytes_read += sl.file.size - last_tell
            except UnicodeDecodeError as exc:
                raise _decode_error(path, reader.line_num + 1, exc) from None
            except csv.Error as exc:
                raise CorpusError(f"{path}:{reader.line_num}: broken CSV ({exc})") from None


def read_slice(
    sl: Slice,
    *,
    text_field: str = "text",
    stats: CorpusStats | None = None,
    limits: CorpusLimits | None = None,
) -> Iterator[str]:
    """The documents of one slice, streamed.

    Raises:
        CorpusError: for what the module docstring lists as fatal.
    """
    stats = stats if stats is not None else CorpusStats()
    limits = limits or CorpusLimits()
    try:
        if sl.file.fmt == "csv":
            yield from _read_csv(sl, stats, text_field, limits)
        elif sl.file.fmt == "jsonl":
            yield from _read_jsonl(sl, stats, text_field, limits)
        else:
            yield from _read_txt(sl, stats, limits)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise CorpusError(f"{sl.file.path}: broken gzip stream ({exc}); re-create the .gz file") from None
    except OSError as exc:
        raise CorpusError(f"{sl.file.path}: cannot be read ({exc.strerror or exc})") from None


def iter_documents(
    sources: list[Path], *, text_field: str = "text", stats: CorpusStats | None = None
) -> Iterator[str]:
    """Every document of ``sources`` in order, streamed; see the module docstring for what is skipped.

    Raises:
        CorpusError: a source is missing or a file is unreadable (names ``file:line``).
    """
    stats = stats if stats is not None else CorpusStats()
    for f in list_files(sources, stats=stats):
        yield from read_slice(Slice(f), text_field=text_field, stats=stats)
