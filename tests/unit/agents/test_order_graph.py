"""Orders, amendments, cancels, status, holdings and unwinds through the desk graph on a real desk core: a SQLite
file, the real parser, pricer, runner, review service, outbox, simulator and the trade service that `build_desk`
wires as the graph's trading port (`make_desk_core`, tests/desk_fixtures.py). What the port did is read from its
real outcome: trade rows and their events, the audit log, the group's transcript."""
from __future__ import annotations

import asyncio
import time
import uuid
from datetime import date

import pytest

from otcdesk.app.demo import DEMO_ACCOUNTS
from otcdesk.app.repositories import transaction
from otcdesk.app.trading.booking import booking_message, unwind_message
from otcdesk.bots.base import InboundMessage
from otcdesk.workflows.review import ReviewError
from otcdesk.workflows.trade import LifecycleError
from booking_fixtures import add_unwind

INSTITUTION = "示例资产管理有限公司"
STABLE, GROWTH = DEMO_ACCOUNTS[INSTITUTION]
MARKET = {"type": "market", "limit_price": None, "pov_pct": None, "start": None, "end": None}


@pytest.fixture
def make_desk(make_desk_core):
    return make_desk_core


def say(desk, text, sender="c1", chat="demo", msg_id=None):
    desk.inbound(InboundMessage(channel="sim", chat_id=chat, sender_id=sender, sender_name=sender, text=text,
                                platform_msg_id=msg_id or uuid.uuid4().hex))
    desk.runner.drain()


def pending(desk, kind=None, chat=None):
    return [i for i in desk.reviews.list("pending")
            if (kind is None or i["kind"] == kind) and (chat is None or i["group"] == chat)]


def send(desk, item_id, reply=None):
    desk.reviews.approve(item_id, "t1", reply)
    asyncio.run(desk.outbox.dispatch())
    return desk.reviews.get(item_id)


def sent_quote(desk, text="沪深300 1个月 平值看跌 1000万", sender="c1", chat="demo"):
    say(desk, text, sender, chat)
    [item] = pending(desk, "quote", chat)
    assert send(desk, item["id"])["status"] == "sent"
    return item


def booked(desk, order_text, sender="c1", chat="demo") -> str:
    """Order on the sender's last sent quote and approve it: the id of the live trade the trade service booked."""
    say(desk, order_text, sender, chat)
    [order] = pending(desk, "order", chat)
    assert send(desk, order["id"])["status"] == "sent"
    with transaction(desk.engine) as tx:
        trade = tx.trades.for_order(order["id"])
        assert trade is not None and trade.status == "live", order
        return trade.id


def bot_texts(desk, chat="demo"):
    return [m["text"] for m in desk.outbox.channels["sim"].transcript.messages(chat) if m["from_bot"]]


def audit_actions(desk):
    with transaction(desk.engine) as tx:
        return [e.action for e in tx.audit.entries()]


def trade_actions(desk):
    """What the trade service did: every booking, refusal, unwind and confirmation is audited as trade.*."""
    return [a for a in audit_actions(desk) if a.startswith("trade.")]


def trade_count(desk):
    with transaction(desk.engine) as tx:
        return tx.trades.count()


def state_of(desk, review_id):
    with transaction(desk.engine) as tx:
        thread = tx.reviews.get(review_id).thread_id
    return desk.runner.graph.get_state({"configurable": {"thread_id": thread}})


def trade_of(desk, review_id) -> dict | None:
    """The trade booked from an order item, as the trade service shows it (CONTRACTS `Trade`)."""
    with transaction(desk.engine) as tx:
        row = tx.trades.for_order(review_id)
        trade_id = row.id if row is not None else None
    return desk.trades.get(trade_id) if trade_id else None


