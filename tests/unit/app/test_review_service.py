"""Trader decisions through the review service on a real desk (SQLite, the real graph and runner, the simulator)."""
import asyncio
import threading

import pytest

from otcdesk.app.models import utcnow
from otcdesk.app.repositories import transaction
from otcdesk.bots.base import InboundMessage
from otcdesk.workflows.review import ReviewError


@pytest.fixture
def desk(desk_core):
    return desk_core


def quote(desk) -> dict:
    desk.inbound(InboundMessage(channel="sim", chat_id="demo", sender_id="c1", sender_name="c1",
                                text="沪深300 1个月 平值看跌", platform_msg_id="m1"))
    desk.runner.drain()
    return desk.reviews.list("pending")[0]


def bot_messages(desk):
    return [m for m in desk.outbox.channels["sim"].transcript.messages("demo") if m["from_bot"]]


def test_of_two_concurrent_approvals_one_wins_and_one_reply_is_sent(desk):
    item = quote(desk)
    outcomes, barrier = [], threading.Barrier(2)

    def approve(user):
        barrier.wait()
        try:
            outcomes.append(desk.reviews.approve(item["id"], user)["decided_by"])
        except ReviewError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=approve, args=(u,)) for u in ("t1", "t2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) in (["conflict", "t1"], ["conflict", "t2"])
    assert asyncio.run(desk.outbox.dispatch()) == 1 and asyncio.run(desk.outbox.dispatch()) == 0
    [reply] = bot_messages(desk)
    assert item["id"] in reply["text"] and desk.reviews.get(item["id"])["status"] == "sent"


def test_decisions_are_refused_with_the_reason(desk):
    item = quote(desk)
    with pytest.raises(ReviewError) as err:
        desk.reviews.reject(item["id"], "t1", " ")
    assert err.value.code == "invalid"
    with pytest.raises(ReviewError) as err:
        desk.reviews.approve("Q-NONE", "t1")
    assert err.value.code == "not_found"
    with pytest.raises(ReviewError) as err:
        desk.reviews.reprice(item["id"], "t1")  # a pending item is approved or rejected, not repriced
    assert err.value.code == "conflict"
    assert desk.reviews.reject(item["id"], "t1", "波动率要调整")["status"] == "rejected"
    assert asyncio.run(desk.outbox.dispatch()) == 0 and bot_messages(desk) == []


def test_reprice_opens_a_new_pending_item_on_a_new_thread_once(desk):
    item = quote(desk)
    desk.reviews.reject(item["id"], "t1", "重新报")
    fresh = desk.reviews.reprice(item["id"], "t1")
    assert fresh["id"] != item["id"] and fresh["status"] == "pending" and fresh["requests"] == item["requests"]
    assert desk.reviews.get(item["id"])["superseded_by"] == fresh["id"]
    with pytest.raises(ReviewError):
        desk.reviews.reprice(item["id"], "t1")
    desk.reviews.approve(fresh["id"], "t1", "改价：期权费 2.00%")
    asyncio.run(desk.outbox.dispatch())
    assert [m["text"] for m in bot_messages(desk)] == ["@c1\u2005改价：期权费 2.00%"]


def test_recovery_resumes_a_decision_whose_graph_run_was_lost(desk):
    item = quote(desk)
    with transaction(desk.engine) as tx:  # the decision was written, then the process died before resuming
        assert tx.reviews.decide(item["id"], "approved", "t1", utcnow(), final_reply="ok", unexpired=True)
    assert desk.runner.recover() == {"resumed": 1, "unprocessed": 0}
    assert asyncio.run(desk.outbox.dispatch()) == 1
    assert [m["text"] for m in bot_messages(desk)] == ["@c1\u2005ok"]
    assert desk.runner.recover()["resumed"] == 0  # sent items are not resumed again


def test_a_run_that_fails_outside_the_graph_stays_queued_and_the_next_pass_runs_it(desk):
    """A database fault while the runner records the outcome (injected at the driver boundary) must not lose
    the message until a restart: it stays at the head of the queue and the next pass processes it."""
    from sqlalchemy import event
    from sqlalchemy.exc import OperationalError

    faults = {"left": 1}

    def fail_once(conn, cursor, statement, params, context, executemany):
        if faults["left"] and statement.lstrip().upper().startswith("UPDATE INBOUND_MESSAGE"):
            faults["left"] -= 1
            raise OperationalError(statement, params, Exception("database is away"))

    event.listen(desk.engine, "before_cursor_execute", fail_once)
    try:
        desk.inbound(InboundMessage(channel="sim", chat_id="demo", sender_id="c1", sender_name="c1",
                                    text="沪深300 1个月 平值看跌", platform_msg_id="m-fault"))
        desk.inbound(InboundMessage(channel="sim", chat_id="demo", sender_id="c2", sender_name="c2",
                                    text="中证500 2周 平值看涨", platform_msg_id="m-next"))
        with pytest.raises(OperationalError):
            desk.runner.drain()
        with transaction(desk.engine) as tx:
            assert len(tx.inbound.unprocessed()) == 2
        assert desk.runner.drain() == 2  # the failed one went to the end: it holds nobody up
    finally:
        event.remove(desk.engine, "before_cursor_execute", fail_once)
    with transaction(desk.engine) as tx:
        assert tx.inbound.unprocessed() == []
    assert len(desk.reviews.list("pending")) == 2
