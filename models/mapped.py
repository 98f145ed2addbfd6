"""Verified private copies of the artifact files that serving maps into memory.

A memory-mapped file shows every later change of the file on disk: a write into it changes the answers, and a
truncation kills the process on its next read past the new end (SIGBUS). So no artifact file is mapped directly:
each is first copied, hashed as it is copied, into a folder that only this module writes, under a name made of
its sha256, and the copy is mapped. A copy whose sha256 differs from the one the artifact recorded is refused
(:class:`IntegrityError`). Every process of one server maps the same copy, so its pages stay shared between
the worker processes, as the artifact's own pages were.

Lifetime: a process takes a shared ``flock`` on each copy it opens; the lock lives with the open file, which a
memory map keeps (``mmap`` holds a duplicate of the descriptor), so it lasts exactly as long as something maps the
copy. :meth:`MappedFiles.sweep` deletes the copies no process holds.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import uuid
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from models.errors import IntegrityError

log = logging.getLogger(__name__)
_CHUNK = 1 << 20


def _sha_of_fd(fd: int) -> str:
    h = hashlib.sha256()
    offset = 0
    while block := os.pread(fd, _CHUNK, offset):
        h.update(block)
        offset += len(block)
    return h.hexdigest()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class MappedFiles:
    """Content-addressed, read-only copies of artifact files under ``root``.

    Args:
        root: a folder only palavra writes (``PALAVRA_MAP_DIR``; a tmpfs such as ``/dev/shm`` keeps the copies in
            memory, a disk folder keeps them in the page cache like the artifacts themselves).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def open(self, source: Path, sha: str | None) -> BinaryIO:
        """A read-only file over a copy of ``source`` whose content hashes to ``sha`` (``None``: not recorded).

        Keep the returned file (or a memory map made from it) open for as long as the copy is used: its shared
        lock keeps :meth:`sweep` from deleting the copy.

        Raises:
            IntegrityError: ``source`` is missing or does not hash to ``sha``.
            OSError: the copy could not be written (a full or read-only map folder).
        """
        fd = self._pin(source, sha)
        os.lseek(fd, 0, os.SEEK_SET)
        return os.fdopen(fd, "rb")

    def _pin(self, source: Path, sha: str | None) -> int:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        suffix = source.suffix if len(source.suffix) <= 16 else ""
        if sha:
            fd = self._existing(self.root / f"{sha}{suffix}", sha)
            if fd is not None:
                return fd
        tmp = self.root / f".{uuid.uuid4().hex}.tmp"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)  # before it has a real name, so a sweep never takes it
            digest = self._copy(source, fd)
            if sha and digest != sha:
                raise IntegrityError(
                    f"{source.parent.parent.name}@{source.parent.name}: {source.name} does not match its "
                    "recorded sha256; the artifact was changed on disk, refusing to load it"
                )
            os.fchmod(fd, 0o444)
            final = self.root / f"{digest}{suffix}"
            for _attempt in range(100):
                try:
                    os.link(tmp, final)
                    return fd
                except FileExistsError:
                    other = self._existing(final, digest)
                    if other is not None:  # another process made the same copy first: share that one
                        os.close(fd)
                        return other
            raise IntegrityError(
                f"could not place a copy of {source.name} in {self.root}"
            )  # pragma: no cover
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise
        finally:
            tmp.unlink(missing_ok=True)

    @staticmethod
    def _copy(source: Path, fd: int) -> str:
        h = hashlib.sha256()
        try:
            with source.open("rb") as src:
                while block := src.read(_CHUNK):
                    h.update(block)
                    _write_all(fd, block)
        except FileNotFoundError as exc:
            raise IntegrityError(
                f"{source.parent.parent.name}@{source.parent.name} is missing {source.name}; "
                "the artifact folder was altered"
            ) from exc
        return h.hexdigest()

    @staticmethod
    def _existing(path: Path, sha: str) -> int | None:
        """A locked descriptor of ``path`` when it is a live copy holding ``sha``; a damaged copy is removed."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        fcntl.flock(fd, fcntl.LOCK_SH)
        if os.fstat(fd).st_nlink == 0:  # swept between open and lock
            os.close(fd)
            return None
        if _sha_of_fd(fd) != sha:
            log.warning("removing %s: its content no longer matches its name", path)
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            return None
        return fd

    def sweep(self) -> int:
        """Delete the copies no process has open; returns how many were deleted."""
        if not self.root.is_dir():
            return 0
        removed = 0
        for path in self.root.iterdir():
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                path.unlink(missing_ok=True)
                removed += 1
            finally:
                os.close(fd)
        return removed


def map_region(
    fh: BinaryIO, dtype: np.dtype[Any], offset: int, shape: tuple[int, ...], *, order: str = "C"
) -> Any:
    """A read-only array over ``shape`` items of ``dtype`` at ``offset`` in ``fh`` (checked against its size)."""
    count = int(np.prod(shape, dtype=np.int64))
    size = os.fstat(fh.fileno()).st_size
    if offset < 0 or offset + count * dtype.itemsize > size:
        raise IntegrityError(f"an array of {count} x {dtype} at byte {offset} runs past the end of its file")
    if count == 0:
        empty = np.zeros(shape, dtype=dtype)
        empty.flags.writeable = False
        return empty
    return np.memmap(fh, dtype=dtype, mode="r", offset=offset, shape=shape, order=order)  # type: ignore[call-overload]


def map_npy(fh: BinaryIO) -> Any:
    """The array of an ``.npy`` file, memory-mapped read-only (never unpickled)."""
    try:
        major, _minor = np.lib.format.read_magic(fh)
        if major == 1:
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif major == 2:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ValueError(f"unsupported .npy version {major}")
    except ValueError as exc:
        raise IntegrityError(f"not a readable .npy file: {exc}") from exc
    if dtype.hasobject:
        raise IntegrityError("an .npy file holding Python objects cannot be mapped")
    return map_region(fh, dtype, fh.tell(), tuple(shape), order="F" if fortran else "C")
