"""The trade lifecycle as a table, run by a `transitions` machine.

Each row is (trigger, source, dest, conditions, after): `conditions` name predicates of `TradeContext`, all of
which must hold (first matching row wins, in table order, as `transitions` tries them); `after` names the
effects the booking service runs once the new state is persisted (send the confirmation, draft a notice…).
The machine decides; it stores nothing and sends nothing: `app.trading` persists every step and audits it.

    new ──book──▶ pending_second_approval ──approve_second──▶ live ──knock_out──▶ knocked_out
     └───book──────────────────────────────────────────────▶ live ──mature─────▶ matured
                                                               └──close──────▶ closed (unwound)
    pending_second_approval / live ──cancel──▶ cancelled
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from otcdesk.workflows import machine

STATES = ("new", "pending_second_approval", "live", "knocked_out", "matured", "closed", "cancelled")
FINAL_STATES = frozenset({"knocked_out", "matured", "closed", "cancelled"})

TRANSITIONS: tuple[tuple[str, str | tuple[str, ...], str, tuple[str, ...], tuple[str, ...]], ...] = (
    # trigger           source                                  dest                       conditions              after
    ("book",            "new",                                  "pending_second_approval", ("above_four_eyes",),   ()),
    ("book",            "new",                                  "live",                    (),                     ("confirm",)),
    ("approve_second",  "pending_second_approval",              "live",                    ("approver_not_booker", "approver_is_risk"), ("confirm",)),
    ("cancel",          ("pending_second_approval", "live"),    "cancelled",               (),                     ()),
    ("knock_out",       "live",                                 "knocked_out",             (),                     ("notify",)),
    ("mature",          "live",                                 "matured",                 (),                     ("notify",)),
    ("close",           "live",                                 "closed",                  (),                     ("notify",)),
)


@dataclass(frozen=True)
class TradeContext:
    """What the conditions read: the trade's notional, the four-eyes limit, who booked it and who acts now."""

    notional: float = 0.0
    four_eyes_notional: float = float("inf")
    booked_by: Optional[str] = None
    actor: Optional[str] = None
    actor_role: Optional[str] = None


class LifecycleError(Exception):
    """A trigger that the trade's state (or its conditions) does not allow; `code` forbidden | conflict."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


CONDITIONS = {
    "above_four_eyes": lambda c: c.notional > c.four_eyes_notional,
    "approver_not_booker": lambda c: c.actor is not None and c.actor != c.booked_by,
    "approver_is_risk": lambda c: c.actor_role == "risk",
}


def fire(state: str, trigger: str, ctx: TradeContext) -> tuple[str, tuple[str, ...]]:
    """The state after `trigger` from `state` and the effects to run; raises LifecycleError when not allowed."""
    if state not in STATES:
        raise LifecycleError("conflict", f"unknown trade state {state!r}")
    out = machine.step(TRANSITIONS, STATES, state, trigger, ctx, CONDITIONS)
    if out.invalid:
        if trigger not in {t for t, *_ in TRANSITIONS}:
            raise LifecycleError("conflict", f"unknown trigger {trigger!r}")
        raise LifecycleError("conflict", f"a {state} trade cannot {trigger.replace('_', ' ')}")
    if not out.moved:
        raise LifecycleError(_refusal_code(trigger, ctx), _refusal_reason(state, trigger, ctx))
    return out.state, out.after


def allowed_triggers(state: str) -> list[str]:
    """The triggers the table lists from `state` (conditions not evaluated)."""
    return sorted(machine.triggers_from(TRANSITIONS, state))


def _refusal_code(trigger: str, ctx: TradeContext) -> str:
    return "forbidden" if trigger == "approve_second" else "conflict"


def _refusal_reason(state: str, trigger: str, ctx: TradeContext) -> str:
    if trigger == "approve_second":
        if ctx.actor_role != "risk":
            return "the second approval is for a risk user"
        return "the second approval must come from a user other than the one who booked the trade"
    return f"a {state} trade cannot {trigger.replace('_', ' ')} now"
