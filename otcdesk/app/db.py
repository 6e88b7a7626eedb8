"""Database engine, schema migration at start, and unit of work (SQLite by default, PostgreSQL by `DATABASE_URL`).

Tables are declared in `app.models` on the shared `SQLModel.metadata`; the schema
itself is made by the Alembic revisions in `app.migrations`, which `init_db` applies at start.

Changing a table: edit the model, then draft a revision with
`python -m otcdesk.app.migrations "what changed"` (written to `app/migrations/versions/`), review it
(autogenerate misses renames, server defaults, triggers), and run `tests/unit/app/test_migrations.py`,
which fails while the migrated schema and the models disagree.
"""
from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from otcdesk.app import migrations


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL and a busy timeout so the server and CLI can share the file."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            _wal(cur)
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def _wal(cur, wait_s: float = 30.0) -> None:
    """Switch the file to WAL (persistent once set). Switching needs the file to itself, and SQLite answers
    "database is locked" at once rather than through the busy timeout while another process holds it (two
    processes opening a new file together), so that case is retried until `wait_s`."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            if cur.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def init_db(engine: Engine) -> None:
    """Bring the schema to the newest revision (`alembic upgrade head`); idempotent, safe in parallel.

    Every process runs it at start (server, CLI commands, tests). A database made before Alembic is
    stamped at the baseline, then upgraded; see `otcdesk.app.migrations`.
    """
    migrations.upgrade(engine)


@contextmanager
def unit_of_work(engine: Engine) -> Iterator[Session]:
    """One transaction: commit on success, roll back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
