"""The agreement evidence log (`agreement_evidence`): an append-only SHA-256 hash chain of signed agreements."""
from __future__ import annotations

from sqlmodel import Session


class EvidenceRepository:
    """Append to and read the evidence chain; `verify` recomputes it."""

    def __init__(self, session: Session):
        self.session = session