def test_order_after_a_sent_quote_asks_for_the_account_once_then_is_complete(make_desk):
    desk = make_desk()
    quote = sent_quote(desk)
    say(desk, "200万，市价，确认下单")
    [ask] = pending(desk, "order")
    assert ask["ref_id"] == quote["id"] and ask["detail"]["missing"] == ["account"]
    assert ask["order"]["notional"] == 2_000_000 and ask["order"]["execution"] == MARKET
    assert STABLE in ask["draft_reply"] and GROWTH in ask["draft_reply"]  # the list the client picks from

    say(desk, "稳健一号")
    [order] = pending(desk, "order")
    assert order["id"] != ask["id"] and desk.reviews.get(ask["id"])["status"] == "withdrawn"  # answered
    assert order["order"] == {"quote_id": quote["id"], "notional": 2_000_000, "execution": MARKET,
                              "account": STABLE, "line": 1}
    assert order["ref_id"] == quote["id"] and order["lines"] == quote["lines"]
    assert order["requests"] == [quote["lines"][0]["request"]]
    assert "booking" not in order["detail"] and not order["detail"].get("stale")
    assert "交易员确认后发送成交确认" in order["draft_reply"]
    assert trade_actions(desk) == []  # nothing is booked before the trader approves
    # approval books a real trade on the quoted terms, and the client gets its booking confirmation
    assert send(desk, order["id"])["status"] == "sent"
    trade = trade_of(desk, order["id"])
    assert trade["status"] == "live" and trade["institution"] == INSTITUTION and trade["quote_id"] == quote["id"]
    assert (trade["notional"], trade["account"], trade["execution"]["type"]) == (2_000_000, STABLE, "market")
    assert trade["price_pct"] == quote["lines"][0]["price_pct"]
    assert trade["product"]["underlying"] == quote["lines"][0]["request"]["underlying"]
    assert trade["booked_by"] == "t1" and trade_count(desk) == 1
    assert bot_texts(desk)[-1].endswith(booking_message(trade)) and f"【成交确认 {trade['id']}】" in bot_texts(desk)[-1]
    assert "trade.book" in trade_actions(desk)


def test_one_message_with_every_term_is_one_order_item(make_desk):
    desk = make_desk()
    quote = sent_quote(desk)
    say(desk, f"按 {quote['id']} 做 5000万，POV 12% 限价6.5，产品2")
    [order] = pending(desk)
    assert order["kind"] == "order" and order["order"]["account"] == GROWTH
    assert order["order"]["execution"] == {"type": "pov", "limit_price": 6.5, "pov_pct": 12, "start": None,
                                           "end": None}
    assert "POV 12%（限价6.5）" in order["draft_reply"] and quote["id"] in order["draft_reply"]


def test_a_bare_size_after_a_sent_quote_is_an_order(make_desk):
    desk = make_desk()
    sent_quote(desk)
    say(desk, "2000万")
    [ask] = pending(desk, "order")
    assert ask["order"]["notional"] == 20_000_000 and set(ask["detail"]["missing"]) == {"execution", "account"}


def test_the_quoted_size_is_the_default(make_desk):
    desk = make_desk()
    sent_quote(desk)  # quoted with 1000万
    say(desk, "就这个，市价，进取2号")
    [order] = pending(desk, "order")
    assert order["order"]["notional"] == 10_000_000 and order["order"]["account"] == GROWTH


def test_several_lines_are_one_order_item_each_completed_per_line(make_desk):
    desk = make_desk()
    quote = sent_quote(desk, "300、创业板 各来一个 1个月的平值看跌")
    assert len(quote["lines"]) == 2
    say(desk, "两笔都做，序号1 市价；序号2 300万，产品1")
    [ask] = pending(desk, "order")
    assert ask["detail"]["missing_by_line"] == {"1": ["notional"], "2": ["execution"]}
    assert "序号1：名义本金" in ask["draft_reply"] and "序号2：建仓指令" in ask["draft_reply"]

    say(desk, "序号1，100w；序号2，市价")
    orders = sorted(pending(desk, "order"), key=lambda i: i["order"]["line"])
    assert [(o["order"]["line"], o["order"]["notional"], o["order"]["execution"]["type"], o["order"]["account"])
            for o in orders] == [(1, 1_000_000, "market", STABLE), (2, 3_000_000, "market", STABLE)]
    assert [o["lines"] for o in orders] == [[quote["lines"][0]], [quote["lines"][1]]]
    assert {o["ref_id"] for o in orders} == {quote["id"]} and len({o["id"] for o in orders}) == 2
    assert "序号2" in orders[1]["draft_reply"]
    # each line's item is decided on its own thread, and books its own line
    assert send(desk, orders[1]["id"])["status"] == "sent" and desk.reviews.get(orders[0]["id"])["status"] == "pending"
    trade = trade_of(desk, orders[1]["id"])
    second, first = (quote["lines"][k]["request"]["underlying"] for k in (1, 0))
    assert trade["underlying"] == second != first
    assert trade["notional"] == 3_000_000 and trade["price_pct"] == quote["lines"][1]["price_pct"]
    assert trade_of(desk, orders[0]["id"]) is None and trade_count(desk) == 1


