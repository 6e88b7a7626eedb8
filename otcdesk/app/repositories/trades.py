"""TradeRepository: booked trades, their lifecycle steps and events (`trade`, `trade_transition`, `trade_event`).

A status change is a conditional update on `(id, status, version)`, so of two concurrent steps on one trade
one wins and the other sees `False`; the step's transition row is written in the same unit of work.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, update
from sqlmodel import Session, select

from otcdesk.app.models import TradeEventRow, TradeRow, TradeTransitionRow, utcnow

_IN_BATCH = 500  # ids per IN (...) query


class TradeRepository:
    def __init__(self, session: Session):
        self.session = session

    def get(self, trade_id: str) -> TradeRow | None:
        return self.session.get(TradeRow, trade_id)

    def for_order(self, order_review_id: str) -> TradeRow | None:
        """The trade booked from an order item, if any (one per item)."""
        return self.session.exec(select(TradeRow).where(TradeRow.order_review_id == order_review_id)).first()

    def add(self, trade: TradeRow) -> None:
        """Insert a new trade (its id and order item are unique: a second booking of one item fails here)."""
        self.session.add(trade)
        self.session.flush()

    def list(self, status: str | None = None, limit: int = 500, *, chat_id: str | None = None,
             institution: str | None = None, underlying: str | None = None) -> list[TradeRow]:
        """Newest first, optionally in one status, of one chat group, one institution or one underlying."""
        q = select(TradeRow)
        if status:
            q = q.where(TradeRow.status == status)
        if underlying is not None:
            q = q.where(TradeRow.underlying == underlying)
        if chat_id is not None:
            q = q.where(TradeRow.chat_id == chat_id)
        if institution is not None:
            q = q.where(TradeRow.institution == institution)
        return list(self.session.exec(q.order_by(TradeRow.booked_at.desc(), TradeRow.id.desc()).limit(limit)))

    def live(self) -> list[TradeRow]:
        """Every live trade, oldest first (what the risk book revalues and fixings apply to)."""
        return list(self.session.exec(select(TradeRow).where(TradeRow.status == "live")
                                      .order_by(TradeRow.booked_at, TradeRow.id)))

    def count(self, status: str | None = None) -> int:
        q = select(func.count()).select_from(TradeRow)
        if status:
            q = q.where(TradeRow.status == status)
        return self.session.exec(q).one()

    def move(self, trade: TradeRow, trigger: str, dest: str, by: str, *, role: str | None = None,
             detail: dict | None = None, at: datetime | None = None, **changes) -> bool:
        """trade.status → `dest` (with column `changes`) if nobody moved it since it was read; records the step.

        False when another unit of work changed the trade first (nothing is written then)."""
        at = at or utcnow()
        source, version = trade.status, trade.version  # read first: the ORM update syncs `trade` in the session
        res = self.session.exec(update(TradeRow).where(TradeRow.id == trade.id, TradeRow.status == source,
                                                       TradeRow.version == version)
                                .values(status=dest, version=version + 1, **changes))
        if res.rowcount != 1:
            return False
        self.session.add(TradeTransitionRow(trade_id=trade.id, trigger=trigger, source=source, dest=dest,
                                            by=by, role=role, at=at, detail=detail or {}))
        self.session.flush()
        self.session.refresh(trade)
        return True

    def record_step(self, trade_id: str, trigger: str, source: str, dest: str, by: str, *, role: str | None = None,
                    detail: dict | None = None, at: datetime | None = None) -> None:
        """A transition row for a step that created the trade (`new` → its first state)."""
        self.session.add(TradeTransitionRow(trade_id=trade_id, trigger=trigger, source=source, dest=dest, by=by,
                                            role=role, at=at or utcnow(), detail=detail or {}))

    def transitions(self, trade_id: str) -> list[TradeTransitionRow]:
        return list(self.session.exec(select(TradeTransitionRow).where(TradeTransitionRow.trade_id == trade_id)
                                      .order_by(TradeTransitionRow.id)))

    def transitions_for(self, trade_ids: list[str]) -> dict[str, list[TradeTransitionRow]]:
        """The steps of several trades at once (a listing), each trade's in order."""
        out: dict[str, list[TradeTransitionRow]] = {}
        for i in range(0, len(trade_ids), _IN_BATCH):
            rows = self.session.exec(select(TradeTransitionRow)
                                     .where(TradeTransitionRow.trade_id.in_(trade_ids[i:i + _IN_BATCH]))
                                     .order_by(TradeTransitionRow.id))
            for row in rows:
                out.setdefault(row.trade_id, []).append(row)
        return out

    def events_for(self, trade_ids: list[str]) -> dict[str, list[TradeEventRow]]:
        """The events of several trades at once, each trade's by date."""
        out: dict[str, list[TradeEventRow]] = {}
        for i in range(0, len(trade_ids), _IN_BATCH):
            rows = self.session.exec(select(TradeEventRow).where(TradeEventRow.trade_id.in_(trade_ids[i:i + _IN_BATCH]))
                                     .order_by(TradeEventRow.date, TradeEventRow.id))
            for row in rows:
                out.setdefault(row.trade_id, []).append(row)
        return out

    def add_event_once(self, event: TradeEventRow) -> bool:
        """Record a lifecycle event unless `(trade_id, type, date, ref)` has one already; True when added now.

        No savepoint: on SQLite a savepoint that opens the unit of work commits on release, so the event would
        outlive a rollback of the rest. A concurrent unit of work recording the same event first makes this one
        fail on the unique constraint (IntegrityError) and roll back whole; its retry then finds the event."""
        if self.session.exec(select(TradeEventRow.id).where(TradeEventRow.trade_id == event.trade_id,
                                                            TradeEventRow.type == event.type,
                                                            TradeEventRow.date == event.date,
                                                            TradeEventRow.ref == event.ref)).first():
            return False
        self.session.add(event)
        self.session.flush()
        return True

    def events(self, trade_id: str) -> list[TradeEventRow]:
        return list(self.session.exec(select(TradeEventRow).where(TradeEventRow.trade_id == trade_id)
                                      .order_by(TradeEventRow.date, TradeEventRow.id)))

    def amend(self, trade: TradeRow, **changes) -> bool:
        """Change a trade's columns (not its status: that is `move`) if nobody changed it since it was read;
        False otherwise (nothing written). The caller audits the change."""
        res = self.session.exec(update(TradeRow).where(TradeRow.id == trade.id, TradeRow.version == trade.version)
                                .values(version=trade.version + 1, **changes))
        if res.rowcount != 1:
            return False
        self.session.flush()
        self.session.refresh(trade)
        return True

    def initial_price_pending(self, underlyings: list[str] | None = None) -> list[TradeRow]:
        """Trades (live or awaiting their second approval) whose initial price waits for a fixing, oldest first."""
        q = select(TradeRow).where(TradeRow.initial_price_pending.is_(True),
                                   TradeRow.status.in_(("live", "pending_second_approval")))
        if underlyings is not None:
            q = q.where(TradeRow.underlying.in_(list(underlyings)))
        return list(self.session.exec(q.order_by(TradeRow.booked_at, TradeRow.id)))
