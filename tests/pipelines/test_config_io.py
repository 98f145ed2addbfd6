"""load_toml_config: valid files load; every problem is InvalidConfig naming the file and the field. ``--set``
assignments and the merge of config layers: nested keys, JSON values, unknown keys named with their section's."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from models.errors import InvalidConfig
from pipelines.runs.config_io import assignments, given, load_toml_config, merge_config, parse_assignment
from pipelines.text.normalize import NormalizeConfig


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
        # lists 500 deep: the TOML parser's RecursionError was a traceback (a hostile probe)
        ("x = " + "[" * 500 + "]" * 500 + "\n", r"n.toml nests too deep to read"),
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


class _Training(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lr: float = 0.1
    epochs: int = 5
    hidden: list[int] = [64]
    patience: int | None = 2
    optimizer: str = "adam"


class _Phrases(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threshold: float = 10.0


class _Run(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "vetores"
    labels: dict[str, str] = {}
    training: _Training = _Training()
    phrases: _Phrases | None = None


def test_set_nests_dotted_keys_and_the_last_assignment_wins() -> None:
    layer = assignments(["training.lr=0.01", "phrases.threshold=5", "name=outro", "training.lr=0.02"], _Run)
    assert layer == {"training": {"lr": 0.02}, "phrases": {"threshold": 5}, "name": "outro"}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("training.epochs=3", 3),
        ("training.lr=1e-3", 0.001),
        ("training.hidden=[128, 64]", [128, 64]),
        ("training.patience=null", None),
        ('name="3"', "3"),
        ('labels={"0": "neg"}', {"0": "neg"}),
        ("phrases.threshold=true", True),
        # not JSON: the text itself
        ("training.optimizer=adam", "adam"),
        ("training.hidden=128,64", "128,64"),
        ("name=", ""),
        ("name=a=b", "a=b"),
        ("name=são paulo", "são paulo"),
    ],
)
def test_set_value_is_json_when_it_parses_else_text(text: str, value: object) -> None:
    key, parsed = parse_assignment(text)
    assert key == text.partition("=")[0]
    assert parsed == value
    assert type(parsed) is type(value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "trainig.lr=0.1",
            "unknown key 'trainig.lr': the top level has no 'trainig'; did you mean 'training'?",
        ),
        (
            "training.epocs=3",
            "unknown key 'training.epocs': [training] has no 'epocs'; did you mean 'epochs'?",
        ),
        ("training.momentum=0.9", "([training] has lr, epochs, hidden, patience, optimizer)"),
        ("seed=3", "(the top level has name, labels, training.*, phrases.*)"),
        ("training.lr.x=1", "'training.lr' is a value, not a section"),
        ("labels.0=neg", "'labels' is a value, not a section; set it whole, e.g. --set labels=..."),
        ("training.lr", "--set takes SECTION.KEY=VALUE"),
        ("=3", "--set takes SECTION.KEY=VALUE"),
        ("training..lr=3", "--set takes SECTION.KEY=VALUE"),
    ],
)
def test_set_unknown_keys_name_the_key_and_the_keys_of_their_section(text: str, message: str) -> None:
    with pytest.raises(InvalidConfig) as caught:
        assignments([text], _Run)
    assert message in caught.value.detail


def test_set_aliases_name_flat_keys_by_section() -> None:
    aliases = {"training.context": "context", "model.dim": "dim"}

    class Flat(BaseModel):
        context: int = 5
        dim: int = 64

    assert assignments(["training.context=3", "dim=8"], Flat, aliases=aliases) == {"context": 3, "dim": 8}
    with pytest.raises(
        InvalidConfig, match=r"\[model\] has no 'dmi'; did you mean 'dim'\? \(\[model\] has dim\)"
    ):
        assignments(["model.dmi=8"], Flat, aliases=aliases)


def test_merge_config_later_layers_win_sections_merge_and_values_are_replaced() -> None:
    file = {"name": "arquivo", "labels": {"0": "neg", "1": "pos"}, "training": {"lr": 0.5, "hidden": [8, 8]}}
    flags = given({"name": None, "labels": None, "training": {"lr": 0.05, "epochs": None, "hidden": None}})
    assert flags == {"training": {"lr": 0.05}}  # options left unset are no layer at all
    sets = assignments(["training.hidden=[4]", 'labels={"1": "bom"}', "training.patience=null"], _Run)
    merged = merge_config(_Run, file, flags, sets)
    assert merged == {
        "name": "arquivo",
        "labels": {"1": "bom"},  # a table value is replaced whole, not merged
        "training": {"lr": 0.05, "hidden": [4], "patience": None},  # a section merges key by key
    }
    assert _Run.model_validate(merged).training.patience is None
    assert merge_config(_Run, file, assignments(["training.lr=0.01"], _Run))["training"]["lr"] == 0.01


def test_merge_config_refuses_a_section_given_as_a_plain_value() -> None:
    with pytest.raises(
        InvalidConfig, match=r"'training' is a section: give it as a table, e.g. \[training\]"
    ):
        merge_config(_Run, {"training": 3}, {"training": {"lr": 0.1}})
