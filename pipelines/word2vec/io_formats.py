"""The standard word2vec vector formats (Mikolov's C tool, gensim, NILC's published embeddings), both ways.

Text: a header line ``<words> <dim>``, then one ``word v1 ... vdim`` line per word (a file without the header,
as GloVe writes, is read too). Binary: the same header, then per word ``word`` + a space + ``dim`` little-endian
float32 values, optionally followed by a newline.

Fields are separated by whitespace (a run of spaces or tabs is one separator), so a word cannot hold whitespace:
import skips such a row (fastText's published ``.vec`` files hold a few, with a no-break space inside a word) and
says how many in its notes, as export refuses such a word. A leading UTF-8 byte-order mark is skipped. Words are
stored in Unicode NFC, the form query words are normalised to, so a file written in decomposed form (NFD) is
reachable, and the NFD and NFC spellings of a word are one word (the first row wins, as for any duplicate).

Exports write to a temporary file beside the target and rename it, so an interrupted export leaves no
half-written file. Only the word vectors travel: the formats have no place for FastText's subword n-grams.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import re
import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from models.errors import CorpusError, InvalidInput
from models.vectors import WordVectors

_CHUNK_ROWS = 4096
_BOM = b"\xef\xbb\xbf"
# what str.isspace() calls whitespace, as export checks it: a word holding one cannot be written back
_WHITESPACE = re.compile(r"\s")


@dataclass
class ImportReport:
    """What an import found besides the vectors: rows it dropped and why."""

    declared_words: int | None
    dim: int
    duplicates: int = 0
    undecodable: int = 0
    #: rows skipped because their word holds whitespace, which the format cannot store
    whitespace: int = 0
    #: words not in Unicode NFC in the file, stored in NFC
    renormalized: int = 0
    notes: list[str] = field(default_factory=list)


@contextlib.contextmanager
def _atomic_output(path: Path) -> Iterator[IO[bytes]]:
    path = Path(path)
    if path.is_dir():
        raise InvalidInput(f"{path} is a folder; give a file name for the exported vectors")
    if path.is_symlink() or path.exists():
        # the new file replaces the old by a rename: a device (/dev/full), a pipe or a link renamed over became a
        # plain file, so a link is followed to the file it names and anything but a regular file is refused
        try:
            target = path.resolve()
        except (RuntimeError, OSError) as exc:  # a loop of links: RuntimeError before Python 3.13
            raise InvalidInput(
                f"{path} is a loop of symbolic links; give a file name for the exported vectors"
            ) from exc
        if target.exists() and not target.is_file():
            raise InvalidInput(
                f"{path} is not a regular file (a device, a pipe or a socket); give a file name for the exported "
                "vectors"
            )
        path = target
    if not path.parent.is_dir():
        raise InvalidInput(f"cannot write {path}: folder {path.parent} does not exist")
    _sweep_dead_exports(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with tmp.open("wb") as fh:
            # held while written: an export that sees it free knows its writer died
            fcntl.flock(fh, fcntl.LOCK_EX)
            yield fh
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _sweep_dead_exports(path: Path) -> None:
    """Remove the temporary files that exports to ``path`` killed mid-way (SIGKILL, SIGTERM) left beside it."""
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        with contextlib.suppress(OSError), tmp.open("rb") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # an export running now
            tmp.unlink(missing_ok=True)


def export_word2vec(vectors: WordVectors, path: Path, *, binary: bool = False) -> int:
    """Write ``vectors`` in the word2vec text (or binary) format; returns the number of words written.

    Raises:
        InvalidInput: a word holds whitespace (the format cannot represent it) or the target is not writable.
    """
    bad = next((w for w in vectors.words if not w or any(ch.isspace() for ch in w)), None)
    if bad is not None:
        raise InvalidInput(f"the word {bad!r} holds whitespace; the word2vec format cannot store it")
    matrix = vectors.vectors
    n, dim = len(vectors.words), vectors.dim
    row_fmt = " ".join(["%.7g"] * dim)
    with _atomic_output(path) as fh:
        fh.write(f"{n} {dim}\n".encode())
        for start in range(0, n, _CHUNK_ROWS):
            block = np.asarray(matrix[start : start + _CHUNK_ROWS], dtype="<f4")
            words = vectors.words[start : start + _CHUNK_ROWS]
            if binary:
                fh.write(
                    b"".join(
                        w.encode() + b" " + row.tobytes() + b"\n" for w, row in zip(words, block, strict=True)
                    )
                )
            else:
                text = "".join(
                    f"{w} {row_fmt % tuple(row.tolist())}\n" for w, row in zip(words, block, strict=True)
                )
                fh.write(text.encode())
    return n


def _parse_header(line: bytes, path: Path) -> tuple[int, int] | None:
    parts = line.split()
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        n, dim = int(parts[0]), int(parts[1])
        if dim <= 0:
            raise CorpusError(
                f"{path}: the header says {dim} dimensions; expected '<words> <dim>' with dim > 0"
            )
        return n, dim
    return None


def _smallest_row(dim: int, *, binary: bool) -> int:
    """Bytes of the shortest possible row: a one-character word, a space and ``dim`` values (4 bytes each in
    binary, at least 2 (``" 0"``) in text, plus the newline between text rows)."""
    return 2 + 4 * dim if binary else 2 * dim + 2


def _check_header_fits(path: Path, header: tuple[int, int], *, room: int, binary: bool) -> None:
    """Refuse a header that the file cannot hold, before anything is allocated from it.

    A binary file must hold every declared row; a text file at least one row of ``dim`` numbers (its rows are
    counted as they are read, so a wrong count is reported with the line that shows it).
    """
    n, dim = header
    rows = n if binary else min(n, 1)
    needed = rows * _smallest_row(dim, binary=binary) - (0 if binary else 1)
    if needed > room:
        raise CorpusError(
            f"{path}: the header declares {n} words of {dim} dimensions, which needs at least {needed} bytes, but "
            f"the file holds {room} after the header; the header is wrong or the file is truncated"
        )


class _Collector:
    """Rows as they are read, words in NFC; the first occurrence of a word wins. Room grows as rows arrive."""

    def __init__(self, dim: int, report: ImportReport, *, room: int, binary: bool) -> None:
        self.words: list[str] = []
        self.seen: set[str] = set()
        # never more rows than the file could hold, nor than the header declares
        capacity = min(
            _CHUNK_ROWS, room // _smallest_row(dim, binary=binary) + 1, report.declared_words or _CHUNK_ROWS
        )
        self.matrix = np.empty((max(capacity, 1), dim), dtype=np.float32)
        self.report = report
        # the file's spelling of each word stored from a non-NFC row, to tell which duplicates NFC made
        self.spelled: dict[str, str] = {}
        self.renormalized_duplicates = 0
        self.renormalized_example = ""
        self.whitespace_example = ""

    @property
    def read(self) -> int:
        """Rows read so far, duplicates and skipped rows included."""
        return len(self.words) + self.report.duplicates + self.report.whitespace

    def skip_whitespace(self, word: str) -> None:
        """A row whose word holds whitespace: the format cannot store it, so it is skipped (and counted)."""
        self.report.whitespace += 1
        self.whitespace_example = self.whitespace_example or word

    def add(self, word: str, vector: npt.NDArray[Any], where: str) -> None:
        if not word:
            raise CorpusError(f"{where}: the word is empty; every vector needs a word before it")
        if _WHITESPACE.search(word):  # one bytes.split() does not see (NBSP, U+2003 ...), or a binary file's
            self.skip_whitespace(word)
            return
        if not np.isfinite(vector).all():  # NaN or out of float32's range: every search with it would be NaN
            raise CorpusError(
                f"{where}: the vector of {word!r} holds a non-finite value (nan, inf or > 3.4e38)"
            )
        # queries are normalised to NFC: a word stored in another form (NFD: 'e' + U+0301) could never be found
        spelling = word
        if not unicodedata.is_normalized("NFC", word):
            word = unicodedata.normalize("NFC", word)
            self.report.renormalized += 1
            self.renormalized_example = self.renormalized_example or word
        if word in self.seen:
            self.report.duplicates += 1
            self.renormalized_duplicates += spelling != self.spelled.get(word, word)
            return
        if spelling != word:
            self.spelled[word] = spelling
        if len(self.words) == self.matrix.shape[0]:
            self.matrix = np.concatenate([self.matrix, np.empty_like(self.matrix)])
        self.matrix[len(self.words)] = vector
        self.words.append(word)
        self.seen.add(word)

    def result(self, path: Path) -> WordVectors:
        if not self.words:
            raise CorpusError(f"{path} holds no word vectors")
        if self.report.whitespace:
            self.report.notes.append(
                f"{self.report.whitespace} row(s) whose word holds whitespace (e.g. {self.whitespace_example!r}) "
                "were skipped: the word2vec format separates fields with whitespace, and no query could reach them"
            )
        if self.report.renormalized:
            self.report.notes.append(
                f"{self.report.renormalized} word(s) not in Unicode NFC (e.g. {self.renormalized_example!r}) "
                "were stored in NFC, the form query words are normalised to"
                + (
                    f"; {self.renormalized_duplicates} row(s) spelled an earlier word in another Unicode form "
                    "and were skipped as duplicates (the first row is kept)"
                    if self.renormalized_duplicates
                    else ""
                )
            )
        if self.report.undecodable:
            self.report.notes.append(
                f"{self.report.undecodable} word(s) were not UTF-8 text: their bad bytes were read as U+FFFD, so "
                "they are not the words the file meant (and two of them can read as one); convert the file to UTF-8"
            )
        plain = self.report.duplicates - self.renormalized_duplicates
        if plain:
            self.report.notes.append(
                f"{plain} row(s) repeated a word already read and were skipped (the first row is kept)"
            )
        return WordVectors(self.words, self.matrix[: len(self.words)])


def _decode(raw: bytes, report: ImportReport) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        report.undecodable += 1
        return raw.decode("utf-8", errors="replace")


def _is_number(field: bytes) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def _headerless_dim(first: bytes) -> int:
    """The dimensions of a file without a header: the numbers that end its first row (its first field is the word,
    even when it is a number itself)."""
    fields = first.split()
    numbers = next((i for i, f in enumerate(reversed(fields)) if not _is_number(f)), len(fields))
    return min(numbers, len(fields) - 1)


def _spaced_word(raw: bytes, parts: list[bytes], dim: int) -> bytes | None:
    """The word of a text row that is a word holding spaces and ``dim`` numbers (``são paulo 0.1 0.2``), else None.

    A row whose extra fields are numbers too (``x 1 0 3`` for 2 dimensions) is not one: it is malformed.
    """
    if len(parts) <= dim + 1 or b"\x00" in raw or _is_binaryish(raw):
        return None
    split_word, numbers = parts[: len(parts) - dim], parts[len(parts) - dim :]
    if all(_is_number(f) for f in numbers) and not all(_is_number(f) for f in split_word[1:]):
        return b" ".join(split_word)
    return None


def _row_error(raw: bytes, dim: int, where: str) -> CorpusError:
    """Why the text row ``raw`` is not a word and ``dim`` numbers."""
    expected = f"{where}: expected a word and {dim} numbers separated by spaces"
    if b"\x00" in raw or _is_binaryish(raw):
        return CorpusError(f"{expected}; if it is the binary word2vec format, import it with --binary")
    return CorpusError(expected)


def _read_text(
    fh: IO[bytes], path: Path, header: tuple[int, int] | None, first: bytes, *, room: int
) -> tuple[WordVectors, ImportReport]:
    dim = header[1] if header else _headerless_dim(first)
    if dim <= 0:
        raise CorpusError(f"{path}:1: expected 'word v1 ... vN' or a '<words> <dim>' header")
    report = ImportReport(declared_words=header[0] if header else None, dim=dim)
    rows = _Collector(dim, report, room=room, binary=False)
    lines = fh if header else _chain(first, fh)
    for lineno, raw in enumerate(lines, start=2 if header else 1):
        parts = raw.split()  # any run of spaces or tabs separates two fields
        if not parts:
            continue
        spaced = _spaced_word(raw, parts, dim)
        try:
            if len(parts) != dim + 1 and spaced is None:
                raise ValueError
            # a value past float32's range becomes inf, refused below by name (numpy's warning is not printed)
            with np.errstate(over="ignore"):
                vector = np.array(parts[len(parts) - dim :], dtype=np.float32)
        except ValueError:
            raise _row_error(raw, dim, f"{path}:{lineno}") from None
        if header and rows.read == header[0]:
            raise CorpusError(
                f"{path}:{lineno}: the header declares {header[0]} words, but more rows follow; "
                "correct the header's word count"
            )
        if spaced is not None:
            rows.skip_whitespace(_decode(spaced, report))
            continue
        rows.add(_decode(parts[0], report), vector, f"{path}:{lineno}")
    if header and rows.read != header[0]:
        raise CorpusError(
            f"{path}: the header declares {header[0]} words, but the file holds {rows.read}; "
            "correct the header's word count (or the file is truncated)"
        )
    return rows.result(path), report


def _chain(first: bytes, rest: IO[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def _is_binaryish(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _read_binary(
    fh: IO[bytes], path: Path, header: tuple[int, int], *, room: int
) -> tuple[WordVectors, ImportReport]:
    n, dim = header
    report = ImportReport(declared_words=n, dim=dim)
    rows = _Collector(dim, report, room=room, binary=True)
    width = 4 * dim
    buf = b""
    for i in range(n):
        while True:
            buf = buf.lstrip(b"\n")
            cut = buf.find(b" ")
            if cut >= 0 and len(buf) >= cut + 1 + width:
                break
            more = fh.read(1 << 20)
            if not more:
                report.notes.append(f"the header declares {n} words but the file holds {i}")
                return rows.result(path), report
            buf += more
        if cut > 1000:
            raise CorpusError(
                f"{path}: word {i + 1} is not followed by a space; is this the binary word2vec format?"
            )
        vector = np.frombuffer(buf, dtype="<f4", count=dim, offset=cut + 1)
        rows.add(_decode(buf[:cut], report), vector, f"{path}: word {i + 1}")
        buf = buf[cut + 1 + width :]
    if (buf + fh.read(1 << 16)).strip():
        raise CorpusError(
            f"{path}: the header declares {n} words, but more data follows them; correct the header's word count"
        )
    return rows.result(path), report


def import_word2vec(path: Path, *, binary: bool = False) -> tuple[WordVectors, ImportReport]:
    """Read a word2vec text (or binary) file into :class:`WordVectors` (row order kept: usually by frequency).

    Raises:
        CorpusError: the file is missing, unreadable, or not in the format asked for (the message says which
            line and what was expected).
    """
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"{path} does not exist or is not a file")
    try:
        with path.open("rb") as fh:
            line = fh.readline()
            # a byte-order mark (Windows editors write one) is not part of the header or of the first word
            first = line.removeprefix(_BOM)
            if not first.strip():
                raise CorpusError(f"{path} is empty")
            header = _parse_header(first, path)
            room = os.fstat(fh.fileno()).st_size - (len(line) if header else 0)
            if header is not None:
                _check_header_fits(path, header, room=room, binary=binary)
            if binary:
                if header is None:
                    raise CorpusError(
                        f"{path}: a binary word2vec file starts with a '<words> <dim>' line; "
                        "drop --binary if it is text"
                    )
                return _read_binary(fh, path, header, room=room)
            if header is None and _is_binaryish(first):
                raise CorpusError(
                    f"{path}:1: not UTF-8 text; if it is the binary word2vec format, use --binary"
                )
            return _read_text(fh, path, header, first, room=room)
    except OSError as exc:
        raise CorpusError(f"{path} cannot be read: {exc.strerror}") from exc
