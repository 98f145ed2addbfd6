from __future__ import annotations

import logging
import os
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
import sqlalchemy as sa

from models.database import Database, sqlite_url
from models.errors import DatabaseUnavailable
from tests.conftest import lose_creation_race
from tests.models.other_process import OtherProcess


def _database(home: Path) -> Database:
    return Database.open(sqlite_url(home), name="test database")


def _tables() -> tuple[sa.MetaData, sa.Table]:
    meta = sa.MetaData()
    table = sa.Table("rows", meta, sa.Column("id", sa.Integer, primary_key=True))
    return meta, table


def test_database_unreachable_names_the_database_hides_the_password_and_advises() -> None:
    db = Database.open(
        "postgresql+psycopg://palavra:segredo@127.0.0.1:1/none",
        name="job database",
        advice="jobs wait until it answers again",
    )
    with pytest.raises(DatabaseUnavailable) as caught:
        db.ping()
    detail = caught.value.detail
    assert detail.startswith(
        "the job database is unreachable (postgresql+psycopg://palavra:***@127.0.0.1:1/none)"
    )
    assert detail.endswith("; jobs wait until it answers again")
    assert "segredo" not in detail


def test_database_transaction_rolls_back_when_its_block_raises(tmp_path: Path) -> None:
    db = _database(tmp_path)
    meta, table = _tables()
    db.create_tables(meta)
    _insert(db, table, 1)
    with pytest.raises(RuntimeError), db.begin() as conn:
        conn.execute(table.insert().values(id=2))
        raise RuntimeError("the caller fails halfway")
    with db.begin() as conn:
        assert list(conn.execute(sa.select(table.c.id)).scalars()) == [1]


