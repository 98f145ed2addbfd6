from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from models.errors import Conflict, DatabaseUnavailable, IntegrityError, InvalidInput, ModelNotFound
from models.registry import Registry


def _write(registry: Registry, name: str = "vetores", value: float = 1.0) -> int:
    with registry.create(name, "word2vec") as w:
        w.write_json("config.json", {"value": value})
        w.write_array("vectors.npy", np.full((3, 2), value, dtype=np.float32))
        w.metadata["metrics"] = {"score": value}
    return w.version.version  # type: ignore[attr-defined]


def test_registry_versions_are_numbered_and_latest_moves(registry: Registry) -> None:
    assert _write(registry, value=1.0) == 1
    assert _write(registry, value=2.0) == 2
    mv = registry.get("vetores@latest")
    assert mv.version == 2
    assert registry.get("vetores").version == 1  # a bare name is the production alias: the first version
    assert registry.get("vetores@1").metadata["metrics"] == {"score": 1.0}
    art = registry.open("vetores@1")
    assert art.read_array("vectors.npy")[0, 0] == 1.0
    assert art.read_json("config.json") == {"value": 1.0}


def test_registry_a_name_keeps_one_kind_of_model(registry: Registry) -> None:
    _write(registry)  # word2vec
    with registry.create("vetores", "fasttext") as w:  # the other vector kind: the same routes answer it
        w.write_json("config.json", {})
    refused = "'vetores' holds a word2vec model; a classifier model needs another name"
    with pytest.raises(Conflict, match=refused), registry.create("vetores", "classifier") as w:
        w.write_json("config.json", {})
    assert [v.kind for v in registry.versions("vetores")] == ["word2vec", "fasttext"]
    registry.check_kind("vetores", "fasttext")
    registry.check_kind("outro", "classifier")
    # another process registers the name while this one trains: the commit checks again and leaves nothing
    with pytest.raises(Conflict, match="'novo' holds a word2vec model"), registry.create("novo", "lm") as w:
        w.write_json("config.json", {})
        _write(registry, "novo")
    assert [v.kind for v in registry.versions("novo")] == ["word2vec"]
    assert not list((registry.root / ".staging").iterdir())
    assert sorted(p.name for p in (registry.root / "novo").iterdir()) == [
        "1"
    ]  # the refused version's folder is gone


class UncheckedRegistry(Registry):
    """A registry as one was written before a name kept one kind of model."""

    def check_kind(self, name: str, kind: str) -> None:  # noqa: ARG002 (the signature it replaces)
        return None

    @staticmethod
    def _refuse_another_kind(conn: sa.Connection, name: str, kind: str) -> None:  # noqa: ARG004
        return None


def test_registry_a_name_written_with_two_kinds_takes_versions_of_the_kind_it_means(
    registry: Registry,
) -> None:
    legacy = UncheckedRegistry(registry.home, str(registry.db.engine.url))
    _write(legacy, "misto")  # production: word2vec
    with legacy.create("misto", "classifier") as w:
        w.write_json("config.json", {})
    _write(registry, "misto")  # the kind the bare name means: accepted (before the review: refused forever)
    with pytest.raises(Conflict, match="'misto' holds a word2vec model"), registry.create("misto", "lm") as w:
        w.write_json("config.json", {})
    assert [v.kind for v in registry.versions("misto")] == ["word2vec", "classifier", "word2vec"]


def test_registry_production_alias_wins_over_newest(registry: Registry) -> None:
    _write(registry, value=1.0)
    _write(registry, value=2.0)
    registry.set_alias("vetores", "production", 1)
    assert registry.get("vetores").version == 1
    assert registry.default(("word2vec",)).version == 1


def test_registry_first_version_claims_production_and_later_ones_do_not_move_it(registry: Registry) -> None:
    _write(registry, value=1.0)
    assert registry.get("vetores@production").version == 1
    _write(registry, value=2.0)
    _write(registry, "outros", value=3.0)
    assert registry.get("vetores").version == 1
    assert registry.get("outros").version == 1
    assert registry.default(("word2vec",)).ref == "vetores@1"
    registry.set_alias("vetores", "production", 2)
    assert registry.get("vetores").version == 2
    assert registry.default(("word2vec",)).ref == "vetores@2"
    with pytest.raises(InvalidInput, match="production"):
        registry.delete_alias("vetores", "production")


def test_registry_pins_production_for_names_registered_before_it_was_automatic(registry: Registry) -> None:
    from models.registry import model_aliases

    _write(registry, value=1.0)
    _write(registry, value=2.0)
    with registry.engine.begin() as conn:
        conn.execute(sa.delete(model_aliases).where(model_aliases.c.alias == "production"))
    with pytest.raises(ModelNotFound, match="no production alias"):
        registry.get("vetores")
    reopened = Registry(registry.home)
    assert (
        reopened.get("vetores").version == 2
    )  # what the bare name meant before: the newest version, now pinned
    _write(reopened, value=3.0)
    assert reopened.get("vetores").version == 2


