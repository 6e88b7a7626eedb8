"""The langgraph checkpointer: a SQLite file beside the database by default, PostgreSQL when the database is."""
from __future__ import annotations

import sqlite3
from typing import Any, Callable

from otcdesk.app.settings import Settings


def make_checkpointer(settings: Settings) -> tuple[Any, Callable[[], None]]:
    """(saver, close) for the configured database; the saver's tables are created if missing."""
    if settings.is_postgres:
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool

        conninfo = settings.db_url.replace("postgresql+psycopg://", "postgresql://", 1)
        pool = ConnectionPool(conninfo, min_size=1, max_size=4, open=True,
                              kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row})
        saver = PostgresSaver(pool)
        saver.setup()
        return saver, pool.close
    from langgraph.checkpoint.sqlite import SqliteSaver

    settings.ensure_dirs()
    conn = sqlite3.connect(str(settings.data_dir / "checkpoints.db"), check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    saver = SqliteSaver(conn)
    saver.setup()
    return saver, conn.close
