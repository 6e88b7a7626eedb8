"""Alert triage (预警处置) as a table, run by a `transitions` machine: what compliance did with each alert.

    open ──investigate──▶ investigating ──escalate (note)──▶ escalated
      ▲                         │
      └────reopen──── dismissed ◀──dismiss (note)

Escalating hands the case on (to the investigation or regulatory-reporting line): it is final here. A dismissal
or an escalation must say why (`note`); a dismissed alert may be reopened. The machine decides; it stores
nothing: `app.surveillance` persists the step with its version check and audits it.
"""
from __future__ import annotations

from transitions import Machine, MachineError

STATES = ("open", "investigating", "escalated", "dismissed")
ACTIONS = ("investigate", "escalate", "dismiss", "reopen")

TRANSITIONS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    # action         source           dest             conditions
    ("investigate", "open",          "investigating", ()),
    ("escalate",    "investigating", "escalated",     ("has_note",)),
    ("dismiss",     "investigating", "dismissed",     ("has_note",)),
    ("reopen",      "dismissed",     "open",          ()),
)
CONDITIONS = {"has_note": lambda note: bool(note and note.strip())}
REFUSALS = {"has_note": "a note is required: say why"}
MAX_NOTE = 2000


class TriageError(Exception):
    """An action the alert's state or the request does not allow. `code`: not_found | conflict | invalid."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


class _Alert:
    def __init__(self, state: str, note: str | None):
        self.state, self.note = state, note

    def __getattr__(self, name: str):  # condition names resolve to CONDITIONS over the note
        if name in CONDITIONS:
            return lambda: CONDITIONS[name](self.note)
        raise AttributeError(name)


def fire(state: str, action: str, note: str | None = None) -> str:
    """The state after `action` from `state`; TriageError(invalid) for an unknown action, a missing or too long
    note; TriageError(conflict) when the state does not allow the action."""
    if action not in ACTIONS:
        raise TriageError("invalid", f"action must be one of {', '.join(ACTIONS)}")
    if note is not None and len(note) > MAX_NOTE:
        raise TriageError("invalid", f"note longer than {MAX_NOTE} characters")
    if state not in STATES:
        raise TriageError("conflict", f"unknown alert state {state!r}")
    alert = _Alert(state, note)
    Machine(model=alert, states=list(STATES), initial=state, auto_transitions=False, ignore_invalid_triggers=False,
            transitions=[{"trigger": a, "source": s, "dest": d, "conditions": list(c)} for a, s, d, c in TRANSITIONS])
    try:
        moved = getattr(alert, action)()
    except MachineError:
        raise TriageError("conflict", f"an alert that is {state} cannot {action}"
                                      f" (allowed: {', '.join(allowed(state)) or 'none'})") from None
    if not moved:
        failed = [c for a, s, _, conds in TRANSITIONS if a == action and s == state for c in conds
                  if not CONDITIONS[c](note)]
        raise TriageError("invalid", "; ".join(REFUSALS[c] for c in dict.fromkeys(failed)))
    return alert.state


def allowed(state: str) -> list[str]:
    """The actions the table lists from `state` (conditions not evaluated), in table order."""
    return [a for a, s, _, _ in TRANSITIONS if s == state]
