"""Artifact files: read access to a registered version (:class:`Artifact`, every file checked against its recorded
sha256) and the staging folder a new version is written to (:class:`ArtifactWriter`).

Both speak JSON, numpy arrays and safetensors, never pickle. :class:`models.registry.Registry` creates, commits and
opens them; nothing else touches artifact files.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from collections.abc import Container, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from models.errors import IntegrityError
from models.mapped import MappedFiles, map_npy, map_region

log = logging.getLogger(__name__)


def sha256_file(path: Path, *, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    with path.open("rb") as fh:
        return sha256_open(fh.fileno(), chunk=chunk)


def sha256_open(fd: int, *, chunk: int = 1 << 20) -> str:
    """Hex sha256 of the file open as ``fd``, from its start (read with ``pread``: the descriptor's offset stays)."""
    h = hashlib.sha256()
    pos = 0
    while block := os.pread(fd, chunk, pos):
        h.update(block)
        pos += len(block)
    return h.hexdigest()


def file_checksums(folder: Path, *, skip: Container[str] = ()) -> dict[str, str]:
    """The sha256 of every file under ``folder`` (those named in ``skip`` left out), keyed by its path relative to
    ``folder``: what a registered version records in ``metadata.json`` and a collection in ``collection.json``."""
    return {
        p.relative_to(folder).as_posix(): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in skip
    }


def file_problems(folder: Path, files: Mapping[str, str]) -> list[str]:
    """What is wrong with the files ``files`` records under ``folder`` (relative path -> sha256): each one missing
    or not matching its sha256; empty when every file matches."""
    out = []
    for rel, digest in files.items():
        target = folder / rel
        if not target.is_file():
            out.append(f"{rel} is missing; the folder was altered")
        elif sha256_file(target) != digest:
            out.append(f"{rel} does not match its recorded sha256")
    return out


@dataclass(frozen=True)
class ModelVersion:
    """One registered, immutable version of a model."""

    name: str
    version: int
    kind: str
    path: Path
    created_at: datetime
    metadata: dict[str, Any]
    aliases: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


class Artifact:
    """Read access to a registered version's files, checked against their recorded sha256.

    Every read checks the bytes it read: JSON and small arrays are hashed as read, and memory-mapped arrays map a
    verified private copy (:mod:`models.mapped`), so a file written or truncated after registration is refused
    (:class:`IntegrityError`) rather than served, and never changes what a loaded model answers.
    """

    def __init__(self, version: ModelVersion, mapped: MappedFiles | None = None) -> None:
        self.version = version
        self.path = version.path
        self.mapped = mapped

    def verify(self) -> None:
        """Raise :class:`IntegrityError` unless every recorded file is present with its recorded sha256."""
        problems = self.problems()
        if problems:
            raise IntegrityError(f"{self.version.ref}: {problems[0]}; refusing to load it")

    def problems(self) -> list[str]:
        """What is wrong with the files on disk (empty when every recorded file matches its sha256)."""
        files: dict[str, str] = self.version.metadata.get("files", {})
        if not files:
            return ["no file checksums in its metadata; retrain it"]
        return file_problems(self.path, files)

    def file(self, rel: str) -> Path:
        return self.path / rel

    def exists(self, rel: str) -> bool:
        return (self.path / rel).is_file()

    def _recorded(self, rel: str) -> str | None:
        sha: str | None = self.version.metadata.get("files", {}).get(rel)
        return sha

    def read_bytes(self, rel: str) -> bytes:
        """A file's bytes, checked against its recorded sha256 after reading (a later write cannot slip in)."""
        try:
            data = (self.path / rel).read_bytes()
        except FileNotFoundError as exc:
            raise IntegrityError(
                f"{self.version.ref} is missing {rel}; the artifact folder was altered"
            ) from exc
        sha = self._recorded(rel)
        if sha is not None and hashlib.sha256(data).hexdigest() != sha:
            raise IntegrityError(
                f"{self.version.ref}: {rel} does not match its recorded sha256; refusing to load it"
            )
        return data

    def read_json(self, rel: str) -> Any:
        return json.loads(self.read_bytes(rel).decode("utf-8"))

    def open_mapped(self, rel: str) -> BinaryIO | None:
        """A verified private copy of a file to map, or None where no copy can be made (then read it whole)."""
        if self.mapped is None:
            return None
        try:
            return self.mapped.open(self.path / rel, self._recorded(rel))
        except OSError as exc:  # a full or read-only map folder: each process reads its own copy instead
            log.warning(
                "cannot copy %s of %s to %s (%s); reading it into memory",
                rel,
                self.version.ref,
                self.mapped.root,
                exc,
            )
            return None

    def read_array(self, rel: str, *, mmap: bool = True) -> npt.NDArray[Any]:
        """A ``.npy`` array; by default a read-only map of a verified copy, whose pages worker processes share."""
        fh = self.open_mapped(rel) if mmap else None
        if fh is not None:
            with fh:
                mapped: npt.NDArray[Any] = map_npy(fh)
            return mapped
        arr: npt.NDArray[Any] = np.load(io.BytesIO(self.read_bytes(rel)), allow_pickle=False)
        arr.flags.writeable = False
        return arr

    def read_tensors(self, rel: str) -> dict[str, Any]:
        """Tensors from a ``.safetensors`` file (torch tensors)."""
        from safetensors.torch import load

        return dict(load(self.read_bytes(rel)))

    def read_tensor_arrays(self, rel: str) -> dict[str, npt.NDArray[Any]]:
        """The tensors of a ``.safetensors`` file as read-only numpy arrays (no torch; mapped pages shared).

        Raises:
            IntegrityError: the file is not a safetensors file or holds a dtype numpy cannot map.
        """
        fh = self.open_mapped(rel)
        if fh is None:
            fh = io.BytesIO(self.read_bytes(rel))
        with fh:
            return _safetensors_arrays(fh, self.path / rel)


def _safetensors_arrays(fh: BinaryIO, path: Path) -> dict[str, npt.NDArray[Any]]:
    try:
        size = int.from_bytes(fh.read(8), "little")
        header = json.loads(fh.read(size))
    except (OSError, ValueError) as exc:
        raise IntegrityError(f"{path} is not a readable safetensors file: {exc}") from exc
    in_memory = isinstance(fh, io.BytesIO)
    out: dict[str, npt.NDArray[Any]] = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        dtype = _SAFETENSORS_DTYPES.get(spec.get("dtype"))
        if dtype is None:
            raise IntegrityError(
                f"{path}: tensor {name} has dtype {spec.get('dtype')}, which cannot be mapped"
            )
        begin, end = spec["data_offsets"]
        shape = tuple(spec["shape"])
        if in_memory:
            buf = fh.getbuffer()[8 + size + begin : 8 + size + end]  # type: ignore[attr-defined]
            arr = np.frombuffer(bytes(buf), dtype=dtype).reshape(shape)
            out[name] = arr
        else:
            out[name] = map_region(fh, np.dtype(dtype), 8 + size + begin, shape)
    return out


_SAFETENSORS_DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}


class ArtifactWriter:
    """A staging folder for a new version; becomes visible only when :meth:`Registry.create` commits it."""

    def __init__(self, path: Path, *, name: str, kind: str) -> None:
        self.path = path
        self.name = name
        self.kind = kind
        self.metadata: dict[str, Any] = {}

    def file(self, rel: str) -> Path:
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def write_json(self, rel: str, obj: Any) -> None:
        self.file(rel).write_text(
            json.dumps(obj, ensure_ascii=False, indent=1, default=str), encoding="utf-8"
        )

    def write_array(self, rel: str, arr: npt.NDArray[Any]) -> None:
        np.save(self.file(rel), np.ascontiguousarray(arr), allow_pickle=False)

    def write_tensors(self, rel: str, tensors: dict[str, Any]) -> None:
        from safetensors.torch import save_file

        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(self.file(rel)))

    def write_tensor_arrays(self, rel: str, tensors: dict[str, npt.NDArray[Any]]) -> None:
        """numpy arrays as a ``.safetensors`` file (no torch needed)."""
        from safetensors.numpy import save_file

        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(self.file(rel)))
