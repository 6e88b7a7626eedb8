"""The audit log (`audit_log`): append-only rows written in the same unit of work as the decision they record."""
from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from otcdesk.app.models import AuditLog


class AuditRepository:
    """Appends and reads audit rows; the table and the database refuse updates and deletes."""

    def __init__(self, session: Session):
        self.session = session

    def record(self, actor: str, action: str, subject: str, detail: dict[str, Any] | None = None) -> AuditLog:
        """Append one row (committed with the caller's transaction)."""
        row = AuditLog(actor=actor, action=action, subject=subject, detail=detail or {})
        self.session.add(row)
        return row

    def entries(self, *, subject: str | None = None, action: str | None = None, limit: int = 500) -> list[AuditLog]:
        """Rows, oldest first, optionally for one subject or action."""
        q = select(AuditLog)
        if subject:
            q = q.where(AuditLog.subject == subject)
        if action:
            q = q.where(AuditLog.action == action)
        return list(self.session.exec(q.order_by(AuditLog.id).limit(limit)))
