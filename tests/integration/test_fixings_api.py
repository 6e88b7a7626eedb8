"""Fixings and market data over HTTP on a real server (SQLite and PostgreSQL): a close knocks a booked snowball
out, the knock-out notice waits in the review queue, and once a trader approves it the client's group gets it."""
import pytest

from otcdesk.app.auth import upsert_user
from otcdesk.app.db import init_db, make_engine
from otcdesk.app.models import TradeRow
from otcdesk.app.repositories import transaction
from otcdesk.app.settings import load_settings
from otcdesk.pricing_engine.products import product_from_dict
from desk_fixtures import TRADER, RunningDesk, wait_for

RISK = ("risk1", "risk-password-1")
COMPLIANCE = ("comp1", "comp-password-1")
NOW = "2027-02-22T16:00:00+08:00"
SNOWBALL = {"structure": "snowball", "underlying": "000905.SH", "underlying_name": "中证500",
            "start_date": "2026-11-20", "maturity_date": "2027-11-22", "ko_pct": 103, "ki_pct": 75,
            "coupon_pct": 15, "initial_price": 6000.0, "lockup_months": 3, "notional": 10_000_000}
KO_CASH = 386301.37  # 1e7 × 15% × 94/365: 94 days from 20 Nov 2026 to the first observation, 22 Feb 2027


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request, tmp_path):
    url = request.getfixturevalue("pg_schema_url") if request.param == "postgres" else None
    s = load_settings(data_dir=tmp_path, DATABASE_URL=url, now=NOW)
    engine = make_engine(s.db_url)
    init_db(engine)
    for (user, password), role in ((TRADER, "trader"), (RISK, "risk"), (COMPLIANCE, "compliance")):
        upsert_user(engine, user, password, role=role)
    product = product_from_dict(SNOWBALL).to_dict()
    with transaction(engine) as tx:
        tx.trades.add(TradeRow(id="T1", order_review_id="O-T1", status="live", institution="示例资产管理有限公司",
                               channel="sim", chat_id="demo", sender_id="张经理", client="张经理", product=product,
                               underlying="000905.SH", structure="snowball", notional=10_000_000,
                               original_notional=10_000_000, price_pct=0.0, premium_cny=0.0,
                               execution={"type": "market"}, booked_by=TRADER[0]))
    engine.dispose()
    return s


@pytest.fixture
async def server(settings):
    running = await RunningDesk(settings, demo=True).start()
    yield running
    await running.stop()


async def test_fixings_and_market_routes_need_the_right_role(server):
    body = {"date": "2027-02-22", "closes": {"000905.SH": 6300.0}}
    async with server.session() as anon:
        assert (await anon.post("/api/market/fixings", json=body)).status == 401
        assert (await anon.get("/api/market/snapshot")).status == 401
        assert (await anon.get("/api/market/history?underlying=000905.SH")).status == 401
    async with await server.login(*TRADER) as trader:
        assert (await trader.post("/api/market/fixings", json=body)).status == 403
        assert (await trader.get("/api/market/snapshot")).status == 200
    async with await server.login(*COMPLIANCE) as comp:
        assert (await comp.get("/api/market/snapshot")).status == 403
        assert (await comp.get("/api/market/history?underlying=000905.SH")).status == 403
        assert (await comp.post("/api/market/fixings", json=body)).status == 403
    async with await server.login(*RISK) as risk:
        assert (await risk.get("/api/review")).status == 403  # notices are the traders' to decide
        assert (await risk.get("/api/market/snapshot")).status == 200


REFUSED = [
    ({"date": "2027-02-23", "closes": {"000905.SH": 6300.0}}, "after today"),
    ({"date": "22/02/2027", "closes": {"000905.SH": 6300.0}}, "not an ISO date"),
    ({"closes": {"000905.SH": 6300.0}}, "not an ISO date"),
    ({"date": "2027-02-22", "closes": {"000905.SH": 0}}, "bad close"),
    ({"date": "2027-02-22", "closes": {"000905.SH": "6300"}}, "bad close"),
    ({"date": "2027-02-22", "closes": []}, "non-empty object"),
    ({"date": "2027-02-22", "closes": {"123456.XX": 1.0}}, "unknown underlying"),
    ({"date": "2027-02-22", "closes": {"000905.SH": 6300.0}, "force": True}, "unknown field"),
]


