"""VaultRepository: masked personal data of the knowledge bases (`pii_vault`)."""
from __future__ import annotations

from typing import Iterable

from sqlmodel import Session, select

from otcdesk.app.models import PiiVault

_BATCH = 500  # bound the IN (...) list


class VaultRepository:
    """Token → original mappings per knowledge base; a token is stored once per knowledge base."""

    def __init__(self, session: Session):
        self.session = session

    def add_new(self, kb: str, mappings: Iterable[dict]) -> int:
        """Store the mappings ({"token", "kind", "original"}) whose token the knowledge base lacks; how many."""
        rows = list(mappings)
        tokens = [m["token"] for m in rows]
        known: set[str] = set()
        for i in range(0, len(tokens), _BATCH):
            known |= set(self.session.exec(select(PiiVault.token).where(
                PiiVault.kb == kb, PiiVault.token.in_(tokens[i:i + _BATCH]))))
        new = 0
        for m in rows:
            if m["token"] not in known:
                self.session.add(PiiVault(kb=kb, token=m["token"], kind=m["kind"], original=m["original"]))
                known.add(m["token"])
                new += 1
        return new

    def find(self, tokens: list[str], kb: str | None = None) -> dict[str, PiiVault]:
        """The stored rows of `tokens` (in `kb`, or in any knowledge base), by token."""
        if not tokens:
            return {}
        q = select(PiiVault).where(PiiVault.token.in_(tokens))
        if kb:
            q = q.where(PiiVault.kb == kb)
        return {r.token: r for r in self.session.exec(q)}
