"""Orders, amendments, cancels, status, holdings and unwinds through the desk graph on a real desk core: a SQLite
file, the real parser, pricer, runner, review service, outbox and simulator (tests/desk_fixtures.py)."""
from __future__ import annotations

import asyncio
import hashlib
import time
import uuid

import pytest

from otcdesk.app.db import init_db, make_engine
from otcdesk.app.demo import DEMO_ACCOUNTS, seed_demo
from otcdesk.app.models import TradeRow
from otcdesk.app.repositories import transaction
from otcdesk.app.repositories.sim import SqlSimTranscript
from otcdesk.app.settings import load_settings
from otcdesk.app.wiring import build_desk
from otcdesk.bots.base import InboundMessage
from otcdesk.bots.simulator import SimulatorChannel
from otcdesk.workflows.review import ReviewError

INSTITUTION = "示例资产管理有限公司"
STABLE, GROWTH = DEMO_ACCOUNTS[INSTITUTION]
MARKET = {"type": "market", "limit_price": None, "pov_pct": None, "start": None, "end": None}


class LedgerTrading:
    """A minimal `agents.desk.TradingPort` over the real trade table (the trade service itself is another branch's):
    one trade per order item, four eyes above a limit (then no message), calls counted."""

    def __init__(self, engine, four_eyes: float = 50_000_000):
        self.engine, self.four_eyes, self.calls = engine, four_eyes, []

    def book(self, review_id, by):
        self.calls.append(("book", review_id))
        with transaction(self.engine) as tx:
            trade = tx.trades.for_order(review_id)
            if trade is None:
                item = tx.reviews.get(review_id)
                order, line = item.order, item.lines[0]
                status = "pending_second_approval" if order["notional"] > self.four_eyes else "live"
                trade = TradeRow(id="T" + hashlib.sha1(review_id.encode()).hexdigest()[:10].upper(),
                                 order_review_id=review_id, status=status, institution=INSTITUTION,
                                 channel=item.channel, chat_id=item.chat_id, sender_id=item.sender_id,
                                 client=item.sender_name, account=order["account"], quote_id=order["quote_id"],
                                 product=line["request"], underlying=line["request"]["underlying"],
                                 structure=line["request"]["structure"], notional=order["notional"],
                                 original_notional=order["notional"], price_pct=line["price_pct"],
                                 premium_cny=order["notional"] * line["price_pct"] / 100,
                                 execution=order["execution"], booked_by=by)
                tx.trades.add(trade)
                tx.audit.record(by, "trade.book", f"trade:{trade.id}", {"review": review_id})
            message = None if trade.status == "pending_second_approval" else f"成交确认：交易编号 {trade.id}"
            return {"trade_id": trade.id, "status": trade.status, "message": message}

    def unwind(self, review_id, by):
        self.calls.append(("unwind", review_id))
        with transaction(self.engine) as tx:
            item = tx.reviews.get(review_id)
            trade = tx.trades.get(item.order["trade_id"])
            if trade.status == "live":
                left = trade.notional - item.order["notional"]
                tx.trades.move(trade, "unwind", "closed" if left <= 0 else "live", by, notional=max(left, 0))
            return {"trade_id": trade.id, "status": trade.status, "message": f"平仓确认：交易编号 {trade.id}"}

    def unwind_quote(self, trade_id, notional):
        return {"price_pct": 1.25, "value_cny": notional * 0.0125, "margin_pct": 0.2}


@pytest.fixture
def make_desk(tmp_path):
    built = []

    def make(trading: bool = False, **overrides):
        settings = load_settings(data_dir=tmp_path / uuid.uuid4().hex[:6], DATABASE_URL=None, **overrides)
        settings.ensure_dirs()
        engine = make_engine(settings.db_url)
        init_db(engine)
        seed_demo(engine)
        port = LedgerTrading(engine) if trading else None
        desk = build_desk(settings, engine, trading=port)
        desk.connect(SimulatorChannel(SqlSimTranscript(engine), desk.inbound))
        desk.ledger = port
        built.append(desk)
        return desk

    yield make
    for desk in built:
        desk.close()
        desk.engine.dispose()


