"""MarginRepository: the desk's quoting margins by structure and tenor (`quote_margin`)."""
from __future__ import annotations

from sqlmodel import Session


class MarginRepository:
    def __init__(self, session: Session):
        self.session = session
