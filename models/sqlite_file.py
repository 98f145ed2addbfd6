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
  A file that is no database is :class:`~models.errors.DatabaseUnavailable`, raised again without trying (nor
  logging) until the path holds another file or that one changes; a damaged one ("database disk image is
  malformed") is tried again at every check, since in write-ahead-log mode that may come of the log at the path,
  which other processes' commits change without touching the file.

Either way the write-ahead log is emptied first (:meth:`SQLiteFile._empty_old_log`). SQLite finds ``<path>-wal``
by the path, not by the file: the log of the old file stays there, closing connections does not empty it (SQLite
skips that for a file that left its path), and SQLite applies it to the next file at the path (a backup put back
came up with the old file's last writes over it, or "database disk image is malformed"). The first process that
notices writes the log into the old file through an idle pooled connection still open to it and truncates it, before
it opens the new file: a moved file holds every commit, a new file is read as it is. It then zeroes the header of the
log's shared index (``<path>-shm``), which still held the old file's page count for any process mapping it, so that
every process rebuilds the index from the empty log, and leaves ``<path>-wal.emptied`` naming the old file's
``(device, inode)``. A process that notices later (the job worker beside a server) finds that mark naming the file
it had open, so the log is no longer that file's (it may hold the new file's writes by now), and leaves it alone;
with no mark (an older palavra noticed first) it goes by the clock: a log written after the new file arrived is
left alone. A process that opens a file removes a mark naming it, left by an earlier file whose inode was reused.

Until the log is emptied, the change is refused with :class:`~models.errors.DatabaseGone` ("retry"), nothing
changed, and the next check tries again: while another connection reads the log (the checkpoint does not wait: the
check holds a lock every transaction of the process passes), or while this process's connections to the old file
are all in use (a request in flight, the model poller; a new connection would open the new file). Only a process
left with no connection to the old file at all goes on without emptying it, with a warning.

What stays unsafe, since SQLite itself cannot tell whose log it is:

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
        # the mark a process leaves once it has emptied the log of the file that left the path (see _mark_emptied)
        self.emptied = path.with_name(path.name + "-wal.emptied")
        self.opened: Identity | None = None  # the file new connections open; None until the first one
        # no usable file: the path was found empty after a connection had opened it, or the tables of a file
        # found in its place could not be created
        self.lost = False
        # a file found at the path that is no database ("file is not a database"), and why: not tried again, nor
        # logged, until the path holds another file or this one changes
        self.unusable: tuple[Version, DatabaseUnavailable] | None = None
        self._announced: Version | None = None  # the file last followed, as logged
        # run when the process follows a new file: create the tables (Database.create_tables registers them)
        self.on_follow: list[Callable[[], None]] = []
        self._engine = weakref.ref(engine)
        self._lock = threading.RLock()
        self._pooled_only = threading.local()  # set while emptying the old file's log: no new connection
        # the file each open connection of the engine's pool opened, by id() of the DBAPI connection: whether a
        # connection to the old file is only in use (wait for it) or none is left (nothing can empty its log)
        self._open: dict[int, Identity | None] = {}
        self._open_lock = threading.Lock()
        sa.event.listen(engine, "do_connect", self._before_connect)
        sa.event.listen(engine, "connect", self._after_connect)
        sa.event.listen(engine, "close", self._after_close)
        sa.event.listen(engine, "close_detached", self._after_close_detached)

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

    def _after_connect(self, dbapi_connection: Any, record: Any) -> None:
        found = identity_of(self.path)  # the file this connection just opened
        record.info[_OPENED] = found
        with self._open_lock:
            self._open[id(dbapi_connection)] = found
        with self._lock:
            if self.opened is None:
                self.opened = found
                first = True
            else:
                first = False
        if first and found is not None:
            self._forget_stale_mark(found)

    def _after_close(self, dbapi_connection: Any, _record: Any) -> None:
        self._after_close_detached(dbapi_connection)

    def _after_close_detached(self, dbapi_connection: Any) -> None:
        with self._open_lock:
            self._open.pop(id(dbapi_connection), None)

    def _connections_to(self, opened: Identity | None) -> int:
        """How many connections of the pool are open on the file ``opened`` (checked out or not)."""
        with self._open_lock:
            return sum(1 for found in self._open.values() if found == opened)

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
                    # raises, leaving everything as it was, while the log cannot be emptied yet
                    self._empty_old_log(arrived=None, name=name)
                    # info, not a warning: the refused transaction says it (a command prints one line, a server's
                    # model poller logs it)
                    log.info(
                        "the database file %s was deleted; its transactions are refused until it is back",
                        self.path,
                    )
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
        self._forget_stale_mark(self.opened)
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
        read as it is. Then ``<path>-wal.emptied`` names the old file, for the processes that notice later.

        Args:
            arrived: the file now at the path (None: none).
            name: what the database is to the user, for the error.

        Raises:
            DatabaseGone: the log cannot be emptied yet: other connections read it, or this process's connections
                to the old file are all in use (a request, the model poller); the next check tries again.
        """
        log_file = _stat(self.wal)
        if log_file is not None and log_file.st_size > 0:
            mark = self._read_mark()
            if mark is not None and mark == self.opened:
                # another process emptied it first, and may have written the new file's pages into it since
                log.info("the write-ahead log of %s was emptied by another process already", self.path)
                return
            if mark is None and arrived is not None and log_file.st_mtime_ns > arrived.st_ctime_ns:
                # no mark (a process of an older palavra emptied it, or the mark could not be written): by the
                # clock, the log was written after the new file arrived
                log.info("the write-ahead log of %s was written after the file was replaced", self.path)
                return
            if not self._checkpoint(name):
                return  # no connection to the old file left: nothing this process can do (logged)
        self._mark_emptied()

    def _checkpoint(self, name: str) -> bool:
        """Write the log into the old file through an idle pooled connection to it, and truncate the log.

        Returns:
            False when this process holds no connection to the old file at all (logged as a warning).

        Raises:
            DatabaseGone: another connection reads the log, or the connections to the old file are all in use.
        """
        engine = self._engine()
        if engine is None:
            return False
        held: list[sa.Connection] = []
        self._pooled_only.on = True
        try:
            try:
                while not held or held[-1].info.get(_OPENED) != self.opened:
                    held.append(engine.connect())  # raises once no idle pooled connection is left
            except sa.exc.DBAPIError as exc:
                if self._connections_to(self.opened):
                    raise self._not_emptied(
                        name, "this process's connections to the old file are all in use"
                    ) from exc
                log.warning(
                    "the write-ahead log %s may hold the last writes of the file that was at %s, and no connection "
                    "of this process to that file is left to write them back; unless another process empties it "
                    "first, the next file at the path is read through it",
                    self.wal,
                    self.path,
                )
                return False
            try:
                busy = _checkpoint_now(held[-1])
            except sa.exc.DBAPIError as exc:
                why = str(exc.orig or exc).strip().splitlines()[0]
                raise self._not_emptied(name, why) from exc
        finally:
            self._pooled_only.on = False
            for conn in held:
                conn.close()
        if busy:
            raise self._not_emptied(name, "another connection is reading it")
        self._reset_index()
        return True

    def _not_emptied(self, name: str, why: str) -> DatabaseGone:
        return DatabaseGone(
            f"the {name} file {self.path} was replaced or deleted, and the write-ahead log it left there cannot be "
            f"emptied yet ({why}), so the next file at the path is not opened (it would be read through that log); "
            "retry",
            database=str(self.path),
        )

    def _mark_emptied(self) -> None:
        """Leave the mark that the log at the path holds nothing of the old file (any more): a process that noticed
        later, and finds the log written to, leaves it alone (it is the new file's, not the old one's).

        Written whole or not at all (a temporary file renamed), before this process opens the new file.
        """
        if self.opened is None:
            return
        staged = self.emptied.with_name(f"{self.emptied.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            staged.write_text(f"{self.opened[0]} {self.opened[1]}\n", encoding="ascii")
            os.replace(staged, self.emptied)
        except OSError as exc:
            log.warning(
                "could not write %s (%s): processes that notice the change later go by the clock",
                self.emptied,
                exc,
            )
            staged.unlink(missing_ok=True)

    def _read_mark(self) -> Identity | None:
        """The file whose pages were emptied out of the log at the path, as marked; None when there is no mark."""
        try:
            dev, ino = self.emptied.read_text(encoding="ascii").split()
            return int(dev), int(ino)
        except (OSError, ValueError):
            return None

    def _forget_stale_mark(self, opened: Identity) -> None:
        """Remove a mark naming the file this process has just opened: it was written for an earlier file with the
        same (device, inode), reused since (a file at the path has not left it yet, so its log was not emptied)."""
        if self._read_mark() == opened:
            self.emptied.unlink(missing_ok=True)

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
        with self._open_lock:
            self._open.clear()  # those still checked out go back to the old pool: this engine never hands them out


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
    """True when the file is no database ("file is not a database"), which stays so until the file changes.

    Not a damaged one ("database disk image is malformed"): in write-ahead-log mode that may come of the log at the
    path, which other processes' commits change without touching the file. Nor a lock or a permission.
    """
    cause = exc.__cause__
    if not isinstance(cause, sa.exc.DatabaseError) or isinstance(cause, sa.exc.OperationalError):
        return False
    code = getattr(cause.orig, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == sqlite3.SQLITE_NOTADB


def _checkpoint_now(conn: sa.Connection) -> bool:
    """Write the log into the file ``conn`` opened and truncate it, without waiting for other connections (the
    caller holds the watcher's lock, which every transaction of the process passes); True when they kept it busy.

    The connection's busy timeout is restored after: it goes back to the pool.
    """
    before = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
    conn.exec_driver_sql("PRAGMA busy_timeout = 0")
    try:
        busy = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()[0]
    except sa.exc.OperationalError as exc:
        if getattr(exc.orig, "sqlite_errorcode", None) not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            raise
        busy = 1
    finally:
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(before or 0)}")
    return bool(busy)
