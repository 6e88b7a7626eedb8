"""Database engine and unit of work (SQLModel over SQLite by default, PostgreSQL by `DATABASE_URL`).

Tables are declared in `app.models` (and other `app` modules) on the shared
`SQLModel.metadata`; `init_db` creates whatever is missing, so it is idempotent.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, create_engine


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL and a busy timeout so the server and CLI can share the file."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def init_db(engine: Engine) -> None:
    """Create all tables that do not exist yet (idempotent)."""
    import otcdesk.app.models  # noqa: F401  - registers the tables on SQLModel.metadata

    SQLModel.metadata.create_all(engine)
    _protect_audit_log(engine)


_SQLITE_AUDIT_TRIGGERS = [
    "CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END",
]
_PG_AUDIT_TRIGGER = [
    "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'audit log is append-only'; END $$",
    "DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log",
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
]


def _protect_audit_log(engine: Engine) -> None:
    """Database-level guard: the audit log refuses UPDATE and DELETE, whoever connects."""
    statements = _SQLITE_AUDIT_TRIGGERS if engine.dialect.name == "sqlite" else _PG_AUDIT_TRIGGER
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(724101)")  # concurrent init_db calls
        for stmt in statements:
            conn.exec_driver_sql(stmt)


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
