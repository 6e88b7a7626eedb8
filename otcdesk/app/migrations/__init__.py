"""Alembic migrations of the desk database, shipped inside the package and run by `app.db.init_db`.

What lives where: `env.py` is the Alembic environment (online only, on the connection handed over here;
no alembic.ini, no URL of its own); `versions/` holds one module per revision, `0001_baseline` being the
schema of the last release before Alembic; `__main__.py` drafts a new revision. Configuration is built
in code (`alembic_config`), so an installed package finds its migrations by its own path.

Adding a revision (a new table or column in `app/models.py`), from a source checkout:

1. `python -m otcdesk.app.migrations "add orders table"` upgrades a scratch SQLite database to head and
   writes what autogenerate finds between it and the models to `versions/NNNN_add_orders_table.py`.
2. Review the draft before committing it: autogenerate sees a rename as drop + add, and misses server
   defaults, CHECK constraints, triggers and functions; on SQLite it drafts `batch_alter_table` (a table
   copy), which PostgreSQL runs as plain ALTERs; data migrations are written by hand.
3. `tests/unit/app/test_migrations.py` upgrades SQLite and PostgreSQL to head and fails while the
   migrated schema and the models differ.
"""
from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, inspect
from sqlalchemy.engine import Connection, Engine

BASELINE = "0001"
BASELINE_TABLES = frozenset({
    "institution", "chatgroup", "clientcontact", "inbound_message", "review_item", "outbox", "sim_message",
    "pending_clarification", "user", "web_session", "audit_log",
})
# Tables in the same database that other libraries create and migrate themselves (langgraph's
# PostgreSQL checkpointer): autogenerate must not draft their removal.
FOREIGN_TABLES = frozenset({"checkpoints", "checkpoint_blobs", "checkpoint_writes", "checkpoint_migrations"})
log = logging.getLogger(__name__)
_PG_LOCK_KEY = 724101  # the key the release before Alembic locked init_db with, so old and new serialise


class UnknownSchemaError(RuntimeError):
    """The database has some of the baseline tables but no revision stamp: not a schema any release made."""


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration in code: our script directory, and the connection env.py runs on."""
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent))
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    """The newest revision shipped."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current(connection: Connection) -> str | None:
    """The revision the database is stamped with (None: empty, or made before Alembic)."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> dict:
    """Bring the database to head in one transaction, serialised across processes.

    PostgreSQL takes a transaction-scoped advisory lock; SQLite takes the file's write lock
    (`BEGIN IMMEDIATE`), so a second process waits, then finds the database at head. A database made
    by the release before Alembic (its tables, no `alembic_version`) is stamped at the baseline first.
    Returns `{"from", "stamped", "current"}`; raises `UnknownSchemaError` (and changes nothing) for a
    database holding only some of the baseline tables.
    """
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
        elif conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        cfg = alembic_config(conn)
        before = current(conn)
        stamped = None
        if before is None and _made_before_alembic(conn):
            command.stamp(cfg, BASELINE)
            stamped = BASELINE
        command.upgrade(cfg, "head")
        after = current(conn)
    if after != before:
        log.info("database schema migrated from %s to %s%s", before or "nothing", after,
                 f" (stamped at {stamped} first)" if stamped else "")
    return {"from": before, "stamped": stamped, "current": after}


def _made_before_alembic(conn: Connection) -> bool:
    present = BASELINE_TABLES & set(inspect(conn).get_table_names())
    if present and present != BASELINE_TABLES:
        raise UnknownSchemaError(
            f"database has tables {sorted(present)} but lacks {sorted(BASELINE_TABLES - present)} "
            "and no alembic_version: not a schema a release made; restore it or migrate it by hand")
    return bool(present)


def include_name(name: str | None, type_: str, _parents: dict) -> bool:
    """Autogenerate's filter: leave other libraries' tables alone."""
    return not (type_ == "table" and name in FOREIGN_TABLES)


def desk_metadata() -> MetaData:
    """The metadata migrations must match: every table of `app.models`."""
    import otcdesk.app.models  # noqa: F401
    from sqlmodel import SQLModel

    return SQLModel.metadata
