"""The files a job may read: paths under the configured data root, and files uploaded with the job.

A job config names its inputs as strings: a dataset catalogue name, a path under the data root (relative to it
or absolute), or ``upload:<filename>`` for a file sent with the job. Paths that leave the data root are refused,
whether by ``..``, an absolute path elsewhere or a symbolic link; so are files that are the data root's own
only in name: a hard link (its content lives elsewhere too, e.g. ``ln /etc/passwd hl.txt``) or a file owned by
another user than the data root's owner. Uploads are saved under ``<data root>/uploads/<job id>/`` and removed
when the job ends; a full disk while saving one is :class:`DiskFull` (HTTP 503), not a crash.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
from collections.abc import Callable, Iterable
from pathlib import Path, PurePath
from typing import Any, BinaryIO

from models.errors import CorpusError, DiskFull, InvalidInput, PathNotAllowed, TooLarge
from pipelines.reading.corpus import list_files

UPLOAD_PREFIX = "upload:"
UPLOADS_DIR = "uploads"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_CHUNK = 1 << 20
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def no_space(exc: BaseException) -> bool:
    """True for the OSError of a write on a full device (or an exhausted quota)."""
    return isinstance(exc, OSError) and exc.errno in _NO_SPACE


class DataRoot:
    """Resolves input paths strictly inside one folder.

    Args:
        root: the folder jobs may read (``Settings.effective_data_root``); created when missing.
    """

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve()
        # who may own an input: the data root's owner, and this process's user (it saved the uploads)
        self.owners = {self.root.stat().st_uid, os.geteuid()}

    def resolve(self, spec: str, *, allow_dir: bool = False) -> Path:
        """The existing file (or, with ``allow_dir``, folder) ``spec`` names under the data root.

        Raises:
            PathNotAllowed: ``spec`` contains ``..``, points outside the data root, or passes through (or, for
                a folder, contains) a symbolic link, a hard link or a file of another owner.
            InvalidInput: nothing exists there.
        """
        try:
            return self._resolve(spec, allow_dir=allow_dir)
        except (
            OSError
        ) as exc:  # a name too long for the filesystem, a loop of folders ...: the path, not palavra
            raise InvalidInput(
                f"input path {spec[:200]!r} cannot be used under the data root {self.root}: "
                f"{exc.strerror or exc}",
                path=spec,
            ) from None

    def _resolve(self, spec: str, *, allow_dir: bool) -> Path:
        path = self.check(spec)
        if allow_dir and path.is_dir():
            link = next((p for p in path.rglob("*") if p.is_symlink()), None)
            if link is not None:
                raise PathNotAllowed(
                    f"input folder {spec!r} contains the symbolic link {link}; jobs read real files under "
                    f"{self.root} only",
                    path=spec,
                )
            for inner in path.rglob("*"):
                self._check_own(inner, spec)
            return path
        if not path.is_file():
            hint = (
                f"; '{UPLOAD_PREFIX}' names a file sent with the job in a multipart request (docs/jobs.md)"
                if spec.startswith(UPLOAD_PREFIX)
                else ""
            )
            raise InvalidInput(
                f"input file {spec!r} does not exist under the data root {self.root}{hint}", path=spec
            )
        self._check_own(path, spec)
        return path

    def _check_own(self, path: Path, spec: str) -> None:
        """Refuse a regular file that is a hard link, or that neither the data root's owner nor palavra's user owns.

        A hard link is no symlink: its path lies inside the root while its bytes may be any file of the same
        device the linker could read (``ln /etc/passwd hl.txt``). Both checks read the file itself (lstat).
        """
        st = path.lstat()
        if not stat.S_ISREG(st.st_mode):
            return
        if st.st_nlink > 1:
            raise PathNotAllowed(
                f"input {spec!r}: {path} is a hard link ({st.st_nlink} names for one file); jobs read files "
                f"that live under {self.root} only: copy the file there instead of linking it",
                path=spec,
            )
        if st.st_uid not in self.owners:
            owners = " or ".join(str(uid) for uid in sorted(self.owners))
            raise PathNotAllowed(
                f"input {spec!r}: {path} belongs to user id {st.st_uid}, not to the data root's owner "
                f"({owners}); copy the file into {self.root} as that user",
                path=spec,
            )

    def check(self, spec: str) -> Path:
        """Where ``spec`` points under the data root, without requiring the file to exist yet."""
        if not spec.strip():
            raise InvalidInput("an input path is empty")
        pure = PurePath(spec)
        if ".." in pure.parts:
            raise PathNotAllowed(
                f"input path {spec!r} contains '..'; name a file under {self.root}", path=spec
            )
        candidate = Path(os.path.abspath(pure if pure.is_absolute() else self.root / pure))
        try:
            rel = candidate.relative_to(self.root)
        except ValueError:
            raise PathNotAllowed(
                f"input path {spec!r} is outside the data root {self.root} (PALAVRA_DATA_ROOT); "
                "copy the file there or upload it with the job",
                path=spec,
            ) from None
        current = self.root
        for part in rel.parts:
            current = current / part
            if current.is_symlink():
                raise PathNotAllowed(
                    f"input path {spec!r} passes through the symbolic link {current}; jobs read real files "
                    f"under {self.root} only",
                    path=spec,
                )
        return current

    def upload_dir(self, job_id: str) -> Path:
        return self.root / UPLOADS_DIR / job_id

    def save_upload(self, job_id: str, filename: str, stream: BinaryIO, *, max_bytes: int) -> str:
        """Copy an uploaded file under ``uploads/<job_id>/``; returns its path relative to the data root.

        Raises:
            TooLarge: the file is larger than ``max_bytes`` (nothing is kept).
            DiskFull: the data root's device filled up while saving it (nothing is kept).
        """
        name = safe_filename(filename)
        folder = self.upload_dir(job_id)
        target = folder / name
        written = 0
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with self._create(target) as out:
                while block := stream.read(_CHUNK):
                    written += len(block)
                    if written > max_bytes:
                        raise TooLarge(
                            f"uploaded file {filename!r} is larger than the limit of {max_bytes} bytes "
                            "(PALAVRA_MAX_UPLOAD_BYTES)",
                            limit=max_bytes,
                        )
                    out.write(block)
        except TooLarge:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        except OSError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            if not no_space(exc):
                raise
            raise DiskFull(
                f"no space left on device to save the upload {filename!r} under {self.root} "
                f"({written} bytes written); free disk space there and submit the job again"
            ) from exc
        return target.relative_to(self.root).as_posix()

    def _create(self, target: Path) -> BinaryIO:
        """The file an upload is written to (a subclass may write elsewhere, e.g. to simulate a full disk)."""
        return target.open("wb")

    def remove_uploads(self, job_id: str) -> None:
        shutil.rmtree(self.upload_dir(job_id), ignore_errors=True)


MAX_NAME_CHARS = 128
_COMPRESSED = {".gz", ".bz2", ".xz", ".zst"}


def safe_filename(filename: str) -> str:
    """A file name with no folder part and only ``[A-Za-z0-9._-]`` (never hidden, never empty)."""
    base = PurePath(filename.replace("\\", "/")).name
    cleaned = _SAFE_NAME.sub("_", base).lstrip(".")
    if len(cleaned) > MAX_NAME_CHARS:  # shortened before the extension, which says what format the file is
        suffixes = PurePath(cleaned).suffixes
        # a compressed file keeps its format too (corpus.jsonl.gz, not corpus.gz: read as plain text)
        suffix = "".join(suffixes[-2:] if suffixes and suffixes[-1] in _COMPRESSED else suffixes[-1:])[:16]
        cleaned = cleaned[: MAX_NAME_CHARS - len(suffix)] + suffix
    return cleaned or "upload"


def replace_uploads(config: Any, uploaded: dict[str, str]) -> Any:
    """``config`` with every ``upload:<filename>`` string replaced by where that upload was saved.

    Raises:
        InvalidInput: a placeholder names a file that was not uploaded, or an upload is never referenced.
    """
    used: set[str] = set()

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str) and value.startswith(UPLOAD_PREFIX):
            name = value[len(UPLOAD_PREFIX) :]
            if name not in uploaded:
                sent = ", ".join(sorted(uploaded)) or "none"
                raise InvalidInput(
                    f"config refers to {value!r} but no file of that name was uploaded (sent: {sent})"
                )
            used.add(name)
            return uploaded[name]
        return value

    out = walk(config)
    unused = sorted(set(uploaded) - used)
    if unused:
        raise InvalidInput(
            f"uploaded file(s) {', '.join(unused)} are not used by the config; refer to each as "
            f"'{UPLOAD_PREFIX}<filename>'"
        )
    return out


def check_inputs(
    specs: Iterable[str],
    *,
    is_dataset: Callable[[str], bool],
    data_root: DataRoot,
    corpora: Iterable[list[str]] = (),
) -> None:
    """Refuse, before a job is queued, any input that is neither a catalogue dataset nor a file in the data root,
    and any corpus training could not read (``corpora``: groups of specs that training reads as one): a file whose
    name is no corpus format (``notas.md``, an upload named ``corpus``), or a group whose folders hold no corpus
    file. Such a job was accepted, then failed in the worker."""
    # each input resolved once (a folder's resolve walks it, checking every file's links and owner)
    resolved = {spec: data_root.resolve(spec, allow_dir=True) for spec in specs if not is_dataset(spec)}
    for group in corpora:
        found = False
        for spec in group:
            if is_dataset(spec):
                found = True
                continue
            path = resolved.get(spec) or data_root.resolve(spec, allow_dir=True)
            try:
                found = bool(list_files([path])) or found
            except CorpusError as exc:
                detail = exc.detail.removeprefix(f"{path}: ")
                raise InvalidInput(f"corpus {spec!r}: {detail}", path=spec) from None
        if not found:
            listed = ", ".join(repr(spec) for spec in group)
            raise InvalidInput(
                f"corpus {listed}: no corpus file (.txt, .jsonl, .csv, optionally .gz) in "
                f"{'the folder' if len(group) == 1 else 'any of them'}",
                path=group[0],
            )
