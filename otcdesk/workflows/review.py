"""The trader review queue's rules: which decision is allowed on which item, and why not.

States: pending → approved → sent; pending → rejected; pending → expired; pending → withdrawn (the client
cancelled the order it holds: nothing is ever booked or sent from it). An expired item can no longer be approved:
it must be repriced (a new pending item on the current market). Nor can an order on a stale quote (`detail.stale`:
the quote was older than OTCDESK_QUOTE_VALID_S when the order came): it is not booked at the old price, the quote
is repriced.
"""
from __future__ import annotations

from datetime import datetime

MAX_REPLY_CHARS = 2000
TRANSITIONS = {  # action: (allowed source status, destination)
    "approve": ("pending", "approved"),
    "reject": ("pending", "rejected"),
    "expire": ("pending", "expired"),
    "withdraw": ("pending", "withdrawn"),  # the client cancelled (撤单): by the desk graph, not by a trader
}
RESUME_ACTION = {dest: action for action, (_, dest) in TRANSITIONS.items()}  # decided status → graph decision


class ReviewError(Exception):
    """A refused decision. `code`: not_found | conflict | expired | invalid (the HTTP layer maps it)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def check_decision(action: str, status: str, expires_at: datetime, now: datetime, *,
                   reply: str | None = None, reason: str | None = None, kind: str | None = None,
                   detail: dict | None = None) -> None:
    """Raise ReviewError unless `action` may be taken on an item (of `kind`, with `detail`) in `status` at `now`."""
    if action not in TRANSITIONS:
        raise ReviewError("invalid", f"unknown action {action!r}")
    source, _ = TRANSITIONS[action]
    if action == "approve" and status == "pending" and kind == "order" and (detail or {}).get("stale"):
        age, valid = (detail or {}).get("quote_age_s"), (detail or {}).get("quote_valid_s")
        raise ReviewError("expired", "stale quote: the order came %s after the quote (valid %s); it is not booked "
                          "at the old price, reprice the quote" % (_minutes(age), _minutes(valid)))
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


def _minutes(seconds) -> str:
    return f"{seconds / 60:.0f} min" if isinstance(seconds, (int, float)) else "too long"
