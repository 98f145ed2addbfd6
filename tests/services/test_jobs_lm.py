"""The ``lm`` job kind: validates the CLI's config and trains through the same pipeline, reading under the data root."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from models.errors import InvalidConfig, PathNotAllowed
from models.registry import Registry
from pipelines.runs.progress import Progress
from services.jobs.inputs import DataRoot
from services.jobs.kinds import DataRootCatalog, JobContext, job_kind
from tests.lm_helpers import TINY


def _context(tmp_path: Path, registry: Registry, seen: list[Progress]) -> JobContext:
    root = DataRoot(tmp_path / "data")
    return JobContext(
        registry=registry,
        catalog=DataRootCatalog(None, tmp_path / "cache", data_root=root),
        data_root=root,
        cache_dir=tmp_path / "cache",
        output_dir=tmp_path / "out",
        progress=seen.append,
    )


def test_lm_job_trains_and_registers(tmp_path: Path, registry: Registry, pt_corpus_file: Path) -> None:
    kind = job_kind("lm")
    seen: list[Progress] = []
    ctx = _context(tmp_path, registry, seen)
    shutil.copyfile(pt_corpus_file, ctx.data_root.root / "frases.txt")
    run = kind.validate({"name": "frases-job", "corpus": ["frases.txt"], **TINY, "epochs": 2})
    assert kind.inputs(run) == ["frases.txt"]
    version = kind.run(run, ctx)
    assert version.ref == "frases-job@1"  # type: ignore[union-attr]
    assert version.kind == "lm"  # type: ignore[union-attr]
    # one report per epoch end (with a message); in-epoch reports (once a second, no message) appear when the
    # machine is slow enough for an epoch to last a second
    assert [p.epoch for p in seen if p.stage == "train" and p.loss is not None and p.message] == [1, 2]


def test_lm_job_refuses_bad_config_and_paths_outside_the_data_root(
    tmp_path: Path, registry: Registry
) -> None:
    kind = job_kind("lm")
    with pytest.raises(InvalidConfig, match="context"):
        kind.validate({"name": "x", "corpus": ["a.txt"], "context": 0})
    run = kind.validate({"name": "x", "corpus": ["../../etc/passwd"]})
    with pytest.raises(PathNotAllowed):
        kind.run(run, _context(tmp_path, registry, []))


def test_compare_lm_job_trains_the_grid_and_refuses_a_bad_one(
    tmp_path: Path, registry: Registry, pt_corpus_file: Path
) -> None:
    kind = job_kind("compare_lm")
    with pytest.raises(InvalidConfig, match=r"grid model\.context: 0 is not allowed"):
        kind.validate({"corpus": ["frases.txt"], "grid": {"context": [2, 0]}})
    with pytest.raises(InvalidConfig, match="given twice"):
        kind.validate({"corpus": ["frases.txt"], "activations": ["tanh"], "grid": {"activation": ["relu"]}})
    ctx = _context(tmp_path, registry, [])
    shutil.copyfile(pt_corpus_file, ctx.data_root.root / "frases.txt")
    config = {**TINY, "epochs": 1, "dim": 8, "hidden": [16]}
    run = kind.validate(
        {"corpus": ["frases.txt"], **config, "grid": {"context": [2, 3]}, "optimizers": ["sgd"]}
    )
    result = kind.run(run, ctx)
    assert isinstance(result, dict)
    assert [r["cell"] for r in result["runs"]] == [
        {"training.optimizer": "sgd", "model.context": 2},
        {"training.optimizer": "sgd", "model.context": 3},
    ]
    assert result["columns"][0] == "context"
    assert (ctx.output_dir / "report.md").is_file()
    assert registry.list() == []  # a comparison registers nothing
