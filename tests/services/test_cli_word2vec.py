"""``palavra train|evaluate word2vec``, ``neighbors``, ``export|import word2vec``: output, exit codes, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from models.registry import ModelVersion, Registry
from services.settings import Settings, get_settings
from services.timestamps import utc_iso
from tests.services.cli_helpers import run
from tests.services.vector_models import register


def test_train_word2vec_prints_ref_and_metrics(
    cli_env: Settings,
    registry: Registry,
    pt_corpus_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    analogies = tmp_path / "a.txt"
    analogies.write_text(": family\nrei rainha príncipe princesa\n", encoding="utf-8")
    config = tmp_path / "run.toml"
    config.write_text(
        f'[train]\nvector_size = 12\nmin_count = 2\nbucket = 5000\n[evaluation]\nanalogies = ["{analogies}"]\n'
        "pairs = []\n",
        encoding="utf-8",
    )
    argv = ["train", "word2vec", "--corpus", str(pt_corpus_file), "--config", str(config), "--name", "cli"]
    code, out, err = run([*argv, "--algorithm", "word2vec", "--epochs", "2", "--workers", "1"], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert result["model"] == "cli@1"
    assert result["kind"] == "word2vec"
    assert len(result["epoch_losses"]) == 2
    assert result["metrics"][str(analogies)]["questions"] == 1
    assert "train" in err  # the progress bar
    saved = registry.open("cli").read_json("config.json")
    assert (saved["train"]["epochs"], saved["train"]["vector_size"]) == (2, 12)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("   \n\n", "no tokens left"),
        (b"\x00\x01binary\x00", "binary"),
        (None, "no data set or file called"),
    ],
)
def test_train_bad_corpus_is_one_line_exit_2_and_registers_nothing(
    cli_env: Settings,
    registry: Registry,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str | bytes | None,
    message: str,
) -> None:
    corpus = tmp_path / "corpus.txt"
    if isinstance(content, bytes):
        corpus.write_bytes(content)
    elif content is not None:
        corpus.write_text(content, encoding="utf-8")
    code, out, err = run(["train", "word2vec", "--corpus", str(corpus), "--name", "x", "--quiet"], capsys)
    assert code == 2
    assert out == ""
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert registry.list() == []


def test_train_config_typo_is_one_line_error(
    cli_env: Settings, tmp_path: Path, pt_corpus_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "run.toml"
    config.write_text("[train]\nepocs = 3\n", encoding="utf-8")
    argv = ["train", "word2vec", "--corpus", str(pt_corpus_file), "--name", "x", "--config", str(config)]
    code, _, err = run(argv, capsys)
    assert code == 2
    assert "field 'train.epocs': unknown field" in err
    # a bad value given on the command line is not blamed on the file alone (a newcomer's run)
    config.write_text("[train]\nepochs = 3\n", encoding="utf-8")
    for bad in (["--set", "train.epochs=abc"], ["--epochs", "-1"]):
        code, _, err = run([*argv, *bad], capsys)
        assert code == 2
        assert err.startswith(f"error: {config} and the command line's options: field 'train.epochs': "), err
    code, _, err = run(["train", "word2vec", "--config", str(config), "--set", "train.epochs=abc"], capsys)
    assert code == 2
    # a seed numpy cannot take was gensim's traceback after the corpus was read (a hostile probe)
    code, _, err = run([*argv, "--set", "train.seed=4294967296"], capsys)
    assert code == 2
    assert "field 'train.seed': Input should be less than or equal to 4294967295" in err


def test_neighbors_table_and_json(
    cli_env: Settings, w2v_model: ModelVersion, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["neighbors", w2v_model.name, "Rei", "-k", "3"], capsys)
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].split() == ["RANK", "WORD", "SIMILARITY"]
    assert len(lines) == 4
    code, out, _ = run(["neighbors", f"{w2v_model.name}@1", "Rei", "-k", "2", "--json"], capsys)
    result = json.loads(out)
    assert (result["token"], result["in_vocabulary"], len(result["neighbors"])) == ("rei", True, 2)


def test_neighbors_of_an_unknown_word_say_they_come_from_subwords(
    cli_env: Settings, ft_model: ModelVersion, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["neighbors", ft_model.name, "Reizinhos", "-k", "3"], capsys)
    assert code == 0
    first, header, *rows = out.strip().splitlines()
    assert (
        first
        == "'reizinhos' is not in tiny-fasttext@1's vocabulary; its neighbours are built from its subword n-grams"
    )
    assert header.split() == ["RANK", "WORD", "SIMILARITY"]
    assert len(rows) == 3
    code, out, _ = run(["neighbors", ft_model.name, "rei", "-k", "3"], capsys)
    assert "vocabulary" not in out


@pytest.mark.parametrize("blank", ["", "\u200b", "\u2060\u00ad"])
def test_a_blank_word_is_one_line_exit_2_on_every_model(
    cli_env: Settings,
    w2v_model: ModelVersion,
    ft_model: ModelVersion,
    capsys: pytest.CaptureFixture[str],
    blank: str,
) -> None:
    """The CLI printed neighbours of a zero-width space on a FastText model, and "not in the model's vocabulary:
    ''" for an empty word."""
    for argv in (
        ["neighbors", ft_model.name, blank],
        ["neighbors", w2v_model.name, blank],
        ["similarity", ft_model.name, "rei", blank],
    ):
        code, out, err = run(argv, capsys)
        assert (code, out) == (2, ""), argv
        assert err.startswith("error: word"), err
        assert "must not be blank" in err, err
        assert len(err.strip().splitlines()) == 1


