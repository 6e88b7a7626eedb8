"""The channels' health and the canary allowlist over HTTP on the real server: who may read and change them
(401/403), cross-site and malformed changes refused (nothing changed), every change audited, and canary mode
deciding end to end whether a client's message in a group becomes a review item."""
import asyncio

import pytest

from desk_fixtures import RunningDesk, settings_with_users, wait_for
from otcdesk.app.db import make_engine
from otcdesk.app.repositories import transaction
from otcdesk.app.server import DESK

USERS = {"admin": ("admin1", "admin-password-1"), "trader": ("trader1", "trader-password-1"),
         "compliance": ("compliance1", "compliance-password-1")}


@pytest.fixture
async def server(tmp_path):
    settings = settings_with_users(tmp_path, USERS)
    running = await RunningDesk(settings, demo=True).start()
    yield running
    await running.stop()


def audit(server, prefix):
    engine = make_engine(server.settings.db_url)
    try:
        with transaction(engine) as tx:
            return [(a.actor, a.action, a.subject, a.detail) for a in tx.audit.entries() if a.action.startswith(prefix)]
    finally:
        engine.dispose()


async def test_who_may_read_and_change(server):
    async with server.session() as anonymous:
        assert (await anonymous.get("/api/channels")).status == 401
        assert (await anonymous.get("/api/admin/canary")).status == 401
        assert (await anonymous.post("/api/admin/canary", json={"enabled": True})).status == 401
        assert (await anonymous.post("/api/admin/canary/groups", json={"channel": "sim", "group_id": "demo",
                                                                       "in": True})).status == 401
    for role in ("trader", "compliance"):
        async with await server.login(*USERS[role]) as staff:
            assert (await staff.get("/api/channels")).status == 200
            assert (await (await staff.get("/api/admin/canary")).json())["enabled"] is False
            assert (await staff.post("/api/admin/canary", json={"enabled": True})).status == 403
            r = await staff.post("/api/admin/canary/groups", json={"channel": "sim", "group_id": "demo", "in": True})
            assert r.status == 403 and (await r.json())["detail"] == {"allowed": ["admin"]}
    async with await server.login(*USERS["admin"]) as admin:
        state = await (await admin.get("/api/admin/canary")).json()
    assert state == {"enabled": False, "updated_by": None, "updated_at": None, "groups": [],
                     "channels": ["sim", "wechat", "wecom"]}
    assert audit(server, "canary.") == []


async def test_cross_site_and_malformed_changes_are_refused(server):
    async with await server.login(*USERS["admin"]) as admin:
        r = await admin.post("/api/admin/canary", json={"enabled": True}, headers={"Origin": "https://evil.example"})
        assert r.status == 403
        r = await admin.post("/api/admin/canary/groups", data="channel=sim&group_id=demo&in=true",
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status == 415
        r = await admin.post("/api/admin/canary/groups", json={"channel": "sim", "group_id": "<img src=x>", "in": True})
        assert r.status == 422 and set((await r.json())["detail"]["fields"]) == {"group_id"}
        r = await admin.post("/api/admin/canary/groups", json={"channel": "qq", "group_id": "g" * 200, "in": "yes"})
        assert r.status == 422 and set((await r.json())["detail"]["fields"]) == {"channel", "group_id"}
        r = await admin.post("/api/admin/canary", json={"enabled": "on"})
        assert r.status == 422 and (await r.json())["detail"]["fields"] == {"enabled": "true or false"}
        assert (await admin.post("/api/admin/canary", json=["enabled"])).status == 400
        state = await (await admin.get("/api/admin/canary")).json()
    assert state["enabled"] is False and state["groups"] == [] and audit(server, "canary.") == []


async def pending(server):
    async with await server.login(*USERS["trader"]) as trader:
        return await (await trader.get("/api/review?status=pending")).json()


async def test_canary_mode_decides_which_groups_get_drafts(server):
    async with await server.login(*USERS["admin"]) as admin:
        r = await admin.post("/api/admin/canary", json={"enabled": True})
        assert r.status == 200 and (await r.json())["enabled"] is True and (await r.json())["updated_by"] == "admin1"
        await server.say("@询价机器人 沪深300 1个月 平值看跌")  # the demo group is not on the list yet
        held = await wait_for(lambda: asyncio.sleep(0, audit(server, "inbound.held")), timeout=10)
        assert held[0][3] == {"chat_id": "demo", "reason": "canary"}
        await asyncio.sleep(1.0)
        assert await pending(server) == [] and (await server.transcript())[-1]["from_bot"] is False

        r = await admin.post("/api/admin/canary/groups", json={"channel": "sim", "group_id": "demo", "in": True})
        assert [g["group_id"] for g in (await r.json())["groups"]] == ["demo"]
        await server.say("@询价机器人 中证500 2周 平值看涨")  # in the allowlist: drafted at once
        [item] = await wait_for(lambda: pending(server), timeout=90)  # the desk's first run (a loaded machine)
        assert item["group"] == "demo" and "中证500" in item["text"]

        await admin.post("/api/admin/canary/groups", json={"channel": "sim", "group_id": "demo", "in": False})
        await admin.post("/api/admin/canary", json={"enabled": False})  # off: every group as before
    assert [(actor, action, subject) for actor, action, subject, _ in audit(server, "canary.")] == [
        ("admin1", "canary.mode", "canary"), ("admin1", "canary.group_in", "group:sim:demo"),
        ("admin1", "canary.group_out", "group:sim:demo"), ("admin1", "canary.mode", "canary")]
    await server.say("@询价机器人 沪深300 3个月 平值看涨")
    assert len(await wait_for(lambda: _at_least(server, 2), timeout=90)) == 2


async def _at_least(server, n):
    items = await pending(server)
    return items if len(items) >= n else None


async def test_channel_health_lists_every_channel_with_its_last_message(server):
    async with await server.login(*USERS["trader"]) as trader:
        [sim] = await (await trader.get("/api/channels")).json()
        assert sim["channel"] == "sim" and sim["connected"] is True and sim["last_message_at"] is None
        await server.say("在吗")
        [sim] = await (await trader.get("/api/channels")).json()
    assert sim["last_message_at"] is not None and sim["last_error"] is None
    exposition = server.app[DESK].metrics.exposition().decode()
    assert 'otcdesk_channel_connected{channel="sim"} 1.0' in exposition
