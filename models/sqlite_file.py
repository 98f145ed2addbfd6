"""The file behind a SQLite database, watched for being deleted or replaced while a process has it open.

SQLite keeps the file it opened. Once a user or a cleanup script removes ``registry.db``, a running server goes on
reading the unlinked file and (in write-ahead-log mode, which the job store switches on) committing to it: writes
that no other process will ever see, while the next process creates an empty database at the same path.
:class:`SQLiteFile` compares the path's ``(device, inode)`` with the file each connection opened (one ``stat``):

- only a process's first connection may create the file; later ones open it with ``mode=rw``, so a process that
  lost its database never puts an empty one in its place;
- the file gone from its path: every transaction is refused with :class:`~models.errors.DatabaseGone` (HTTP 503,
  CLI exit 2) and the connections to the deleted file are closed, so nothing is written where nobody looks;
- another file at the path (a backup moved back into place, or the empty database a new process created): the
  process follows it, as a restart would. Connections to the old file are closed, the tables are created where
  missing, and a transaction that was open on the old file when it was replaced is refused rather than committed.
  A file that is no database (or a damaged one) is :class:`~models.errors.DatabaseUnavailable`, raised again without
  trying (nor logging) until the path holds another file or that one changes.

Either way the write-ahead log is emptied first (:meth:`SQLiteFile._empty_old_log`). SQLite finds ``<path>-wal``
by the path, not by the file: the log of the old file stays there, closing connections does not empty it (SQLite
skips that for a file that left its path), and SQLite applies it to the next file at the path (a backup put back
came up with the old file's last writes over it, or "database disk image is malformed"). The first process that
notices writes the log into the old file through a connection still open to it and truncates it, before it opens
the new file: a moved file holds every commit, a new file is read as it is. It then zeroes the header of the log's
shared index (``<path>-shm``), which still held the old file's page count for any process mapping it, so that every
process rebuilds the index from the empty log. A process that notices later (the job worker beside a server) finds
the log written after the new file arrived, i.e. emptied and maybe holding the new file's writes, and leaves it
alone. What stays unsafe, since SQLite itself cannot tell whose log it is:

- a process that opens the path between the replacement and that checkpoint (a ``palavra`` command run at once, a
  server starting, ``sqlite3 registry.db``) reads the new file through the old log, and may write it into the file;
- a file replaced twice before a process notices, or a commit to the old file in the instant between the last
  ``stat`` and the replacement.

The safe ways to restore a backup: stop every palavra process (servers, workers) first, or copy it in through SQLite
(``sqlite3 registry.db ".restore backup.db"``: one transaction that running processes see as any other).

:meth:`SQLiteFile.check` runs before every transaction (:meth:`models.database.Database.begin`), and
:meth:`SQLiteFile.check_connection` at its start and again just before it commits.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa

from models.errors import DatabaseGone, DatabaseUnavailable

log = logging.getLogger(__name__)

Identity = tuple[int, int]  # (st_dev, st_ino)
Version = tuple[int, int, int, int]  # (st_dev, st_ino, st_size, st_mtime_ns)
_OPENED = "palavra_sqlite_file"  # the key of a connection's identity in its pool record's ``info``
_WATCHED: weakref.WeakKeyDictionary[sa.Engine, SQLiteFile] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()  # guards _WATCHED
_INDEX_HEADERS = (
    96  # the two copies of the wal-index header at the start of <path>-shm (sqlite.org/walformat.html)
)


def identity_of(path: Path) -> Identity | None:
    """The ``(device, inode)`` of the file at ``path``, or None when there is none."""
    st = _stat(path)
    return None if st is None else _identity(st)


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
        # SQLite's write-ahead log and its shared-memory index, both found by the database's path, not its file
        self.wal = path.with_name(path.name + "-wal")
        self.shm = path.with_name(path.name + "-shm")
        self.opened: Identity | None = None  # the file new connections open; None until the first one
        # no usable file: the path was found empty after a connection had opened it, or the tables of a file
        # found in its place could not be created
        self.lost = False
        # a file found at the path that is no database (or a damaged one), and why: not tried again, nor logged,
        # until the path holds another file or this one changes
        self.unusable: tuple[Version, DatabaseUnavailable] | None = None
        self._announced: Version | None = None  # the file last followed, as logged
        # run when the process follows a new file: create the tables (Database.create_tables registers them)
        self.on_follow: list[Callable[[], None]] = []
        self._engine = weakref.ref(engine)
        self._lock = threading.RLock()
        self._pooled_only = threading.local()  # set while emptying the old file's log: no new connection
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
        if getattr(self._pooled_only, "on", False):  # a new connection would open the file now at the path
            raise sqlite3.OperationalError("no pooled connection to the file this process had open")
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
            DatabaseGone: no file at the path since a connection opened it, or the old file's write-ahead log
                cannot be emptied yet.
            DatabaseUnavailable: the file at the path is no database (raised again, untried, until it changes).
        """
        found = identity_of(self.path)
        if found is not None and found == self.opened and not self.lost:
            return
        with self._lock:
            if self.opened is None:  # nothing opened yet: the first connection creates the file
                return
            st = _stat(self.path)
            if st is None:
                if not self.lost:
                    # info, not a warning: the refused transaction says it (a command prints one line, a server's
                    # model poller logs it)
                    log.info(
                        "the database file %s was deleted; its transactions are refused until it is back",
                        self.path,
                    )
                    self._empty_old_log(arrived=None, name=name)
                    self.lost = True
                    self._close_connections()
                raise DatabaseGone(self.deleted(name), database=str(self.path))
            if self.unusable is not None and self.unusable[0] == _version(st):
                known = self.unusable[1]
                raise type(known)(known.detail, **known.extra)
            if _identity(st) != self.opened or self.lost:
                self._follow(st, name=name)

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

    def _follow(self, st: os.stat_result, *, name: str) -> None:
        if self._announced != _version(st):  # once per file (one still locked is tried again, not announced)
            self._announced = _version(st)
            log.warning(
                "the database file %s was replaced by another file; using that one from now on, as a restart would",
                self.path,
            )
        if not self.lost:  # the old file's log, first: the new file must not be read through it
            self._empty_old_log(arrived=st, name=name)
        self._close_connections()
        self.opened, self.lost, self.unusable = _identity(st), False, None
        try:
            for create in self.on_follow:
                create()
        except DatabaseUnavailable as exc:
            self.lost = True  # nothing usable at the path
            if not isinstance(exc, DatabaseGone) and _unreadable(exc):
                self.unusable = (_version(st), exc)  # no database: not tried again until the file changes
            raise
        except BaseException:
            self.lost = True  # e.g. a file still locked: follow again on the next check
            raise

    def _empty_old_log(self, *, arrived: os.stat_result | None, name: str) -> None:
        """Move what the write-ahead log at the path holds into the file this process opened, and empty the log.

        SQLite finds the log by the database's path, not its file: ``<path>-wal`` stays behind when the file is
        deleted, moved or replaced, and SQLite applies it to whatever file next stands at the path (a backup put
        back was read with the old file's last pages over its own, or as "database disk image is malformed").
        Closing the connections does not empty it (SQLite skips that for a file no longer at its path), so it is
        emptied here, through a pooled connection to the old file (a new one would open the file now at the path),
        before anything of this process opens the new file: a moved file then holds every commit, a new file is
        read as it is.

        Args:
            arrived: the file now at the path (None: none). A log written after it arrived was emptied already, by
                another process that noticed first and may have written the new file's pages into it since: that
                log is the new file's, and it is left alone.
            name: what the database is to the user, for the error.

        Raises:
            DatabaseGone: the log has readers that outlast the busy timeout; the next check tries again.
        """
        log_file = _stat(self.wal)
        if log_file is None or log_file.st_size == 0:
            return
        if arrived is not None and log_file.st_mtime_ns > arrived.st_ctime_ns:
            log.info("the write-ahead log of %s was emptied by another process already", self.path)
            return
        engine = self._engine()
        if engine is None:
            return
        held: list[sa.Connection] = []
        self._pooled_only.on = True
        try:
            while not held or held[-1].info.get(_OPENED) != self.opened:
                held.append(engine.connect())  # raises once no idle pooled connection is left
            conn = held[-1]
            conn.exec_driver_sql("PRAGMA busy_timeout = 2000")  # readers of the old file end soon
            busy = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()[0]
        except sa.exc.DBAPIError as exc:  # no connection to the old file left (closed before): nothing to do
            log.info("could not empty the write-ahead log of %s: %s", self.path, exc.orig or exc)
            return
        finally:
            self._pooled_only.on = False
            for conn in held:
                conn.close()
        if busy:
            raise DatabaseGone(
                f"the {name} file {self.path} was replaced or deleted, and the write-ahead log it left there is "
                "still being read by another process, so it is not emptied yet (a file put at the path would be "
                "read through it); retry",
                database=str(self.path),
            )
        self._reset_index()

    def _reset_index(self) -> None:
        """Have the next reader of the log rebuild its shared index (``<path>-shm``) from the log, now empty.

        The truncating checkpoint leaves in the index how many pages the old file had; a process that opens the new
        file while another still maps that index (the job worker beside a server) reads the new file as that long
        ("database disk image is malformed" once the file is longer). With both copies of the header zeroed, their
        checksum fails and SQLite recovers the index from the log, as it does after a crash.
        """
        try:
            fd = os.open(self.shm, os.O_WRONLY)
        except FileNotFoundError:
            return
        try:
            os.pwrite(fd, bytes(_INDEX_HEADERS), 0)
        finally:
            os.close(fd)

    def _close_connections(self) -> None:
        engine = self._engine()
        if engine is not None:
            engine.dispose()  # pooled connections to the old file close; checked-out ones close when returned


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


def _identity(st: os.stat_result) -> Identity:
    return (st.st_dev, st.st_ino)


def _version(st: os.stat_result) -> Version:
    """A file as it is now: another file, or the same one written since, has another version."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _unreadable(exc: DatabaseUnavailable) -> bool:
    """True when the file is no database or a damaged one (not a lock or a permission, which pass by themselves)."""
    cause = exc.__cause__
    return isinstance(cause, sa.exc.DatabaseError) and not isinstance(cause, sa.exc.OperationalError)
