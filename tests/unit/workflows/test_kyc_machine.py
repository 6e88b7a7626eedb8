"""The onboarding machine's table (`workflows.kyc`): every row fires from each of its sources to its destination
with its effects; what a state does not allow, or a failed condition, is refused with the reason; who may fire."""
from __future__ import annotations

import pytest

from otcdesk.workflows.kyc import AWAITING, DECISIONS, FINAL_STATES, REVIEW_STATES, STATES, TRANSITIONS, \
    TRIGGER_ROLES, KycContext, KycError, allowed_triggers, fire, may_fire

OK = KycContext(screened=True, blacklist_hit=False, suitable=True, agreement_current=False, signer_holds_token=True)


def _sources(source):
    return (source,) if isinstance(source, str) else source


ROWS = [(t, s, d, c, a) for t, src, d, c, a in TRANSITIONS for s in _sources(src)]


@pytest.mark.parametrize("trigger,source,dest,conditions,after", ROWS,
                         ids=[f"{t}:{s}->{d}" for t, s, d, *_ in ROWS])
def test_every_row_fires_when_its_conditions_hold(trigger, source, dest, conditions, after):
    ctx = KycContext(screened=True, blacklist_hit=False, suitable=True,
                     agreement_current="agreement_current" in conditions, signer_holds_token=True)
    assert fire(source, trigger, ctx) == (dest, after)


def test_the_whole_path_and_its_effects():
    state, effects = "invited", []
    for trigger in ("submit", "approve", "approve", "approve", "sign"):
        state, after = fire(state, trigger, OK)
        effects += after
    assert state == "approved"
    assert effects == ["screen", "report", "prepare_agreement", "sign_agreement", "open_quoting"]


def test_return_and_resubmit_from_every_review():
    for review in REVIEW_STATES:
        assert fire(review, "return_to_client", OK) == ("returned", ())
        assert fire(review, "reject", OK) == ("rejected", ("close_quoting",))
    assert fire("returned", "resubmit", OK) == ("sales_review", ())


def test_periodic_review_suspension_and_reinstatement():
    assert fire("approved", "reopen", OK) == ("sales_review", ("close_quoting",))
    assert fire("suspended", "reopen", OK) == ("sales_review", ("close_quoting",))
    assert fire("approved", "suspend", OK) == ("suspended", ("close_quoting",))
    assert fire("suspended", "reinstate", OK) == ("approved", ("open_quoting",))
    # a reopened client with a signed agreement goes straight back to approved at risk's approval
    assert fire("risk_review", "approve", KycContext(agreement_current=True)) == ("approved", ("open_quoting",))
    # an agreement signed for other data (a changed application) is signed again
    assert fire("risk_review", "approve", KycContext(agreement_current=False)) == ("signing", ("prepare_agreement",))


def test_staff_withdraw_where_only_the_client_could_move_it():
    """Waiting on a client whose token lapsed would be stuck: staff withdraw it (rejected, quoting closed)."""
    for state in ("invited", "returned", "signing"):
        assert fire(state, "withdraw", OK) == ("rejected", ("close_quoting",))
    for state in set(STATES) - {"invited", "returned", "signing"}:
        with pytest.raises(KycError):
            fire(state, "withdraw", OK)
    assert TRIGGER_ROLES["withdraw"] == ("sales", "compliance", "admin")


def test_reinstatement_needs_an_answered_screening():
    with pytest.raises(KycError, match="screening has not answered"):
        fire("suspended", "reinstate", KycContext(screened=False))


@pytest.mark.parametrize("state,trigger", [
    ("invited", "approve"), ("sales_review", "submit"), ("sales_review", "sign"), ("approved", "approve"),
    ("rejected", "resubmit"), ("rejected", "reopen"), ("returned", "approve"), ("signing", "return_to_client"),
    ("approved", "reinstate"), ("suspended", "suspend"), ("invited", "reopen")])
def test_a_trigger_the_state_does_not_allow_is_refused_with_the_state(state, trigger):
    with pytest.raises(KycError) as err:
        fire(state, trigger, OK)
    assert err.value.code == "conflict"
    assert state in err.value.message and trigger.replace("_", " ") in err.value.message


def test_unknown_trigger_and_state():
    with pytest.raises(KycError, match="unknown trigger"):
        fire("sales_review", "bribe", OK)
    with pytest.raises(KycError, match="unknown application state"):
        fire("screening", "approve", OK)


def test_failed_conditions_say_why():
    with pytest.raises(KycError, match="blacklist"):
        fire("compliance_review", "approve", KycContext(blacklist_hit=True))
    with pytest.raises(KycError, match="screening has not answered"):
        fire("compliance_review", "approve", KycContext(screened=False))
    with pytest.raises(KycError, match="suitability"):
        fire("risk_review", "approve", KycContext(suitable=False))
    with pytest.raises(KycError, match="blacklist"):
        fire("risk_review", "approve", KycContext(blacklist_hit=True))
    with pytest.raises(KycError, match="holder of the invitation's token"):
        fire("signing", "sign", KycContext(signer_holds_token=False))
    with pytest.raises(KycError, match="blacklist"):
        fire("signing", "sign", KycContext(blacklist_hit=True, signer_holds_token=True))
    with pytest.raises(KycError, match="blacklist"):
        fire("suspended", "reinstate", KycContext(blacklist_hit=True))
    # a hit can still be returned or rejected
    assert fire("compliance_review", "reject", KycContext(blacklist_hit=True))[0] == "rejected"


def test_a_blacklist_hit_never_reaches_approved():
    hit = KycContext(blacklist_hit=True, screened=True, suitable=True, agreement_current=True,
                     signer_holds_token=True)
    for state in STATES:
        for trigger in allowed_triggers(state):
            try:
                dest, _ = fire(state, trigger, hit)
            except KycError:
                continue
            assert dest != "approved", (state, trigger)


def test_may_fire_decisions_belong_to_the_awaited_role():
    roles = ("sales", "compliance", "risk", "admin", "trader", "client")
    for state in STATES:
        for trigger in DECISIONS.values():
            allowed = {r for r in roles if may_fire(state, trigger, r)}
            assert allowed == ({AWAITING[state]} if state in REVIEW_STATES else set()), (state, trigger)
    for trigger, who in TRIGGER_ROLES.items():
        for role in roles:
            assert may_fire("approved", trigger, role) == (role in who)


def test_awaiting_covers_every_state():
    assert set(AWAITING) == set(STATES)
    assert all(AWAITING[s] is None for s in FINAL_STATES)
    assert AWAITING["signing"] == AWAITING["returned"] == "client"