def test_database_create_tables_survives_a_lost_race_then_upgrades(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = _database(tmp_path)
    meta, table = _tables()
    upgraded: list[str] = []

    def other() -> None:  # another process on the same file creates the tables first
        _database(tmp_path).create_tables(meta)

    attempts = lose_creation_race(monkeypatch, meta, other)
    db.create_tables(meta, upgrade=lambda conn: upgraded.append(conn.dialect.name), wal=True)
    assert len(attempts) == 3  # this process, the other one, this process again
    assert upgraded == ["sqlite"]  # once, after the tables exist
    with db.begin() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert sa.inspect(conn).has_table(table.name)


def test_database_create_tables_raises_what_is_not_a_race(tmp_path: Path) -> None:
    db = _database(tmp_path)
    meta, _ = _tables()

    def broken(_conn: sa.Connection) -> None:
        raise sa.exc.OperationalError("ALTER TABLE", {}, Exception("disk I/O error"))

    with pytest.raises(DatabaseUnavailable, match=r"the test database is unreachable .*disk I/O error"):
        db.create_tables(meta, upgrade=broken)


def _wal_database(home: Path) -> tuple[Database, sa.Table]:
    """A database in write-ahead-log mode, as the job store leaves it: SQLite then commits to a deleted file."""
    db = _database(home)
    meta, table = _tables()
    db.create_tables(meta, wal=True)
    _insert(db, table, 1)
    return db, table


def _insert(db: Database, table: sa.Table, row_id: int) -> None:
    """One row, in a transaction of its own."""
    with db.begin() as conn:
        conn.execute(table.insert().values(id=row_id))


def _ids(db: Database, table: sa.Table) -> list[int]:
    with db.begin() as conn:
        return list(conn.execute(sa.select(table.c.id).order_by(table.c.id)).scalars())


def test_database_a_deleted_sqlite_file_refuses_every_transaction_and_is_not_recreated(
    tmp_path: Path,
) -> None:
    """A database file removed while a process had it open used to take that process's writes, which no other
    process saw; now every transaction is refused, naming the file, and no empty file appears in its place."""
    db, table = _wal_database(tmp_path)
    path = tmp_path / "registry.db"
    path.unlink()
    with (
        pytest.raises(DatabaseUnavailable, match="was deleted while palavra had it open") as caught,
        db.begin() as conn,
    ):
        conn.execute(table.insert().values(id=2))
    assert caught.value.code == "DatabaseGone"
    assert str(path) in caught.value.detail
    with pytest.raises(DatabaseUnavailable, match="was deleted"):
        db.check_file()
    with pytest.raises(DatabaseUnavailable, match="was deleted"):
        db.ping()
    assert not path.exists()


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_database_a_file_deleted_or_replaced_during_a_transaction_refuses_its_commit(
    tmp_path: Path, how: str
) -> None:
    db, table = _wal_database(tmp_path)
    path = tmp_path / "registry.db"
    (tmp_path / "other").mkdir()
    other = _database(tmp_path / "other")
    other.create_tables(_tables()[0], wal=True)
    # closed, as a process that made the file and ended: a file still open in this process under its other name
    # would lend the new name its shared-memory index (SQLite shares it by inode within a process), not the log's
    other.engine.dispose()
    refused = pytest.raises(
        DatabaseUnavailable, match="during this transaction, so nothing of it was written"
    )
    with refused, db.begin() as conn:
        conn.execute(table.insert().values(id=2))
        if how == "deleted":
            path.unlink()
        else:
            (tmp_path / "other" / "registry.db").rename(path)
    if how == "replaced":  # the process now uses the new file, which the refused write never reached
        assert _ids(db, table) == []


def test_database_follows_the_file_another_process_put_at_its_path(tmp_path: Path) -> None:
    """After a deletion the next process creates a new database at the path: this one uses it too (as a restart
    would), so the two see each other's writes again."""
    db, table = _wal_database(tmp_path)
    (tmp_path / "registry.db").unlink()
    with pytest.raises(DatabaseUnavailable, match="was deleted"):
        _ids(db, table)
    newcomer = _database(tmp_path)
    newcomer.create_tables(_tables()[0], wal=True)
    _insert(newcomer, table, 7)
    assert _ids(db, table) == [7]
    _insert(db, table, 8)
    assert _ids(newcomer, table) == [7, 8]


def test_database_a_file_put_back_without_tables_gets_them(tmp_path: Path) -> None:
    db, table = _wal_database(tmp_path)
    path = tmp_path / "registry.db"
    path.unlink()
    path.touch()  # an empty file where the database was
    _insert(db, table, 3)
    assert _ids(_database(tmp_path), table) == [3]


def test_database_a_file_put_back_that_is_no_database_is_unavailable_until_a_good_one_is(
    tmp_path: Path,
) -> None:
    db, table = _wal_database(tmp_path)
    path = tmp_path / "registry.db"
    path.unlink()
    with pytest.raises(DatabaseUnavailable, match="was deleted"):
        _ids(db, table)
    path.write_bytes(b"not a database\n" * 100)
    with pytest.raises(DatabaseUnavailable, match=r"cannot be read .*: file is not a database"):
        _ids(db, table)
    path.unlink()
    newcomer = _database(tmp_path)
    newcomer.create_tables(_tables()[0])
    assert _ids(db, table) == []


def test_database_a_file_moved_away_keeps_every_committed_write(tmp_path: Path) -> None:
    """`mv registry.db elsewhere` under a running process: SQLite keeps the last commits in `registry.db-wal` at
    the old path, so the moved file lacked them, and the next file put at the path was read with them over its
    own pages; the process that notices empties the log into the moved file."""
    db, table = _wal_database(tmp_path)
    _insert(db, table, 2)
    moved = tmp_path / "moved.db"
    (tmp_path / "registry.db").rename(moved)
    with pytest.raises(DatabaseUnavailable, match="was deleted"):
        _ids(db, table)
    with sqlite3.connect(moved) as conn:
        assert [row[0] for row in conn.execute("SELECT id FROM rows ORDER BY id")] == [1, 2]
    wal = tmp_path / "registry.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0


def test_database_a_backup_put_back_is_read_as_it_is(tmp_path: Path) -> None:
    """A backup moved back into place once the deletion was noticed: read without the deleted file's last writes
    (its write-ahead log, left at the path, used to be applied over the backup's pages)."""
    db, table = _wal_database(tmp_path)
    path = tmp_path / "registry.db"
    backup = tmp_path / "backup.db"
    with sqlite3.connect(path) as source, sqlite3.connect(backup) as copy:
        source.backup(copy)
    _insert(db, table, 2)
    path.unlink()
    with pytest.raises(DatabaseUnavailable, match="was deleted"):
        _ids(db, table)
    backup.rename(path)
    assert _ids(db, table) == [1]
    assert _ids(_database(tmp_path), table) == [1]


def _backup(tmp_path: Path) -> Path:
    """A copy of registry.db taken with SQLite's backup (as `sqlite3 registry.db ".backup ..."` does), laid out
    otherwise than the file it will replace (one table more)."""
    backup = tmp_path / "backup.db"
    with (
        closing(sqlite3.connect(tmp_path / "registry.db")) as source,
        closing(sqlite3.connect(backup)) as copy,
    ):
        source.backup(copy)
        copy.execute("CREATE TABLE notes (text TEXT)")
    return backup


def _restore(backup: Path, path: Path) -> None:
    """Put a backup in place in one step (`cp backup.db r.tmp && mv r.tmp registry.db`)."""
    staged = path.with_name("restore.tmp")
    shutil.copyfile(backup, staged)
    staged.rename(path)


def test_database_a_backup_put_back_while_another_process_holds_the_file_is_read_as_it_is(
    tmp_path: Path,
) -> None:
    """`palavra serve` and its job worker both hold registry.db; a backup moved over it came up with the writes made
    after the backup (or "database disk image is malformed"): closing this process's connections did not empty the
    old file's write-ahead log, left at the path, while the worker held the file, and SQLite applied it to the backup.
    Now the process that notices first empties the log into the old file, then reads the backup as it is."""
    db, table = _wal_database(tmp_path)
    path = tmp_path / "registry.db"
    with OtherProcess(tmp_path) as worker:
        assert worker.ids() == [1]
        backup = _backup(tmp_path)
        _insert(db, table, 2)
        _restore(backup, path)
        assert _ids(db, table) == [1]
        assert worker.ids() == [1]
        assert worker.insert(3) == [1, 3]
        assert _ids(db, table) == [1, 3]
    with sqlite3.connect(path) as conn:
        assert [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE name = 'notes'")] == [
            "notes"
        ]
    assert _ids(_database(tmp_path), table) == [1, 3]


def test_database_a_file_moved_away_while_another_process_holds_it_keeps_every_committed_write(
    tmp_path: Path,
) -> None:
    """`mv registry.db held.db` and something else put at the path, under a server and its worker: the last commits
    stayed in `registry.db-wal` at the path, not in held.db."""
    db, table = _wal_database(tmp_path)
    path = tmp_path / "registry.db"
    held = tmp_path / "held.db"
    with OtherProcess(tmp_path) as worker:
        assert worker.ids() == [1]
        _insert(db, table, 2)
        path.rename(held)
        path.write_bytes(b"not a database\n" * 100)
        with pytest.raises(DatabaseUnavailable, match="file is not a database"):
            _ids(db, table)
        assert worker.ids() == "DatabaseUnavailable: " + (
            f"the test database cannot be read (sqlite:///{path}): file is not a database"
        )
    with sqlite3.connect(held) as conn:
        assert [row[0] for row in conn.execute("SELECT id FROM rows ORDER BY id")] == [1, 2]


@pytest.mark.parametrize("how", ["replaced", "deleted, then created"])
def test_database_a_process_that_notices_a_new_file_second_leaves_its_log_alone(
    tmp_path: Path, how: str
) -> None:
    """The job worker polls more often than the server: it empties the old log, follows the file now at the path
    (a backup put back, or the database a command created after a deletion) and writes to it; the server, noticing
    next, must not empty that log (now the new file's) into the old file, which would take the writes out of the new
    file. It used to tell by the clock, which often did not advance between the swap and the worker's write."""
    db, table = _wal_database(tmp_path)
    path = tmp_path / "registry.db"
    with OtherProcess(tmp_path) as worker:
        assert worker.ids() == [1]
        backup = _backup(tmp_path)
        _insert(db, table, 2)
        newcomer = None
        if how == "replaced":
            _restore(backup, path)
            assert worker.ids() == [1]
            expected = [1, 5]
        else:
            path.unlink()
            assert "was deleted" in str(worker.ids())
            newcomer = _database(tmp_path)  # `palavra ...` run now creates an empty database
            newcomer.create_tables(_tables()[0], wal=True)
            _insert(newcomer, table, 7)
            expected = [5, 7]
        assert worker.insert(5) == expected
        # the log written in the same tick of the clock as the new file arrived (timestamps advance in steps)
        arrived = path.stat().st_ctime_ns
        os.utime(tmp_path / "registry.db-wal", ns=(arrived, arrived))
        assert _ids(db, table) == expected
        if newcomer is not None:
            newcomer.engine.dispose()
    assert _ids(_database(tmp_path), table) == expected


def test_database_a_file_that_is_no_database_is_tried_and_logged_once_until_it_changes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A file that is no database at the path: every check (each /ready, each poll of the server's models) used to
    close the pool, try to create the tables again and log "was replaced by another file"."""
    db, table = _wal_database(tmp_path)
    path = tmp_path / "registry.db"
    connections: list[object] = []
    sa.event.listen(db.engine, "connect", lambda dbapi_conn, _record: connections.append(dbapi_conn))
    caplog.set_level(logging.INFO, logger="models.sqlite_file")
    path.unlink()
    with pytest.raises(DatabaseUnavailable, match="was deleted"):
        db.check_file()
    path.write_bytes(b"not a database\n" * 100)
    for _ in range(5):
        with pytest.raises(DatabaseUnavailable, match="file is not a database"):
            db.check_file()
        with pytest.raises(DatabaseUnavailable, match="file is not a database"):
            _ids(db, table)
    replaced = [r for r in caplog.records if "was replaced by another file" in r.getMessage()]
    assert len(replaced) == 1
    assert len(connections) == 1  # the one attempt at creating the tables
    path.write_bytes(b"still not a database\n" * 200)  # changed: tried once more
    with pytest.raises(DatabaseUnavailable, match="file is not a database"):
        db.check_file()
    assert len(connections) == 2
    path.unlink()
    _database(tmp_path).create_tables(_tables()[0])
    assert _ids(db, table) == []


@pytest.mark.parametrize("how", ["replaced", "moved away"])
def test_database_a_file_changed_while_its_connection_is_in_use_is_followed_once_the_log_is_emptied(
    tmp_path: Path, how: str
) -> None:
    """The pool's only connection to the old file in use (a request in flight, the model poller) when the file was
    replaced or moved away: nothing else could empty the old file's log, so the backup put back was read through it
    (with the writes made after the backup, and without its own table) and the moved file lacked its last commits.
    Now the change is refused (retry) until that connection is back, then handled as usual."""
    db, table = _wal_database(tmp_path)
    path = tmp_path / "registry.db"
    moved = tmp_path / "moved.db"
    backup = _backup(tmp_path)
    _insert(db, table, 2)
    with db.engine.connect():  # another thread holds the pool's connection to registry.db
        if how == "replaced":
            _restore(backup, path)
        else:
            path.rename(moved)
        with pytest.raises(
            DatabaseUnavailable, match=r"cannot be emptied yet \(this process's connections .*retry"
        ):
            _ids(db, table)
    if how == "moved away":
        with pytest.raises(DatabaseUnavailable, match="was deleted"):
            _ids(db, table)
        with closing(sqlite3.connect(moved)) as conn:
            assert [row[0] for row in conn.execute("SELECT id FROM rows ORDER BY id")] == [1, 2]
        _restore(backup, path)
    assert _ids(db, table) == [1]
    assert _ids(_database(tmp_path), table) == [1]
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'notes'").fetchone()[0] == 1


def test_database_a_file_damaged_through_the_log_at_its_path_is_tried_again_once_the_log_changes(
    tmp_path: Path,
) -> None:
    """ "database disk image is malformed" in write-ahead-log mode may come of the log at the path, which other
    processes' commits change without touching the file: such a file used to be refused, untried, until the file
    itself changed, while the other processes went on using it."""
    db, table = _wal_database(tmp_path)
    path = tmp_path / "registry.db"
    backup = _backup(tmp_path)
    path.unlink()
    with pytest.raises(DatabaseUnavailable, match="was deleted"):
        _ids(db, table)
    backup.rename(path)
    # another process on the file: its commits stay in the log (no checkpoint) while it has the file open
    with closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("PRAGMA journal_mode=WAL")
        other.execute("PRAGMA wal_autocheckpoint=0")
        schema = other.execute("SELECT sql FROM sqlite_master WHERE name = 'rows'").fetchone()[0]
        other.execute("PRAGMA writable_schema=ON")
        other.execute("UPDATE sqlite_master SET sql = 'damaged' WHERE name = 'rows'")
        version = path.stat()
        for _ in range(3):
            with pytest.raises(DatabaseUnavailable, match="malformed"):
                _ids(db, table)
        with closing(sqlite3.connect(path, isolation_level=None)) as repair:
            repair.execute("PRAGMA writable_schema=ON")
            repair.execute("UPDATE sqlite_master SET sql = ? WHERE name = 'rows'", (schema,))
        assert (path.stat().st_size, path.stat().st_mtime_ns) == (version.st_size, version.st_mtime_ns)
        assert _ids(db, table) == [1]


def test_database_a_log_still_read_elsewhere_is_not_waited_for_and_the_connection_is_left_as_it_was(
    tmp_path: Path,
) -> None:
    """The old file's log still read by another connection when the file was replaced: the check waited up to 2 s
    for it, holding up every transaction of the process, and left the connection with a 2 s busy timeout (30 s
    otherwise). Now it refuses at once (retry) and the connection goes back to the pool as it was."""
    db, table = _wal_database(tmp_path)
    path = tmp_path / "registry.db"
    backup = _backup(tmp_path)
    _insert(db, table, 2)
    # another process, halfway through a read of the old file
    with closing(sqlite3.connect(path, isolation_level=None)) as reader:
        reader.execute("BEGIN")
        assert len(reader.execute("SELECT id FROM rows").fetchall()) == 2
        _restore(backup, path)
        with pytest.raises(DatabaseUnavailable, match="emptied yet"):
            _ids(db, table)
        with db.engine.connect() as pooled:
            assert pooled.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
    assert _ids(db, table) == [1]
