"""The PII vault's policy: token → original personal data masked at ingestion, readable only by compliance and admin.

Knowledge bases hold masked text only (``[PHONE_3f2a9c1d]``); the originals live in the `pii_vault` table
(`repositories.vault.VaultRepository`). Every unmasking, and every refused attempt, is written to the audit
log (token and kind, never the original). The schema is the migrations' (`init_db`), never created here.
"""
from __future__ import annotations

from typing import Iterable

from sqlalchemy.engine import Engine

from otcdesk.app.repositories import transaction
from otcdesk.knowledge.masking import TOKEN_RE

UNMASK_ROLES = frozenset({"compliance", "admin"})


class UnmaskDenied(PermissionError):
    """The role may not see personal data."""


def store_mappings(engine: Engine, kb: str, mappings: Iterable[dict]) -> int:
    """Store token → original mappings from `KnowledgeService.ingest`; returns how many were new."""
    with transaction(engine) as tx:
        return tx.vault.add_new(kb, mappings)


def unmask(text: str, role: str, user: str, engine: Engine, kb: str | None = None) -> str:
    """Replace vault tokens in `text` by their originals for roles `compliance` and `admin`.

    Raises `UnmaskDenied` for other roles; both outcomes are audited. Tokens unknown to the vault
    stay as they are.
    """
    tokens = list(dict.fromkeys(TOKEN_RE.findall(text)))
    subject = f"kb:{kb}" if kb else "kb:*"
    if role not in UNMASK_ROLES:
        with transaction(engine) as tx:
            tx.audit.record(user, "pii.unmask_denied", subject, {"role": role, "tokens": tokens})
        raise UnmaskDenied(f"role {role!r} may not see personal data")
    with transaction(engine) as tx:
        found = tx.vault.find(tokens, kb)
        out = text
        for tok, row in found.items():
            out = out.replace(tok, row.original)
        tx.audit.record(user, "pii.unmask", subject, {
            "role": role,
            "tokens": sorted(found),
            "kinds": sorted({r.kind for r in found.values()}),
            "unknown_tokens": [t for t in tokens if t not in found],
        })
    return out
