"""Structure templates over HTTP on the real server: who may upload and read (401/403), refusals with their reasons
(422), size and cross-site limits; and the whole way of a template that exists nowhere in the code — uploaded by
admin, asked for in the group by its Chinese alias, priced under its version on the trader's review card."""
import json

import pytest

from desk_fixtures import RunningDesk, settings_with_users, wait_for
from template_fixtures import capped_snowball
from otcdesk.app.db import make_engine
from otcdesk.app.repositories import transaction
from otcdesk.app.trading.templates import MAX_TEMPLATE_BYTES

USERS = {"admin": ("admin1", "admin-password-1"), "trader": ("trader1", "trader-password-1"),
         "risk": ("risk1", "risk-password-1")}
URL = "/api/admin/templates"
TEMPLATE = capped_snowball("capped_loss_snowball", ["限亏雪球", "封底雪球"])


@pytest.fixture
async def server(tmp_path):
    settings = settings_with_users(tmp_path, USERS, risk_refresh_s=0)
    running = await RunningDesk(settings, demo=True).start()
    yield running
    await running.stop()


async def test_who_may_upload_and_read_templates(server):
    async with server.session() as anonymous:
        for method, path in (("GET", URL), ("POST", URL), ("GET", f"{URL}/x/versions")):
            r = await anonymous.request(method, path, json=TEMPLATE if method == "POST" else None)
            assert r.status == 401, (method, path)
    for role in ("trader", "risk"):
        async with await server.login(*USERS[role]) as s:
            for method, path in (("GET", URL), ("POST", URL), ("GET", f"{URL}/x/versions")):
                r = await s.request(method, path, json=TEMPLATE if method == "POST" else None)
                assert r.status == 403, (role, method, path)
    async with await server.login(*USERS["admin"]) as admin:
        assert (await admin.get(URL)).status == 200
        assert (await admin.get(f"{URL}/nothing_here/versions")).status == 404
        r = await admin.post(URL, json=TEMPLATE, headers={"Origin": "https://evil.example"})
        assert r.status == 403  # a cross-site upload is refused before the handler
        assert await (await admin.get(URL)).json() == []


async def test_refusals_say_why_and_big_bodies_are_refused(server):
    async with await server.login(*USERS["admin"]) as admin:
        bad = capped_snowball("capped_loss_snowball", ["早利雪球"])
        bad["params"]["ko_pct"]["default"] = 200
        r = await admin.post(URL, json=bad)
        body = await r.json()
        assert r.status == 422 and set(body["fields"]) == {"names", "params.ko_pct"}
        assert "already means snowball" in body["fields"]["names"] and "outside" in body["fields"]["params.ko_pct"]
        r = await admin.post(URL, json={**TEMPLATE, "description": "x" * (MAX_TEMPLATE_BYTES + 10)})
        assert r.status == 413
        r = await admin.post(URL, data="[1, 2]", headers={"Content-Type": "application/json"})
        assert r.status == 400
        assert await (await admin.get(URL)).json() == []


def _audit(server, action):
    engine = make_engine(server.settings.db_url)
    try:
        with transaction(engine) as tx:
            return [(a.actor, a.detail) for a in tx.audit.entries(action=action)]
    finally:
        engine.dispose()


async def _pending(trader):
    r = await trader.get("/api/review?status=pending")
    return [i for i in await r.json() if i.get("kind") == "quote"]


async def test_an_uploaded_template_is_quoted_by_its_chinese_alias_under_its_version(server):
    async with await server.login(*USERS["admin"]) as admin:
        r = await admin.post(URL, json=TEMPLATE)
        v1 = await r.json()
        assert r.status == 201 and v1["version"] == 1 and set(v1["engines"]) == {"fd", "mc"}
        doc2 = json.loads(json.dumps(TEMPLATE))
        doc2["params"]["floor_pct"]["default"] = 60
        r = await admin.post(URL, json=doc2)
        assert r.status == 201 and (await r.json())["version"] == 2
        versions = await (await admin.get(f"{URL}/capped_loss_snowball/versions")).json()
        assert [v["version"] for v in versions] == [2, 1] and versions[1]["document"] == TEMPLATE
    assert [(a, d["version"], d["names"]) for a, d in _audit(server, "template.uploaded")] == \
        [("admin1", 1, ["限亏雪球", "封底雪球"]), ("admin1", 2, ["限亏雪球", "封底雪球"])]

    await server.say("@询价机器人 封底雪球 中证500 一年 103/75 1000万，麻烦报个票息")
    async with await server.login(*USERS["trader"]) as trader:
        [item] = await wait_for(lambda: _pending(trader), timeout=60)
    [req] = item["requests"]
    assert req["structure"] == "capped_loss_snowball" and req["underlying"] == "000905.SH"
    assert (req["ko_pct"], req["ki_pct"], req["floor_pct"], req["quote"]) == (103, 75, 60, "coupon")
    [line] = item["lines"]
    assert "error" not in line, line
    assert line["product"]["structure"] == "capped_loss_snowball" and line["product"]["template_version"] == 2
    assert 0 < line["solved"]["coupon_pct"] < line["fair_solved"]["coupon_pct"]  # the margin lowers the coupon
    assert "限亏雪球" in item["draft_reply"] and "年化票息" in item["draft_reply"]


async def test_admin_withdraws_a_template_and_the_group_no_longer_gets_it(server):
    withdraw = f"{URL}/capped_loss_snowball/withdraw"
    async with server.session() as anonymous:
        assert (await anonymous.post(withdraw, json={"reason": "broken"})).status == 401
    for role in ("trader", "risk"):
        async with await server.login(*USERS[role]) as s:
            assert (await s.post(withdraw, json={"reason": "broken"})).status == 403, role
    async with await server.login(*USERS["admin"]) as admin:
        assert (await admin.post(f"{URL}/nothing_here/withdraw", json={"reason": "broken"})).status == 404
        assert (await admin.post(URL, json=TEMPLATE)).status == 201
        for bad in ({}, {"reason": ""}, {"reason": "   "}, {"reason": "x" * 501}, {"reason": 7}):
            r = await admin.post(withdraw, json=bad)
            assert r.status == 400, bad
        r = await admin.post(withdraw, json={"reason": "broken"}, headers={"Origin": "https://evil.example"})
        assert r.status == 403  # a cross-site withdrawal is refused before the handler
        r = await admin.post(withdraw, json={"reason": "地板腿写错了"})
        body = await r.json()
        assert r.status == 200, body
        assert (body["structure"], body["version"], body["versions"], body["withdrawn_by"]) == \
            ("capped_loss_snowball", 1, 1, "admin1") and body["withdrawn_at"]
        assert (await admin.post(withdraw, json={"reason": "again"})).status == 409
        [listed] = await (await admin.get(URL)).json()
        assert (listed["withdrawn_by"], listed["withdrawn_at"]) == ("admin1", body["withdrawn_at"])
    assert [(a, d) for a, d in _audit(server, "template.withdrawn")] == \
        [("admin1", {"structure": "capped_loss_snowball", "version": 1, "reason": "地板腿写错了"})]

    await server.say("@询价机器人 封底雪球 中证500 一年 103/75 1000万，麻烦报个票息")
    async with await server.login(*USERS["trader"]) as trader:
        items = await wait_for(lambda: _pending(trader), timeout=60)
    assert all(r.get("structure") != "capped_loss_snowball" for i in items for r in i.get("requests") or [])
