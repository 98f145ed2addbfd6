from __future__ import annotations

import gc
import os
import stat

import numpy as np
import pytest

from models.errors import IntegrityError
from models.registry import Registry


def _register(registry: Registry, matrix: np.ndarray) -> str:
    with registry.create("m", "word2vec") as w:
        w.write_array("vectors_norm.npy", matrix)
        w.write_json("vocab.json", ["a", "b"])
    return str(w.version.ref)  # type: ignore[attr-defined]


def test_mapped_array_survives_writes_and_truncation_of_the_artifact(registry: Registry) -> None:
    ref = _register(registry, np.eye(2, dtype=np.float32))
    art = registry.open(ref)
    arr = art.read_array("vectors_norm.npy")
    target = art.file("vectors_norm.npy")
    target.chmod(0o644)
    target.write_bytes(target.read_bytes()[:-8] + np.full(2, 2.5, np.float32).tobytes())
    assert arr.tolist() == [[1.0, 0.0], [0.0, 1.0]]
    os.truncate(target, 0)
    assert arr.tolist() == [[1.0, 0.0], [0.0, 1.0]]  # would be SIGBUS on a direct map
    assert not arr.flags.writeable
    with pytest.raises(IntegrityError, match=r"vectors_norm\.npy"):
        registry.open(ref)  # a new load checks the artifact itself, not only the copy
    with pytest.raises(IntegrityError, match=r"vectors_norm\.npy"):
        art.read_array("vectors_norm.npy", mmap=False)


def test_registry_makes_version_files_read_only(registry: Registry) -> None:
    ref = _register(registry, np.eye(2, dtype=np.float32))
    folder = registry.get(ref).path
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o444, path.name


def test_mapped_copies_are_shared_then_swept_when_unused(registry: Registry) -> None:
    ref = _register(registry, np.arange(6, dtype=np.float32).reshape(3, 2))
    art = registry.open(ref)
    first = art.read_array("vectors_norm.npy")
    second = registry.open(ref).read_array("vectors_norm.npy")
    copies = list(registry.mapped.root.iterdir())
    assert len(copies) == 1  # one copy, mapped twice
    assert registry.mapped.sweep() == 0  # still mapped
    del first, second
    gc.collect()
    assert registry.mapped.sweep() == 1
    assert list(registry.mapped.root.iterdir()) == []


def test_mapped_copy_changed_in_the_map_folder_is_replaced(registry: Registry) -> None:
    ref = _register(registry, np.eye(2, dtype=np.float32))
    art = registry.open(ref)
    arr = art.read_array("vectors_norm.npy")
    (copy,) = registry.mapped.root.iterdir()
    del arr
    gc.collect()
    copy.chmod(0o644)
    copy.write_bytes(copy.read_bytes()[:-4] + b"\0\0\0\0")
    assert art.read_array("vectors_norm.npy").tolist() == [[1.0, 0.0], [0.0, 1.0]]
