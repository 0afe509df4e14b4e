"""SQL storage behind one small interface: SQLite (embedded default) or PostgreSQL (psycopg 3)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from resolver.collector.schema import MIGRATIONS
from resolver.errors import LachanError

Row = tuple[Any, ...]


class Tx(Protocol):
    """One open transaction; SQL is written with ``?`` placeholders for every backend."""

    def run(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...


class _SqliteTx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def run(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self._conn.execute(sql, tuple(params)).fetchall()

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._conn.executemany(sql, rows)


class _PgTx:
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def run(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        cur = self._conn.execute(sql.replace("?", "%s"), tuple(params))
        return list(cur.fetchall()) if cur.description else []

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            with self._conn.cursor() as cur:
                cur.executemany(sql.replace("?", "%s"), rows)


class Database:
    """A connection per thread (the process keeps no other state); ``tx()`` opens a transaction.

    Writers serialise per database on SQLite (``BEGIN IMMEDIATE``) and per row on PostgreSQL
    (``SELECT ... FOR UPDATE``), so several collector processes can share one PostgreSQL.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.postgres = url.startswith(("postgresql://", "postgres://"))
        if not self.postgres and not url.startswith("sqlite:///"):
            raise LachanError(f"--db {url!r}: expected sqlite:///PATH or postgresql://...")
        self._local = threading.local()

    @property
    def for_update(self) -> str:
        """The row-lock suffix of a SELECT (SQLite locks the whole file instead)."""
        return " FOR UPDATE" if self.postgres else ""

    def _connect(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        try:
            if self.postgres:
                import psycopg  # only PostgreSQL deployments need the driver loaded

                conn = psycopg.connect(self.url)
            else:
                path = Path(self.url.removeprefix("sqlite:///"))
                conn = sqlite3.connect(path, isolation_level=None, timeout=30,
                                       check_same_thread=False)  # fmt: skip
                conn.execute("PRAGMA journal_mode=WAL")
        except Exception as exc:  # psycopg.Error or sqlite3.Error: one line for the operator
            why = " ".join(str(exc).split())  # libpq adds a tab-indented "Is the server ...?"
            raise LachanError(f"--db: cannot open {self._safe_url()}: {why}") from None
        self._local.conn = conn
        return conn

    def _safe_url(self) -> str:
        # A PostgreSQL URL may carry a password: never print it.
        head, _, tail = self.url.rpartition("@")
        return f"postgresql://…@{tail}" if head else self.url

    @contextmanager
    def tx(self) -> Iterator[Tx]:
        """A transaction: committed when the block ends, rolled back if it raises."""
        conn = self._connect()
        if self.postgres:
            with conn.transaction():
                yield _PgTx(conn)
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield _SqliteTx(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def migrate(self) -> int:
        """Apply the migrations not yet applied; returns the schema version now in force."""
        with self.tx() as tx:
            tx.run("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            if self.postgres:  # two processes starting together must not both migrate
                tx.run("SELECT pg_advisory_xact_lock(7316)")
            rows = tx.run("SELECT MAX(version) FROM schema_version")
            current = rows[0][0] or 0
            for number, steps in enumerate(MIGRATIONS[current:], start=current + 1):
                for sql in steps:
                    tx.run(sql)
                tx.run("INSERT INTO schema_version (version) VALUES (?)", (number,))
        return len(MIGRATIONS)

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
