"""Two real `otcdesk serve` processes on one PostgreSQL database (a fresh schema), both with the WeCom channel and
the outbox worker, replying through a local server that speaks the WeCom API and records every send.

Messages come in through both instances' callbacks and are approved through both instances' APIs, alternately;
only the leader (the holder of the advisory lock, `app.leader`) delivers and schedules the risk refresh. Then the
leader is killed (-9) and the standby takes the lock and delivers the rest. Every reply reaches the platform
exactly once."""
import asyncio
import uuid
from collections import Counter

import aiohttp
import pytest

from desk_fixtures import TRADER, ServeProcess, free_port, metric, wait_for
from wecom_fixtures import FakeWeComApi, WeComApp, group_text

from otcdesk.app.auth import upsert_user
from otcdesk.app.db import init_db, make_engine
from otcdesk.app.repositories import transaction

pytestmark = pytest.mark.postgres

CHAT = "wrk" + uuid.uuid4().hex[:12]
CLIENT, CLIENT_NAME = "zhangjl", "张经理"
TEXTS = ["沪深300 1个月 平值看跌", "中证500 2周 平值看涨", "300 3个月 95看跌", "中证1000 1个月 平值看涨"]
TOOK = "leader: this instance took the lock"
SCHEDULED = "risk refresh scheduled every"


def seed(url: str):
    """The schema migrated, a trader, and an approved institution that owns the WeCom group."""
    engine = make_engine(url)
    init_db(engine)
    upsert_user(engine, *TRADER, role="trader")
    with transaction(engine) as tx:
        inst = tx.clients.add_institution("某资管", kyc_status="approved", can_trade=True)
        tx.clients.add_group("wecom", CHAT, inst.id)
    return engine


class Instance:
    """One serve process, the platform's view of its callback URL, and a trader logged in to it."""

    def __init__(self, server: ServeProcess, wecom: WeComApp):
        self.server, self.wecom = server, wecom
        self.trader: aiohttp.ClientSession | None = None

    async def login(self) -> None:
        self.trader = aiohttp.ClientSession(self.server.url, cookie_jar=aiohttp.CookieJar(unsafe=True))
        r = await self.trader.post("/api/login", json={"username": TRADER[0], "password": TRADER[1]})
        assert r.status == 200, await r.text()

    async def callback(self, msg_id: str, text: str) -> None:
        query, body = self.wecom.callback(group_text(msg_id, CHAT, CLIENT, CLIENT_NAME, f"@询价机器人 {text}"))
        async with aiohttp.ClientSession(self.server.url) as platform:
            r = await platform.post("/wecom/callback", params=query, data=body.encode(),
                                    headers={"Content-Type": "text/xml"})
            assert (r.status, await r.text()) == (200, "")

    async def reviews(self, status: str) -> list[dict]:
        r = await self.trader.get("/api/review", params={"status": status})
        assert r.status == 200, await r.text()
        return [i for i in await r.json() if i["channel"] == "wecom"]

    async def approve(self, review_id: str) -> None:
        r = await self.trader.post(f"/api/review/{review_id}/approve", json={})
        assert r.status == 200, await r.text()

    async def scrape(self, name: str, **labels) -> float:
        return metric(await (await self.trader.get("/metrics")).text(), name, **labels)

    def logged(self, marker: str) -> bool:
        return any(marker in line for line in self.server.log_lines())


def sends_per_review(api: FakeWeComApi, review_ids) -> dict:
    """How many times the platform received each review item's reply (its text carries the item's id)."""
    counts = Counter()
    for s in api.sent:
        content = s["json"]["text"]["content"]
        for rid in review_ids:
            if rid in content:
                counts[rid] += 1
    return {rid: counts[rid] for rid in review_ids}


async def round_of_replies(first: int, n: int, take_in, approve_on, api: FakeWeComApi, done: set) -> list[str]:
    """`n` client messages, the i-th through `take_in(i)`; each review item approved through `approve_on(i)`;
    returns the new items' ids once every one of them is `sent`."""
    for i in range(first, first + n):
        await take_in(i).callback(f"m-{i}", TEXTS[i % len(TEXTS)])

    async def opened():
        items = [i for i in await approve_on(first).reviews("pending") if i["id"] not in done]
        return items if len(items) == n else None

    items = await wait_for(opened, timeout=180, interval=0.5)
    ids = [item["id"] for item in items]
    for k, rid in enumerate(ids):
        await approve_on(first + k).approve(rid)

    async def all_sent():
        sent = {i["id"] for i in await approve_on(first).reviews("sent")}
        return set(ids) <= sent

    await wait_for(all_sent, timeout=60, interval=0.3)
    return ids


async def test_two_instances_on_one_database_send_every_reply_once_and_the_standby_takes_over(
        tmp_path, pg_schema_url):
    wecom = WeComApp()
    api = await FakeWeComApi(wecom).start(free_port())
    engine = seed(pg_schema_url)
    env = {**wecom.env(api.url), "OTCDESK_LEADER_RETRY_S": "1", "OTCDESK_RISK_REFRESH_S": "3600",
           "OTCDESK_REVIEW_TTL_S": "900"}
    a = Instance(ServeProcess(tmp_path / "a", env=env, database_url=pg_schema_url), wecom)
    b = None
    try:
        # the first instance up takes the lock; the second stands by (it reads the same database)
        a.server.wait_for_log("otcdesk serving on", timeout=180)
        assert a.logged(TOOK)
        b = Instance(ServeProcess(tmp_path / "b", env=env, database_url=pg_schema_url), wecom)
        b.server.wait_for_log("otcdesk serving on", timeout=180)
        assert b.logged("another instance holds the lock") and not b.logged(TOOK)
        await a.login()
        await b.login()
        assert (await a.scrape("otcdesk_leader"), await b.scrape("otcdesk_leader")) == (1.0, 0.0)
        assert a.logged(SCHEDULED) and not b.logged(SCHEDULED)  # the risk refresh: scheduled by the leader only

        # messages in through both instances, approvals through both (the other one), alternately
        both = (a, b)
        first = await round_of_replies(0, 6, lambda i: both[i % 2], lambda i: both[(i + 1) % 2], api, set())
        assert sends_per_review(api, first) == {rid: 1 for rid in first}
        assert len(api.sent) == 6
        assert all(s["json"]["chatid"] == CHAT and s["path"] == "/cgi-bin/appchat/send" for s in api.sent)
        assert await a.scrape("otcdesk_outbox_sends_total", channel="wecom", result="sent") == 6
        assert await b.scrape("otcdesk_outbox_sends_total", channel="wecom", result="sent") == 0

        # the leader dies without a word: PostgreSQL drops its session and lock, the standby takes both jobs
        a.server.kill()
        took_over = await asyncio.to_thread(b.server.wait_for_log, SCHEDULED, 30)
        assert any(TOOK in line for line in took_over)
        assert await b.scrape("otcdesk_leader") == 1.0
        rest = await round_of_replies(6, 4, lambda i: b, lambda i: b, api, set(first))
        assert sends_per_review(api, first + rest) == {rid: 1 for rid in first + rest}
        assert len(api.sent) == 10
        assert await b.scrape("otcdesk_outbox_sends_total", channel="wecom", result="sent") == 4
        with transaction(engine) as tx:
            assert sorted(r.status for r in tx.outbox.due()) == []  # nothing left pending or half-sent
    finally:
        for inst in (a, b):
            if inst is not None:
                if inst.trader is not None:
                    await inst.trader.close()
                inst.server.stop()
        await api.stop()
        engine.dispose()
