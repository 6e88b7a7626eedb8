from datetime import datetime, timedelta, timezone

import pytest

from otcdesk.workflows.review import ReviewError, check_decision

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc)
LATER = NOW + timedelta(seconds=60)


def test_pending_item_can_be_approved_rejected_or_expired():
    check_decision("approve", "pending", LATER, NOW)
    check_decision("approve", "pending", LATER, NOW, reply="改过的回复")
    check_decision("reject", "pending", LATER, NOW, reason="价格过期")
    check_decision("expire", "pending", NOW, NOW)


@pytest.mark.parametrize("action,status,expires,kw,code", [
    ("approve", "pending", NOW, {}, "expired"),
    ("approve", "rejected", LATER, {}, "conflict"),
    ("approve", "sent", LATER, {}, "conflict"),
    ("reject", "approved", LATER, {"reason": "x"}, "conflict"),
    ("reject", "pending", LATER, {"reason": "  "}, "invalid"),
    ("approve", "pending", LATER, {"reply": "   "}, "invalid"),
    ("approve", "pending", LATER, {"reply": "x" * 5000}, "invalid"),
    ("delete", "pending", LATER, {}, "invalid"),
])
def test_refused_decisions_say_why(action, status, expires, kw, code):
    with pytest.raises(ReviewError) as err:
        check_decision(action, status, expires, NOW, **kw)
    assert err.value.code == code and err.value.message
