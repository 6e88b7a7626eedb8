"""Persistence: the SQLModel tables of the desk (SQLite by default, PostgreSQL by `DATABASE_URL`).

Every table is declared here so `app.db.init_db` creates all of them idempotently.
Times are timezone-aware UTC datetimes (`utcnow()`).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional

from sqlalchemy import JSON, Column, Index, LargeBinary, Text, UniqueConstraint, event
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Aware UTC now (what every table stores)."""
    return datetime.now(timezone.utc)


class Institution(SQLModel, table=True):
    """A client institution; only `kyc_status == "approved"` with `can_trade` gets quotes.

    `kyc_status` is the state of its onboarding application's machine (`workflows.kyc`), written by the KYC service
    in the same transaction as the transition; `uscc` is its 统一社会信用代码 once it applied.
    """

    __table_args__ = (Index("uq_institution_uscc", "uscc", unique=True),)
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True)
    uscc: Optional[str] = None
    kyc_status: str = Field(default="invited")  # a `workflows.kyc` state
    can_trade: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class ChatGroup(SQLModel, table=True):
    """A chat group (WeChat room, WeCom chat, simulated group) served by the bot, owned by one institution."""

    __table_args__ = (UniqueConstraint("channel", "group_id"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    channel: str
    group_id: str
    institution_id: Optional[int] = Field(default=None, foreign_key="institution.id")


class ClientContact(SQLModel, table=True):
    """A client person in a channel; links a sender to their institution (overrides the group's)."""

    __table_args__ = (UniqueConstraint("channel", "sender_id"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    channel: str
    sender_id: str
    display_name: str
    institution_id: Optional[int] = Field(default=None, foreign_key="institution.id")


class InboundMessageRow(SQLModel, table=True):
    """Every message a channel delivered, stored before processing; `(channel, platform_msg_id)` de-duplicates."""

    __tablename__ = "inbound_message"
    __table_args__ = (UniqueConstraint("channel", "platform_msg_id"), Index("ix_inbound_status", "status"))
    id: Optional[int] = Field(default=None, primary_key=True)
    channel: str
    chat_id: str
    sender_id: str
    sender_name: str
    text: str = Field(sa_column=Column(Text, nullable=False))
    mentions_bot: bool = False
    platform_msg_id: str
    received_at: datetime = Field(default_factory=utcnow)
    status: str = "received"  # received → processed | failed; held: outside the canary allowlist, no run
    intent: Optional[str] = None
    error: Optional[str] = Field(default=None, sa_column=Column(Text))


class ReviewItem(SQLModel, table=True):
    """A drafted reply waiting for a trader: pending → approved → sent, or rejected / expired."""

    __tablename__ = "review_item"
    id: str = Field(primary_key=True)
    thread_id: str = Field(index=True, unique=True)
    inbound_id: Optional[int] = Field(default=None, foreign_key="inbound_message.id", index=True)  # None: a notice
    kind: str = "quote"  # quote | clarification | onboarding | order | unwind | holdings | notice | knowledge
    channel: str
    chat_id: str
    sender_id: str
    sender_name: str
    text: str = Field(sa_column=Column(Text, nullable=False))
    requests: list[Any] = Field(default_factory=list, sa_column=Column(JSON))
    lines: list[Any] = Field(default_factory=list, sa_column=Column(JSON))
    draft_reply: str = Field(sa_column=Column(Text, nullable=False))
    final_reply: Optional[str] = Field(default=None, sa_column=Column(Text))
    status: str = Field(default="pending", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    decided_by: Optional[str] = None
    decided_at: Optional[datetime] = None
    reason: Optional[str] = Field(default=None, sa_column=Column(Text))
    superseded_by: Optional[str] = None
    order: Optional[dict] = Field(default=None, sa_column=Column(JSON))  # order / unwind terms (CONTRACTS Part 2)
    ref_id: Optional[str] = Field(default=None, index=True)  # the quote (order) or trade (unwind, notice) it refers to
    detail: Optional[dict] = Field(default=None, sa_column=Column(JSON))  # kind-specific extras (fair/margin, checks)


class OutboxMessage(SQLModel, table=True):
    """A reply to deliver; one row per review item (unique), marked sent exactly once."""

    __tablename__ = "outbox"
    id: Optional[int] = Field(default=None, primary_key=True)
    review_id: str = Field(foreign_key="review_item.id", unique=True)
    channel: str
    chat_id: str
    mention_id: str
    mention_name: str
    text: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="pending", index=True)  # pending → sending → sent | unconfirmed
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: Optional[datetime] = None
    platform_msg_id: Optional[str] = None
    attempts: int = 0


class SimMessage(SQLModel, table=True):
    """The simulated WeChat group's own transcript (what members of the group see)."""

    __tablename__ = "sim_message"
    id: Optional[int] = Field(default=None, primary_key=True)
    message_id: str = Field(unique=True)
    group_id: str = Field(index=True)
    sender: str
    text: str = Field(sa_column=Column(Text, nullable=False))
    from_bot: bool = False
    mention: Optional[str] = None
    ts: datetime = Field(default_factory=utcnow)


class PendingClarification(SQLModel, table=True):
    """The last incomplete parse of a client in a chat, completed by their next message."""

    __tablename__ = "pending_clarification"
    __table_args__ = (UniqueConstraint("channel", "chat_id", "sender_id"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    channel: str
    chat_id: str
    sender_id: str
    parse: dict = Field(default_factory=dict, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=utcnow)


class User(SQLModel, table=True):
    """A console user; `password_hash` is argon2."""

    username: str = Field(primary_key=True)
    password_hash: str
    role: str
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)


class WebSession(SQLModel, table=True):
    """A server-side login session; the cookie holds the token, the table only its SHA-256."""

    __tablename__ = "web_session"
    token_hash: str = Field(primary_key=True)
    username: str = Field(foreign_key="user.username", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime


class PiiVault(SQLModel, table=True):
    """One masked value of one knowledge base: token → original personal data (read by compliance and admin)."""

    __tablename__ = "pii_vault"
    __table_args__ = (UniqueConstraint("kb", "token", name="uq_pii_vault_kb_token"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    kb: str = Field(index=True)
    token: str = Field(index=True)
    kind: str
    original: str
    created_at: datetime = Field(default_factory=utcnow)


class AuditLog(SQLModel, table=True):
    """Append-only, hash-chained record of every decision that moves a message, quote or client.

    `prev_hash` is the previous entry's `entry_hash` (zeros for the first); `entry_hash` is SHA-256 over the
    entry's canonical JSON. Written only by `AuditRepository.record`, which assigns id and hashes.
    """

    __tablename__ = "audit_log"
    id: Optional[int] = Field(default=None, primary_key=True)
    ts: datetime = Field(default_factory=utcnow, index=True)
    actor: str
    action: str = Field(index=True)
    subject: str = Field(index=True)
    detail: dict = Field(default_factory=dict, sa_column=Column(JSON))
    prev_hash: str = Field(max_length=64)
    entry_hash: str = Field(max_length=64)


class ClientAccount(SQLModel, table=True):
    """A product account (资管产品/产品户) of an institution: an order names one when the institution has several."""

    __tablename__ = "client_account"
    __table_args__ = (UniqueConstraint("institution_id", "name"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    institution_id: int = Field(foreign_key="institution.id", index=True)
    name: str
    active: bool = True


class TradeRow(SQLModel, table=True):
    """A booked trade: terms frozen at booking; `status` moves only through `workflows.trade`'s machine.

    One trade per approved order item (`order_review_id` unique), so a resumed or repeated booking books once.
    `notional` is what is live now (a partial unwind reduces it); `original_notional` what was booked.
    """

    __tablename__ = "trade"
    id: str = Field(primary_key=True)
    order_review_id: str = Field(unique=True)
    status: str = Field(index=True)
    institution: Optional[str] = None
    channel: str
    chat_id: str = Field(index=True)
    sender_id: str
    client: str
    account: Optional[str] = None
    quote_id: Optional[str] = None
    product: dict = Field(default_factory=dict, sa_column=Column(JSON))
    underlying: str = Field(index=True)
    structure: str
    notional: float
    original_notional: float
    price_pct: float
    premium_cny: float
    execution: dict = Field(default_factory=dict, sa_column=Column(JSON))
    initial_price_pending: bool = False
    booked_by: str
    booked_at: datetime = Field(default_factory=utcnow)
    closed_at: Optional[datetime] = None
    version: int = 1


class TradeTransitionRow(SQLModel, table=True):
    """Every step of a trade's lifecycle machine: trigger, from, to, who, when."""

    __tablename__ = "trade_transition"
    id: Optional[int] = Field(default=None, primary_key=True)
    trade_id: str = Field(foreign_key="trade.id", index=True)
    trigger: str
    source: str
    dest: str
    by: str
    role: Optional[str] = None
    at: datetime = Field(default_factory=utcnow)
    detail: dict = Field(default_factory=dict, sa_column=Column(JSON))


class TradeEventRow(SQLModel, table=True):
    """A lifecycle event of a trade from a fixing (knocked_out, knocked_in, coupon, matured) or an unwind.

    `(trade_id, type, date, ref)` is unique: posting the same fixing twice creates no second event; `ref` tells
    apart events of one kind on one day that have their own cause (an unwind's review item), else "".
    """

    __tablename__ = "trade_event"
    __table_args__ = (UniqueConstraint("trade_id", "type", "date", "ref"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    trade_id: str = Field(foreign_key="trade.id", index=True)
    type: str
    date: str  # ISO date of the fixing or the unwind
    ref: str = ""
    cash_cny: Optional[float] = None
    detail: dict = Field(default_factory=dict, sa_column=Column(JSON))
    notice_review_id: Optional[str] = None
    created_at: datetime = Field(default_factory=utcnow)


class Fixing(SQLModel, table=True):
    """An official closing price of an underlying on a trading day."""

    __table_args__ = (UniqueConstraint("underlying", "date"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    underlying: str = Field(index=True)
    date: str  # ISO date
    close: float
    source: str
    created_at: datetime = Field(default_factory=utcnow)


class MarketTick(SQLModel, table=True):
    """Market data history: spot, vol, rate and dividend yield of one underlying at one time (snapshots)."""

    __tablename__ = "market_tick"
    __table_args__ = (Index("ix_market_tick_underlying_as_of", "underlying", "as_of"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    as_of: datetime = Field(index=True)
    underlying: str
    spot: float
    vol: float
    rate: float
    div: float = 0.0
    source: str


class RiskSnapshotRow(SQLModel, table=True):
    """A revaluation of the live book: the `Book` document of CONTRACTS.md, kept with its history."""

    __tablename__ = "risk_snapshot"
    id: Optional[int] = Field(default=None, primary_key=True)
    as_of: datetime = Field(index=True)
    live_trades: int
    elapsed_s: float
    book: dict = Field(default_factory=dict, sa_column=Column(JSON))
    trades: list[Any] = Field(default_factory=list, sa_column=Column(JSON))  # per-trade PV and Greeks


class QuoteMargin(SQLModel, table=True):
    """The desk's quoting margin for a structure up to a tenor (days), in % of notional; admin edits, audited."""

    __tablename__ = "quote_margin"
    __table_args__ = (UniqueConstraint("structure", "max_tenor_days"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    structure: str  # a registry structure, or "*" for any
    max_tenor_days: int
    margin_pct: float
    unwind_margin_pct: float = 0.0
    updated_by: str = "system"
    updated_at: datetime = Field(default_factory=utcnow)


class RiskLimit(SQLModel, table=True):
    """A desk limit per underlying ("*" for every underlying without its own): measure delta_cny or vega_cny."""

    __tablename__ = "risk_limit"
    __table_args__ = (UniqueConstraint("underlying", "measure"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    underlying: str
    measure: str
    limit: float
    updated_by: str = "system"
    updated_at: datetime = Field(default_factory=utcnow)


class KycInvitation(SQLModel, table=True):
    """Sales' invitation of a named institution: the only way in. The link's token is kept as its SHA-256 only;
    it expires, can be revoked, and is the client's single credential for applying, resubmitting and signing."""

    __tablename__ = "kyc_invitation"
    id: str = Field(primary_key=True)  # INV…
    token_sha256: str = Field(unique=True)
    institution_name: str
    contact_name: str
    contact_mobile: str
    created_by: str
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    revoked_at: Optional[datetime] = None
    revoked_by: Optional[str] = None
    application_id: Optional[str] = Field(default=None, index=True)


class KycApplication(SQLModel, table=True):
    """An institution's onboarding application; `state` moves only through `workflows.kyc`'s machine.

    `data` holds the validated `institution` fields of CONTRACTS (personal data: never logged or audited),
    `screening` the last screening result, `version` guards concurrent decisions (optimistic lock).
    """

    __tablename__ = "kyc_application"
    id: str = Field(primary_key=True)  # KYC…
    invitation_id: str = Field(unique=True)
    institution_id: int = Field(foreign_key="institution.id", index=True)
    state: str = Field(index=True)
    awaiting_role: Optional[str] = None
    data: dict = Field(default_factory=dict, sa_column=Column(JSON))
    screening: dict = Field(default_factory=dict, sa_column=Column(JSON))
    blacklist_hit: bool = False
    agreement_sha256: Optional[str] = None
    signed_at: Optional[datetime] = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    version: int = 1


class KycTransitionRow(SQLModel, table=True):
    """Every step of an application's machine: trigger, from, to, who (user or `client`), role, when, why."""

    __tablename__ = "kyc_transition"
    id: Optional[int] = Field(default=None, primary_key=True)
    application_id: str = Field(index=True)
    trigger: str
    from_state: str
    to_state: str
    actor: str
    role: str
    comment: Optional[str] = None
    at: datetime = Field(default_factory=utcnow)


class KycDocument(SQLModel, table=True):
    """An uploaded document (business licence, authorisation letter, ID copy): checked type and size, its SHA-256,
    the bytes themselves. Uploaded under an invitation before or after the application exists."""

    __tablename__ = "kyc_document"
    id: str = Field(primary_key=True)  # DOC…
    invitation_id: str = Field(index=True)
    application_id: Optional[str] = Field(default=None, index=True)
    kind: str
    filename: str
    content_type: str
    size: int
    sha256: str
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    uploaded_at: datetime = Field(default_factory=utcnow)


class KycReport(SQLModel, table=True):
    """A due-diligence report, generated when an application enters compliance review (again on each entry)."""

    __tablename__ = "kyc_report"
    id: Optional[int] = Field(default=None, primary_key=True)
    application_id: str = Field(index=True)
    generated_at: datetime = Field(default_factory=utcnow)
    html: str = Field(sa_column=Column(Text, nullable=False))
    pdf: Optional[bytes] = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    sha256: str  # of the HTML


class KycAgreement(SQLModel, table=True):
    """The master agreement (主协议) of an application: the PDF filled from it, signed by the desk's e-seal after
    the client's acceptance (the token's hash, the time and the hash of the content accepted)."""

    __tablename__ = "kyc_agreement"
    id: Optional[int] = Field(default=None, primary_key=True)
    application_id: str = Field(unique=True)
    unsigned_sha256: str
    pdf: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    sha256: str
    signer: str
    signed_at: datetime = Field(default_factory=utcnow)
    acceptance: dict = Field(default_factory=dict, sa_column=Column(JSON))


class AgreementEvidence(SQLModel, table=True):
    """Append-only hash chain of signed agreements: each entry hashes its fields and the previous entry's hash."""

    __tablename__ = "agreement_evidence"
    id: Optional[int] = Field(default=None, primary_key=True)
    application_id: str = Field(index=True)
    agreement_sha256: str
    signed_at: datetime
    signer: str
    acceptance: dict = Field(default_factory=dict, sa_column=Column(JSON))
    prev_hash: str
    entry_hash: str = Field(unique=True)


class SurveillanceAlert(SQLModel, table=True):
    """A surveillance alert (监察预警) as compliance triages it. `id` is derived from the alert's type, accounts,
    order and trade ids (`app.surveillance.alert_id`), so a run that finds the same alert again updates this row
    (`last_seen_at`, score, evidence) and keeps its `status` (a `workflows.surveillance.triage` state). `version`
    counts triage steps only (the optimistic lock of a decision); `accounts_key` is "|a|b|" for account lookup.
    Evidence carries masked identifiers only."""

    __tablename__ = "surveillance_alert"
    id: str = Field(primary_key=True)  # SA…
    type: str = Field(index=True)  # control_group | wash_trade | spoofing
    accounts: list = Field(default_factory=list, sa_column=Column(JSON))
    accounts_key: str = Field(sa_column=Column(Text, nullable=False))
    order_ids: list = Field(default_factory=list, sa_column=Column(JSON))
    trade_ids: list = Field(default_factory=list, sa_column=Column(JSON))
    score: float
    evidence: dict = Field(default_factory=dict, sa_column=Column(JSON))
    status: str = Field(default="open", index=True)
    first_seen_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)
    updated_by: Optional[str] = None
    updated_at: datetime = Field(default_factory=utcnow)
    note: Optional[str] = None
    version: int = 1


class StructureTemplate(SQLModel, table=True):
    """One version of a structure template (a structure declared as data, `pricing_engine.templates`): uploaded by
    admin or read from the data directory's templates/ folder. Every version is kept: a priced product names the
    version that priced it (`template_version`); the newest is the structure. `sha256` is that of the canonical JSON
    of `document`. `withdrawn_at`/`withdrawn_by` are set on the newest version when admin withdraws the structure
    (the parser drops it; the pricer keeps every version); a later version brings it back."""

    __tablename__ = "structure_template"
    __table_args__ = (UniqueConstraint("structure", "version"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    structure: str = Field(index=True)
    version: int
    document: dict = Field(default_factory=dict, sa_column=Column(JSON))
    sha256: str
    source: str  # "upload" | "file:<name>"
    uploaded_by: str
    uploaded_at: datetime = Field(default_factory=utcnow)
    withdrawn_at: Optional[datetime] = None
    withdrawn_by: Optional[str] = None


class CanaryGroup(SQLModel, table=True):
    """A chat group in the canary allowlist (灰度群): while the `canary` switch is on, only these groups' messages go
    on to the desk runner; the others are stored and audited, and get no drafts. Admin edits, audited."""

    __tablename__ = "canary_group"
    __table_args__ = (UniqueConstraint("channel", "group_id"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    channel: str  # sim | wechat | wecom
    group_id: str
    added_by: str
    added_at: datetime = Field(default_factory=utcnow)


class DeskSwitch(SQLModel, table=True):
    """A desk-wide switch the admin flips in the console, read where it applies (every instance sees a flip at
    once). No row means off: `canary` off lets every group through, as before canary mode existed."""

    __tablename__ = "desk_switch"
    name: str = Field(primary_key=True)
    enabled: bool = False
    updated_by: str
    updated_at: datetime = Field(default_factory=utcnow)


@event.listens_for(AuditLog, "before_update")
@event.listens_for(AuditLog, "before_delete")
@event.listens_for(AgreementEvidence, "before_update")
@event.listens_for(AgreementEvidence, "before_delete")
def _audit_is_append_only(_mapper, _conn, target):
    raise PermissionError(f"{type(target).__tablename__.replace('_', ' ')} is append-only (row {target.id})")