@pytest.mark.parametrize("text,why", [("-200万 市价 产品1 确认下单", "需大于0"), ("名义本金0 市价 产品1 确认下单", "需大于0"),
                                      ("300亿 市价 产品1 确认下单", "超过单笔上限")])
def test_a_size_that_cannot_be_traded_is_refused_with_the_reason(make_desk, text, why):
    desk = make_desk()
    sent_quote(desk)
    say(desk, text)
    [item] = pending(desk, "order")
    assert item["detail"]["refused"] and why in item["draft_reply"] and "未下单" in item["draft_reply"]
    assert send(desk, item["id"])["status"] == "sent"
    assert bot_texts(desk)[-1].endswith(item["draft_reply"])  # the refusal is sent, nothing is booked
    assert trade_actions(desk) == [] and trade_count(desk) == 0


def test_an_order_with_no_sent_quote_gets_a_question(make_desk):
    desk = make_desk()
    say(desk, "200万，市价，确认下单")
    [item] = pending(desk, "order")
    assert item["detail"]["missing"] == ["quote"] and "哪一笔报价" in item["draft_reply"]
    say(desk, "按 Q0123456789 做")
    [item] = pending(desk, "order")
    assert "未找到" in item["draft_reply"] and "Q0123456789" in item["draft_reply"]
    send(desk, item["id"])
    assert trade_actions(desk) == [] and trade_count(desk) == 0


def test_an_order_on_a_stale_quote_is_not_approved_and_the_quote_is_repriced(make_desk):
    desk = make_desk(quote_valid_s=1)
    quote = sent_quote(desk)
    time.sleep(1.2)
    say(desk, "200万 市价 产品1 确认下单")
    [order] = pending(desk, "order")
    assert order["detail"]["stale"] is True and order["detail"]["quote_age_s"] > 1
    assert "有效期" in order["draft_reply"] and "重新报价" in order["draft_reply"]
    with pytest.raises(ReviewError) as err:
        desk.reviews.approve(order["id"], "t1")
    assert err.value.code == "expired" and "stale quote" in err.value.message and "reprice" in err.value.message
    assert desk.reviews.get(order["id"])["status"] == "pending"
    assert trade_actions(desk) == [] and trade_count(desk) == 0

    fresh = desk.reviews.reprice(order["id"], "t1")
    assert fresh["kind"] == "quote" and fresh["status"] == "pending" and fresh["requests"] == quote["requests"]
    assert desk.reviews.get(order["id"])["status"] == "rejected"
    assert trade_actions(desk) == [] and trade_count(desk) == 0


def test_an_institution_not_onboarded_gets_the_onboarding_notice_not_an_order(make_desk):
    desk = make_desk()
    say(desk, "200万，市价，确认下单", sender="w1", chat="prospect")
    [item] = pending(desk)
    assert item["kind"] == "onboarding" and item["order"] is None and "KYC" in item["draft_reply"]
    send(desk, item["id"])
    assert bot_texts(desk, "prospect")[-1].endswith(item["draft_reply"])
    assert trade_actions(desk) == [] and trade_count(desk) == 0


def test_amendments_change_the_pending_order_audited_and_redrafted(make_desk):
    desk = make_desk()
    sent_quote(desk)
    say(desk, "200万 POV 12% 限价6.5 产品1 确认下单")
    [order] = pending(desk, "order")
    say(desk, "改限价10")
    item = desk.reviews.get(order["id"])
    assert item["order"]["execution"] == {"type": "pov", "limit_price": 10, "pov_pct": 12, "start": None,
                                          "end": None}
    assert "限价10" in item["draft_reply"] and "6.5" not in item["draft_reply"]
    say(desk, "改POV15")
    say(desk, "名义本金改成300万")
    item = desk.reviews.get(order["id"])
    assert item["order"]["execution"]["pov_pct"] == 15 and item["order"]["notional"] == 3_000_000
    assert "名义本金300万" in item["draft_reply"]
    assert [i["id"] for i in pending(desk)] == [order["id"]]  # an amendment opens nothing new
    assert audit_actions(desk).count("order.amend") == 3

    say(desk, "名义本金改成0")  # refused: the order keeps its size, the client is told why
    assert desk.reviews.get(order["id"])["order"]["notional"] == 3_000_000
    [reply] = pending(desk, "order_status")
    assert "需大于0" in reply["draft_reply"]

    send(desk, order["id"])  # the amended terms are what is booked
    trade = trade_of(desk, order["id"])
    assert trade["notional"] == 3_000_000
    assert trade["execution"] == {"type": "pov", "limit_price": 10, "pov_pct": 15, "start": None, "end": None}