def test_misspelled_model_names_get_suggestions(
    cli_env: Settings, w2v_model: ModelVersion, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["neighbors", "tiny-word2vc", "rei"], capsys)
    assert code == 2
    assert err.strip() == (
        "error: model 'tiny-word2vc' is not registered; did you mean 'tiny-word2vec'? "
        "(`palavra models list` shows what is)"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["neighbors", "tiny-word2vec", "rei", "-k", "0"], "-k must be a positive number"),
        (["neighbors", "tiny-word2vec", "rei", "-k", "-3"], "-k must be a positive number"),
        (["neighbors", "nao-existe", "rei"], "model 'nao-existe' is not registered"),
        (["neighbors", "tiny-word2vec", "xyzzy"], "not in the model's vocabulary"),
        (
            ["neighbors", "tiny-word2vec", "re\udcff"],
            "the word is not valid text: the byte 0xFF at character 2",
        ),
        (["export", "word2vec", "nao-existe", "--output", "{tmp}/v.txt"], "is not registered"),
        (["import", "word2vec", "{tmp}/nada.txt", "--name", "n"], "does not exist"),
        (
            ["import", "word2vec", "{tmp}/huge.vec", "--name", "n"],
            "declares 3000000000 words of 300 dimensions",
        ),
        (["import", "word2vec", "{tmp}/huge.vec", "--binary", "--name", "n"], "declares 3000000000 words"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    cli_env: Settings,
    w2v_model: ModelVersion,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    (tmp_path / "huge.vec").write_bytes(b"3000000000 300\na 1\n")  # a header that would allocate 3.6 TB
    code, _, err = run([a.replace("{tmp}", str(tmp_path)) for a in argv], capsys)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_evaluate_word2vec_prints_json(
    cli_env: Settings, ft_model: ModelVersion, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    analogies = tmp_path / "a.txt"
    analogies.write_text(
        ": family\nRei Rainha Príncipe Princesa\n: gram8-plural\nreino reinos castelo castelos\n"
    )
    pairs = tmp_path / "p.tsv"
    pairs.write_text("word1\tword2\tPOS\tscore\nrei\trainha\tN\t8\ngatos\tcão\tN\t6\nverão\tinverno\tN\t5\n")
    argv = ["evaluate", "word2vec", ft_model.name, "--analogies", str(analogies), "--pairs", str(pairs)]
    code, out, _ = run(argv, capsys)
    assert code == 0
    result = json.loads(out)
    assert result["model"] == ft_model.ref
    res = result["analogies"][str(analogies)]
    assert res["questions"] == 2
    assert res["sections"]["family"]["answered"] == 1
    assert result["pairs"][str(pairs)]["used"] == 3  # "gatos" from subwords
    code, out, _ = run([*argv, "--no-subwords"], capsys)
    assert json.loads(out)["pairs"][str(pairs)]["used"] == 2


@pytest.mark.parametrize("binary", [False, True])
def test_export_then_import_round_trip(
    cli_env: Settings,
    w2v_model: ModelVersion,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    binary: bool,
) -> None:
    out_file = tmp_path / "tiny.vec"
    flag = ["--binary"] if binary else []
    code, out, _ = run(["export", "word2vec", w2v_model.name, "--output", str(out_file), *flag], capsys)
    assert code == 0
    exported = json.loads(out)
    assert exported["words"] > 40
    code, out, _ = run(["import", "word2vec", str(out_file), "--name", "volta", *flag], capsys)
    assert code == 0
    assert json.loads(out)["imported"]["words"] == exported["words"]
    code, before, _ = run(["neighbors", w2v_model.name, "rei", "--json"], capsys)
    code, after, _ = run(["neighbors", "volta", "rei", "--json"], capsys)
    assert json.loads(before)["neighbors"] == json.loads(after)["neighbors"]


def test_import_binary_without_flag_says_so(
    cli_env: Settings, w2v_model: ModelVersion, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "tiny.bin"
    run(["export", "word2vec", w2v_model.name, "--output", str(out_file), "--binary"], capsys)
    code, _, err = run(["import", "word2vec", str(out_file), "--name", "b"], capsys)
    assert code == 2
    assert "--binary" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "word2vec", "--bogus"], "No such option: --bogus"),
        (["neighbors"], "Missing argument"),
        (["neighbors", "modelo", "rei", "-k", "dez"], "Invalid value for '-k'"),
        (["train", "lm", "--epochs", "x"], "Invalid value for '--epochs'"),
        (["bogus"], "No such command 'bogus'"),
    ],
)
def test_usage_errors_exit_2_with_a_message(
    cli_env: Settings, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """One line naming the command's help, not click's usage block, hint line and message (a newcomer's run)."""
    code, out, err = run(argv, capsys)
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    command = " ".join(["palavra", *[a for a in argv[:2] if a in {"train", "word2vec", "lm", "neighbors"}]])
    assert err.strip().splitlines() == [err.strip()], err
    assert err.startswith("error: ")
    assert err.strip().endswith(f"(see '{command} --help')"), err
    assert "Usage:" not in err
    assert not out


@pytest.mark.parametrize("argv", [["models"], ["train"], []])
def test_a_command_group_without_its_command_shows_its_help(
    cli_env: Settings, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Not a one-line error with an empty message (a review of the one-line usage errors above)."""
    code, out, err = run(argv, capsys)
    assert code == 2
    assert "Usage: palavra" in out
    assert "error" not in err


@pytest.mark.parametrize(
    ("env", "line"),
    [
        (
            {"PALAVRA_MAX_K": "abc"},
            "error: PALAVRA_MAX_K='abc': Input should be a valid integer, unable to parse string as an integer",
        ),
        (
            {"PALAVRA_MAX_K": "0", "PALAVRA_PROTECT_READS": "maybe"},
            "error: PALAVRA_PROTECT_READS='maybe': Input should be a valid boolean, unable to interpret input; "
            "PALAVRA_MAX_K='0': Input should be greater than or equal to 1",
        ),
        (
            {"PALAVRA_DATABASE_URL": "1"},
            "error: the database URL (PALAVRA_DATABASE_URL) is not a URL: give "
            "postgresql+psycopg://USER@HOST:PORT/NAME, or leave it unset for SQLite under PALAVRA_HOME "
            "(ArgumentError)",
        ),
        (
            {"PALAVRA_DATABASE_URL": "postgresql+psycopg2://user:secret@host/db"},  # a driver not installed
            "error: the database URL (PALAVRA_DATABASE_URL) names the database 'postgresql+psycopg2', which palavra "
            "cannot use: give postgresql+psycopg://USER@HOST:PORT/NAME, or leave it unset for SQLite under "
            "PALAVRA_HOME (ModuleNotFoundError)",
        ),
        (
            {"PALAVRA_DATABASE_URL": "postgresql://user:secret@host:notaport/db"},
            "error: the database URL (PALAVRA_DATABASE_URL) does not parse (a port or a parameter that is not a "
            "number?): give postgresql+psycopg://USER@HOST:PORT/NAME, or leave it unset for SQLite under "
            "PALAVRA_HOME (ValueError)",
        ),
        (
            {"PALAVRA_DATABASE_URL": "foo://user:secret@host/db"},
            "error: the database URL (PALAVRA_DATABASE_URL) names the database 'foo', which palavra cannot use: "
            "give postgresql+psycopg://USER@HOST:PORT/NAME, or leave it unset for SQLite under PALAVRA_HOME "
            "(NoSuchModuleError)",
        ),
    ],
)
def test_bad_environment_settings_are_one_line_naming_the_variable(
    cli_env: Settings,
    env: dict[str, str],
    line: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every command printed pydantic's (or SQLAlchemy's) traceback and exited 1 (a hostile probe)."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    code, out, err = run(["models", "list"], capsys)
    assert code == 2
    assert err.strip().splitlines() == [line]
    assert "secret" not in err
    assert not out


def test_models_show_writes_created_at_as_everything_else(
    cli_env: Settings, registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    """``models show`` printed the artifact's created_at as +00:00 with microseconds, jobs and HTTP as ...Z."""
    register(registry, "w2v")
    code, out, _ = run(["models", "show", "w2v"], capsys)
    assert code == 0
    created = json.loads(out)["metadata"]["created_at"]
    assert created.endswith("Z")
    assert created == utc_iso(registry.get("w2v").created_at)


def test_models_alias_moves_and_deletes_an_alias(
    cli_env: Settings, registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    register(registry, "w2v")
    register(registry, "w2v", seed=1)
    assert run(["models", "alias", "w2v", "staging", "2"], capsys)[0] == 0
    assert registry.get("w2v@staging").version == 2
    code, out, _ = run(["models", "alias", "w2v", "staging", "--delete"], capsys)
    assert code == 0
    assert json.loads(out) == {"name": "w2v", "alias": "staging", "deleted": True, "previous": 2}
    assert ("w2v", "staging") not in registry.alias_map()
    for argv, fragment in [
        (["models", "alias", "w2v", "staging", "--delete"], "has no alias 'staging'"),
        (["models", "alias", "w2v", "production", "--delete"], "move it to another version instead"),
        (["models", "alias", "w2v", "latest", "--delete"], "kept by the registry"),
        (["models", "alias", "w2v", "beta", "1", "--delete"], "--delete takes no version"),
        (["models", "alias", "w2v", "beta"], "give the version"),
    ]:
        code, out, err = run(argv, capsys)
        assert code == 2, argv
        assert fragment in err, (argv, err)
        assert "Traceback" not in err
    assert registry.get("w2v").version == 1


def test_similarity_and_analogy_answer_as_the_api_does(
    cli_env: Settings, w2v_model: ModelVersion, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipelines.serving.served_vectors import load_served_vectors

    emb = load_served_vectors(Registry(cli_env.home, cli_env.effective_database_url).open(w2v_model.ref))
    code, out, err = run(["similarity", w2v_model.name, "Rei", "rainha", "homem", "mulher", "--json"], capsys)
    assert code == 0, err
    result = json.loads(out)
    expected = emb.similarity([("rei", "rainha"), ("homem", "mulher")])
    assert [r["pair"] for r in result["results"]] == [["Rei", "rainha"], ["homem", "mulher"]]
    assert [r["cosine"] for r in result["results"]] == [round(c, 4) for c in expected]
    code, out, _ = run(["similarity", w2v_model.name, "rei", "rainha"], capsys)
    assert out.splitlines()[0].split() == ["WORD1", "WORD2", "COSINE"]
    for argv in (["rei - homem + mulher"], ["rei", "-", "homem", "+", "mulher"], ["rei -homem +mulher"]):
        code, out, err = run(["analogy", w2v_model.name, *argv, "-k", "3", "--json"], capsys)
        assert code == 0, err
        result = json.loads(out)
        assert (result["positive"], result["negative"]) == (["rei", "mulher"], ["homem"])
        expected = emb.analogy(["rei", "mulher"], ["homem"], 3)
        assert [r["word"] for r in result["results"]] == [n.word for n in expected]
        assert not {"rei", "homem", "mulher"} & {r["word"] for r in result["results"]}
    code, out, _ = run(["analogy", w2v_model.name, "rei - homem + mulher", "--method", "3cosmul"], capsys)
    assert code == 0
    assert out.splitlines()[0].split() == ["RANK", "WORD", "SCORE"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["similarity", "tiny-word2vec", "rei"], "give words in pairs"),
        (["similarity", "tiny-word2vec", "rei", "xyzzy"], "not in the model's vocabulary"),
        (["similarity", "tiny-word2vec", "rei", "re\udcff"], "is not valid text"),
        (["analogy", "tiny-word2vec", "rei - - homem"], "two signs in a row"),
        (["analogy", "tiny-word2vec", "rei - homem +"], "ends with a sign"),
        # three words with no sign were read as three positives, a silently different question
        (["analogy", "tiny-word2vec", "rei homem mulher"], "no sign between two words"),
        (["analogy", "tiny-word2vec", "rei", "-", "homem", "mulher"], "no sign between two words"),
        (["analogy", "tiny-word2vec", "--", "- homem"], "at least one positive word"),
        (["analogy", "tiny-word2vec", "rei - homem + mulher", "-k", "0"], "-k must be a positive number"),
        (
            ["analogy", "tiny-word2vec", "rei - homem + mulher", "--method", "3cosx"],
            "--method must be one of",
        ),
        (["analogy", "nao-existe", "rei - homem + mulher"], "is not registered"),
    ],
)
def test_similarity_and_analogy_bad_input_is_one_line_exit_2(
    cli_env: Settings,
    w2v_model: ModelVersion,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    code, out, err = run(argv, capsys)
    assert code == 2, out
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_import_whose_database_is_deleted_mid_run_is_one_line_exit_2(
    cli_env: Settings,
    registry: Registry,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`rm registry.db` while `palavra import` ran: the command printed the model as registered, into the deleted
    file that no later command reads; now it says the file is gone, in one line, and leaves no version folder."""
    from models import registry as registry_module
    from services.jobs.store import JobStore

    JobStore.from_registry(registry)  # write-ahead logging, as once a server has run jobs on this home
    database = cli_env.home / "registry.db"
    sweep = registry_module.sweep_staging

    def deleted_mid_run(root: Path) -> int:  # between the command's first look at the registry and its commit
        database.unlink()
        return sweep(root)

    monkeypatch.setattr(registry_module, "sweep_staging", deleted_mid_run)
    vec = tmp_path / "tiny.vec"
    vec.write_text("3 2\nrei 1 0\nrainha 0.9 0.1\ncasa 0 1\n", encoding="utf-8")
    code, out, err = run(["import", "word2vec", str(vec), "--name", "importado"], capsys)
    assert code == 2
    assert out == ""
    assert err.strip().splitlines() == [
        f"error: the metadata database file {database} was deleted while palavra had it open, so nothing more "
        "is read from or written to it (no other process would see it); put the file back, e.g. from a backup: "
        "running servers use it again at once, while a palavra command run before that starts an empty database "
        "there"
    ]
    assert not (registry.root / "importado").exists() or not list((registry.root / "importado").iterdir())
    assert not database.exists()


def test_a_registry_file_that_is_no_database_is_one_line_exit_2(
    cli_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """A registry.db overwritten with something else: `palavra models list` printed a sqlalchemy traceback."""
    cli_env.home.mkdir(parents=True)
    database = cli_env.home / "registry.db"
    database.write_bytes(b"not a database\n" * 100)
    code, out, err = run(["models", "list"], capsys)
    assert code == 2
    assert out == ""
    assert err.strip().splitlines() == [
        f"error: the metadata database cannot be read (sqlite:///{database}): file is not a database"
    ]


def test_a_command_that_creates_the_registry_beside_version_folders_warns_in_one_line(
    cli_env: Settings, registry: Registry
) -> None:
    """After an accidental `rm registry.db`, `palavra models list` silently made an empty registry (which a running
    server then follows, dropping every model); now it still does, with one line on stderr saying what it lacks."""
    register(registry, "w2v")
    register(registry, "w2v", seed=3)
    registry.db.engine.dispose()
    database = cli_env.home / "registry.db"
    database.unlink()
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    # a process of its own: the warning goes through the command's logging setup to stderr
    done = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "models", "list"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["NAME", "KIND", "LATEST", "ALIASES", "CREATED"]
    assert done.stderr.splitlines() == [
        f"WARNING models.registry: created a new, empty registry database {database}, but 2 model version "
        f"folder(s) under {registry.root} exist that it does not list; if the old database was deleted, put it "
        "back from a backup (docs/http.md)"
    ]