def say(desk, text, sender="c1", chat="demo", msg_id=None):
    desk.inbound(InboundMessage(channel="sim", chat_id=chat, sender_id=sender, sender_name=sender, text=text,
                                platform_msg_id=msg_id or uuid.uuid4().hex))
    desk.runner.drain()


def pending(desk, kind=None):
    return [i for i in desk.reviews.list("pending") if kind is None or i["kind"] == kind]


def send(desk, item_id, reply=None):
    desk.reviews.approve(item_id, "t1", reply)
    asyncio.run(desk.outbox.dispatch())
    return desk.reviews.get(item_id)


def sent_quote(desk, text="沪深300 1个月 平值看跌 1000万", sender="c1"):
    say(desk, text, sender)
    [item] = pending(desk, "quote")
    assert send(desk, item["id"])["status"] == "sent"
    return item


def bot_texts(desk, chat="demo"):
    return [m["text"] for m in desk.outbox.channels["sim"].transcript.messages(chat) if m["from_bot"]]


def audit_actions(desk):
    with transaction(desk.engine) as tx:
        return [e.action for e in tx.audit.entries()]


def state_of(desk, review_id):
    with transaction(desk.engine) as tx:
        thread = tx.reviews.get(review_id).thread_id
    return desk.runner.graph.get_state({"configurable": {"thread_id": thread}})


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
    assert order["detail"]["booking"] == "manual" and not order["detail"].get("stale")
    # no trade service: approval sends the acknowledgement and books nothing
    assert send(desk, order["id"])["status"] == "sent"
    assert bot_texts(desk)[-1].endswith(order["draft_reply"]) and "交易员核对" in order["draft_reply"]
    with transaction(desk.engine) as tx:
        assert tx.trades.count() == 0


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
    # each line's item is decided on its own thread
    assert send(desk, orders[1]["id"])["status"] == "sent" and desk.reviews.get(orders[0]["id"])["status"] == "pending"


@pytest.mark.parametrize("text,why", [("-200万 市价 产品1 确认下单", "需大于0"), ("名义本金0 市价 产品1 确认下单", "需大于0"),
                                      ("300亿 市价 产品1 确认下单", "超过单笔上限")])
def test_a_size_that_cannot_be_traded_is_refused_with_the_reason(make_desk, text, why):
    desk = make_desk(trading=True)
    sent_quote(desk)
    say(desk, text)
    [item] = pending(desk, "order")
    assert item["detail"]["refused"] and why in item["draft_reply"] and "未下单" in item["draft_reply"]
    send(desk, item["id"])
    assert desk.ledger.calls == []  # the refusal is sent, nothing is booked


def test_an_order_with_no_sent_quote_gets_a_question(make_desk):
    desk = make_desk(trading=True)
    say(desk, "200万，市价，确认下单")
    [item] = pending(desk, "order")
    assert item["detail"]["missing"] == ["quote"] and "哪一笔报价" in item["draft_reply"]
    say(desk, "按 Q0123456789 做")
    [item] = pending(desk, "order")
    assert "未找到" in item["draft_reply"] and "Q0123456789" in item["draft_reply"]
    send(desk, item["id"])
    assert desk.ledger.calls == []


def test_an_order_on_a_stale_quote_is_not_approved_and_the_quote_is_repriced(make_desk):
    desk = make_desk(trading=True, quote_valid_s=1)
    quote = sent_quote(desk)
    time.sleep(1.2)
    say(desk, "200万 市价 产品1 确认下单")
    [order] = pending(desk, "order")
    assert order["detail"]["stale"] is True and order["detail"]["quote_age_s"] > 1
    assert "有效期" in order["draft_reply"] and "重新报价" in order["draft_reply"]
    with pytest.raises(ReviewError) as err:
        desk.reviews.approve(order["id"], "t1")
    assert err.value.code == "expired" and "stale quote" in err.value.message and "reprice" in err.value.message
    assert desk.reviews.get(order["id"])["status"] == "pending" and desk.ledger.calls == []

    fresh = desk.reviews.reprice(order["id"], "t1")
    assert fresh["kind"] == "quote" and fresh["status"] == "pending" and fresh["requests"] == quote["requests"]
    assert desk.reviews.get(order["id"])["status"] == "rejected"