def test_an_amendment_with_no_pending_order_says_so(make_desk):
    desk = make_desk()
    say(desk, "改限价10")
    [reply] = pending(desk)
    assert reply["kind"] == "order_status" and "没有待确认的订单" in reply["draft_reply"]


def test_cancel_withdraws_the_pending_order_and_nothing_is_ever_booked(make_desk):
    desk = make_desk()
    sent_quote(desk)
    say(desk, "200万 市价 产品1 确认下单")
    [order] = pending(desk, "order")
    say(desk, "撤单")
    withdrawn = desk.reviews.get(order["id"])
    assert withdrawn["status"] == "withdrawn" and withdrawn["decided_by"].startswith("client:")
    assert state_of(desk, order["id"]).next == ()  # its graph thread finished, with the withdrawal
    assert "review.withdrawn" in audit_actions(desk)
    [ack] = pending(desk)
    assert ack["kind"] == "order_status" and "已为您撤销订单" in ack["draft_reply"]
    with pytest.raises(ReviewError) as err:
        desk.reviews.approve(order["id"], "t1")
    assert err.value.code == "conflict"
    send(desk, ack["id"])
    assert trade_actions(desk) == [] and trade_count(desk) == 0
    # the trade service itself refuses the withdrawn item too
    refused = desk.trades.book(order["id"], "t1")
    assert refused["trade_id"] is None and refused["code"] == "conflict" and trade_count(desk) == 0
    assert trade_actions(desk) == ["trade.book_refused"]


def test_order_status_is_drafted_for_review(make_desk):
    desk = make_desk()
    say(desk, "订单状态")
    [none] = pending(desk)
    assert none["kind"] == "order_status" and "没有查到" in none["draft_reply"]
    send(desk, none["id"])
    sent_quote(desk)
    say(desk, "200万 市价 产品1 确认下单")
    [order] = pending(desk, "order")
    say(desk, "下单了吗")
    [status] = pending(desk, "order_status")
    assert "待交易员确认" in status["draft_reply"]
    send(desk, status["id"])
    send(desk, order["id"])  # booked by the trade service
    say(desk, "成交了吗")
    [status] = pending(desk, "order_status")
    trade = trade_of(desk, order["id"])
    assert trade["id"] in status["draft_reply"] and "已成交（存续）" in status["draft_reply"]


def test_approval_books_through_the_trade_service_once_and_sends_its_confirmation(make_desk):
    desk = make_desk()
    quote = sent_quote(desk)
    say(desk, "200万 市价 产品1 确认下单")
    [order] = pending(desk, "order")
    assert "booking" not in order["detail"]
    assert send(desk, order["id"])["status"] == "sent"
    trade = trade_of(desk, order["id"])
    assert trade["status"] == "live" and trade["quote_id"] == quote["id"] and trade["notional"] == 2_000_000
    assert [a["step"] for a in trade["approvals"]] == ["book"] and trade["confirmation"]["sha256"]
    assert trade_actions(desk).count("trade.book") == 1
    # the service's booking confirmation goes out, not the draft
    assert bot_texts(desk)[-1].endswith(booking_message(trade)) and order["draft_reply"] not in bot_texts(desk)[-1]
    assert desk.reviews.get(order["id"])["status"] == "sent" and state_of(desk, order["id"]).values["outcome"] == \
        "booked"
    # booking the same item again answers with that trade: nothing new is booked or sent
    again = desk.trades.book(order["id"], "t1")
    assert again["trade_id"] == trade["id"] and again["message"] == booking_message(trade)
    assert asyncio.run(desk.outbox.dispatch()) == 0 and trade_count(desk) == 1
    assert trade_actions(desk).count("trade.book") == 1


