"""Request and answer models of the routes in `app.server` (login, review queue, simulator, knowledge, audit).

Domain routes keep theirs in their own module (`app.routes.*`). `RequestModel`s validate bodies (`read_json`);
`ResponseModel`s describe answers (extra fields allowed, as CONTRACTS says). See `app.openapi`.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from otcdesk.app.openapi import RequestModel, ResponseModel
from otcdesk.app.roles import ROLES

Role = Literal[ROLES]  # type: ignore[valid-type]


# ---- auth ---------------------------------------------------------------------------------------------------
class LoginSpec(RequestModel):
    username: str
    password: str


class LoginResult(ResponseModel):
    user: str
    role: Role


class Me(LoginResult):
    demo: bool


class Ok(ResponseModel):
    ok: bool


class Health(Ok):
    demo: bool


# ---- admin --------------------------------------------------------------------------------------------------
class UnlockSpec(RequestModel):
    kind: Literal["user", "address"]
    key: str


class Lockout(ResponseModel):
    kind: Literal["user", "address"]
    key: str
    failures: int
    locked_until: str = Field(description="ISO date-time")
    retry_after_s: float


# ---- review queue -------------------------------------------------------------------------------------------
class ReviewQuery(RequestModel):
    status: str | None = Field(None, description="pending, approved, sent, rejected, expired, ...")
    limit: int = Field(200, ge=1, le=500)
    before: str | None = Field(None, description="the id of the previous page's last item")


class ReviewItem(ResponseModel):
    """A review item (CONTRACTS "Review items"); `text` is the whole message."""

    id: str
    channel: str
    group: str
    sender: str | None
    text: str
    kind: str = Field(description="quote, clarification, onboarding, order, unwind, knowledge, ...")
    requests: list[dict[str, Any]] | None
    draft_reply: str | None
    created_at: str
    expires_at: str
    status: str
    order: dict[str, Any] | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class ApproveSpec(RequestModel):
    reply: str | None = Field(None, description="the edited reply; the draft when absent")


class RejectSpec(RequestModel):
    reason: str | None = None


# ---- simulator ----------------------------------------------------------------------------------------------
class SimMessageSpec(RequestModel):
    sender: str = Field(min_length=1, max_length=64, description="the client's display name")
    text: str = Field(description="at most 100000 characters (413 beyond)")


class SimPosted(ResponseModel):
    message_id: str


class SimMessage(ResponseModel):
    message_id: str
    sender: str
    text: str
    from_bot: bool
    ts: str


# ---- knowledge ----------------------------------------------------------------------------------------------
class KbCreateSpec(RequestModel):
    name: str


class KbCreated(ResponseModel):
    kb: str
    created: Literal[True]


class KbAskSpec(RequestModel):
    question: str = Field(min_length=1, max_length=2000)
    kb: str | None = Field(None, description="the knowledge base; `default` when absent")


class Citation(ResponseModel):
    source: str
    text: str
    score: float | None = None


class KbAnswer(ResponseModel):
    answer: str
    refused: bool
    citations: list[Citation]


class KbUnmaskSpec(RequestModel):
    text: str = Field(max_length=20_000)
    kb: str | None = None


class Unmasked(ResponseModel):
    text: str


# ---- audit --------------------------------------------------------------------------------------------------
class AuditChain(ResponseModel):
    ok: bool
    entries: int
    first_broken: dict[str, Any] | None
    head: dict[str, Any] | None
