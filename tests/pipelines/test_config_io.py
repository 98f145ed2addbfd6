"""load_toml_config: valid files load; every problem is InvalidConfig naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.errors import InvalidConfig
from pipelines.config_io import load_toml_config
from pipelines.normalize import NormalizeConfig


def test_load_valid_config(tmp_path: Path) -> None:
    path = tmp_path / "n.toml"
    path.write_text(
        'fold_accents = true\nnumbers = "token"\n[lemma_overrides]\nfoi = "ir"\n', encoding="utf-8"
    )
    cfg = load_toml_config(path, NormalizeConfig)
    assert cfg == NormalizeConfig(fold_accents=True, numbers="token", lemma_overrides={"foi": "ir"})


def test_load_section(tmp_path: Path) -> None:
    path = tmp_path / "train.toml"
    path.write_text("epochs = 5\n[normalize]\nlowercase = false\n", encoding="utf-8")
    assert load_toml_config(path, NormalizeConfig, section="normalize").lowercase is False
    with pytest.raises(InvalidConfig, match=r"no \[model\] table"):
        load_toml_config(path, NormalizeConfig, section="model")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('numbers = "roman"\n', r"n.toml: field 'numbers': Input should be 'keep', 'zero' or 'token'"),
        ("lowercas = true\n", r"n.toml: field 'lowercas': unknown field"),
        ("min_token_chars = 0\n", r"field 'min_token_chars'"),
        ("lowercase = \n", r"n.toml is not valid TOML"),
    ],
)
def test_invalid_config_names_file_and_field(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "n.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InvalidConfig, match=message):
        load_toml_config(path, NormalizeConfig)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig, match="does not exist"):
        load_toml_config(tmp_path / "nope.toml", NormalizeConfig)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            '[training]\nclass_weights = { "1" = -2.0 }\n',
            "class weights must be positive numbers; not so for '1'",
        ),
        ('[training]\nclass_weights = { "0" = 1.0, "1" = 0.0 }\n', "not so for '1'"),
        ("[training]\nseed = -3\n", r"field 'training.seed'"),
        ("[training]\nlr = inf\n", r"field 'training.lr'"),
        ("[model]\nhidden = [64, 9000]\n", "from 1 to 8192"),
    ],
)
def test_invalid_classifier_run_values_are_refused(tmp_path: Path, content: str, message: str) -> None:
    from pipelines.classifier.config import RunFile

    path = tmp_path / "run.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InvalidConfig, match=message):
        load_toml_config(path, RunFile)
