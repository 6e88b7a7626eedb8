"""The PII vault: token → original personal data masked at ingestion, readable only by compliance and admin.

Knowledge bases hold masked text only (``[PHONE_3f2a9c1d]``); the originals live here. Every unmasking,
and every refused attempt, is written to the audit log (token and kind, never the original).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterable, Optional

from sqlalchemy import UniqueConstraint
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, select

from otcdesk.knowledge.masking import TOKEN_RE

UNMASK_ROLES = frozenset({"compliance", "admin"})


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class PiiVault(SQLModel, table=True):
    """One masked value of one knowledge base."""

    __tablename__ = "pii_vault"
    __table_args__ = (UniqueConstraint("kb", "token", name="uq_pii_vault_kb_token"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    kb: str = Field(index=True)
    token: str = Field(index=True)
    kind: str
    original: str
    created_at: datetime = Field(default_factory=_utcnow)


class UnmaskDenied(PermissionError):
    """The role may not see personal data."""


def ensure_vault(engine: Engine) -> None:
    """Create the vault table when missing (idempotent)."""
    SQLModel.metadata.create_all(engine, tables=[PiiVault.__table__])


def store_mappings(engine: Engine, kb: str, mappings: Iterable[dict]) -> int:
    """Store token → original mappings from `KnowledgeService.ingest`; returns how many were new."""
    ensure_vault(engine)
    new = 0
    with Session(engine) as session:
        rows = list(mappings)
        tokens = [m["token"] for m in rows]
        known = set()
        for i in range(0, len(tokens), 500):
            known |= set(session.exec(select(PiiVault.token).where(PiiVault.kb == kb,
                                                                    PiiVault.token.in_(tokens[i:i + 500]))))
        for m in rows:
            if m["token"] in known:
                continue
            session.add(PiiVault(kb=kb, token=m["token"], kind=m["kind"], original=m["original"]))
            known.add(m["token"])
            new += 1
        session.commit()
    return new


def _audit(session: Session, actor: str, action: str, subject: str, detail: dict) -> None:
    from otcdesk.app.repositories.audit import AuditRepository

    AuditRepository(session).record(actor, action, subject, detail)


def unmask(text: str, role: str, user: str, engine: Engine, kb: str | None = None) -> str:
    """Replace vault tokens in `text` by their originals for roles `compliance` and `admin`.

    Raises `UnmaskDenied` for other roles; both outcomes are audited. Tokens unknown to the vault
    stay as they are.
    """
    ensure_vault(engine)
    import otcdesk.app.models  # noqa: F401 - registers AuditLog on the metadata

    SQLModel.metadata.create_all(engine, tables=[SQLModel.metadata.tables["audit_log"]])
    tokens = list(dict.fromkeys(TOKEN_RE.findall(text)))
    subject = f"kb:{kb}" if kb else "kb:*"
    with Session(engine) as session:
        if role not in UNMASK_ROLES:
            _audit(session, user, "pii.unmask_denied", subject, {"role": role, "tokens": tokens})
            session.commit()
            raise UnmaskDenied(f"role {role!r} may not see personal data")
        q = select(PiiVault).where(PiiVault.token.in_(tokens)) if tokens else None
        rows = list(session.exec(q.where(PiiVault.kb == kb) if kb else q)) if q is not None else []
        found = {r.token: r for r in rows}
        out = text
        for tok, row in found.items():
            out = out.replace(tok, row.original)
        _audit(session, user, "pii.unmask", subject, {
            "role": role,
            "tokens": sorted(found),
            "kinds": sorted({r.kind for r in found.values()}),
            "unknown_tokens": [t for t in tokens if t not in found],
        })
        session.commit()
    return out
