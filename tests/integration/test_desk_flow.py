"""The whole flow over HTTP on a real aiohttp server: client message → review item → decision → group reply."""
import asyncio

import pytest
from sqlmodel import select

from otcdesk.app.db import make_engine, unit_of_work
from otcdesk.app.repositories import transaction
from otcdesk.app.models import InboundMessageRow, OutboxMessage
from desk_fixtures import RunningDesk, wait_for

QUOTE = "@询价机器人 沪深300 1个月 平值看跌 1000万"


async def pending_items(session):
    r = await session.get("/api/review?status=pending")
    assert r.status == 200
    return await r.json()


async def wait_pending(session, n=1):
    return await wait_for(lambda: _n_pending(session, n))


async def _n_pending(session, n):
    items = await pending_items(session)
    return items if len(items) >= n else None


async def bot_messages(desk, group="demo"):
    return [m for m in await desk.transcript(group) if m["from_bot"]]


async def test_quote_is_reviewed_then_sent_with_mention(desk):
    async with await desk.login() as trader:
        await desk.say(QUOTE)
        [item] = await wait_pending(trader)
        assert {"id", "channel", "group", "sender", "text", "requests", "draft_reply", "created_at", "expires_at",
                "status"} <= item.keys()
        assert (item["channel"], item["group"], item["sender"], item["status"], item["kind"]) == \
            ("sim", "demo", "张经理", "pending", "quote")
        [req] = item["requests"]
        assert (req["underlying"], req["option_type"], req["tenor"], req["strike_pct"]) == ("000300.SH", "put", "1M", 100)
        [line] = item["lines"]
        assert 0.5 < line["price_pct"] < 5 and line["engine"] and "SIMULATED" in line["market"]["source"]
        assert item["id"] in item["draft_reply"] and "期权费" in item["draft_reply"]
        assert await bot_messages(desk) == []  # nothing leaves before approval

        r = await trader.post(f"/api/review/{item['id']}/approve", json={})
        assert r.status == 200 and (await r.json())["status"] in ("approved", "sent")
        [reply] = await wait_for(lambda: bot_messages(desk))
        assert reply["text"].startswith("@张经理") and item["id"] in reply["text"] and reply["mention"] == "张经理"
        sent = await wait_for(lambda: _status(trader, item["id"], "sent"))
        assert sent["decided_by"] == "trader1"
        assert await pending_items(trader) == []

    engine = make_engine(desk.settings.db_url)
    with transaction(engine) as tx:
        actions = [a.action for a in tx.audit.entries()]
    engine.dispose()
    for action in ("inbound.received", "review.open", "review.approved", "outbox.enqueue", "outbox.sent"):
        assert action in actions


async def _status(session, rid, status):
    items = await (await session.get("/api/review")).json()
    found = [i for i in items if i["id"] == rid and i["status"] == status]
    return found[0] if found else None


async def test_edited_reply_is_what_the_client_gets(desk):
    async with await desk.login() as trader:
        await desk.say(QUOTE)
        [item] = await wait_pending(trader)
        r = await trader.post(f"/api/review/{item['id']}/approve", json={"reply": "改价：期权费 2.00%，有效期5分钟"})
        assert r.status == 200
        [reply] = await wait_for(lambda: bot_messages(desk))
        assert reply["text"] == "@张经理\u2005改价：期权费 2.00%，有效期5分钟"


async def test_rejected_item_sends_nothing_and_cannot_be_approved(desk):
    async with await desk.login() as trader:
        await desk.say(QUOTE)
        [item] = await wait_pending(trader)
        r = await trader.post(f"/api/review/{item['id']}/reject", json={})
        assert r.status == 400  # a rejection needs a reason
        r = await trader.post(f"/api/review/{item['id']}/reject", json={"reason": "波动率要调整"})
        assert r.status == 200 and (await r.json())["status"] == "rejected"
        r = await trader.post(f"/api/review/{item['id']}/approve", json={})
        assert r.status == 409
        await asyncio.sleep(1.5)  # give the outbox worker every chance to (wrongly) send
        assert await bot_messages(desk) == []


