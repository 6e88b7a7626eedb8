"""The alert triage machine (workflows.surveillance.triage): every row of its table, and every refusal."""
import pytest

from otcdesk.workflows.surveillance.triage import ACTIONS, STATES, TRANSITIONS, TriageError, allowed, fire


def test_the_path_open_investigating_escalated_or_dismissed_and_back():
    assert fire("open", "investigate") == "investigating"
    assert fire("investigating", "escalate", "大额撤单与反向成交吻合，移交调查") == "escalated"
    assert fire("investigating", "dismiss", "做市商正常报撤") == "dismissed"
    assert fire("dismissed", "reopen") == "open"


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("action", ACTIONS)
def test_every_pair_moves_only_as_the_table_says(state, action):
    rows = {(a, s): d for a, s, d, _ in TRANSITIONS}
    if (action, state) in rows:
        assert fire(state, action, "理由") == rows[(action, state)]
        assert action in allowed(state)
    else:
        with pytest.raises(TriageError) as exc:
            fire(state, action, "理由")
        assert exc.value.code == "conflict" and state in exc.value.message
        assert action not in allowed(state)


@pytest.mark.parametrize("action", ["escalate", "dismiss"])
@pytest.mark.parametrize("note", [None, "", "   "])
def test_escalate_and_dismiss_need_a_note(action, note):
    with pytest.raises(TriageError) as exc:
        fire("investigating", action, note)
    assert exc.value.code == "invalid" and "note" in exc.value.message


def test_unknown_action_and_overlong_note_are_invalid():
    for args in (("open", "close"), ("open", "investigate", "x" * 2001)):
        with pytest.raises(TriageError) as exc:
            fire(*args)
        assert exc.value.code == "invalid"


def test_escalated_is_final():
    assert allowed("escalated") == []
