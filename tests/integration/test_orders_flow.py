"""Orders from the group over HTTP on the real server (demo mode, simulator, SQLite, the trade service it wires):
quote → sent → order item with its terms → approved, booked and confirmed to the client; amend and cancel over chat;
a stale quote; the same platform message delivered twice."""
import asyncio

from otcdesk.app.db import make_engine
from otcdesk.app.demo import DEMO_ACCOUNTS
from otcdesk.app.repositories import transaction
from otcdesk.app.server import DESK
from otcdesk.app.trading.booking import booking_message
from otcdesk.bots.base import InboundMessage
from desk_fixtures import RunningDesk, wait_for

QUOTE = "@询价机器人 沪深300 1个月 平值看跌 1000万"
STABLE, GROWTH = DEMO_ACCOUNTS["示例资产管理有限公司"]
MARKET = {"type": "market", "limit_price": None, "pov_pct": None, "start": None, "end": None}


async def items(session, status=None):
    r = await session.get("/api/review" + (f"?status={status}" if status else ""))
    assert r.status == 200
    return await r.json()


async def one_pending(session, kind, exclude=()):
    async def found():
        got = [i for i in await items(session, "pending") if i["kind"] == kind and i["id"] not in exclude]
        return got[0] if got else None
    return await wait_for(found)


async def item(session, rid):
    return next(i for i in await items(session) if i["id"] == rid)


async def status_is(session, rid, status):
    async def check():
        it = await item(session, rid)
        return it if it["status"] == status else None
    return await wait_for(check)


async def sent_quote(desk, trader):
    await desk.say(QUOTE)
    quote = await one_pending(trader, "quote")
    assert (await trader.post(f"/api/review/{quote['id']}/approve", json={})).status == 200
    await status_is(trader, quote["id"], "sent")
    return quote


async def test_quote_sent_then_order_with_its_terms_then_approved(desk):
    async with await desk.login() as trader:
        quote = await sent_quote(desk, trader)
        await desk.say("200万，市价，确认下单")
        ask = await one_pending(trader, "order")
        assert ask["ref_id"] == quote["id"] and ask["detail"]["missing"] == ["account"]
        assert (ask["order"]["quote_id"], ask["order"]["notional"], ask["order"]["execution"]) == \
            (quote["id"], 2_000_000, MARKET)
        assert STABLE in ask["draft_reply"] and GROWTH in ask["draft_reply"]

        await desk.say("稳健一号")
        order = await one_pending(trader, "order", exclude={ask["id"]})
        assert order["order"] == {"quote_id": quote["id"], "notional": 2_000_000, "execution": MARKET,
                                  "account": STABLE, "line": 1}
        assert order["ref_id"] == quote["id"] and order["lines"] == quote["lines"]
        assert "booking" not in order["detail"]  # the server wires the trade service: approval books
        assert (await item(trader, ask["id"]))["status"] == "withdrawn"  # the question was answered

        assert (await trader.post(f"/api/review/{order['id']}/approve", json={})).status == 200
        await status_is(trader, order["id"], "sent")
        with transaction(desk.app[DESK].engine) as tx:  # the trade booked from this order item
            trade_id = tx.trades.for_order(order["id"]).id
        r = await trader.get(f"/api/trades/{trade_id}")
        assert r.status == 200
        trade = await r.json()
        assert (trade["status"], trade["quote_id"], trade["notional"], trade["account"], trade["booked_by"]) == \
            ("live", quote["id"], 2_000_000, STABLE, "trader1")
        assert trade["price_pct"] == quote["lines"][0]["price_pct"] and trade["institution"] == "示例资产管理有限公司"
        # the client gets the booking confirmation (not the order's draft), once, with an @mention
        replies = [m["text"] for m in await desk.transcript() if m["from_bot"]]
        assert replies[-1].startswith("@张经理") and replies[-1].endswith(booking_message(trade))
        assert f"【成交确认 {trade_id}】" in replies[-1] and quote["id"] in replies[-1] and "200万元" in replies[-1]
        assert len([t for t in replies if "【成交确认" in t]) == 1