async def test_expired_item_is_refused_until_repriced(desk_settings):
    desk_settings.review_ttl_s = 1.0
    desk = await RunningDesk(desk_settings).start()
    try:
        async with await desk.login() as trader:
            await desk.say(QUOTE)
            [item] = await wait_pending(trader)
            await wait_for(lambda: _status(trader, item["id"], "expired"))
            r = await trader.post(f"/api/review/{item['id']}/approve", json={})
            assert r.status == 409 and "expired" in (await r.json())["detail"]["code"] + (await r.json())["error"]
            r = await trader.post(f"/api/review/{item['id']}/reprice", json={})
            assert r.status == 200
            fresh = await r.json()
            assert fresh["id"] != item["id"] and fresh["status"] == "pending" and fresh["requests"] == item["requests"]
            r = await trader.post(f"/api/review/{item['id']}/reprice", json={})
            assert r.status == 409  # already repriced once
        assert await bot_messages(desk) == []
    finally:
        await desk.stop()


async def test_roles_and_authentication(desk):
    async with desk.session() as anon:
        assert (await anon.get("/api/review?status=pending")).status == 401
        assert (await anon.post("/api/review/X/approve", json={})).status == 401
        assert (await anon.post("/api/review/X/reject", json={"reason": "r"})).status == 401
        assert (await anon.get("/api/events")).status == 401
        r = await anon.post("/api/login", json={"username": "trader1", "password": "wrong-password"})
        assert r.status == 401
        assert (await anon.get("/console", allow_redirects=False)).status == 302
    async with await desk.login("risk1", "risk-password-1") as risk:
        assert (await risk.get("/api/review?status=pending")).status == 403
        assert (await risk.post("/api/review/X/approve", json={})).status == 403
    async with await desk.login() as trader:
        assert (await trader.post("/api/review/NOPE/approve", json={})).status == 404
        assert (await trader.get("/console")).status == 200


async def test_non_quote_and_not_onboarded_client(desk):
    async with await desk.login() as trader:
        await desk.say("谢谢各位老师")
        await desk.say(QUOTE, sender="王总", group="prospect")
        [item] = await wait_pending(trader)
        assert item["kind"] == "onboarding" and item["group"] == "prospect" and "KYC" in item["draft_reply"]
        assert item["lines"] == []  # no price is computed for a client that may not trade
        await trader.post(f"/api/review/{item['id']}/approve", json={})
        [reply] = await wait_for(lambda: bot_messages(desk, "prospect"))
        assert reply["text"].startswith("@王总")
        assert await bot_messages(desk, "demo") == []


async def test_incomplete_request_gets_a_reviewed_question_then_completes(desk):
    async with await desk.login() as trader:
        await desk.say("@询价机器人 沪深300 平值看跌")  # no tenor: never guessed
        [item] = await wait_pending(trader)
        assert item["kind"] == "clarification" and item["lines"] == []
        assert "tenor" in item["requests"][0]["missing"]
        await trader.post(f"/api/review/{item['id']}/approve", json={})
        await wait_for(lambda: bot_messages(desk))
        await desk.say("1个月")
        quote = await wait_for(lambda: _kind_pending(trader, "quote"))
        assert quote["requests"][0]["tenor"] == "1M" and quote["requests"][0]["underlying"] == "000300.SH"
        assert quote["lines"][0]["price_pct"] > 0


async def _kind_pending(session, kind):
    found = [i for i in await pending_items(session) if i["kind"] == kind]
    return found[0] if found else None


