"""The audit log: append-only rows written in the same unit of work as the decision they record."""
from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from otcdesk.app.models import AuditLog


def record(session: Session, actor: str, action: str, subject: str, detail: dict[str, Any] | None = None) -> AuditLog:
    """Append one audit row (committed with the caller's transaction)."""
    row = AuditLog(actor=actor, action=action, subject=subject, detail=detail or {})
    session.add(row)
    return row


def entries(session: Session, *, subject: str | None = None, action: str | None = None, limit: int = 500) -> list[AuditLog]:
    """Audit rows, oldest first, optionally for one subject or action."""
    q = select(AuditLog)
    if subject:
        q = q.where(AuditLog.subject == subject)
    if action:
        q = q.where(AuditLog.action == action)
    return list(session.exec(q.order_by(AuditLog.id).limit(limit)))
