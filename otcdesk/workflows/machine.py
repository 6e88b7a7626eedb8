"""Run one trigger of a state machine declared as a table, with `transitions`.

The desk's machines (trade lifecycle, onboarding, alert triage) are tables of rows
`(trigger, source(s), dest, conditions[, after])`; conditions name predicates over a context value. `step` builds
the `transitions` machine at the given state, fires the trigger and says what happened; each machine turns the
outcome into its own error with its own words.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from transitions import Machine, MachineError


@dataclass(frozen=True)
class Outcome:
    """`moved`: the trigger fired; else `invalid` (no row from this state) or `failed` (the conditions that did
    not hold on the rows from this state). `after`: the effects named by the row taken."""

    moved: bool
    state: str
    after: tuple[str, ...] = ()
    invalid: bool = False
    failed: tuple[str, ...] = ()


def sources(source: str | Sequence[str]) -> tuple[str, ...]:
    return (source,) if isinstance(source, str) else tuple(source)


class _Model:
    def __init__(self, state: str, ctx: Any, conditions: Mapping[str, Callable[[Any], bool]]):
        self.state, self._ctx, self._conditions = state, ctx, conditions

    def __getattr__(self, name: str):  # condition names resolve to the table's predicates over the context
        conditions = self.__dict__.get("_conditions", {})
        if name in conditions:
            return lambda: conditions[name](self._ctx)
        raise AttributeError(name)


def step(table: Sequence[tuple], states: Sequence[str], state: str, trigger: str, ctx: Any,
         conditions: Mapping[str, Callable[[Any], bool]]) -> Outcome:
    """Fire `trigger` from `state` over `table`; rows are (trigger, source, dest, conditions[, after])."""
    if trigger not in {row[0] for row in table}:
        return Outcome(False, state, invalid=True)
    model = _Model(state, ctx, conditions)
    Machine(model=model, states=list(states), initial=state, auto_transitions=False, ignore_invalid_triggers=False,
            transitions=[{"trigger": row[0], "source": list(sources(row[1])), "dest": row[2],
                          "conditions": list(row[3])} for row in table])
    try:
        moved = getattr(model, trigger)()
    except MachineError:
        return Outcome(False, state, invalid=True)
    if not moved:
        failed = [c for row in table if row[0] == trigger and state in sources(row[1])
                  for c in row[3] if not conditions[c](ctx)]
        return Outcome(False, state, failed=tuple(dict.fromkeys(failed)))
    for row in table:
        if row[0] == trigger and row[2] == model.state and state in sources(row[1]) \
                and all(conditions[c](ctx) for c in row[3]):
            return Outcome(True, model.state, tuple(row[4]) if len(row) > 4 else ())
    return Outcome(True, model.state)


def triggers_from(table: Sequence[tuple], state: str) -> list[str]:
    """The triggers the table lists from `state` (conditions not evaluated), in table order, once each."""
    return list(dict.fromkeys(row[0] for row in table if state in sources(row[1])))