# NUL is refused at the HTTP edge (PostgreSQL cannot store it): tests/integration/test_http_hardening.py
@pytest.mark.parametrize("text", ["", "   ", "看" * 100_000, "\x01\x02\x1b\ufffd\ufffd%PDF-1.4 \x7f", "😀😀🔥🚀"])
async def test_bad_input_gets_no_crash_and_no_quote(desk, text):
    async with await desk.login() as trader:
        await desk.say(text)
        await desk.say(QUOTE, sender="李四")  # the desk keeps working after the bad message
        items = await wait_pending(trader)
        assert [i["sender"] for i in items] == ["李四"]
        assert all(i["kind"] != "quote" or i["sender"] == "李四" for i in await (await trader.get("/api/review")).json())
    engine = make_engine(desk.settings.db_url)
    with unit_of_work(engine) as s:
        rows = list(s.exec(select(InboundMessageRow).order_by(InboundMessageRow.id)))
    engine.dispose()
    assert len(rows) == 2 and rows[0].status == "processed"  # stored, understood as not-a-quote, kept


async def test_sim_api_rejects_malformed_posts(desk):
    async with desk.session() as s:
        assert (await s.post("/api/sim/groups/demo/messages", data=b"not json")).status == 415  # octet-stream
        assert (await s.post("/api/sim/groups/demo/messages", data=b"not json",
                             headers={"Content-Type": "application/json"})).status == 400
        assert (await s.post("/api/sim/groups/demo/messages", json={"sender": "", "text": "x"})).status == 400
        assert (await s.post("/api/sim/groups/demo/messages", json={"sender": "a", "text": 3})).status == 400
        assert (await s.post("/api/sim/groups/demo/messages", json={"sender": "a", "text": "x" * 100_001})).status == 413


async def test_restart_with_pending_review_sends_exactly_once(desk):
    async with await desk.login() as trader:
        await desk.say(QUOTE)
        [item] = await wait_pending(trader)
    await desk.restart()  # the pending review lives in the database and the graph checkpoint
    async with await desk.login() as trader:
        [again] = await pending_items(trader)
        assert again["id"] == item["id"]
        assert (await trader.post(f"/api/review/{item['id']}/approve", json={})).status == 200
        await wait_for(lambda: _status(trader, item["id"], "sent"))
    await desk.restart()
    await asyncio.sleep(1.5)
    replies = await bot_messages(desk)
    assert len(replies) == 1 and item["id"] in replies[0]["text"]
    engine = make_engine(desk.settings.db_url)
    with unit_of_work(engine) as s:
        assert len(list(s.exec(select(OutboxMessage)))) == 1
    engine.dispose()


async def test_demo_mode_off_hides_the_simulator(desk_settings):
    desk = await RunningDesk(desk_settings, demo=False).start()
    try:
        async with desk.session() as s:
            r = await s.post("/api/sim/groups/demo/messages", json={"sender": "a", "text": QUOTE})
            assert r.status in (404, 405)
            assert (await s.get("/sim", allow_redirects=False)).status == 404
    finally:
        await desk.stop()


async def test_postgres_database_and_checkpointer_survive_restart(tmp_path, pg_schema_url):
    """With DATABASE_URL on PostgreSQL, tables and the langgraph checkpoints live there: a pending review
    survives a restart and is sent exactly once."""
    from otcdesk.app.auth import upsert_user
    from otcdesk.app.db import init_db
    from otcdesk.app.settings import load_settings

    settings = load_settings(data_dir=tmp_path, DATABASE_URL=pg_schema_url)
    engine = make_engine(settings.db_url)
    init_db(engine)
    upsert_user(engine, "trader1", "trader-password-1", role="trader")
    desk = await RunningDesk(settings).start()
    try:
        async with await desk.login() as trader:
            await desk.say(QUOTE)
            [item] = await wait_pending(trader)
        await desk.restart()
        assert not (tmp_path / "checkpoints.db").exists()  # checkpoints are in PostgreSQL, not a local file
        async with await desk.login() as trader:
            assert (await trader.post(f"/api/review/{item['id']}/approve", json={})).status == 200
            await wait_for(lambda: _status(trader, item["id"], "sent"))
        await desk.restart()
        await asyncio.sleep(1.0)
        assert len(await bot_messages(desk)) == 1
        with unit_of_work(engine) as s:
            assert len(list(s.exec(select(OutboxMessage)))) == 1
    finally:
        await desk.stop()
        engine.dispose()


