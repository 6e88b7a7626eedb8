"""KYC onboarding: invitations, applications with their machine's steps, uploaded documents and reports."""
from __future__ import annotations

from sqlmodel import Session


class KycRepository:
    """Invitations (`kyc_invitation`), applications (`kyc_application`, `kyc_transition`), documents
    (`kyc_document`), due-diligence reports (`kyc_report`) and signed agreements (`kyc_agreement`)."""

    def __init__(self, session: Session):
        self.session = session
