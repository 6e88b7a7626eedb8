"""The inbound middleware chain on both real databases: store first, de-duplicate, audit, rate-limit per group."""
import time

import pytest

from otcdesk.app.desk.inbound import AuditReceived, InboundPipeline, RateLimit, StoreFirst
from otcdesk.app.repositories import transaction
from otcdesk.app.settings import load_settings
from otcdesk.bots.base import InboundMessage


@pytest.fixture
def engine(db_engine):
    return db_engine


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def message(n, group="g1", text="沪深300 1个月 平值看跌"):
    return InboundMessage(channel="sim", chat_id=group, sender_id=f"c{n}", sender_name=f"c{n}", text=text,
                          platform_msg_id=f"m{n}")


def audit_actions(engine):
    with transaction(engine) as tx:
        return [(r.action, r.subject) for r in tx.audit.entries()]


def pipeline(engine, *extra, limit=0, window_s=10.0, clock=None):
    handed = []
    rate_limit = RateLimit(engine, limit, window_s, clock or Clock())
    chain = InboundPipeline(engine, intake=[StoreFirst(), AuditReceived()], middlewares=[*extra, rate_limit],
                            handler=lambda event, data: handed.append(event.platform_msg_id))
    return chain, rate_limit, handed


def test_message_is_stored_and_audited_once_and_a_redelivery_goes_no_further(engine):
    chain, _, handed = pipeline(engine)
    first = chain(message(1))
    assert first == {"inbound_id": first["inbound_id"], "new": True} and handed == ["m1"]
    assert chain(message(1)) == {"inbound_id": first["inbound_id"], "new": False} and handed == ["m1"]
    assert audit_actions(engine) == [("inbound.received", f"inbound:{first['inbound_id']}")]
    with transaction(engine) as tx:
        assert tx.inbound.unprocessed() == [first["inbound_id"]]


def test_intake_is_one_unit_of_work(engine):
    def broken(handler, event, data):
        raise RuntimeError("disk full")

    chain = InboundPipeline(engine, intake=[StoreFirst(), AuditReceived(), broken], middlewares=[],
                            handler=lambda event, data: None)
    with pytest.raises(RuntimeError):
        chain(message(1))
    with transaction(engine) as tx:  # neither the message nor its audit row: the channel may deliver it again
        assert tx.inbound.unprocessed() == [] and tx.audit.entries() == []
    assert pipeline(engine)[0](message(1))["new"]  # nothing half-stored blocks the redelivery


def test_one_more_middleware_slots_into_the_chain(engine):
    """A canary allowlist is one more middleware: what it holds back is still stored and audited."""

    def canary(handler, event, data):
        if event.chat_id not in {"g1"}:
            data["held"] = True
            return None
        return handler(event, data)

    chain, _, handed = pipeline(engine, canary)
    assert chain(message(1, group="g2"))["held"] and handed == []
    chain(message(2, group="g1"))
    assert handed == ["m2"] and [a for a, _ in audit_actions(engine)] == ["inbound.received"] * 2


def test_over_the_group_limit_messages_wait_in_order_and_are_never_dropped(engine):
    clock = Clock()
    chain, rate_limit, handed = pipeline(engine, limit=2, window_s=10.0, clock=clock)
    results = [chain(message(n)) for n in (1, 2, 3, 4)]
    chain(message(5, group="g2"))  # another group has its own window
    assert handed == ["m1", "m2", "m5"]
    assert [r.get("deferred", False) for r in results] == [False, False, True, True]
    with transaction(engine) as tx:
        assert len(tx.inbound.unprocessed()) == 5  # every message is stored
    actions = audit_actions(engine)
    assert [a for a, _ in actions].count("inbound.received") == 5
    assert [s for a, s in actions if a == "inbound.deferred"] == [f"inbound:{results[2]['inbound_id']}",
                                                                 f"inbound:{results[3]['inbound_id']}"]

    clock.now += 4
    assert rate_limit.release_due() == 0 and rate_limit.next_release_s() == 6.0
    clock.now += 6
    chain(message(6))  # room in the window now, but older messages of the group go first
    assert handed == ["m1", "m2", "m5"]
    assert rate_limit.release_due() == 2 and handed == ["m1", "m2", "m5", "m3", "m4"]
    clock.now += 10
    assert rate_limit.release_due() == 1 and handed[-1] == "m6"
    assert rate_limit.next_release_s() is None and rate_limit.release_due() == 0


def test_a_limit_of_zero_turns_rate_limiting_off(engine):
    chain, rate_limit, handed = pipeline(engine, limit=0)
    for n in range(100):
        chain(message(n))
    assert len(handed) == 100 and rate_limit.next_release_s() is None


def test_the_limit_is_a_setting_with_a_default_that_leaves_normal_traffic_alone(monkeypatch, tmp_path):
    settings = load_settings(data_dir=tmp_path)
    assert (settings.inbound_rate_limit, settings.inbound_rate_window_s) == (60, 60.0)
    monkeypatch.setenv("OTCDESK_INBOUND_RATE_LIMIT", "5")
    monkeypatch.setenv("OTCDESK_INBOUND_RATE_WINDOW_S", "2.5")
    settings = load_settings(data_dir=tmp_path)
    assert (settings.inbound_rate_limit, settings.inbound_rate_window_s) == (5, 2.5)


def test_a_deferred_message_reaches_the_review_queue_when_the_window_allows(make_desk_core):
    desk = make_desk_core(inbound_rate_limit=1, inbound_rate_window_s=2.0)
    desk.inbound(message(1, group="demo"))
    second = desk.inbound(message(2, group="demo", text="中证500 2周 平值看涨"))
    assert second["deferred"] and desk.run_inbound() is not None  # the first message ran, the second waits
    assert [i["sender"] for i in desk.reviews.list("pending")] == ["c1"]
    assert desk.runner.unprocessed() == [second["inbound_id"]]
    time.sleep(desk.rate_limit.next_release_s())
    assert desk.run_inbound() is None
    assert sorted(i["sender"] for i in desk.reviews.list("pending")) == ["c1", "c2"]
    assert desk.runner.unprocessed() == []
