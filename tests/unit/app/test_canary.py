"""Canary rollout per group on both real databases: the allowlist middleware in the inbound intake, the admin's
changes (validated, audited), a flip seen at once by a second service instance, and the desk with canary mode off
behaving as before."""
import pytest

from otcdesk.app.db import make_engine
from otcdesk.app.desk.canary import CanaryAllowlist, CanaryError, CanaryPolicy
from otcdesk.app.desk.inbound import AuditReceived, InboundPipeline, StoreFirst
from otcdesk.app.metrics import Metrics
from otcdesk.app.repositories import transaction
from otcdesk.bots.base import InboundMessage


def message(n, group="g1", channel="sim", text="沪深300 1个月 平值看跌"):
    return InboundMessage(channel=channel, chat_id=group, sender_id=f"c{n}", sender_name=f"c{n}", text=text,
                          platform_msg_id=f"m{n}")


def pipeline(engine, metrics=None):
    handed = []
    chain = InboundPipeline(engine, intake=[StoreFirst(), AuditReceived(), CanaryAllowlist(metrics)], middlewares=[],
                            handler=lambda event, data: handed.append(event.platform_msg_id))
    return chain, handed


def actions(engine, prefix=""):
    with transaction(engine) as tx:
        return [(r.actor, r.action, r.subject, r.detail) for r in tx.audit.entries() if r.action.startswith(prefix)]


def test_canary_off_by_default_lets_every_group_through(db_engine):
    chain, handed = pipeline(db_engine)
    for n, group in enumerate(("g1", "g2", "12345678@chatroom")):
        assert "held" not in chain(message(n, group))
    assert handed == ["m0", "m1", "m2"]
    assert CanaryPolicy(db_engine).state() == {"enabled": False, "updated_by": None, "updated_at": None, "groups": [],
                                               "channels": ["sim", "wechat", "wecom"]}


def test_groups_outside_the_allowlist_are_stored_and_audited_but_never_reach_the_runner(db_engine):
    policy, metrics = CanaryPolicy(db_engine), Metrics()
    policy.set_group("sim", "g1", True, "admin1")
    policy.set_mode(True, "admin1")
    chain, handed = pipeline(db_engine, metrics)
    held = chain(message(1, "g2"))
    passed = chain(message(2, "g1"))
    chain(message(3, "g1", channel="wechat"))  # the same group id on another channel is another group
    assert held["held"] and "held" not in passed and handed == ["m2"]
    with transaction(db_engine) as tx:
        assert tx.inbound.unprocessed() == [passed["inbound_id"]]  # a restart does not run the held ones either
        assert tx.inbound.get(held["inbound_id"])["text"] == "沪深300 1个月 平值看跌"  # stored whole
    held_audit = [(a, s, d) for _, a, s, d in actions(db_engine, "inbound.")]
    assert held_audit.count(("inbound.held", f"inbound:{held['inbound_id']}", {"chat_id": "g2", "reason": "canary"})) == 1
    assert [a for a, _, _ in held_audit].count("inbound.received") == 3
    assert metrics.registry.get_sample_value("otcdesk_inbound_held_total", {"channel": "sim"}) == 1
    assert metrics.registry.get_sample_value("otcdesk_inbound_held_total", {"channel": "wechat"}) == 1

    policy.set_mode(False, "admin1")  # off again: every group goes through, as before
    chain(message(4, "g2"))
    assert handed == ["m2", "m4"]


def test_a_switch_takes_effect_at_once_on_another_instance(db_settings, db_engine):
    """Two service instances on one database: one admin's change is seen by the other's very next message."""
    other = make_engine(db_settings.db_url)
    try:
        chain, handed = pipeline(other)
        policy = CanaryPolicy(db_engine)
        policy.set_mode(True, "admin1")
        assert chain(message(1, "g1"))["held"]
        policy.set_group("sim", "g1", True, "admin1")
        assert "held" not in chain(message(2, "g1")) and handed == ["m2"]
        policy.set_group("sim", "g1", False, "admin1")
        assert chain(message(3, "g1"))["held"] and handed == ["m2"]
    finally:
        other.dispose()


