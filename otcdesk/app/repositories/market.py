"""MarketRepository: market data history and official closes (`market_tick`, `fixing`).

Times are stored as UTC (SQLite keeps no offset: an aware non-UTC time would be stored as its wall clock);
`as_utc` reads them back aware.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterable

from sqlalchemy import and_, func
from sqlmodel import Session, select

from otcdesk.app.models import Fixing, MarketTick


def as_utc(ts: datetime) -> datetime:
    """An aware UTC datetime from a stored one (SQLite hands back naive UTC)."""
    return ts.replace(tzinfo=timezone.utc) if ts.utcoffset() is None else ts.astimezone(timezone.utc)


class MarketRepository:
    def __init__(self, session: Session):
        self.session = session

    # ---- ticks (spot, vol, rate, div per underlying per time) ---------------------------------
    def add_ticks(self, ticks: Iterable[MarketTick]) -> int:
        n = 0
        for t in ticks:
            t.as_of = as_utc(t.as_of)
            self.session.add(t)
            n += 1
        self.session.flush()
        return n

    def has_ticks(self) -> bool:
        return self.session.exec(select(MarketTick.id).limit(1)).first() is not None

    def tick_count(self, underlying: str | None = None) -> int:
        q = select(func.count()).select_from(MarketTick)
        if underlying is not None:
            q = q.where(MarketTick.underlying == underlying)
        return self.session.exec(q).one()

    def latest_ticks(self) -> list[MarketTick]:
        """The newest tick of every underlying (of two at the same time, the one written last)."""
        newest = (select(MarketTick.underlying, func.max(MarketTick.as_of).label("as_of"))
                  .group_by(MarketTick.underlying).subquery())
        rows = self.session.exec(select(MarketTick).join(newest, and_(MarketTick.underlying == newest.c.underlying,
                                                                      MarketTick.as_of == newest.c.as_of))
                                 .order_by(MarketTick.underlying, MarketTick.id)).all()
        return list({r.underlying: r for r in rows}.values())

    def latest_tick(self, underlying: str) -> MarketTick | None:
        return self.session.exec(select(MarketTick).where(MarketTick.underlying == underlying)
                                 .order_by(MarketTick.as_of.desc(), MarketTick.id.desc()).limit(1)).first()

    def tick_at(self, underlying: str, as_of: datetime) -> MarketTick | None:
        """The tick of `underlying` stored for exactly `as_of` (the last written), if any."""
        return self.session.exec(select(MarketTick).where(MarketTick.underlying == underlying,
                                                          MarketTick.as_of == as_utc(as_of))
                                 .order_by(MarketTick.id.desc()).limit(1)).first()

    def history(self, underlying: str, since: datetime | None = None, limit: int = 500) -> list[MarketTick]:
        """The newest `limit` ticks of `underlying` (at or after `since`), oldest first."""
        q = select(MarketTick).where(MarketTick.underlying == underlying)
        if since is not None:
            q = q.where(MarketTick.as_of >= as_utc(since))
        rows = list(self.session.exec(q.order_by(MarketTick.as_of.desc(), MarketTick.id.desc()).limit(limit)))
        return rows[::-1]

    def underlyings(self) -> list[str]:
        """Every underlying with market data."""
        return list(self.session.exec(select(MarketTick.underlying).distinct().order_by(MarketTick.underlying)))

    # ---- official closes (fixings) -------------------------------------------------------------
    def fixing(self, underlying: str, date: str) -> Fixing | None:
        return self.session.exec(select(Fixing).where(Fixing.underlying == underlying, Fixing.date == date)).first()

    def add_fixing(self, underlying: str, date: str, close: float, source: str) -> Fixing:
        """Store a close unless `(underlying, date)` has one; returns the stored row (the existing one if any).

        A concurrent writer storing the same day first makes the flush (or the commit) raise IntegrityError: the
        caller's unit of work fails whole and may be retried (no savepoint here: on SQLite a savepoint that is the
        transaction's first write commits on release)."""
        existing = self.fixing(underlying, date)
        if existing is not None:
            return existing
        row = Fixing(underlying=underlying, date=date, close=close, source=source)
        self.session.add(row)
        self.session.flush()
        return row

    def fixings(self, underlying: str, since: str | None = None, through: str | None = None) -> list[Fixing]:
        """Closes of `underlying` by date (ISO strings compare as dates), optionally within [since, through]."""
        q = select(Fixing).where(Fixing.underlying == underlying)
        if since is not None:
            q = q.where(Fixing.date >= since)
        if through is not None:
            q = q.where(Fixing.date <= through)
        return list(self.session.exec(q.order_by(Fixing.date)))

    def fixing_count(self) -> int:
        return self.session.exec(select(func.count()).select_from(Fixing)).one()
