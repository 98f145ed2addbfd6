from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from models.database import Database, sqlite_url
from models.errors import DatabaseUnavailable
from tests.conftest import lose_creation_race


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
    with db.begin() as conn:
        conn.execute(table.insert().values(id=1))
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
