"""Another process on the same SQLite file, as the job worker beside ``palavra serve``: it holds its connection open
while the test moves, deletes or replaces the file, and reads or writes the rows table of ``test_database.py`` on
request (one line in, one JSON line out)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parents[2]

_SCRIPT = """
import json, sys
from pathlib import Path
import sqlalchemy as sa
from models.database import Database, sqlite_url
meta = sa.MetaData()
rows = sa.Table("rows", meta, sa.Column("id", sa.Integer, primary_key=True))
db = Database.open(sqlite_url(Path(sys.argv[1])), name="test database")
db.create_tables(meta, wal=True)
print(json.dumps("ready"), flush=True)
for line in sys.stdin:
    try:
        with db.begin() as conn:
            if line.startswith("insert "):
                conn.execute(rows.insert().values(id=int(line.split()[1])))
            answer = list(conn.execute(sa.select(rows.c.id).order_by(rows.c.id)).scalars())
    except Exception as exc:
        answer = f"{type(exc).__name__}: {exc}"
    print(json.dumps(answer), flush=True)
"""


class OtherProcess:
    """A Python process with palavra's :class:`~models.database.Database` open on ``home/registry.db``.

    Args:
        home: the folder of ``registry.db`` (whose tables the test created in write-ahead-log mode).
    """

    def __init__(self, home: Path) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _SCRIPT, str(home)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self._answer() == "ready"

    def ids(self) -> list[int] | str:
        """The ids in the rows table as this process reads them (or its error, as ``"Type: message"``)."""
        return self._ask("ids")

    def insert(self, row_id: int) -> list[int] | str:
        """Insert a row, then the ids as after that transaction."""
        return self._ask(f"insert {row_id}")

    def _ask(self, line: str) -> list[int] | str:
        assert self._proc.stdin is not None
        self._proc.stdin.write(line + "\n")
        self._proc.stdin.flush()
        return self._answer()

    def _answer(self) -> list[int] | str:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        assert line, f"the other process ended (exit code {self._proc.wait()})"
        answer: list[int] | str = json.loads(line)
        return answer

    def __enter__(self) -> OtherProcess:
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        self._proc.wait(timeout=30)