async def test_a_refused_fixing_is_422_with_the_reason_and_changes_nothing(server):
    async with await server.login(*RISK) as risk:
        for body, says in REFUSED:
            r = await risk.post("/api/market/fixings", json=body)
            assert r.status == 422, body
            assert says in (await r.json())["error"], body
        history = await (await risk.get("/api/market/history?underlying=000905.SH")).json()
        assert [t["spot"] for t in history["ticks"]] == [6050.0]  # only the seeded snapshot
    async with await server.login(*TRADER) as trader:
        assert await (await trader.get("/api/review?status=pending")).json() == []


async def test_a_knock_out_fixing_drafts_a_notice_that_reaches_the_group_once_approved(server):
    async with await server.login(*RISK) as risk, await server.login(*TRADER) as trader:
        r = await risk.post("/api/market/fixings", json={"date": "2027-02-20", "closes": {"000905.SH": 6300.0}})
        saturday = await r.json()
        assert r.status == 200 and saturday["events"] == []
        assert any(i.get("trade_id") == "T1" and "not a trading day" in i["reason"] for i in saturday["ignored"])

        r = await risk.post("/api/market/fixings", json={"date": "2027-02-22", "closes": {"000905.SH": 6300.0}})
        assert r.status == 200
        [ev] = (await r.json())["events"]
        assert {k: ev[k] for k in ("trade_id", "type", "date", "cash_cny")} == \
            {"trade_id": "T1", "type": "knocked_out", "date": "2027-02-22", "cash_cny": KO_CASH}
        again = await (await risk.post("/api/market/fixings",
                                       json={"date": "2027-02-22", "closes": {"000905.SH": 6300.0}})).json()
        assert again["events"] == []
        r = await risk.post("/api/market/fixings", json={"date": "2027-02-22", "closes": {"000905.SH": 6290.0}})
        assert r.status == 409 and (await r.json())["detail"]["conflicts"]["000905.SH"]["stored"] == 6300.0

        snap = await (await trader.get("/api/market/snapshot")).json()
        assert snap["underlyings"]["000905.SH"]["spot"] == 6300.0  # the close is the newest market
        assert snap["underlyings"]["000905.SH"]["as_of"] == "2027-02-22T15:00:00+08:00"
        hist = await (await trader.get("/api/market/history?underlying=000905.SH&limit=1")).json()
        assert [t["spot"] for t in hist["ticks"]] == [6300.0]
        assert (await trader.get("/api/market/history?underlying=000905.SH&limit=0")).status == 400
        assert (await trader.get("/api/market/history")).status == 400

        [item] = await (await trader.get("/api/review?status=pending")).json()
        assert (item["id"], item["kind"], item["ref_id"], item["group"]) == (ev["notice_id"], "notice", "T1", "demo")
        assert not [m for m in await server.transcript() if m["from_bot"]]  # nothing leaves before approval
        r = await trader.post(f"/api/review/{item['id']}/approve", json={})
        assert r.status == 200

        async def sent():
            return [m for m in await server.transcript() if m["from_bot"]]

        [msg] = await wait_for(sent)
        assert msg["text"].startswith("@张经理") and "敲出通知" in msg["text"] and "T1" in msg["text"]
        assert "386,301.37" in msg["text"]


async def test_demo_mode_ticks_the_market(tmp_path):
    s = load_settings(data_dir=tmp_path, DATABASE_URL=None, market_tick_s=0.2)
    engine = make_engine(s.db_url)
    init_db(engine)
    upsert_user(engine, *TRADER, role="trader")
    engine.dispose()
    running = await RunningDesk(s, demo=True).start()
    try:
        async with await running.login(*TRADER) as trader:
            async def ticked():
                hist = await (await trader.get("/api/market/history?underlying=000905.SH")).json()
                return hist["ticks"] if len(hist["ticks"]) >= 3 else None

            ticks = await wait_for(ticked, timeout=30)
            assert ticks[0]["source"].startswith("SIMULATED") and ticks[-1]["source"] == "simulated (demo random walk)"
            assert len({t["spot"] for t in ticks}) == len(ticks)  # it moves
            snap = await (await trader.get("/api/market/snapshot")).json()
            assert snap["source"] == "simulated (demo random walk)"
    finally:
        await running.stop()
