"""Repositories: the only code that reads or writes the desk's tables (declared in `app.models`).

One repository per aggregate, each bound to the session of one unit of work, so a decision and its audit
row commit together. `transaction(engine)` opens a unit of work and hands out all of them:

    with transaction(engine) as tx:
        item = tx.reviews.get("Q1A2B3C4D5")
        tx.audit.record("trader1", "review.approved", f"review:{item.id}")

- `inbound.py`        InboundRepository: every message a channel delivered (`inbound_message`)
- `conversations.py`  ConversationRepository: a client's open clarification (`pending_clarification`)
- `reviews.py`        ReviewRepository: drafted replies waiting for a trader (`review_item`)
- `outbox.py`         OutboxRepository: approved replies to deliver once (`outbox`)
- `clients.py`        ClientRepository: institutions, their chat groups, contacts (KYC state) and product accounts
- `users.py`          UserRepository: console users and their login sessions (`user`, `web_session`)
- `audit.py`          AuditRepository: the audit log (`audit_log`), a SHA-256 hash chain; `verify_chain`
- `sim.py`            SimTranscriptRepository: the simulator platform's own transcript (`sim_message`)
- `vault.py`          VaultRepository: masked personal data of the knowledge bases (`pii_vault`)
- `trades.py`         TradeRepository: booked trades, their lifecycle steps and events
- `market.py`         MarketRepository: market data history and official closes (fixings)
- `risk.py`           RiskRepository: risk snapshots of the book and the desk's limits
- `margins.py`        MarginRepository: the quoting margin table
- `kyc.py`            KycRepository: onboarding invitations, applications and their steps, documents, reports,
                      signed agreements
- `evidence.py`       EvidenceRepository: signed agreements (`kyc_agreement`) and their hash-chained evidence
                      (`agreement_evidence`); `verify_evidence`
- `surveillance.py`   SurveillanceRepository: surveillance alerts and their triage state (`surveillance_alert`)
- `templates.py`      TemplateRepository: every version of each structure template (`structure_template`)
- `canary.py`         CanaryRepository: the canary allowlist of chat groups (`canary_group`) and its switch
                      (`desk_switch`)
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from sqlalchemy.engine import Engine
from sqlmodel import Session

from otcdesk.app.db import unit_of_work
from otcdesk.app.repositories.audit import AuditRepository
from otcdesk.app.repositories.canary import CanaryRepository
from otcdesk.app.repositories.clients import ClientRepository
from otcdesk.app.repositories.conversations import ConversationRepository
from otcdesk.app.repositories.evidence import EvidenceRepository
from otcdesk.app.repositories.inbound import InboundRepository
from otcdesk.app.repositories.kyc import KycRepository
from otcdesk.app.repositories.margins import MarginRepository
from otcdesk.app.repositories.market import MarketRepository
from otcdesk.app.repositories.outbox import OutboxRepository
from otcdesk.app.repositories.reviews import ReviewRepository
from otcdesk.app.repositories.risk import RiskRepository
from otcdesk.app.repositories.sim import SimTranscriptRepository
from otcdesk.app.repositories.surveillance import SurveillanceRepository
from otcdesk.app.repositories.templates import TemplateRepository
from otcdesk.app.repositories.trades import TradeRepository
from otcdesk.app.repositories.users import UserRepository
from otcdesk.app.repositories.vault import VaultRepository


@dataclass(frozen=True)
class Repositories:
    """Every repository over one session (one transaction)."""

    session: Session
    inbound: InboundRepository
    conversations: ConversationRepository
    reviews: ReviewRepository
    outbox: OutboxRepository
    clients: ClientRepository
    users: UserRepository
    audit: AuditRepository
    sim: SimTranscriptRepository
    vault: VaultRepository
    trades: TradeRepository
    market: MarketRepository
    risk: RiskRepository
    margins: MarginRepository
    kyc: KycRepository
    evidence: EvidenceRepository
    surveillance: SurveillanceRepository
    templates: TemplateRepository
    canary: CanaryRepository

    @classmethod
    def on(cls, session: Session) -> "Repositories":
        return cls(session, InboundRepository(session), ConversationRepository(session), ReviewRepository(session),
                   OutboxRepository(session), ClientRepository(session), UserRepository(session),
                   AuditRepository(session), SimTranscriptRepository(session), VaultRepository(session),
                   TradeRepository(session), MarketRepository(session), RiskRepository(session),
                   MarginRepository(session), KycRepository(session), EvidenceRepository(session),
                   SurveillanceRepository(session), TemplateRepository(session),
                   CanaryRepository(session))


@contextmanager
def transaction(engine: Engine) -> Iterator[Repositories]:
    """One unit of work: commit on success, roll back on error."""
    with unit_of_work(engine) as session:
        yield Repositories.on(session)


__all__ = ["AuditRepository", "CanaryRepository", "ClientRepository", "ConversationRepository", "EvidenceRepository",
           "InboundRepository", "KycRepository", "MarginRepository", "MarketRepository", "OutboxRepository", "Repositories", "ReviewRepository",
           "RiskRepository", "SimTranscriptRepository", "SurveillanceRepository", "TemplateRepository", "TradeRepository", "UserRepository", "VaultRepository",
           "transaction"]