def test_a_deliver_node_cut_off_after_booking_books_and_sends_once_when_resumed(make_desk):
    """The outbox write fails once (injected at the driver boundary) after the trade was booked: the decision stays,
    recovery runs the deliver node again, the trade service answers with the same trade, one message goes out."""
    from sqlalchemy import event
    from sqlalchemy.exc import OperationalError

    desk = make_desk()
    sent_quote(desk)
    say(desk, "200万 市价 产品1 确认下单")
    [order] = pending(desk, "order")
    faults = {"left": 1}

    def fail_once(conn, cursor, statement, params, context, executemany):
        if faults["left"] and statement.lstrip().upper().startswith("INSERT INTO OUTBOX"):
            faults["left"] -= 1
            raise OperationalError(statement, params, Exception("database is away"))

    event.listen(desk.engine, "before_cursor_execute", fail_once)
    try:
        with pytest.raises(OperationalError):
            desk.reviews.approve(order["id"], "t1")
    finally:
        event.remove(desk.engine, "before_cursor_execute", fail_once)
    assert faults["left"] == 0 and desk.reviews.get(order["id"])["status"] == "approved"
    booked_first = trade_of(desk, order["id"])  # booked before the outbox write failed; nothing queued yet
    assert booked_first["status"] == "live" and trade_actions(desk).count("trade.book") == 1
    assert asyncio.run(desk.outbox.dispatch()) == 0 and not any("【成交确认" in t for t in bot_texts(desk))

    assert desk.runner.recover()["resumed"] >= 1
    assert desk.runner.recover() and asyncio.run(desk.outbox.dispatch()) == 1  # the deliver node ran again
    assert trade_count(desk) == 1 and trade_actions(desk).count("trade.book") == 1
    trade = trade_of(desk, order["id"])
    assert trade["id"] == booked_first["id"]
    confirmations = [t for t in bot_texts(desk) if "【成交确认" in t]
    assert len(confirmations) == 1 and confirmations[0].endswith(booking_message(trade))
    assert desk.reviews.get(order["id"])["status"] == "sent"


def test_a_trade_waiting_for_a_second_approval_sends_nothing_until_risk_approves(make_desk):
    desk = make_desk()
    sent_quote(desk)
    say(desk, "1亿 市价 产品1 确认下单")
    [order] = pending(desk, "order")
    desk.reviews.approve(order["id"], "t1")
    assert asyncio.run(desk.outbox.dispatch()) == 0
    trade = trade_of(desk, order["id"])
    assert trade["status"] == "pending_second_approval" and trade["notional"] == 100_000_000
    assert desk.reviews.get(order["id"])["status"] == "approved"
    assert state_of(desk, order["id"]).values["outcome"] == "booked"
    assert not any("【成交确认" in t for t in bot_texts(desk))  # the client hears nothing yet
    assert trade_actions(desk) == ["trade.book"]  # no confirmation before the second approval

    for user, role in (("t1", "risk"), ("t2", "trader")):  # the booker, or another role: refused
        with pytest.raises(LifecycleError) as err:
            desk.trades.approve_second(trade["id"], user, role)
        assert err.value.code == "forbidden"
    assert asyncio.run(desk.outbox.dispatch()) == 0

    approved = desk.trades.approve_second(trade["id"], "risk1", "risk")
    assert approved["status"] == "live" and [(a["user"], a["role"]) for a in approved["approvals"]] == \
        [("t1", "trader"), ("risk1", "risk")]
    assert asyncio.run(desk.outbox.dispatch()) == 1
    confirmations = [t for t in bot_texts(desk) if "【成交确认" in t]
    assert len(confirmations) == 1 and confirmations[0].endswith(booking_message(approved))
    assert desk.reviews.get(order["id"])["status"] == "sent"
    assert "trade.approve_second" in trade_actions(desk) and "trade.confirmation" in trade_actions(desk)

    with pytest.raises(LifecycleError) as err:  # approved once: a second go changes and sends nothing
        desk.trades.approve_second(trade["id"], "risk2", "risk")
    assert asyncio.run(desk.outbox.dispatch()) == 0
    assert len([t for t in bot_texts(desk) if "【成交确认" in t]) == 1 and trade_count(desk) == 1


