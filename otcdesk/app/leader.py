"""Leader election for the jobs that must run in one instance only: the risk book's scheduled refresh and the
outbox dispatcher (README, "Running several instances").

On PostgreSQL every instance tries `pg_try_advisory_lock` on a connection of its own (not from the pool), kept
open for as long as it leads: the lock is the session's, so it goes when the leader's process or connection
dies, and a standby's next try (every `OTCDESK_LEADER_RETRY_S`) takes it. The leader checks its connection on
the same period and steps down when it is gone. The lock key is derived from the database's schema, so
deployments in separate schemas of one database elect separately. On SQLite the service is single-instance by
definition: it leads from the start, without a lock.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Callable

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)

LOCK_NAMESPACE = "otcdesk.leader"


def lock_key(schema: str) -> int:
    """The advisory lock's key (a signed 64-bit integer) for a deployment in `schema`."""
    digest = hashlib.blake2b(f"{LOCK_NAMESPACE}/{schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class Leadership:
    """Whether this instance runs the single-instance jobs. `on_change(leading)` is called (from the caller's
    thread of `check`) each time that changes; `gauge` (a prometheus Gauge) shows it."""

    def __init__(self, db_url: str | None, on_change: Callable[[bool], None], *, retry_s: float = 5.0,
                 gauge=None):
        self.db_url = db_url  # None: single instance (SQLite), always the leader
        self.on_change = on_change
        self.retry_s = retry_s
        self.gauge = gauge
        self.leading = False
        self.key: int | None = None
        # a connection of its own (never pooled, so the lock cannot leak to other work), quick to give up
        # TCP keepalives and a statement timeout: a silently dropped network fails the liveness check in seconds
        # instead of hanging it while a standby takes the lock
        self._engine = create_engine(db_url, poolclass=NullPool, connect_args={
            "connect_timeout": 5, "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
            "keepalives_count": 3}) if db_url else None
        self._conn: Connection | None = None

    @classmethod
    def for_settings(cls, settings, on_change: Callable[[bool], None], gauge=None) -> "Leadership":
        return cls(settings.db_url if settings.is_postgres else None, on_change,
                   retry_s=settings.leader_retry_s, gauge=gauge)

    def check(self) -> bool:
        """One round (blocking): take the lock when free, or confirm it is still held; returns `leading`."""
        if self._engine is None:
            self._set(True)
            return True
        if self.leading:
            try:
                self._conn.execute(text("SELECT 1"))
            except Exception:
                log.warning("leader: lost the database connection that holds the lock; standing by")
                self._drop()
                self._set(False)
            return self.leading
        try:
            if self._conn is None:
                self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
                self._conn.execute(text("SET statement_timeout = 5000"))  # not in the URL's options: they name the schema
                self.key = lock_key(self._conn.execute(text("SELECT current_schema()")).scalar_one())
            got = self._conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar_one()
        except Exception as exc:
            log.warning("leader: cannot try the lock (%s); retrying in %.0f s", type(exc).__name__, self.retry_s)
            self._drop()
            return False
        if got:
            log.info("leader: this instance took the lock (key %d) and runs the scheduler and the outbox", self.key)
            self._set(True)
        return self.leading

    async def run(self) -> None:
        """Check every `retry_s` until cancelled (the first check is the caller's, at start)."""
        while self._engine is not None:
            await asyncio.sleep(self.retry_s)
            await asyncio.to_thread(self.check)

    def close(self) -> None:
        """Step down and release the lock now (a standby's next try takes it)."""
        if self.leading:
            self._set(False)
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            except Exception:
                pass  # the connection is gone, and with it the lock
            self._drop()
        if self._engine is not None:
            self._engine.dispose()

    def _set(self, leading: bool) -> None:
        if self.gauge is not None:
            self.gauge.set(1 if leading else 0)
        if leading == self.leading:
            return
        self.leading = leading
        try:
            self.on_change(leading)
        except Exception:
            log.exception("leader: starting or stopping the single-instance jobs failed")

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
            self._conn = None
