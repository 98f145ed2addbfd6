"""Installing palavra prints no deprecation warnings: its pyproject.toml reads cleanly with setuptools."""

from __future__ import annotations

import warnings
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def test_pyproject_loads_without_setuptools_warnings() -> None:
    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution

    with warnings.catch_warnings():
        warnings.simplefilter(
            "error"
        )  # e.g. `project.license` as a table is deprecated: an SPDX string is not
        dist = apply_configuration(Distribution(), PYPROJECT)
    assert dist.metadata.license_expression == "MIT"
    # packages at the root map to it: an editable install is a plain path entry, without the import-finder notice
    assert dist.package_dir == {"": "."}