def test_the_same_platform_message_twice_is_one_order_item(make_desk):
    desk = make_desk()
    sent_quote(desk)
    say(desk, "200万 市价 产品1 确认下单", msg_id="wx-1")
    say(desk, "200万 市价 产品1 确认下单", msg_id="wx-1")
    [order] = pending(desk, "order")
    send(desk, order["id"])
    assert trade_count(desk) == 1 and trade_of(desk, order["id"])["status"] == "live"
    assert len([t for t in bot_texts(desk) if "【成交确认" in t]) == 1


def other_institution(desk, name="别家资产管理有限公司", group="other"):
    """A second KYC-approved institution with a chat group of its own."""
    with transaction(desk.engine) as tx:
        inst = tx.clients.add_institution(name, "approved", True)
        tx.clients.add_group("sim", group, inst.id)
        tx.audit.record("test", "institution.create", f"institution:{inst.id}", {"name": name})


def unwound_event(desk, trade_id, review_id):
    with transaction(desk.engine) as tx:
        row = tx.trades.get(trade_id)
        event = next(e for e in tx.trades.events(trade_id)
                     if e.type == "unwound" and e.detail["review_id"] == review_id)
        return row.status, row.notional, event.cash_cny, event.detail, unwind_message(row, event)


def test_holdings_list_the_institutions_live_trades_and_an_unwind_picks_by_number(make_desk):
    desk = make_desk()
    sent_quote(desk)
    a1 = booked(desk, "1000万 市价 产品1 确认下单")
    a2 = booked(desk, "500万 市价 产品2 确认下单")
    a3 = booked(desk, "700万 市价 产品1 确认下单")
    closed = desk.trades.unwind_or_raise(add_unwind(desk.engine, a3, notional=None, sender_id="c1"), "t1")
    assert closed["status"] == "closed"
    other_institution(desk)
    sent_quote(desk, sender="w2", chat="other")
    b1 = booked(desk, "900万 市价 确认下单", sender="w2", chat="other")

    say(desk, "查持仓")
    [holdings] = pending(desk)
    assert holdings["kind"] == "holdings" and set(holdings["detail"]["trades"]) == {a1, a2}
    listed = holdings["detail"]["trades"]
    for tid in listed:
        assert tid in holdings["draft_reply"]
    assert a3 not in holdings["draft_reply"] and b1 not in holdings["draft_reply"]
    assert "香草" in holdings["draft_reply"] and "000300.SH" in holdings["draft_reply"]
    assert "1000万" in holdings["draft_reply"] and "500万" in holdings["draft_reply"]
    send(desk, holdings["id"])

    say(desk, "第一笔，全平，市价")
    [unwind] = pending(desk, "unwind")
    first = listed[0]
    whole, account = {a1: (10_000_000, STABLE), a2: (5_000_000, GROWTH)}[first]
    assert unwind["ref_id"] == first and unwind["order"] == {"trade_id": first, "notional": whole,
                                                              "execution": MARKET, "account": account}
    # priced from the book by the trade service: today's fair value less the unwind margin of the margin table
    quote = unwind["detail"]["unwind_quote"]
    trade = desk.trades.get(first)
    left = (date.fromisoformat(trade["product"]["maturity_date"]) - date.fromisoformat(quote["valuation_date"])).days
    assert "error" not in quote and (quote["trade_id"], quote["notional"]) == (first, whole)
    assert quote["margin_pct"] == desk.margins.unwind_margin_pct("vanilla", left) > 0
    assert quote["price_pct"] == pytest.approx(quote["fair_price_pct"] - quote["margin_pct"])
    assert f"{quote['price_pct']:.2f}%" in unwind["draft_reply"]
    assert send(desk, unwind["id"])["status"] == "sent"
    status, notional, cash, detail, message = unwound_event(desk, first, unwind["id"])
    assert status == "closed" and detail["full"] is True and detail["price_pct"] == quote["price_pct"]
    assert cash == round(quote["price_pct"] / 100 * whole, 2)
    assert bot_texts(desk)[-1].endswith(message) and f"【平仓确认 {first}】已全部平仓" in message
    other = a2 if first == a1 else a1
    assert desk.trades.get(other)["status"] == "live" and desk.trades.get(b1)["status"] == "live"


