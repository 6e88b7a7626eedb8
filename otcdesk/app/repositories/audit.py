"""The audit log (`audit_log`): a hash chain of entries written in the same unit of work as the decision they record.

Guarded and tamper-evident. The database refuses UPDATE, DELETE, REPLACE (SQLite) and TRUNCATE (PostgreSQL)
on the table (triggers of revisions 0001 and 0003), but whoever holds the SQLite file can DROP TRIGGER and
rewrite rows, and a PostgreSQL owner can disable triggers: no database setting prevents that. So each entry
also carries `prev_hash`, the previous entry's `entry_hash`, and its own `entry_hash`, SHA-256 over the
canonical JSON of the entry (`entry_hash()`); `verify()` walks the chain and names the first entry that was
edited, replaced or follows a removed one. Removing entries from the end leaves a shorter valid chain:
compare the `head` that verify reports with one kept elsewhere to detect that.

Appends are serialised so two writers never fork the chain: `record` takes a PostgreSQL advisory
transaction lock, or SQLite's write lock (`BEGIN IMMEDIATE`), before reading the head; either is held
until the caller's transaction ends. Entry ids are therefore consecutive from the upgrade on.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from otcdesk.app.models import AuditLog, utcnow

GENESIS = "0" * 64  # the prev_hash of the first entry
_PG_CHAIN_LOCK = 724102  # advisory lock key that serialises appends (724101 serialises migrations)
_VERIFY_BATCH = 1000


def canonical_json(value: Any) -> str:
    """The one serialisation that is hashed: sorted keys, no whitespace, UTF-8 text (not \\u escapes)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def canonical_ts(ts: datetime) -> str:
    """A timestamp as stored by both databases (UTC, microseconds); naive values are UTC (SQLite stores no offset)."""
    utc = ts.replace(tzinfo=timezone.utc) if ts.utcoffset() is None else ts.astimezone(timezone.utc)
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def entry_hash(entry: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of an entry's canonical JSON: id, ts, actor, action, subject, detail, prev_hash."""
    doc = {"id": entry["id"], "ts": canonical_ts(entry["ts"]), "actor": entry["actor"], "action": entry["action"],
           "subject": entry["subject"], "detail": entry["detail"], "prev_hash": entry["prev_hash"]}
    return hashlib.sha256(canonical_json(doc).encode("utf-8")).hexdigest()


def chain(rows: Iterable[Mapping[str, Any]], prev_hash: str = GENESIS) -> Iterable[tuple[int, str, str]]:
    """`(id, prev_hash, entry_hash)` for entries in id order, linked from `prev_hash` (what revision 0003 stores)."""
    for row in rows:
        digest = entry_hash({**row, "prev_hash": prev_hash})
        yield row["id"], prev_hash, digest
        prev_hash = digest


class AuditRepository:
    """Appends entries to the chain, reads them back, verifies the chain."""

    def __init__(self, session: Session):
        self.session = session

    def record(self, actor: str, action: str, subject: str, detail: dict[str, Any] | None = None) -> AuditLog:
        """Append one entry at the head of the chain (committed with the caller's transaction).

        `detail` is stored as its JSON round trip (string keys, lists for tuples), which is what is hashed
        and what either database gives back. Takes the chain's append lock until the transaction ends.
        """
        self.lock_chain()
        self.session.flush()  # this transaction's earlier entries are rows now, so the head below is current
        head = self.session.exec(select(AuditLog.id, AuditLog.entry_hash).order_by(AuditLog.id.desc()).limit(1)).first()
        row = AuditLog(id=head.id + 1 if head else 1, ts=utcnow(), actor=actor, action=action, subject=subject,
                       detail=json.loads(json.dumps(detail or {}, ensure_ascii=False)),
                       prev_hash=head.entry_hash if head else GENESIS)
        row.entry_hash = entry_hash(row.model_dump())
        self.session.add(row)
        return row

    def entries(self, *, subject: str | None = None, action: str | None = None, limit: int = 500) -> list[AuditLog]:
        """Rows, oldest first, optionally for one subject or action."""
        q = select(AuditLog)
        if subject:
            q = q.where(AuditLog.subject == subject)
        if action:
            q = q.where(AuditLog.action == action)
        return list(self.session.exec(q.order_by(AuditLog.id).limit(limit)))

    def verify(self) -> dict:
        """Walk the chain in id order: `{"ok", "entries", "first_broken": {"id", "reason"} | None, "head"}`.

        An entry whose content no longer gives its `entry_hash` was edited or replaced ("hash mismatch");
        an entry whose `prev_hash` is not the previous entry's hash follows removed entries (a "gap" when
        ids are missing) or an entry rewritten with a recomputed hash. `head` is the last entry's
        `{"id", "hash"}` (None for an empty log).
        """
        cols = (AuditLog.id, AuditLog.ts, AuditLog.actor, AuditLog.action, AuditLog.subject, AuditLog.detail,
                AuditLog.prev_hash, AuditLog.entry_hash)
        rows = self.session.exec(select(*cols).order_by(AuditLog.id).execution_options(yield_per=_VERIFY_BATCH))
        count, broken, prev = 0, None, None
        for row in rows:
            count += 1
            if broken is None:
                broken = _first_fault(row._asdict(), prev)
            prev = row
        head = {"id": prev.id, "hash": prev.entry_hash} if prev is not None else None
        return {"ok": broken is None, "entries": count, "first_broken": broken, "head": head}

    def lock_chain(self) -> None:
        """Hold the chain's append lock until the transaction ends: every audited write is serialised by it, so a
        write that checks what others stored (then audits) sees every earlier one committed."""
        conn = self.session.connection()
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_CHAIN_LOCK})
        elif conn.dialect.name == "sqlite" and not conn.connection.dbapi_connection.in_transaction:
            # pysqlite opens a transaction only at the first write, so a transaction already open holds the lock.
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def _first_fault(row: dict, prev) -> dict | None:
    if row["entry_hash"] is None or row["prev_hash"] is None or entry_hash(row) != row["entry_hash"]:
        return {"id": row["id"], "reason": "hash mismatch: the entry was edited or replaced"}
    expected = prev.entry_hash if prev is not None else GENESIS
    if row["prev_hash"] == expected:
        return None
    if prev is None:
        return {"id": row["id"], "reason": "prev_hash mismatch: the first entry does not start the chain "
                                           "(entries before it were removed)"}
    if row["id"] != prev.id + 1:
        return {"id": row["id"], "reason": f"gap: no entries between id {prev.id} and id {row['id']}, and prev_hash "
                                           f"does not match entry {prev.id} (entries were removed)"}
    return {"id": row["id"], "reason": f"prev_hash mismatch: entry {prev.id} is not the entry this one was chained to"}


def verify_chain(engine: Engine) -> dict:
    """`AuditRepository.verify` in a read-only session of its own (the CLI and the console call this)."""
    with Session(engine) as session:
        return AuditRepository(session).verify()
