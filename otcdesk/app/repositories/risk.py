"""RiskRepository: risk snapshots of the live book and the desk's limits (`risk_snapshot`, `risk_limit`)."""
from __future__ import annotations

from sqlmodel import Session


class RiskRepository:
    def __init__(self, session: Session):
        self.session = session