def test_unwind_by_trade_id_partial_missing_and_refused(make_desk):
    desk = make_desk()
    sent_quote(desk)
    a1 = booked(desk, "1000万 市价 产品1 确认下单")
    say(desk, f"平掉 {a1} 100万 市价")
    [unwind] = pending(desk, "unwind")
    assert unwind["order"]["notional"] == 1_000_000 and unwind["detail"]["full"] is False
    desk.reviews.reject(unwind["id"], "t1", "改天")

    say(desk, f"{a1} 平一半")  # no instruction yet: asked
    [ask] = pending(desk, "unwind")
    assert ask["detail"]["missing"] == ["unwind_execution"] and "平仓指令" in ask["draft_reply"]
    say(desk, "收盘价")
    [unwind] = pending(desk, "unwind")
    assert unwind["order"]["notional"] == 5_000_000 and unwind["order"]["execution"]["type"] == "close"
    assert unwind["detail"]["unwind_quote"]["notional"] == 5_000_000
    assert trade_actions(desk).count("trade.unwind") == 0  # the rejected one unwound nothing
    send(desk, unwind["id"])  # a partial unwind reduces the live trade
    status, notional, cash, detail, message = unwound_event(desk, a1, unwind["id"])
    assert (status, notional, detail["full"], detail["remaining_notional"]) == ("live", 5_000_000, False, 5_000_000)
    assert cash == round(unwind["detail"]["unwind_quote"]["price_pct"] / 100 * 5_000_000, 2)
    assert bot_texts(desk)[-1].endswith(message) and "已部分平仓，剩余名义本金 500万元" in message

    say(desk, f"平掉 {a1} 2000万 市价")
    [refused] = pending(desk, "unwind")
    assert refused["detail"]["refused"] and "超过存续名义本金500万" in refused["draft_reply"]
    send(desk, refused["id"])
    assert trade_actions(desk).count("trade.unwind") == 1 and desk.trades.get(a1)["notional"] == 5_000_000
    say(desk, "平掉 T00000000FF 市价 全平")
    assert any("未找到" in i["draft_reply"] for i in pending(desk, "unwind"))


def test_a_second_unwind_the_same_day_closes_the_rest_and_a_stale_unwind_is_refused_at_approval(make_desk):
    desk = make_desk()
    sent_quote(desk)
    a1 = booked(desk, "1000万 市价 产品1 确认下单")
    say(desk, f"平掉 {a1} 400万 市价")
    [part] = pending(desk, "unwind")
    send(desk, part["id"])
    assert desk.trades.get(a1)["notional"] == 6_000_000
    say(desk, f"平掉 {a1} 全平 市价")  # the same day: a second unwind of the same trade
    [rest] = pending(desk, "unwind")
    assert rest["order"]["notional"] == 6_000_000
    say(desk, f"平掉 {a1} 300万 市价", sender="c1")  # another request on the same trade, still pending
    [later] = [i for i in pending(desk, "unwind") if i["id"] != rest["id"]]
    assert send(desk, rest["id"])["status"] == "sent" and desk.trades.get(a1)["status"] == "closed"
    actions, texts = trade_actions(desk), bot_texts(desk)
    with pytest.raises(ReviewError) as refused:  # its trade is closed now: refused before anything is written
        desk.reviews.approve(later["id"], "t1")
    assert refused.value.code == "conflict" and "closed" in refused.value.message
    assert desk.reviews.get(later["id"])["status"] == "pending"
    assert trade_actions(desk) == actions and bot_texts(desk) == texts


def test_an_unwind_naming_no_trade_asks_for_everything_once_and_a_number_answers(make_desk):
    desk = make_desk()
    sent_quote(desk)
    a1 = booked(desk, "1000万 市价 产品1 确认下单")
    a2 = booked(desk, "600万 市价 产品1 确认下单")
    say(desk, "提前终止")
    [ask] = pending(desk, "unwind")
    assert ask["detail"]["missing"] == ["trade", "unwind_notional", "unwind_execution"]
    offered = ask["detail"]["trades"]
    assert sorted(offered) == sorted([a1, a2]) and all(t in ask["draft_reply"] for t in offered)
    say(desk, "第二笔，全平，市价")
    [unwind] = pending(desk, "unwind")
    assert desk.reviews.get(ask["id"])["status"] == "withdrawn"  # answered
    whole = {a1: 10_000_000, a2: 6_000_000}[offered[1]]
    assert unwind["order"] == {"trade_id": offered[1], "notional": whole, "execution": MARKET, "account": STABLE}