def test_every_change_is_audited_once_with_who_and_which_group(db_engine):
    policy = CanaryPolicy(db_engine)
    policy.set_mode(True, "admin1")
    policy.set_mode(True, "admin1")  # no change: nothing to record
    state = policy.set_group("wechat", "12345678@chatroom", True, "admin2")
    policy.set_group("wechat", "12345678@chatroom", True, "admin2")
    assert [(g["channel"], g["group_id"], g["added_by"]) for g in state["groups"]] == [
        ("wechat", "12345678@chatroom", "admin2")]
    state = policy.set_group("wechat", "12345678@chatroom", False, "admin1")
    policy.set_group("wechat", "12345678@chatroom", False, "admin1")
    assert state["groups"] == [] and state["enabled"] and state["updated_by"] == "admin1"
    assert [(actor, action, subject, detail) for actor, action, subject, detail in actions(db_engine, "canary.")] == [
        ("admin1", "canary.mode", "canary", {"before": False, "after": True}),
        ("admin2", "canary.group_in", "group:wechat:12345678@chatroom", {"channel": "wechat", "group_id": "12345678@chatroom"}),
        ("admin1", "canary.group_out", "group:wechat:12345678@chatroom", {"channel": "wechat", "group_id": "12345678@chatroom"}),
    ]


@pytest.mark.parametrize("channel, group_id, admitted, fields", [
    ("telegram", "g1", True, {"channel"}),
    ("sim", "", True, {"group_id"}),
    ("sim", "x" * 129, True, {"group_id"}),
    ("sim", "<script>", True, {"group_id"}),
    ("sim", "群\n一", True, {"group_id"}),
    ("sim", "a b", True, {"group_id"}),
    ("sim", 12, True, {"group_id"}),
    (None, None, True, {"channel", "group_id"}),
    ("sim", "g1", "yes", {"in"}),
])
def test_malformed_changes_are_refused_and_change_nothing(db_engine, channel, group_id, admitted, fields):
    policy = CanaryPolicy(db_engine)
    with pytest.raises(CanaryError) as exc:
        policy.set_group(channel, group_id, admitted, "admin1")
    assert set(exc.value.fields) == fields
    with pytest.raises(CanaryError):
        policy.set_mode("true", "admin1")
    assert policy.state()["groups"] == [] and actions(db_engine, "canary.") == []


def test_the_longest_well_formed_group_id_is_taken(db_engine):
    group = "a" * 120 + "@chatroom"[:8]
    assert len(group) == 128
    assert CanaryPolicy(db_engine).set_group("wecom", group, True, "admin1")["groups"][0]["group_id"] == group


def test_a_chinese_group_name_is_a_well_formed_group_id(db_engine):
    """Simulated and WeCom groups are often named in Chinese (私募客户群（一）)."""
    state = CanaryPolicy(db_engine).set_group("sim", "私募客户群（一）", True, "admin1")
    assert [g["group_id"] for g in state["groups"]] == ["私募客户群（一）"]


def test_desk_with_canary_on_drafts_only_for_allowlisted_groups(make_desk_core):
    desk = make_desk_core()
    desk.canary.set_mode(True, "admin1")
    held = desk.inbound(message(1, "demo"))
    desk.run_inbound()
    assert held["held"] and desk.reviews.list("pending") == [] and desk.runner.unprocessed() == []
    desk.canary.set_group("sim", "demo", True, "admin1")
    desk.inbound(message(2, "demo"))
    desk.run_inbound()
    assert [i["sender"] for i in desk.reviews.list("pending")] == ["c2"]
    assert desk.runner.recover() == {"resumed": 0, "unprocessed": 0}  # the held message stays held after a restart
