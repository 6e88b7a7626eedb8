"""RiskRepository: risk snapshots of the live book and the desk's limits (`risk_snapshot`, `risk_limit`).

Snapshots are only added, never changed: the table is the book's history. `latest_book` reads the `book`
column alone (the per-trade rows of a 2,000-trade snapshot stay on disk unless asked for).
"""
from __future__ import annotations

from datetime import datetime
from typing import Iterable

from sqlalchemy import func
from sqlmodel import Session, select

from otcdesk.app.models import RiskLimit, RiskSnapshotRow, utcnow

MEASURES = ("delta_cny", "vega_cny")
DEFAULT_UNDERLYING = "*"


class RiskRepository:
    def __init__(self, session: Session):
        self.session = session

    # ---- snapshots ------------------------------------------------------------------------------
    def add_snapshot(self, *, as_of: datetime, live_trades: int, elapsed_s: float, book: dict,
                     trades: list) -> RiskSnapshotRow:
        """Store a snapshot; its id is assigned here and written into `book["snapshot_id"]`."""
        row = RiskSnapshotRow(as_of=as_of, live_trades=live_trades, elapsed_s=elapsed_s, book=book, trades=trades)
        self.session.add(row)
        self.session.flush()
        row.book = {**book, "snapshot_id": row.id}
        self.session.flush()
        return row

    def latest_id(self) -> int | None:
        return self.session.exec(select(func.max(RiskSnapshotRow.id))).one()

    def latest_book(self) -> dict | None:
        """The `Book` of the newest snapshot, or None before the first."""
        return self.session.exec(select(RiskSnapshotRow.book).order_by(RiskSnapshotRow.id.desc()).limit(1)).first()

    def latest(self) -> RiskSnapshotRow | None:
        """The newest snapshot with its per-trade rows."""
        return self.session.exec(select(RiskSnapshotRow).order_by(RiskSnapshotRow.id.desc()).limit(1)).first()

    def get(self, snapshot_id: int) -> RiskSnapshotRow | None:
        return self.session.get(RiskSnapshotRow, snapshot_id)

    def history(self, limit: int = 100) -> list[dict]:
        """Newest first: `{"snapshot_id", "as_of", "live_trades", "elapsed_s"}` of each snapshot."""
        rows = self.session.exec(select(RiskSnapshotRow.id, RiskSnapshotRow.as_of, RiskSnapshotRow.live_trades,
                                        RiskSnapshotRow.elapsed_s)
                                 .order_by(RiskSnapshotRow.id.desc()).limit(limit))
        return [{"snapshot_id": i, "as_of": a, "live_trades": n, "elapsed_s": e} for i, a, n, e in rows]

    def count(self) -> int:
        return self.session.exec(select(func.count()).select_from(RiskSnapshotRow)).one()

    # ---- limits ---------------------------------------------------------------------------------
    def limits(self) -> list[RiskLimit]:
        return list(self.session.exec(select(RiskLimit).order_by(RiskLimit.underlying, RiskLimit.measure)))

    def limit_table(self) -> dict[tuple[str, str], float]:
        """{(underlying, measure): limit}, the "*" rows included."""
        return {(r.underlying, r.measure): r.limit for r in self.limits()}

    def seed_limits(self, rows: Iterable[tuple[str, str, float]], by: str = "system") -> list[tuple[str, str, float]]:
        """Insert the (underlying, measure, limit) rows the table lacks; rows already there (perhaps edited)
        are kept. Returns what was inserted."""
        have = set(self.limit_table())
        added = []
        for underlying, measure, limit in rows:
            if (underlying, measure) in have:
                continue
            self.session.add(RiskLimit(underlying=underlying, measure=measure, limit=limit, updated_by=by))
            have.add((underlying, measure))
            added.append((underlying, measure, limit))
        self.session.flush()
        return added

    def set_limit(self, underlying: str, measure: str, limit: float, by: str) -> RiskLimit:
        """Create or change one limit (the caller audits it)."""
        row = self.session.exec(select(RiskLimit).where(RiskLimit.underlying == underlying,
                                                        RiskLimit.measure == measure)).first()
        if row is None:
            row = RiskLimit(underlying=underlying, measure=measure, limit=limit, updated_by=by)
        else:
            row.limit, row.updated_by, row.updated_at = limit, by, utcnow()
        self.session.add(row)
        self.session.flush()
        return row