async def test_one_message_many_requests_is_one_item_with_priced_lines(desk):
    async with await desk.login() as trader:
        await desk.say("@询价机器人 300、创业板 各来一个 2周和1个月的平值看跌")
        [item] = await wait_pending(trader)
        got = sorted((ln["request"]["underlying"], ln["request"]["tenor"]) for ln in item["lines"])
        assert got == [("000300.SH", "1M"), ("000300.SH", "2W"), ("399006.SZ", "1M"), ("399006.SZ", "2W")]
        prices = {(ln["request"]["underlying"], ln["request"]["tenor"]): ln["price_pct"] for ln in item["lines"]}
        assert all(p > 0 for p in prices.values())
        assert prices[("000300.SH", "1M")] > prices[("000300.SH", "2W")]  # longer put, more premium
        assert prices[("399006.SZ", "1M")] > prices[("000300.SH", "1M")]  # higher vol, more premium
        assert item["draft_reply"].count("期权费") == 4

        await desk.say("科创50 雪球 两年 ko105 ki70 年化给多少", sender="赵总")
        snow = await wait_for(lambda: _sender_pending(trader, "赵总"))
        [line] = snow["lines"]
        assert line["request"]["structure"] == "snowball" and 5 < line["solved"]["coupon_pct"] < 60
        assert abs(line["price_pct"]) < 1e-3 and "年化票息" in snow["draft_reply"]


async def _sender_pending(session, sender):
    found = [i for i in await pending_items(session) if i["sender"] == sender]
    return found[0] if found else None


async def test_order_after_a_sent_quote_reaches_the_trader_with_that_quote(desk):
    async with await desk.login() as trader:
        await desk.say("200万，确认下单")  # no quote yet: the trader still sees it, the client is asked which
        first = await wait_for(lambda: _kind_pending(trader, "order"))
        assert "哪一笔报价" in first["draft_reply"] and first["lines"] == []
        await trader.post(f"/api/review/{first['id']}/reject", json={"reason": "已电话确认"})

        await desk.say(QUOTE)
        quote = await wait_for(lambda: _kind_pending(trader, "quote"))
        await trader.post(f"/api/review/{quote['id']}/approve", json={})
        await wait_for(lambda: _status(trader, quote["id"], "sent"))
        await desk.say("200万，确认下单")
        order = await wait_for(lambda: _kind_pending(trader, "order"))
        assert quote["id"] in order["draft_reply"] and "200万" in order["draft_reply"]
        assert order["lines"] == quote["lines"] and order["requests"] == quote["requests"]


async def test_client_knowledge_question_is_answered_from_the_client_kb_after_review(desk):
    """A product question in the group becomes a `knowledge` item drafted from the client knowledge base (demo
    mode: the product guide) with its citations; nothing is sent before approval. A question the knowledge base
    has no evidence for gets a follow-up promise, never an invented answer."""
    async with await desk.login() as trader:
        await desk.say("雪球的敲入是怎么观察的？")
        item = await wait_for(lambda: _kind_pending(trader, "knowledge"), timeout=60)
        assert "每日观察" in item["draft_reply"] and "派息线" not in item["draft_reply"]
        cites = item["detail"]["citations"]
        assert cites and cites[0]["source"] == "product_guide.md" and "敲入" in cites[0]["text"]
        assert item["lines"] == [] and await bot_messages(desk) == []
        await trader.post(f"/api/review/{item['id']}/approve", json={})
        [reply] = await wait_for(lambda: bot_messages(desk))
        assert "每日观察" in reply["text"] and reply["text"].startswith("@张经理")

        await desk.say("雪球产品的管理费率是多少？", sender="李四")
        other = await wait_for(lambda: _kind_pending(trader, "knowledge"), timeout=60)
        assert other["detail"]["citations"] == [] and other["detail"]["refused"]
        assert "跟进" in other["draft_reply"] and "%" not in other["draft_reply"]