def test_registry_failed_write_leaves_nothing(registry: Registry) -> None:
    with pytest.raises(RuntimeError), registry.create("quebrado", "word2vec") as w:
        w.write_json("config.json", {})
        raise RuntimeError("crash mid-write")
    with pytest.raises(ModelNotFound):
        registry.get("quebrado")
    assert not list((registry.root / ".staging").iterdir())
    assert not (registry.root / "quebrado").exists() or not list((registry.root / "quebrado").iterdir())


def test_registry_checksum_mismatch_refuses_to_load(registry: Registry) -> None:
    _write(registry)
    mv = registry.get("vetores@1")
    (mv.path / "config.json").chmod(0o644)  # registered files are read-only
    (mv.path / "config.json").write_text('{"value": 666}')
    with pytest.raises(IntegrityError, match=r"config\.json"):
        registry.open("vetores@1")


@pytest.mark.parametrize("ref", ["nada", "vetores@9", "vetores@producao"])
def test_registry_unknown_refs_raise_not_found(registry: Registry, ref: str) -> None:
    _write(registry)
    with pytest.raises(ModelNotFound):
        registry.get(ref)


@pytest.mark.parametrize(
    "ref",
    [
        "",
        "../etc",
        "a b",
        "vetores@",
        "vetores@a b",
        "vetores@1@2",
        "vetores\n",  # `$` alone would let a trailing newline through
        "vetores@producao\n",
        "vetores@0",
        "vetores@2147483648",  # past what an INTEGER column holds
        "vetores@99999999999999999999",
        "vetores@²",  # a digit to str.isdigit, not to int()
        "vetores@١",  # an Arabic-Indic one: not version 1
    ],
)
def test_registry_invalid_names_rejected(registry: Registry, ref: str) -> None:
    _write(registry)
    with pytest.raises(InvalidInput):
        registry.get(ref)


@pytest.mark.parametrize(
    "ref", ["vetores@0", "vetores@2147483648", "vetores@99999999999", "vetores@" + "9" * 5000]
)
def test_registry_a_version_out_of_range_says_the_range_whatever_its_digits(
    registry: Registry, ref: str
) -> None:
    _write(registry)
    with pytest.raises(InvalidInput, match="versions run from 1 to 2147483647"):
        registry.get(ref)


def test_registry_names_and_aliases_are_whole_matches(registry: Registry) -> None:
    _write(registry)
    with pytest.raises(InvalidInput):
        registry.set_alias("vetores", "producao\n", 1)
    with pytest.raises(InvalidInput):
        registry.versions("vetores@1")  # a name, not a reference
    with pytest.raises(InvalidInput), registry.create("vetores@1", "word2vec"):
        pass
    with pytest.raises(ModelNotFound):  # the largest valid number: looked up, not found
        registry.get("vetores@2147483647")
    _write(registry, value=2.0)
    with pytest.raises(InvalidInput, match="kept by the registry"):
        registry.set_alias("vetores", "latest", 1)
    assert registry.get("vetores@latest").version == 2
    with pytest.raises(InvalidInput, match="unknown model kind 'foo'"):
        registry.list(kind="foo")


def test_registry_unreachable_database_is_not_ready(tmp_path) -> None:
    with pytest.raises(DatabaseUnavailable):
        Registry(tmp_path, "postgresql+psycopg://nobody@127.0.0.1:1/none")


@pytest.mark.services
def test_registry_on_postgresql(tmp_path) -> None:
    import uuid

    from tests.conftest import POSTGRES_URL

    reg = Registry(tmp_path, POSTGRES_URL)
    name = f"pg-{uuid.uuid4().hex[:8]}"
    assert _write(reg, name, 1.0) == 1
    assert _write(reg, name, 2.0) == 2
    reg.set_alias(name, "production", 1)
    assert reg.get(name).version == 1
    assert [v.version for v in reg.versions(name)] == [1, 2]


def test_registry_annotate_merges_metadata_without_touching_files(registry: Registry) -> None:
    _write(registry)
    before = registry.get("vetores@1")
    after = registry.annotate("vetores@1", {"ann": {"recall_at_10": 0.97}})
    assert after.metadata["ann"] == {"recall_at_10": 0.97}
    assert after.metadata["files"] == before.metadata["files"]
    assert registry.open("vetores@1").read_json("metadata.json")["ann"] == {"recall_at_10": 0.97}


def test_registry_commit_hooks_add_checksummed_files(registry: Registry) -> None:
    def hook(writer) -> None:
        writer.write_json("extra.json", {"rows": 3})
        writer.metadata["hooked"] = True

    registry.add_commit_hook(hook)
    _write(registry)
    mv = registry.get("vetores")
    assert mv.metadata["hooked"] is True
    assert "extra.json" in mv.metadata["files"]


