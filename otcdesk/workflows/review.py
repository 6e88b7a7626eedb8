"""The trader review queue's rules: which decision is allowed on which item, and why not.

States: pending → approved → sent; pending → rejected; pending → expired. An expired item can
no longer be approved: it must be repriced (a new pending item on the current market).
"""
from __future__ import annotations

from datetime import datetime

MAX_REPLY_CHARS = 2000
TRANSITIONS = {  # action: (allowed source status, destination)
    "approve": ("pending", "approved"),
    "reject": ("pending", "rejected"),
    "expire": ("pending", "expired"),
}
RESUME_ACTION = {dest: action for action, (_, dest) in TRANSITIONS.items()}  # decided status → graph decision


class ReviewError(Exception):
    """A refused decision. `code`: not_found | conflict | expired | invalid (the HTTP layer maps it)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def check_decision(action: str, status: str, expires_at: datetime, now: datetime, *,
                   reply: str | None = None, reason: str | None = None) -> None:
    """Raise ReviewError unless `action` may be taken on an item in `status` at `now`."""
    if action not in TRANSITIONS:
        raise ReviewError("invalid", f"unknown action {action!r}")
    source, _ = TRANSITIONS[action]
    if action == "approve" and status == "pending" and expires_at <= now:
        raise ReviewError("expired", "quote expired: reprice it before approving")
    if status != source:
        raise ReviewError("conflict", f"item is {status}; only a {source} item can be {TRANSITIONS[action][1]}")
    if action == "approve" and reply is not None:
        if not reply.strip():
            raise ReviewError("invalid", "an edited reply cannot be empty")
        if len(reply) > MAX_REPLY_CHARS:
            raise ReviewError("invalid", f"reply longer than {MAX_REPLY_CHARS} characters")
    if action == "reject" and not (reason or "").strip():
        raise ReviewError("invalid", "a rejection needs a reason")
