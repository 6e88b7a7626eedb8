"""The margin table over HTTP on the real server, on SQLite and on the local PostgreSQL: who may read and change
it (401/403), validation (422, nothing changed), audit with before/after, and an admin's change reaching the
next quote a client asks for in the group."""
import json

import pytest

from desk_fixtures import RunningDesk, wait_for
from otcdesk.app.auth import upsert_user
from otcdesk.app.db import init_db, make_engine
from otcdesk.app.repositories import transaction
from otcdesk.app.trading.margins import read_seed

USERS = {"admin": ("admin1", "admin-password-1"), "trader": ("trader1", "trader-password-1"),
         "risk": ("risk1", "risk-password-1"), "sales": ("sales1", "sales-password-1")}
URL = "/api/admin/margins"


@pytest.fixture
async def server(db_settings):
    engine = make_engine(db_settings.db_url)
    init_db(engine)
    for role, (user, password) in USERS.items():
        upsert_user(engine, user, password, role=role)
    engine.dispose()
    running = await RunningDesk(db_settings, demo=True).start()
    yield running
    await running.stop()


def _audit(server, action):
    engine = make_engine(server.settings.db_url)
    try:
        with transaction(engine) as tx:
            return [(a.actor, a.subject, a.detail) for a in tx.audit.entries(action=action)]
    finally:
        engine.dispose()


def _by_key(table):
    return {(r["structure"], r["max_tenor_days"]): r for r in table}


async def test_who_may_read_and_change_the_table(server):
    async with server.session() as anonymous:
        for method in ("get", "post", "put"):
            r = await getattr(anonymous, method)(URL, json={"rows": []})
            assert r.status == 401, method
    async with await server.login(*USERS["sales"]) as sales:
        assert (await sales.get(URL)).status == 403
    for role in ("trader", "risk"):
        async with await server.login(*USERS[role]) as s:
            r = await s.get(URL)
            assert r.status == 200 and len(await r.json()) == len(read_seed())  # read-only for them
            row = {"structure": "vanilla", "max_tenor_days": 31, "margin_pct": 0.1}
            assert (await s.post(URL, json={"rows": [row]})).status == 403
            assert (await s.put(URL, json={"rows": [row]})).status == 403
    async with await server.login(*USERS["admin"]) as admin:
        table = await (await admin.get(URL)).json()
    assert _by_key(table)[("vanilla", 31)]["margin_pct"] == 0.3  # nobody but admin changed it
    assert _audit(server, "margins.updated") == []


async def test_admin_edits_are_validated_and_audited_with_before_and_after(server):
    async with await server.login(*USERS["admin"]) as admin:
        r = await admin.post(URL, json={"structure": "snowball", "max_tenor_days": 366, "margin_pct": 1.1,
                                        "unwind_margin_pct": 0.55})
        assert r.status == 200, await r.text()
        row = _by_key(await r.json())[("snowball", 366)]
        assert (row["margin_pct"], row["unwind_margin_pct"], row["updated_by"]) == (1.1, 0.55, "admin1")
        assert _by_key(await (await admin.get(URL)).json())[("snowball", 366)]["margin_pct"] == 1.1

        bad_bodies = [
            '{"rows": [{"structure": "snowball", "max_tenor_days": 366, "margin_pct": NaN}]}',
            '{"rows": [{"structure": "snowball", "max_tenor_days": 366, "margin_pct": Infinity}]}',
            json.dumps({"rows": [{"structure": "snowball", "max_tenor_days": 366, "margin_pct": 50}]}),
            json.dumps({"rows": [{"structure": "snowball", "max_tenor_days": 366, "margin_pct": -1}]}),
            json.dumps({"rows": [{"structure": "no_such_thing", "max_tenor_days": 366, "margin_pct": 1}]}),
            json.dumps({"rows": [{"structure": "snowball", "max_tenor_days": -5, "margin_pct": 1}]}),
            json.dumps({"rows": [{"structure": "vanilla", "max_tenor_days": 31, "margin_pct": 0.1}, "not a row"]}),
            json.dumps({"rows": "vanilla"}),
        ]
        for body in bad_bodies:
            r = await admin.post(URL, data=body, headers={"Content-Type": "application/json"})
            assert r.status == 422, (body, r.status, await r.text())
            assert (await r.json())["error"]
        r = await admin.put(URL, json={"rows": [{"structure": "vanilla", "max_tenor_days": 31, "margin_pct": 0.2}]})
        assert r.status == 422 and "'*'" in (await r.json())["error"]
        table = await (await admin.get(URL)).json()
    assert len(table) == len(read_seed()) and _by_key(table)[("vanilla", 31)]["margin_pct"] == 0.3  # all refused

    [(actor, subject, detail)] = _audit(server, "margins.updated")
    assert (actor, subject) == ("admin1", "quote_margin:snowball:366")
    assert (detail["before"]["margin_pct"], detail["after"]["margin_pct"]) == (1.5, 1.1)
    assert (detail["before"]["unwind_margin_pct"], detail["after"]["unwind_margin_pct"]) == (0.8, 0.55)


async def test_admin_replaces_the_table(server):
    rows = [{"structure": "*", "max_tenor_days": 3660, "margin_pct": 2.0, "unwind_margin_pct": 1.0},
            {"structure": "snowball", "max_tenor_days": 731, "margin_pct": 2.2, "unwind_margin_pct": 1.1}]
    async with await server.login(*USERS["admin"]) as admin:
        r = await admin.put(URL, json={"rows": rows})
        assert r.status == 200, await r.text()
        table = await (await admin.get(URL)).json()
    assert [{k: r[k] for k in rows[0]} for r in table] == rows
    deleted = _audit(server, "margins.deleted")
    assert len(deleted) == len(read_seed()) - 2 and all(d["after"] is None for _, _, d in deleted)
    assert sorted(s for _, s, _ in _audit(server, "margins.updated")) == ["quote_margin:*:3660",
                                                                         "quote_margin:snowball:731"]


async def test_an_admin_change_reaches_the_next_quote_in_the_group(server):
    async with await server.login(*USERS["admin"]) as admin:
        r = await admin.post(URL, json={"rows": [{"structure": "vanilla", "max_tenor_days": 31, "margin_pct": 0.77}]})
        assert r.status == 200
    async with await server.login(*USERS["trader"]) as trader:
        await server.say("@询价机器人 中证500 1个月 平值看涨 500万")
        [item] = await wait_for(lambda: _pending(trader))
    [line] = item["lines"]
    assert line["margin_pct"] == 0.77 and line["margin"]["structure"] == "vanilla"
    assert line["price_pct"] == pytest.approx(line["fair_price_pct"] + 0.77)
    assert f"期权费 {line['price_pct']:.2f}%" in item["draft_reply"]
    assert f"{line['fair_price_pct']:.2f}%" not in item["draft_reply"]


async def _pending(session):
    r = await session.get("/api/review?status=pending")
    return await r.json() if r.status == 200 else None