def test_registry_commit_hooks_run_in_order_and_a_failing_one_leaves_no_version(registry: Registry) -> None:
    calls: list[str] = []

    def first(writer) -> None:
        calls.append("first")
        writer.write_json("first.json", {})

    def failing(_writer) -> None:
        calls.append("failing")
        raise RuntimeError("the index could not be built")

    def after(_writer) -> None:
        calls.append("after")

    for hook in (first, failing, after):
        registry.add_commit_hook(hook)
    assert registry.commit_hooks == (first, failing, after)
    with pytest.raises(RuntimeError, match="the index could not be built"):
        _write(registry)
    assert calls == ["first", "failing"]  # in the order added; nothing runs after a failure
    with pytest.raises(ModelNotFound):
        registry.get("vetores")
    assert not (registry.root / "vetores").exists()  # nothing under the real name
    assert list((registry.root / ".staging").iterdir()) == []  # and nothing half-written left behind


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def new_database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """A database with no tables yet: None (SQLite in the home) or a fresh PostgreSQL database's URL."""
    if request.param == "sqlite":
        yield None
        return
    from tests.services.jobs_helpers import postgres_database

    with postgres_database() as url:
        yield url


def test_registry_processes_starting_at_once_on_a_new_database(
    tmp_path, new_database: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`palavra serve` starts its API and a job worker together (docker compose up): on a new database the one
    that loses the race to create the tables must not die."""
    from models import registry as registry_module
    from tests.conftest import lose_creation_race

    attempts = lose_creation_race(
        monkeypatch, registry_module.meta, lambda: Registry(tmp_path, new_database).engine.dispose()
    )
    registry = Registry(tmp_path, new_database)
    assert len(attempts) == 3  # this process, the other one, this process again
    assert registry.list() == []  # and it works
    registry.engine.dispose()


def test_registry_a_registration_sweeps_what_killed_writers_left_in_staging(registry: Registry) -> None:
    """A `palavra import` killed with SIGKILL left 253 MB in artifacts/.staging for good; the next one removes it."""
    import fcntl
    import os
    import time

    staging = registry.root / ".staging"
    staging.mkdir(parents=True, exist_ok=True)
    dead = staging / "morto"  # its writer died: nobody holds its lock
    dead.mkdir()
    (dead / "vectors.npy").write_bytes(b"x" * 1000)
    (staging / "morto.lock").touch()
    old = staging / "antigo"  # left by a writer that did not lock, a day ago
    old.mkdir()
    os.utime(old, (time.time() - 2 * 86400, time.time() - 2 * 86400))
    alive = staging / "vivo"  # another process is writing it now
    alive.mkdir()
    with (staging / "vivo.lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        _write(registry)
        assert sorted(p.name for p in staging.iterdir()) == ["vivo", "vivo.lock"]


def test_registry_a_deleted_database_file_refuses_registrations_and_alias_changes(registry: Registry) -> None:
    """With its database file deleted (`rm registry.db` while a server ran), the registry used to register versions
    and move aliases in the deleted file, where no other process would ever see them; now each is refused, naming
    the file, and leaves nothing on disk."""
    _write(registry)
    _write(registry, value=2.0)
    registry.set_alias("vetores", "staging", 1)
    with registry.db.begin() as conn:  # as the job store leaves it: SQLite then commits to a deleted file
        conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    path = registry.home / "registry.db"
    path.unlink()
    writes = {
        "register": lambda: _write(registry, value=3.0),
        "move an alias": lambda: registry.set_alias("vetores", "staging", 2),
        "delete an alias": lambda: registry.delete_alias("vetores", "staging"),
        "annotate": lambda: registry.annotate("vetores@1", {"recall": 0.9}),
    }
    for what, write in writes.items():
        with pytest.raises(DatabaseUnavailable, match="was deleted while palavra had it open") as caught:
            write()
        assert str(path) in caught.value.detail, what
    with pytest.raises(DatabaseUnavailable, match="was deleted"):
        registry.check_file()
    assert sorted(p.name for p in (registry.root / "vetores").iterdir()) == ["1", "2"]
    staging = registry.root / ".staging"
    assert not staging.exists() or not list(staging.iterdir())
    assert not path.exists()


def test_registry_a_new_database_beside_version_folders_warns_once(
    registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    """After `rm registry.db`, the next command silently created an empty registry (and a running server followed
    it and dropped every model); now the process that creates it says, once, how many version folders it lacks."""
    _write(registry)
    _write(registry, value=2.0)
    _write(registry, "outro")
    path = registry.home / "registry.db"
    registry.db.engine.dispose()
    path.unlink()
    caplog.set_level(logging.WARNING, logger="models.registry")
    assert Registry(registry.home).list() == []
    Registry(registry.home)  # the database exists now: nothing more to say
    assert [r.getMessage() for r in caplog.records] == [
        f"created a new, empty registry database {path}, but 3 model version folder(s) under {registry.root} "
        "exist that it does not list; if the old database was deleted, put it back from a backup (docs/http.md)"
    ]


def test_registry_a_new_database_without_version_folders_says_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="models.registry")
    (tmp_path / "artifacts" / ".staging" / "1").mkdir(parents=True)  # what a stopped registration leaves
    Registry(tmp_path)
    assert caplog.records == []
