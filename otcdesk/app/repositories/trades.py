"""TradeRepository: booked trades, their lifecycle steps and events (`trade`, `trade_transition`, `trade_event`)."""
from __future__ import annotations

from sqlmodel import Session, select

from otcdesk.app.models import TradeEventRow, TradeRow, TradeTransitionRow


class TradeRepository:
    def __init__(self, session: Session):
        self.session = session

    def get(self, trade_id: str) -> TradeRow | None:
        return self.session.get(TradeRow, trade_id)

    def for_order(self, order_review_id: str) -> TradeRow | None:
        """The trade booked from an order item, if any (one per item)."""
        return self.session.exec(select(TradeRow).where(TradeRow.order_review_id == order_review_id)).first()

    def transitions(self, trade_id: str) -> list[TradeTransitionRow]:
        return list(self.session.exec(select(TradeTransitionRow).where(TradeTransitionRow.trade_id == trade_id)
                                      .order_by(TradeTransitionRow.id)))

    def events(self, trade_id: str) -> list[TradeEventRow]:
        return list(self.session.exec(select(TradeEventRow).where(TradeEventRow.trade_id == trade_id)
                                      .order_by(TradeEventRow.date, TradeEventRow.id)))