def test_an_institution_not_onboarded_gets_the_onboarding_notice_not_an_order(make_desk):
    desk = make_desk(trading=True)
    say(desk, "200万，市价，确认下单", sender="w1", chat="prospect")
    [item] = pending(desk)
    assert item["kind"] == "onboarding" and item["order"] is None and "KYC" in item["draft_reply"]
    send(desk, item["id"])
    assert desk.ledger.calls == []


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


def test_an_amendment_with_no_pending_order_says_so(make_desk):
    desk = make_desk()
    say(desk, "改限价10")
    [reply] = pending(desk)
    assert reply["kind"] == "order_status" and "没有待确认的订单" in reply["draft_reply"]


def test_cancel_withdraws_the_pending_order_and_nothing_is_ever_booked(make_desk):
    desk = make_desk(trading=True)
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
    assert desk.ledger.calls == []
    with transaction(desk.engine) as tx:
        assert tx.trades.count() == 0


def test_order_status_is_drafted_for_review(make_desk):
    desk = make_desk(trading=True)
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
    send(desk, order["id"])  # booked through the trading port
    say(desk, "成交了吗")
    [status] = pending(desk, "order_status")
    trade_id = desk.ledger.book(order["id"], "t1")["trade_id"]
    assert trade_id in status["draft_reply"] and "已成交" in status["draft_reply"]


def test_approval_books_through_the_trading_port_once_and_sends_its_confirmation(make_desk):
    desk = make_desk(trading=True)
    sent_quote(desk)
    say(desk, "200万 市价 产品1 确认下单")
    [order] = pending(desk, "order")
    assert "booking" not in order["detail"]
    send(desk, order["id"])
    assert desk.ledger.calls == [("book", order["id"])]
    trade_id = desk.ledger.book(order["id"], "t1")["trade_id"]
    assert bot_texts(desk)[-1].endswith(f"成交确认：交易编号 {trade_id}")  # the port's message, not the draft
    assert desk.reviews.get(order["id"])["status"] == "sent"


def test_a_deliver_node_cut_off_after_booking_books_and_sends_once_when_resumed(make_desk):
    """The outbox write fails once (injected at the driver boundary) after the trade was booked: the decision stays,
    recovery runs the deliver node again, the port answers with the same trade, one message goes out."""
    from sqlalchemy import event
    from sqlalchemy.exc import OperationalError

    desk = make_desk(trading=True)
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
    assert desk.reviews.get(order["id"])["status"] == "approved" and desk.ledger.calls == [("book", order["id"])]
    assert desk.runner.recover()["resumed"] >= 1
    assert desk.runner.recover() and asyncio.run(desk.outbox.dispatch()) == 1
    assert [c for c, _ in desk.ledger.calls] == ["book", "book"]  # the deliver node ran again
    with transaction(desk.engine) as tx:
        assert tx.trades.count() == 1
    assert len([t for t in bot_texts(desk) if "成交确认：" in t]) == 1


def test_a_trade_waiting_for_a_second_approval_sends_nothing_now(make_desk):
    desk = make_desk(trading=True)
    sent_quote(desk)
    say(desk, "1亿 市价 产品1 确认下单")
    [order] = pending(desk, "order")
    desk.reviews.approve(order["id"], "t1")
    assert asyncio.run(desk.outbox.dispatch()) == 0
    assert desk.reviews.get(order["id"])["status"] == "approved" and desk.ledger.calls == [("book", order["id"])]
    assert state_of(desk, order["id"]).values["outcome"] == "booked"


def test_the_same_platform_message_twice_is_one_order_item(make_desk):
    desk = make_desk(trading=True)
    sent_quote(desk)
    say(desk, "200万 市价 产品1 确认下单", msg_id="wx-1")
    say(desk, "200万 市价 产品1 确认下单", msg_id="wx-1")
    [order] = pending(desk, "order")
    send(desk, order["id"])
    with transaction(desk.engine) as tx:
        assert tx.trades.count() == 1


def add_trade(desk, trade_id, notional, status="live", institution=INSTITUTION, underlying="000905.SH"):
    with transaction(desk.engine) as tx:
        tx.trades.add(TradeRow(id=trade_id, order_review_id="R" + trade_id, status=status, institution=institution,
                               channel="sim", chat_id="demo", sender_id="c1", client="c1", account=STABLE,
                               quote_id=None, product={"underlying_name": "中证500"}, underlying=underlying,
                               structure="snowball", notional=notional, original_notional=notional, price_pct=0,
                               premium_cny=0, execution={}, booked_by="t1"))


