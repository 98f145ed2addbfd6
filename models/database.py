"""The SQL database palavra keeps its records in: one engine, transactions, and failures as palavra errors.

The artifact registry (:mod:`models.registry`) and the job store (``services/jobs/store.py``) share one database,
SQLite in PALAVRA_HOME by default or PostgreSQL when a URL says so, and both reach it through :class:`Database`:

- :func:`create_engine` sets the connection timeouts (SQLite waits 30 s for a lock, PostgreSQL 5 s to connect) and
  checks pooled connections before use, so a restarted server costs one retry, not an error;
- :meth:`Database.begin` is one transaction; a connection that fails becomes :class:`DatabaseUnavailable` naming the
  database (password hidden) and what the user can do, i.e. HTTP 503 and CLI exit code 2, never a traceback;
- :meth:`Database.create_tables` creates missing tables, riding out the race of processes that start together on a
  new database, and on SQLite can switch the file to write-ahead logging;
- on SQLite, every transaction first checks that the file it opened is still the one at the path
  (:mod:`models.sqlite_file`): a deleted file refuses it with :class:`~models.errors.DatabaseGone`, so no write is
  lost in it; a file that is no database (or a damaged one) is :class:`DatabaseUnavailable` too, not a crash.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DatabaseError as DBAPIDatabaseError
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from models.errors import DatabaseUnavailable, InvalidConfig
from models.sqlite_file import SQLiteFile

#: attempts at creating tables while other processes create them too (each waits a little longer)
CREATE_ATTEMPTS = 5


def sqlite_url(home: Path) -> str:
    """The default database: SQLite at ``home/registry.db``."""
    return f"sqlite:///{Path(home) / 'registry.db'}"


def create_engine(url: str) -> sa.Engine:
    """A SQLAlchemy engine for ``url`` with palavra's timeouts and pre-ping.

    Raises:
        InvalidConfig: the URL does not parse, or names a database palavra has no driver for (the URL itself is
            not repeated: it may hold a password).
    """
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 30}
    elif url.startswith("postgresql"):
        kwargs["connect_args"] = {"connect_timeout": 5}
    try:
        return sa.create_engine(url, **kwargs)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError, ValueError) as exc:
        # ImportError: a driver palavra does not install (psycopg2, asyncpg, mysql); ValueError: a port or a
        # query parameter that is not a number, an unclosed [IPv6 address
        scheme = url.split("://", 1)[0] if "://" in url else None
        if scheme is None:
            what = "is not a URL"
        elif isinstance(exc, ValueError):
            what = "does not parse (a port or a parameter that is not a number?)"
        else:
            what = f"names the database {scheme!r}, which palavra cannot use"
        raise InvalidConfig(
            f"the database URL (PALAVRA_DATABASE_URL) {what}: give postgresql+psycopg://USER@HOST:PORT/NAME, "
            f"or leave it unset for SQLite under PALAVRA_HOME ({type(exc).__name__})"
        ) from None


def creation_race(exc: BaseException) -> bool:
    """True for the error a process gets when another one created the same tables at the same moment."""
    if isinstance(exc, IntegrityError | ProgrammingError):
        return True
    return "already exists" in str(exc.__cause__ or exc)


class Database:
    """One database as one part of palavra sees it: the shared engine and the name its errors use.

    Args:
        engine: the engine (shared: the registry's and the job store's are the same one).
        name: what the database is to the user, e.g. ``"job database"``; errors say "the <name> is unreachable".
        advice: appended to that error, e.g. what cannot be done until the database answers again.
    """

    def __init__(self, engine: sa.Engine, *, name: str, advice: str | None = None) -> None:
        self.engine = engine
        self.name = name
        self.advice = advice
        self.file = SQLiteFile.watch(engine)  # None unless a SQLite file

    @classmethod
    def open(cls, url: str, *, name: str, advice: str | None = None) -> Database:
        """A database on a new engine for ``url`` (see :func:`create_engine`)."""
        return cls(create_engine(url), name=name, advice=advice)

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.engine.dialect.name

    @contextlib.contextmanager
    def begin(self) -> Iterator[sa.Connection]:
        """One transaction: committed when the block exits cleanly, rolled back when it raises.

        Raises:
            DatabaseUnavailable: the database cannot be reached (or refuses the connection).
            DatabaseGone: the SQLite file was deleted, or deleted or replaced while the block ran (nothing of the
                block is committed).
        """
        if self.file is not None:
            self.file.check(name=self.name)
        try:
            with self.engine.begin() as conn:
                if self.file is not None:
                    self.file.check_connection(conn, name=self.name)
                yield conn
                # again just before the commit: a write must not go to a deleted file
                if self.file is not None:
                    self.file.check_connection(conn, name=self.name)
        except OperationalError as exc:
            raise self.unavailable(exc) from exc
        except DBAPIDatabaseError as exc:
            # only the driver's plain DatabaseError (SQLite's "file is not a database", "database disk image is
            # malformed"): integrity and programming errors are the caller's to handle
            if type(exc) is not DBAPIDatabaseError:
                raise
            raise self.unavailable(exc) from exc

    def check_file(self) -> None:
        """Raise :class:`~models.errors.DatabaseGone` when the SQLite file was deleted; one ``stat``, no query.

        Another file found at the path is followed (see :mod:`models.sqlite_file`). PostgreSQL: nothing to check.
        """
        if self.file is not None:
            self.file.check(name=self.name)

    def unavailable(self, exc: DBAPIDatabaseError) -> DatabaseUnavailable:
        """The error for a failed connection or an unreadable file: the database, its URL without password, the
        driver's first line."""
        first = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        url = self.engine.url.render_as_string(hide_password=True)
        advice = f"; {self.advice}" if self.advice else ""
        problem = "is unreachable" if isinstance(exc, OperationalError) else "cannot be read"
        return DatabaseUnavailable(f"the {self.name} {problem} ({url}): {first}{advice}")

    def ping(self) -> None:
        """Raise :class:`DatabaseUnavailable` unless the database answers."""
        with self.begin() as conn:
            conn.execute(sa.text("SELECT 1"))

    def create_tables(
        self,
        meta: sa.MetaData,
        *,
        upgrade: Callable[[sa.Connection], None] | None = None,
        wal: bool = False,
    ) -> None:
        """Create the tables of ``meta`` that are missing, then run ``upgrade`` (e.g. add newer columns).

        Processes starting at once on a new database race to create the tables: PostgreSQL answers the loser with
        a unique violation on its catalogue, SQLite with "table ... already exists"; the next attempt finds them.

        Args:
            meta: the tables.
            upgrade: run in the same transaction once the tables exist.
            wal: on SQLite, switch the file to write-ahead logging (readers then never block the writer).
        """
        if self.file is not None:  # and again on a file that replaces this one (models/sqlite_file.py)
            self.file.on_follow.append(lambda: self._create_tables(meta, upgrade=upgrade, wal=wal))
        self._create_tables(meta, upgrade=upgrade, wal=wal)

    def _create_tables(
        self,
        meta: sa.MetaData,
        *,
        upgrade: Callable[[sa.Connection], None] | None,
        wal: bool,
    ) -> None:
        for attempt in range(CREATE_ATTEMPTS):
            try:
                with self.begin() as conn:
                    if wal and self.dialect == "sqlite":
                        conn.exec_driver_sql("PRAGMA journal_mode=WAL")
                    meta.create_all(conn)
                    if upgrade is not None:
                        upgrade(conn)
                return
            except (IntegrityError, ProgrammingError, DatabaseUnavailable) as exc:
                if attempt == CREATE_ATTEMPTS - 1 or not creation_race(exc):
                    raise
                time.sleep(0.2 * (attempt + 1))
