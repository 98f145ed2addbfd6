"""The file behind a SQLite database, watched for being deleted or replaced while a process has it open.

SQLite keeps the file it opened. Once a user or a cleanup script removes ``registry.db``, a running server goes on
reading the unlinked file and (in write-ahead-log mode, which the job store switches on) committing to it: writes
that no other process will ever see, while the next process creates an empty database at the same path.
:class:`SQLiteFile` compares the path's ``(device, inode)`` with the file each connection opened (one ``stat``):

- only a process's first connection may create the file; later ones open it with ``mode=rw``, so a process that
  lost its database never puts an empty one in its place;
- the file gone from its path: every transaction is refused with :class:`~models.errors.DatabaseGone` (HTTP 503,
  CLI exit 2) and the connections to the deleted file are closed, so nothing is written where nobody looks; first
  the write-ahead log is emptied into that file (:meth:`SQLiteFile._checkpoint_lost`): a file moved away then holds
  every committed write, and a backup put back at the path is not read through the lost file's log;
- another file at the path (a backup moved back into place, or the empty database a new process created): the
  process follows it, as a restart would. Connections to the old file are closed, the tables are created where
  missing, and a transaction that was open on the old file when it was replaced is refused rather than committed.

:meth:`SQLiteFile.check` runs before every transaction (:meth:`models.database.Database.begin`), and
:meth:`SQLiteFile.check_connection` at its start and again just before it commits.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa

from models.errors import DatabaseGone

log = logging.getLogger(__name__)

Identity = tuple[int, int]  # (st_dev, st_ino)
_OPENED = "palavra_sqlite_file"  # the key of a connection's identity in its pool record's ``info``
_WATCHED: weakref.WeakKeyDictionary[sa.Engine, SQLiteFile] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()  # guards _WATCHED


def identity_of(path: Path) -> Identity | None:
    """The ``(device, inode)`` of the file at ``path``, or None when there is none."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino)


def sqlite_path(url: sa.URL) -> Path | None:
    """The file a SQLite URL names (absolute), or None for another database, an in-memory one or a ``file:`` URI."""
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:") or url.query.get("uri"):
        return None
    return Path(os.path.abspath(database))


class SQLiteFile:
    """The database file of one engine: which file its connections opened, and what stands at its path now.

    Args:
        engine: the engine whose connections open ``path`` (its pool is emptied when the file goes or changes).
        path: the database file.
    """

    def __init__(self, engine: sa.Engine, path: Path) -> None:
        self.path = path
        self.opened: Identity | None = None  # the file new connections open; None until the first one
        # no usable file: the path was found empty after a connection had opened it, or the tables of a file
        # found in its place could not be created (the next check tries again)
        self.lost = False
        # run when the process follows a new file: create the tables (Database.create_tables registers them)
        self.on_follow: list[Callable[[], None]] = []
        self._engine = weakref.ref(engine)
        self._lock = threading.RLock()
        sa.event.listen(engine, "do_connect", self._before_connect)
        sa.event.listen(engine, "connect", self._after_connect)

    @classmethod
    def watch(cls, engine: sa.Engine) -> SQLiteFile | None:
        """The watcher of ``engine``'s file (one per engine, shared by every Database on it); None unless it is a
        SQLite file."""
        path = sqlite_path(engine.url)
        if path is None:
            return None
        with _LOCK:
            watcher = _WATCHED.get(engine)
            if watcher is None:
                watcher = _WATCHED[engine] = cls(engine, path)
        return watcher

    # -- connecting --------------------------------------------------------------------------------------------
    def _before_connect(self, _dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]) -> None:
        cargs[0] = str(self.path)
        if self.opened is not None:  # the file existed once: open it, never create an empty one in its place
            cargs[0] = f"file:{quote(str(self.path), safe='/')}?mode=rw"
            cparams["uri"] = True

    def _after_connect(self, _dbapi_connection: Any, record: Any) -> None:
        found = identity_of(self.path)  # the file this connection just opened
        record.info[_OPENED] = found
        with self._lock:
            if self.opened is None:
                self.opened = found

    # -- checking ----------------------------------------------------------------------------------------------
    def check(self, *, name: str) -> None:
        """Refuse when the file is gone; follow another file found at the path.

        Raises:
            DatabaseGone: no file at the path since a connection opened it.
        """
        found = identity_of(self.path)
        if found is not None and found == self.opened and not self.lost:
            return
        with self._lock:
            if self.opened is None:  # nothing opened yet: the first connection creates the file
                return
            found = identity_of(self.path)
            if found is None:
                if not self.lost:
                    self.lost = True
                    # info, not a warning: the refused transaction says it (a command prints one line, a server's
                    # model poller logs it)
                    log.info(
                        "the database file %s was deleted; its transactions are refused until it is back",
                        self.path,
                    )
                    self._checkpoint_lost()
                    self._close_connections()
                raise DatabaseGone(self.deleted(name), database=str(self.path))
            if found != self.opened or self.lost:
                self._follow(found)

    def check_connection(self, conn: sa.Connection, *, name: str) -> None:
        """Refuse a transaction whose connection opened another file than the one at the path now.

        Raises:
            DatabaseGone: the file was deleted or replaced since this connection opened it.
        """
        now = identity_of(self.path)
        # a connection pooled before this watcher was attached: it opened what was at the path then, taken as now
        opened = conn.info.setdefault(_OPENED, now)
        if opened is not None and now == opened:
            return
        raise DatabaseGone(
            f"the {name} file {self.path} was deleted or replaced during this transaction, so nothing of it was "
            "written; retry",
            database=str(self.path),
        )

    def deleted(self, name: str) -> str:
        """What a refused transaction says while the file is gone."""
        return (
            f"the {name} file {self.path} was deleted while palavra had it open, so nothing more is read from or "
            "written to it (no other process would see it); put the file back, e.g. from a backup: running servers "
            "use it again at once, while a palavra command run before that starts an empty database there"
        )

    def _follow(self, found: Identity) -> None:
        log.warning(
            "the database file %s was replaced by another file; using that one from now on, as a restart would",
            self.path,
        )
        self._close_connections()
        self.opened, self.lost = found, False
        try:
            for create in self.on_follow:
                create()
        except BaseException:
            self.lost = (
                True  # e.g. a file that is no database, or still locked: follow again on the next check
            )
            raise

    def _checkpoint_lost(self) -> None:
        """Move what the write-ahead log holds into the file this process opened, and empty the log.

        SQLite leaves ``<path>-wal`` behind when the database file is gone (no checkpoint on close) and applies it
        to whatever file next stands at the path: a backup put back would be read with the lost file's last pages
        over its own. Emptied, it is harmless; and a file that was moved rather than deleted gets every committed
        write. Only through a pooled connection to that file (a new one cannot open it); best effort.
        """
        engine = self._engine()
        if engine is None:
            return
        try:
            with engine.connect() as conn:
                if conn.info.get(_OPENED) == self.opened:
                    conn.exec_driver_sql("PRAGMA busy_timeout = 2000")  # readers of the lost file end soon
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        except sa.exc.DBAPIError as exc:  # no pooled connection, or the log is busy: left as it is
            log.info("could not empty the write-ahead log of %s: %s", self.path, exc.orig or exc)

    def _close_connections(self) -> None:
        engine = self._engine()
        if engine is not None:
            engine.dispose()  # pooled connections to the old file close; checked-out ones close when returned
