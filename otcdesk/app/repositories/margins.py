"""MarginRepository: the desk's quoting margins by structure and tenor (`quote_margin`)."""
from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, func, select

from otcdesk.app.models import QuoteMargin, utcnow


def margin_row(row: QuoteMargin) -> dict:
    """The JSON form of one row (the API's and the audit log's)."""
    return {"structure": row.structure, "max_tenor_days": row.max_tenor_days, "margin_pct": row.margin_pct,
            "unwind_margin_pct": row.unwind_margin_pct, "updated_by": row.updated_by,
            "updated_at": row.updated_at.isoformat() if isinstance(row.updated_at, datetime) else row.updated_at}


class MarginRepository:
    def __init__(self, session: Session):
        self.session = session

    def all(self) -> list[QuoteMargin]:
        """Every row, by structure ("*" first, in code-point order whatever the database's collation) then tenor."""
        return sorted(self.session.exec(select(QuoteMargin)), key=lambda r: (r.structure, r.max_tenor_days))

    def count(self) -> int:
        return self.session.exec(select(func.count()).select_from(QuoteMargin)).one()

    def get(self, structure: str, max_tenor_days: int) -> QuoteMargin | None:
        return self.session.exec(select(QuoteMargin).where(QuoteMargin.structure == structure,
                                                           QuoteMargin.max_tenor_days == max_tenor_days)).first()

    def put(self, structure: str, max_tenor_days: int, margin_pct: float, unwind_margin_pct: float,
            by: str) -> tuple[dict | None, dict]:
        """Insert or update the row of (structure, max_tenor_days); returns (before or None, after)."""
        row = self.get(structure, max_tenor_days)
        before = margin_row(row) if row is not None else None
        if row is None:
            row = QuoteMargin(structure=structure, max_tenor_days=max_tenor_days)
        row.margin_pct, row.unwind_margin_pct = float(margin_pct), float(unwind_margin_pct)
        row.updated_by, row.updated_at = by, utcnow()
        self.session.add(row)
        self.session.flush()
        return before, margin_row(row)

    def insert(self, structure: str, max_tenor_days: int, margin_pct: float, unwind_margin_pct: float,
               by: str) -> None:
        """Add a new row; a row of the same bucket raises IntegrityError (a concurrent seed loses, no update)."""
        self.session.add(QuoteMargin(structure=structure, max_tenor_days=max_tenor_days, margin_pct=float(margin_pct),
                                     unwind_margin_pct=float(unwind_margin_pct), updated_by=by, updated_at=utcnow()))
        self.session.flush()

    def delete(self, structure: str, max_tenor_days: int) -> dict | None:
        """Remove that row; returns what it held (None when there was none)."""
        row = self.get(structure, max_tenor_days)
        if row is None:
            return None
        before = margin_row(row)
        self.session.delete(row)
        self.session.flush()
        return before
