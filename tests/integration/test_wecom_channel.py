"""The WeCom channel between two real processes: `otcdesk serve` with the WeCom callback configured, and a local
server speaking the platform's API. Callbacks are encrypted and signed by wechatpy as the platform does it."""
import time
import uuid

import aiohttp

from desk_fixtures import TRADER, ServeProcess, free_port, metric, wait_for
from wecom_fixtures import FakeWeComApi, WeComApp, group_text

from otcdesk.app.auth import upsert_user
from otcdesk.app.db import init_db, make_engine
from otcdesk.app.repositories import transaction
from otcdesk.bots.wecom import TEXT_LIMIT_BYTES

CHAT = "wrk" + uuid.uuid4().hex[:12]
CLIENT, CLIENT_NAME = "zhangjl", "张经理"


def seed(tmp_path):
    """A trader, and an approved institution that owns the WeCom group."""
    engine = make_engine(f"sqlite:///{(tmp_path / 'otcdesk.db').resolve()}")
    init_db(engine)
    upsert_user(engine, *TRADER, role="trader")
    with transaction(engine) as tx:
        inst = tx.clients.add_institution("某资管", kyc_status="approved", can_trade=True)
        tx.clients.add_group("wecom", CHAT, inst.id)
    return engine


async def test_wecom_callback_to_trader_approval_to_platform_api(tmp_path):
    wecom = WeComApp()
    api = await FakeWeComApi(wecom).start(free_port())
    engine = seed(tmp_path)
    server = ServeProcess(tmp_path, env={**wecom.env(api.url), "OTCDESK_RISK_REFRESH_S": "0"})
    closing = []
    try:
        server.wait_for_log("otcdesk serving on")
        async with aiohttp.ClientSession(server.url) as platform:
            # the platform checks the URL: the decrypted echostr comes back
            r = await platform.get("/wecom/callback", params=wecom.verification("echo-1234567890"))
            assert (r.status, await r.text()) == (200, "echo-1234567890")

            # a forged message (signed with another token): refused, audited, nothing stored
            forged = WeComApp(corp_id=wecom.corp_id, aes_key=wecom.aes_key)
            query, body = forged.callback(group_text("m-forged", CHAT, CLIENT, CLIENT_NAME, "@询价机器人 沪深300 1个月 平值看跌"))
            r = await platform.post("/wecom/callback", params=query, data=body, headers={"Content-Type": "text/xml"})
            assert r.status == 403
            r = await platform.get("/wecom/callback", params={**wecom.verification("x"), "msg_signature": "0" * 40})
            assert r.status == 403
            with transaction(engine) as tx:
                assert tx.inbound.find("wecom", "m-forged") is None
                refused = tx.audit.entries(action="security.wecom_refused")
                assert [e.detail["stage"] for e in refused] == ["message", "verify"]

            # a group message @mentioning the bot, then the platform's retry of it (same MsgId, new signature)
            msg = group_text("m-1", CHAT, CLIENT, CLIENT_NAME, "@询价机器人 沪深300 1个月 平值看跌")
            for _ in range(2):
                query, body = wecom.callback(msg)
                t0 = time.monotonic()
                r = await platform.post("/wecom/callback", params=query, data=body.encode(),
                                        headers={"Content-Type": "text/xml"})
                assert (r.status, await r.text()) == (200, "")
                assert time.monotonic() - t0 < 5.0
            with transaction(engine) as tx:
                assert tx.inbound.find("wecom", "m-1") is not None

        trader = aiohttp.ClientSession(server.url, cookie_jar=aiohttp.CookieJar(unsafe=True))
        closing.append(trader)
        r = await trader.post("/api/login", json={"username": TRADER[0], "password": TRADER[1]})
        assert r.status == 200

        async def pending():
            items = await (await trader.get("/api/review", params={"status": "pending"})).json()
            return [i for i in items if i["channel"] == "wecom"]

        async def sent(review_id, n):
            item = await (await trader.get("/api/review", params={"status": "sent"})).json()
            return any(i["id"] == review_id for i in item) and len(api.sent) >= n

        [item] = await wait_for(pending, timeout=60)  # one item: the retry was a duplicate
        assert (item["group"], item["sender_id"], item["sender"]) == (CHAT, CLIENT, CLIENT_NAME)
        assert item["kind"] == "quote" and item["requests"][0]["underlying"] == "000300.SH"
        assert "@询价机器人" not in item["text"]
        r = await trader.post(f"/api/review/{item['id']}/approve", json={})
        assert r.status == 200, await r.text()
        await wait_for(lambda: sent(item["id"], 1), timeout=30)
        [first] = api.sent
        assert first["path"] == "/cgi-bin/appchat/send" and first["json"]["chatid"] == CHAT
        assert first["json"]["text"]["content"].startswith(f"@{CLIENT_NAME}\u2005") and item["id"] in \
            first["json"]["text"]["content"]
        assert len(api.issued) == 1 and first["token"] == api.issued[0]

        # the token the service holds expires and the platform is busy once: a long reply goes out, split, once
        api.expire_tokens()
        api.rate_limited = 1
        async with aiohttp.ClientSession(server.url) as platform:
            query, body = wecom.callback(group_text("m-2", CHAT, CLIENT, CLIENT_NAME, "@询价机器人 中证500 2周 平值看涨"))
            r = await platform.post("/wecom/callback", params=query, data=body, headers={"Content-Type": "text/xml"})
            assert r.status == 200
        [item2] = await wait_for(pending, timeout=60)
        long_reply = ("报价如下：中证500 两周平值看涨期权，期权费 1.85%。\n" * 80)[:2000]
        r = await trader.post(f"/api/review/{item2['id']}/approve", json={"reply": long_reply})
        assert r.status == 200, await r.text()
        await wait_for(lambda: sent(item2["id"], 4), timeout=30)
        parts = [s["json"]["text"]["content"] for s in api.sent[1:]]
        assert len(parts) == 3 and all(0 < len(p.encode("utf-8")) <= TEXT_LIMIT_BYTES for p in parts)
        assert "\n".join(parts) == f"@{CLIENT_NAME}\u2005" + long_reply.rstrip("\n")
        assert [code for _, code in api.refused] == [42001, 45009]
        assert len(api.issued) == 2 and all(s["token"] == api.issued[1] for s in api.sent[1:])

        scrape = await (await trader.get("/metrics")).text()
        assert metric(scrape, "otcdesk_inbound_messages_total", channel="wecom") == 2
        assert metric(scrape, "otcdesk_inbound_duplicates_total", channel="wecom") == 1
        assert metric(scrape, "otcdesk_outbox_sends_total", channel="wecom", result="sent") == 2
        assert metric(scrape, "otcdesk_security_events_total", kind="wecom_refused") == 2
    finally:
        for session in closing:
            await session.close()
        server.stop()
        await api.stop()
        engine.dispose()