async def test_amend_and_cancel_over_chat(desk):
    async with await desk.login() as trader:
        await sent_quote(desk, trader)
        await desk.say("200万 POV 12% 限价6.5 产品1 确认下单")
        order = await one_pending(trader, "order")
        assert order["order"]["execution"]["type"] == "pov" and order["order"]["account"] == STABLE

        await desk.say("改限价10")

        async def amended():
            it = await item(trader, order["id"])
            return it if it["order"]["execution"]["limit_price"] == 10 else None
        it = await wait_for(amended)
        assert it["order"]["execution"]["pov_pct"] == 12 and "限价10" in it["draft_reply"]
        await desk.say("名义本金改成300万")

        async def resized():
            it = await item(trader, order["id"])
            return it if it["order"]["notional"] == 3_000_000 else None
        await wait_for(resized)

        await desk.say("撤单")
        withdrawn = await status_is(trader, order["id"], "withdrawn")
        assert withdrawn["reason"] and withdrawn["decided_by"].startswith("client:")
        ack = await one_pending(trader, "order_status")
        assert "撤销" in ack["draft_reply"]
        r = await trader.post(f"/api/review/{order['id']}/approve", json={})
        assert r.status == 409  # nothing is ever booked or sent from a cancelled order
    engine = make_engine(desk.settings.db_url)
    with transaction(engine) as tx:
        actions = [e.action for e in tx.audit.entries()]
        assert tx.trades.for_order(order["id"]) is None  # (the demo seeds a sample book of its own)
    engine.dispose()
    assert actions.count("order.amend") == 2 and "review.withdrawn" in actions


async def test_an_order_on_a_stale_quote_cannot_be_approved(desk_settings):
    desk_settings.quote_valid_s = 1.0
    desk = await RunningDesk(desk_settings).start()
    try:
        async with await desk.login() as trader:
            quote = await sent_quote(desk, trader)
            await asyncio.sleep(1.2)
            await desk.say("200万 市价 产品2 确认下单")
            order = await one_pending(trader, "order")
            assert order["detail"]["stale"] is True and order["ref_id"] == quote["id"]
            r = await trader.post(f"/api/review/{order['id']}/approve", json={})
            body = await r.json()
            assert r.status == 409 and "stale quote" in body["error"] and "reprice" in body["error"]
            with transaction(desk.app[DESK].engine) as tx:
                assert tx.trades.for_order(order["id"]) is None  # not booked at the stale price
            r = await trader.post(f"/api/review/{order['id']}/reprice", json={})
            assert r.status == 200
            fresh = await r.json()
            assert fresh["kind"] == "quote" and fresh["status"] == "pending" and fresh["requests"] == quote["requests"]
    finally:
        await desk.stop()


async def test_the_same_platform_message_twice_is_one_order_item(desk):
    async with await desk.login() as trader:
        quote = await sent_quote(desk, trader)
        core = desk.app[DESK]
        message = InboundMessage(channel="sim", chat_id="demo", sender_id="张经理", sender_name="张经理",
                                 text="200万 市价 产品1 确认下单", platform_msg_id="wecom-msg-1")
        for _ in range(2):  # a channel delivering the same message again (a retry, a reconnect)
            await asyncio.to_thread(core.inbound, message)
        order = await one_pending(trader, "order")
        await asyncio.sleep(1.0)
        orders = [i for i in await items(trader) if i["kind"] == "order"]
        assert [o["id"] for o in orders] == [order["id"]] and order["ref_id"] == quote["id"]
        assert (await trader.post(f"/api/review/{order['id']}/approve", json={})).status == 200
        await status_is(trader, order["id"], "sent")
        with transaction(core.engine) as tx:  # one order item, one trade, one confirmation
            assert tx.trades.for_order(order["id"]).status == "live"
        replies = [m["text"] for m in await desk.transcript() if m["from_bot"]]
        assert len([t for t in replies if "【成交确认" in t]) == 1
