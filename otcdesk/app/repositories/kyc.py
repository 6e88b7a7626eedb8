"""KYC onboarding: invitations, applications with their machine's steps, uploaded documents and reports.

An application's state changes only through `move`: a conditional update on `(id, state, version)` and the step's
`kyc_transition` row in the same unit of work, so of two concurrent decisions one wins and the other sees False.
Invitation tokens are never stored: only their SHA-256 (`token_sha256`) is looked up.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, update
from sqlmodel import Session, select

from otcdesk.app.models import KycApplication, KycDocument, KycInvitation, KycReport, KycTransitionRow, utcnow

_IN_BATCH = 500


class KycRepository:
    """Invitations (`kyc_invitation`), applications (`kyc_application`, `kyc_transition`), documents
    (`kyc_document`) and due-diligence reports (`kyc_report`). Signed agreements are the evidence repository's."""

    def __init__(self, session: Session):
        self.session = session

    # ---- invitations ----------------------------------------------------------------------------------------
    def add_invitation(self, invitation: KycInvitation) -> None:
        self.session.add(invitation)
        self.session.flush()

    def invitation(self, invitation_id: str) -> KycInvitation | None:
        return self.session.get(KycInvitation, invitation_id)

    def invitation_by_token_hash(self, token_sha256: str) -> KycInvitation | None:
        return self.session.exec(select(KycInvitation).where(KycInvitation.token_sha256 == token_sha256)).first()

    def invitations(self, limit: int = 500) -> list[KycInvitation]:
        """Newest first."""
        return list(self.session.exec(select(KycInvitation)
                                      .order_by(KycInvitation.created_at.desc(), KycInvitation.id).limit(limit)))

    def revoke(self, invitation: KycInvitation, by: str, at: datetime) -> bool:
        """Revoke once; False when it was revoked already (nothing written)."""
        res = self.session.exec(update(KycInvitation).where(KycInvitation.id == invitation.id,
                                                            KycInvitation.revoked_at.is_(None))
                                .values(revoked_at=at, revoked_by=by))
        self.session.flush()
        self.session.refresh(invitation)
        return res.rowcount == 1

    def replace_token(self, invitation: KycInvitation, token_sha256: str, expires_at: datetime, *,
                      clear_revocation: bool = True) -> bool:
        """Swap the invitation's token hash (the old token opens nothing from the commit) if nobody swapped it
        since it was read; `clear_revocation`: a reissued token works even where the old one was revoked."""
        values: dict = {"token_sha256": token_sha256, "expires_at": expires_at}
        if clear_revocation:
            values.update(revoked_at=None, revoked_by=None)
        res = self.session.exec(update(KycInvitation).where(KycInvitation.id == invitation.id,
                                                            KycInvitation.token_sha256 == invitation.token_sha256)
                                .values(**values))
        self.session.flush()
        self.session.refresh(invitation)
        return res.rowcount == 1

    def lock_invitation(self, token_sha256: str) -> None:
        """Hold the write lock of the invitation `token_sha256` names until the unit of work ends (a no-op update:
        PostgreSQL's row lock, SQLite's write lock), so what is read after it is not changed underneath."""
        self.session.exec(update(KycInvitation).where(KycInvitation.token_sha256 == token_sha256)
                          .values(token_sha256=KycInvitation.token_sha256))
        self.session.flush()

    def link_application(self, invitation: KycInvitation, application_id: str) -> None:
        invitation.application_id = application_id
        self.session.add(invitation)
        self.session.flush()

    # ---- applications ---------------------------------------------------------------------------------------
    def add_application(self, application: KycApplication) -> None:
        """Insert a new application (one per invitation: a second insert for the same invitation fails here)."""
        self.session.add(application)
        self.session.flush()

    def application(self, application_id: str) -> KycApplication | None:
        return self.session.get(KycApplication, application_id)

    def applications(self, state: str | None = None, *, institution_id: int | None = None,
                     limit: int = 500) -> list[KycApplication]:
        """Most recently changed first, optionally in one state or of one institution."""
        q = select(KycApplication)
        if state:
            q = q.where(KycApplication.state == state)
        if institution_id is not None:
            q = q.where(KycApplication.institution_id == institution_id)
        return list(self.session.exec(q.order_by(KycApplication.updated_at.desc(), KycApplication.id).limit(limit)))

    def active_for_institution(self, institution_id: int) -> KycApplication | None:
        """The institution's application that is not rejected (at most one is open at a time), newest first."""
        return self.session.exec(select(KycApplication).where(KycApplication.institution_id == institution_id,
                                                              KycApplication.state != "rejected")
                                 .order_by(KycApplication.created_at.desc())).first()

    def save(self, application: KycApplication, **changes) -> bool:
        """Change columns other than the state if nobody changed the application since it was read; False
        otherwise (nothing written)."""
        version = application.version
        res = self.session.exec(update(KycApplication).where(KycApplication.id == application.id,
                                                             KycApplication.version == version)
                                .values(version=version + 1, updated_at=utcnow(), **changes))
        if res.rowcount != 1:
            return False
        self.session.flush()
        self.session.refresh(application)
        return True

    def move(self, application: KycApplication, trigger: str, dest: str, actor: str, role: str, *,
             comment: str | None = None, at: datetime | None = None, **changes) -> bool:
        """application.state → `dest` (with column `changes`) if nobody changed it since it was read, and the
        step's transition row; False when another unit of work changed it first (nothing written)."""
        at = at or utcnow()
        source, version = application.state, application.version
        res = self.session.exec(update(KycApplication).where(KycApplication.id == application.id,
                                                             KycApplication.state == source,
                                                             KycApplication.version == version)
                                .values(state=dest, version=version + 1, updated_at=at, **changes))
        if res.rowcount != 1:
            return False
        self.record_step(application.id, trigger, source, dest, actor, role, comment=comment, at=at)
        self.session.refresh(application)
        return True

    def record_step(self, application_id: str, trigger: str, source: str, dest: str, actor: str, role: str, *,
                    comment: str | None = None, at: datetime | None = None) -> None:
        """A transition row (`move` writes one; an application created by its first step writes its own)."""
        self.session.add(KycTransitionRow(application_id=application_id, trigger=trigger, from_state=source,
                                          to_state=dest, actor=actor, role=role, comment=comment,
                                          at=at or utcnow()))
        self.session.flush()

    def transitions(self, application_id: str) -> list[KycTransitionRow]:
        return list(self.session.exec(select(KycTransitionRow).where(KycTransitionRow.application_id == application_id)
                                      .order_by(KycTransitionRow.id)))

    def last_step_at(self, application_ids: list[str]) -> dict[str, datetime]:
        """When each application last moved (a pipeline's waiting time)."""
        out: dict[str, datetime] = {}
        for i in range(0, len(application_ids), _IN_BATCH):
            rows = self.session.exec(select(KycTransitionRow.application_id, func.max(KycTransitionRow.at))
                                     .where(KycTransitionRow.application_id.in_(application_ids[i:i + _IN_BATCH]))
                                     .group_by(KycTransitionRow.application_id))
            out.update({app_id: at for app_id, at in rows})
        return out

    # ---- documents ------------------------------------------------------------------------------------------
    def add_document(self, document: KycDocument) -> None:
        self.session.add(document)
        self.session.flush()

    def document(self, document_id: str) -> KycDocument | None:
        return self.session.get(KycDocument, document_id)

    def documents(self, *, invitation_id: str | None = None, application_id: str | None = None,
                  kinds: tuple[str, ...] | None = None) -> list[KycDocument]:
        """Oldest first, of one invitation or application, optionally of some kinds only."""
        q = select(KycDocument)
        if invitation_id is not None:
            q = q.where(KycDocument.invitation_id == invitation_id)
        if application_id is not None:
            q = q.where(KycDocument.application_id == application_id)
        if kinds is not None:
            q = q.where(KycDocument.kind.in_(list(kinds)))
        return list(self.session.exec(q.order_by(KycDocument.uploaded_at, KycDocument.id)))

    def count_documents(self, invitation_id: str) -> int:
        return self.session.exec(select(func.count()).select_from(KycDocument)
                                 .where(KycDocument.invitation_id == invitation_id)).one()

    def attach_documents(self, document_ids: list[str], application_id: str) -> None:
        if document_ids:
            self.session.exec(update(KycDocument).where(KycDocument.id.in_(document_ids))
                              .values(application_id=application_id))
            self.session.flush()

    # ---- reports --------------------------------------------------------------------------------------------
    def add_report(self, report: KycReport) -> None:
        self.session.add(report)
        self.session.flush()

    def latest_report(self, application_id: str) -> KycReport | None:
        return self.session.exec(select(KycReport).where(KycReport.application_id == application_id)
                                 .order_by(KycReport.id.desc())).first()
