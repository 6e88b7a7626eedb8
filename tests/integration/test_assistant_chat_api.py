"""`POST /api/assistant/chat` on a real server: login and input checks (401, 422), threads that belong to the
user who started them (403 for another user, 404 for an id nobody started), and tools by role over HTTP."""
from __future__ import annotations

from otcdesk.app.auth import upsert_user
from otcdesk.app.db import make_engine
from assistant_fixtures import tool_audit
from desk_fixtures import RunningDesk

CHAT = "/api/assistant/chat"


async def test_chat_checks_login_input_and_thread_ownership(desk_settings):
    engine = make_engine(desk_settings.db_url)
    upsert_user(engine, "trader2", "trader-password-2", role="trader")
    upsert_user(engine, "comp1", "compliance-pass-1", role="compliance")
    desk = await RunningDesk(desk_settings).start()
    try:
        async with desk.session() as anon:
            assert (await anon.post(CHAT, json={"message": "雪球"})).status == 401
        async with await desk.login() as trader:
            for body in ({}, {"message": ""}, {"message": "   "}, {"message": 5}, {"message": "x" * 2001},
                         {"message": "雪球", "thread_id": "../etc"}, {"message": "雪球", "thread_id": 7}):
                r = await trader.post(CHAT, json=body)
                assert r.status == 422, body
                assert (await r.json())["error"]
            r = await trader.post(CHAT, data="not json", headers={"Content-Type": "application/json"})
            assert r.status == 400
            r = await trader.post(CHAT, json={"message": "雪球", "thread_id": "0" * 32})
            assert r.status == 404

            r = await trader.post(CHAT, json={"message": "有没有幌骗预警"})
            assert r.status == 200
            first = await r.json()
            assert set(first) >= {"reply", "thread_id", "tool_calls", "citations"}
            assert first["tool_calls"] == [{
                "tool": "surveillance_alerts", "args": {"type": "spoofing"}, "allowed": False,
                "summary": first["tool_calls"][0]["summary"], "error": "forbidden",
                "reason": "role trader may not use surveillance_alerts"}]
            assert "不能查看" in first["reply"]
            thread = first["thread_id"]
            r = await trader.post(CHAT, json={"message": "雪球的敲入是怎么观察的？", "thread_id": thread})
            second = await r.json()
            assert r.status == 200 and second["thread_id"] == thread
            assert second["tool_calls"][0]["tool"] == "kb_search" and second["tool_calls"][0]["allowed"]
            assert second["citations"] and second["citations"][0]["source"] == "product_guide.md"
        async with await desk.login("trader2", "trader-password-2") as other:
            r = await other.post(CHAT, json={"message": "那6个月的呢?", "thread_id": thread})
            assert r.status == 403
        async with await desk.login("comp1", "compliance-pass-1") as comp:
            r = await comp.post(CHAT, json={"message": "有没有幌骗预警", "thread_id": thread})
            assert r.status == 403
            r = await comp.post(CHAT, json={"message": "有没有幌骗预警"})
            call = (await r.json())["tool_calls"][0]
            assert r.status == 200 and call["tool"] == "surveillance_alerts" and call["allowed"] is True
        audit = tool_audit(engine)
        assert [(a["actor"], a["tool"], a["allowed"]) for a in audit] == [
            ("trader1", "surveillance_alerts", False), ("trader1", "kb_search", True),
            ("comp1", "surveillance_alerts", True)]
    finally:
        await desk.stop()
        engine.dispose()
