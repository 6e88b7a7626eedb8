"""MarketRepository: market data history and official closes (`market_tick`, `fixing`)."""
from __future__ import annotations

from sqlmodel import Session


class MarketRepository:
    def __init__(self, session: Session):
        self.session = session
