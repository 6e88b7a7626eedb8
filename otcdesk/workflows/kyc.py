"""Client onboarding (KYC) as a table, run by a `transitions` machine.

Each row is (trigger, source, dest, conditions, after): `conditions` name predicates of `KycContext`, all of which
must hold (first matching row wins, in table order); `after` names the effects the KYC service runs once the new
state is persisted (screen, write the due-diligence report, prepare the agreement, open quoting…). The machine
decides; it stores nothing: `app.kyc` persists every step and audits it.

    invited ──submit──▶ sales_review ──approve──▶ compliance_review ──approve──▶ risk_review ──approve──▶ signing
                              ▲          (screen + report on entry)   (no blacklist hit)        │ (an agreement
                              │                                                                  │  signed for the
    returned ──resubmit───────┘   ◀──return_to_client── any review; ──reject──▶ rejected        │  current data:
                                                                                                 ▼  approved)
    suspended ◀──suspend── approved ◀───────────────────────────sign (the token's holder)────── signing
        └──reinstate (screened afresh, no hit)──▶ approved;
    approved / suspended ──reopen──▶ sales_review (periodic review);
    invited / returned / signing ──withdraw (staff, with the reason)──▶ rejected (the client no longer acts)

Risk approves only a suitable investor (`suitable`): an ordinary investor may not trade OTC derivatives.
Who may fire a trigger: a review decision belongs to the role in `AWAITING[state]`; the others to `TRIGGER_ROLES`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from transitions import Machine, MachineError

STATES = ("invited", "sales_review", "compliance_review", "risk_review", "signing", "approved", "returned",
          "rejected", "suspended")
FINAL_STATES = frozenset({"approved", "rejected"})
REVIEW_STATES = ("sales_review", "compliance_review", "risk_review")

# whose turn it is in each state (`awaiting_role`); None: nobody's (final, or suspended)
AWAITING: dict[str, Optional[str]] = {
    "invited": "client", "sales_review": "sales", "compliance_review": "compliance", "risk_review": "risk",
    "signing": "client", "returned": "client", "approved": None, "rejected": None, "suspended": None,
}

TRANSITIONS: tuple[tuple[str, str | tuple[str, ...], str, tuple[str, ...], tuple[str, ...]], ...] = (
    # trigger            source                  dest                 conditions                            after
    ("submit",           "invited",              "sales_review",      (),                                   ()),
    ("resubmit",         "returned",             "sales_review",      (),                                   ()),
    ("approve",          "sales_review",         "compliance_review", (),                                   ("screen", "report")),
    ("approve",          "compliance_review",    "risk_review",       ("screened", "not_blacklisted"),      ()),
    ("approve",          "risk_review",          "approved",          ("not_blacklisted", "suitable", "agreement_current"), ("open_quoting",)),
    ("approve",          "risk_review",          "signing",           ("not_blacklisted", "suitable"),      ("prepare_agreement",)),
    ("sign",             "signing",              "approved",          ("not_blacklisted", "signer_holds_token"), ("sign_agreement", "open_quoting")),
    ("return_to_client", REVIEW_STATES,          "returned",          (),                                   ()),
    ("reject",           REVIEW_STATES,          "rejected",          (),                                   ("close_quoting",)),
    ("suspend",          "approved",             "suspended",         (),                                   ("close_quoting",)),
    ("reinstate",        "suspended",            "approved",          ("screened", "not_blacklisted"),      ("open_quoting",)),
    ("reopen",           ("approved", "suspended"), "sales_review",   (),                                   ("close_quoting",)),
    ("withdraw",         ("invited", "returned", "signing"), "rejected", (),                                ("close_quoting",)),
)

DECISIONS = {"approve": "approve", "return": "return_to_client", "reject": "reject"}  # API decision → trigger
# triggers that are not a review decision, and the staff roles that may fire them ("client": the token's holder)
TRIGGER_ROLES: dict[str, tuple[str, ...]] = {
    "submit": ("client",), "resubmit": ("client",), "sign": ("client",),
    "suspend": ("compliance", "risk", "admin"), "reinstate": ("compliance", "admin"),
    "reopen": ("sales", "compliance", "admin"), "withdraw": ("sales", "compliance", "admin"),
}


@dataclass(frozen=True)
class KycContext:
    """What the conditions read: the screening outcome, the agreement, and whether the signer holds the token."""

    screened: bool = True  # the blacklist screening ran to an answer (a holder that did not answer: False)
    blacklist_hit: bool = False
    suitable: bool = True  # the investor category may trade OTC derivatives (`app.kyc.validation.suitability`)
    agreement_current: bool = False  # an agreement is signed for the application's current data (fingerprint)
    signer_holds_token: bool = False


class KycError(Exception):
    """A trigger that the application's state, the actor's role or a condition does not allow.

    `code`: not_found | forbidden | conflict | invalid | gone (token expired or revoked).
    """

    def __init__(self, code: str, message: str, fields: dict | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = fields or {}


CONDITIONS = {
    "screened": lambda c: c.screened,
    "not_blacklisted": lambda c: not c.blacklist_hit,
    "suitable": lambda c: c.suitable,
    "agreement_current": lambda c: c.agreement_current,
    "signer_holds_token": lambda c: c.signer_holds_token,
}
REFUSALS = {  # why a condition failed, in the words the reviewer reads
    "screened": "the blacklist screening has not answered: screen again before approving or reinstating",
    "not_blacklisted": "the institution or its legal representative is on the blacklist: it can only be rejected",
    "suitable": "the investor category does not allow OTC derivatives (suitability): return or reject",
    "signer_holds_token": "only the holder of the invitation's token may sign",
}


class _Application:
    def __init__(self, state: str, ctx: KycContext):
        self.state = state
        self.ctx = ctx

    def __getattr__(self, name: str):  # condition names resolve to CONDITIONS over the context
        if name in CONDITIONS:
            return lambda: CONDITIONS[name](self.ctx)
        raise AttributeError(name)


def _sources(source: str | tuple[str, ...]) -> tuple[str, ...]:
    return (source,) if isinstance(source, str) else source


def fire(state: str, trigger: str, ctx: KycContext) -> tuple[str, tuple[str, ...]]:
    """The state after `trigger` from `state` and the effects to run; raises KycError(conflict) when not allowed."""
    if state not in STATES:
        raise KycError("conflict", f"unknown application state {state!r}")
    app = _Application(state, ctx)
    rows = [{"trigger": t, "source": list(_sources(s)), "dest": d, "conditions": list(c)}
            for t, s, d, c, _ in TRANSITIONS]
    Machine(model=app, states=list(STATES), transitions=rows, initial=state, auto_transitions=False,
            ignore_invalid_triggers=False)
    try:
        moved = getattr(app, trigger)()
    except AttributeError:
        raise KycError("conflict", f"unknown trigger {trigger!r}") from None
    except MachineError:
        raise KycError("conflict", f"an application in {state} cannot {trigger.replace('_', ' ')}") from None
    if not moved:
        raise KycError("conflict", _refusal(state, trigger, ctx))
    for t, s, d, _, after in TRANSITIONS:
        if t == trigger and d == app.state and state in _sources(s):
            return app.state, after
    return app.state, ()


def _refusal(state: str, trigger: str, ctx: KycContext) -> str:
    failed = [c for t, s, _, conds, _ in TRANSITIONS if t == trigger and state in _sources(s)
              for c in conds if not CONDITIONS[c](ctx)]
    reasons = [REFUSALS[c] for c in dict.fromkeys(failed) if c in REFUSALS]
    return "; ".join(reasons) or f"an application in {state} cannot {trigger.replace('_', ' ')} now"


def allowed_triggers(state: str) -> list[str]:
    """The triggers the table lists from `state` (conditions not evaluated)."""
    return sorted({t for t, s, *_ in TRANSITIONS if state in _sources(s)})


def may_fire(state: str, trigger: str, role: str) -> bool:
    """Whether `role` may fire `trigger` now: a review decision is the awaited role's, the rest per TRIGGER_ROLES."""
    if trigger in DECISIONS.values():
        return AWAITING.get(state) == role and state in REVIEW_STATES
    return role in TRIGGER_ROLES.get(trigger, ())