def test_holdings_list_the_institutions_live_trades_and_an_unwind_picks_by_number(make_desk):
    desk = make_desk(trading=True)
    add_trade(desk, "T00000000A1", 10_000_000)
    add_trade(desk, "T00000000A2", 5_000_000)
    add_trade(desk, "T00000000A3", 7_000_000, status="closed")
    add_trade(desk, "T00000000B1", 9_000_000, institution="别家机构")
    say(desk, "查持仓")
    [holdings] = pending(desk)
    assert holdings["kind"] == "holdings" and set(holdings["detail"]["trades"]) == {"T00000000A1", "T00000000A2"}
    listed = holdings["detail"]["trades"]
    for tid in listed:
        assert tid in holdings["draft_reply"]
    assert "T00000000A3" not in holdings["draft_reply"] and "T00000000B1" not in holdings["draft_reply"]
    assert "雪球" in holdings["draft_reply"] and "000905.SH" in holdings["draft_reply"]
    send(desk, holdings["id"])

    say(desk, "第一笔，全平，市价")
    [unwind] = pending(desk, "unwind")
    first = listed[0]
    whole = 10_000_000 if first == "T00000000A1" else 5_000_000
    assert unwind["ref_id"] == first and unwind["order"] == {"trade_id": first, "notional": whole,
                                                              "execution": MARKET, "account": STABLE}
    assert unwind["detail"]["unwind_quote"]["price_pct"] == 1.25 and "1.25%" in unwind["draft_reply"]
    send(desk, unwind["id"])
    assert desk.ledger.calls == [("unwind", unwind["id"])]
    with transaction(desk.engine) as tx:
        assert tx.trades.get(first).status == "closed"


def test_unwind_by_trade_id_partial_missing_and_refused(make_desk):
    desk = make_desk(trading=True)
    add_trade(desk, "T00000000A1", 10_000_000)
    say(desk, "平掉 T00000000A1 100万 市价")
    [unwind] = pending(desk, "unwind")
    assert unwind["order"]["notional"] == 1_000_000 and unwind["detail"]["full"] is False
    desk.reviews.reject(unwind["id"], "t1", "改天")

    say(desk, "T00000000A1 平一半")  # no instruction yet: asked
    [ask] = pending(desk, "unwind")
    assert ask["detail"]["missing"] == ["unwind_execution"] and "平仓指令" in ask["draft_reply"]
    say(desk, "收盘价")
    [unwind] = pending(desk, "unwind")
    assert unwind["order"]["notional"] == 5_000_000 and unwind["order"]["execution"]["type"] == "close"
    desk.reviews.reject(unwind["id"], "t1", "改天")

    say(desk, "平掉 T00000000A1 2000万 市价")
    [refused] = pending(desk, "unwind")
    assert refused["detail"]["refused"] and "超过存续名义本金" in refused["draft_reply"]
    say(desk, "平掉 T00000000FF 市价 全平")
    assert any("未找到" in i["draft_reply"] for i in pending(desk, "unwind"))


def test_an_unwind_naming_no_trade_asks_for_everything_once_and_a_number_answers(make_desk):
    desk = make_desk(trading=True)
    add_trade(desk, "T00000000A1", 10_000_000)
    add_trade(desk, "T00000000A2", 6_000_000)
    say(desk, "提前终止")
    [ask] = pending(desk, "unwind")
    assert ask["detail"]["missing"] == ["trade", "unwind_notional", "unwind_execution"]
    offered = ask["detail"]["trades"]
    assert sorted(offered) == ["T00000000A1", "T00000000A2"] and all(t in ask["draft_reply"] for t in offered)
    say(desk, "第二笔，全平，市价")
    [unwind] = pending(desk, "unwind")
    assert desk.reviews.get(ask["id"])["status"] == "withdrawn"  # answered
    whole = {"T00000000A1": 10_000_000, "T00000000A2": 6_000_000}[offered[1]]
    assert unwind["order"] == {"trade_id": offered[1], "notional": whole, "execution": MARKET, "account": STABLE}
