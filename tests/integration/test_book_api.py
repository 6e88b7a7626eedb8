"""The risk book over HTTP on a real server (SQLite and PostgreSQL): GET /api/book, POST /api/risk/refresh, the
snapshot history and limits, roles (401/403), audit, the `book` event, a booked trade folded in, and the
scheduled refresh started and stopped with the server."""
from __future__ import annotations

import asyncio
import json

import pytest

from otcdesk.app.auth import upsert_user
from otcdesk.app.db import init_db, make_engine
from otcdesk.app.models import TradeRow
from otcdesk.app.repositories import transaction
from otcdesk.app.server import DESK
from otcdesk.app.settings import load_settings
from desk_fixtures import RunningDesk, wait_for

RISK = ("risk1", "risk-password-1")
COMPLIANCE = ("compliance1", "compliance-password-1")
EXPOSURE = {"pv_cny", "delta_cny", "gamma_cny", "vega_cny", "theta_cny"}


def trade_row(tid: str, notional: float = 10_000_000.0, option_type: str = "call") -> TradeRow:
    product = {"structure": "vanilla", "underlying": "000905.SH", "option_type": option_type, "strike_pct": 100.0,
               "start_date": "2026-11-02", "maturity_date": "2027-12-31", "initial_price": 6000.0,
               "side": "client_buys"}
    return TradeRow(id=tid, order_review_id=f"O-{tid}", status="live", channel="sim", chat_id="demo",
                    sender_id="c1", client="张经理", product=product, underlying="000905.SH", structure="vanilla",
                    notional=notional, original_notional=notional, price_pct=5.0, premium_cny=notional * 0.05,
                    booked_by="trader1")


def book(settings, *rows: TradeRow) -> None:
    engine = make_engine(settings.db_url)
    with transaction(engine) as tx:
        for r in rows:
            tx.trades.add(r)
    engine.dispose()


def audit(settings, action: str) -> list[tuple[str, str]]:
    engine = make_engine(settings.db_url)
    with transaction(engine) as tx:
        rows = [(a.actor, a.subject) for a in tx.audit.entries(action=action)]
    engine.dispose()
    return rows


def settings_on(data_dir, url=None, **overrides):
    settings = load_settings(data_dir=data_dir, DATABASE_URL=url, **overrides)
    settings.ensure_dirs()
    engine = make_engine(settings.db_url)
    init_db(engine)
    upsert_user(engine, "trader1", "trader-password-1", role="trader")
    upsert_user(engine, *RISK, role="risk")
    upsert_user(engine, *COMPLIANCE, role="compliance")
    engine.dispose()
    return settings


@pytest.fixture(params=["sqlite", "postgres"])
def book_settings(request, tmp_path):
    url = request.getfixturevalue("pg_schema_url") if request.param == "postgres" else None
    return settings_on(tmp_path, url)


async def next_event(resp, kind: str, timeout: float = 30.0) -> dict:
    """The data of the next server-sent event of `kind` (others and keep-alives skipped)."""
    current = None
    while True:
        line = (await asyncio.wait_for(resp.content.readline(), timeout)).decode().rstrip("\n")
        if line.startswith("event: "):
            current = line[len("event: "):]
        elif line.startswith("data: ") and current == kind:
            return json.loads(line[len("data: "):])


async def test_book_routes_roles_refresh_and_audit(book_settings):
    desk = await RunningDesk(book_settings, demo=False).start()
    try:
        async with desk.session() as anon:
            for method, path in (("get", "/api/book"), ("post", "/api/risk/refresh"),
                                 ("get", "/api/risk/snapshots"), ("get", "/api/risk/limits")):
                kw = {"json": {}} if method == "post" else {}
                assert (await getattr(anon, method)(path, **kw)).status == 401, path
        async with await desk.login(*COMPLIANCE) as compliance:
            for path in ("/api/book", "/api/risk/snapshots", "/api/risk/limits"):
                assert (await compliance.get(path)).status == 403, path
            assert (await compliance.post("/api/risk/refresh", json={})).status == 403
        async with await desk.login() as trader, await desk.login(*RISK) as risk:
            # traders read the book, risk refreshes it
            assert (await trader.post("/api/risk/refresh", json={})).status == 403
            r = await trader.get("/api/book")
            assert r.status == 404 and (await r.json())["detail"] == {"live_trades": 0}  # nothing revalued yet
            book(book_settings, trade_row("T1"), trade_row("T2", 30_000_000.0, "put"))
            events = await risk.get("/api/events")
            assert events.status == 200
            r = await risk.post("/api/risk/refresh", json={})
            assert r.status == 200
            summary = await r.json()
            assert {"snapshot_id", "as_of", "live_trades", "elapsed_s", "scenario_points"} <= set(summary)
            assert summary["live_trades"] == 2 and summary["scenario_points"] == 205
            assert (await next_event(events, "book"))["snapshot_id"] == summary["snapshot_id"]
            events.close()
            for reader in (trader, risk):
                r = await reader.get("/api/book")
                assert r.status == 200
                doc = await r.json()
                assert doc["snapshot_id"] == summary["snapshot_id"] and doc["live_trades"] == 2
                assert set(doc["totals"]) >= EXPOSURE
                [u] = doc["by_underlying"]
                assert u["underlying"] == "000905.SH" and u["trades"] == 2 and set(u) >= EXPOSURE
                assert set(doc["scenario"]) >= {"spot_shifts_pct", "vol_shifts", "pnl_cny"}
                assert len(doc["scenario"]["pnl_cny"]) == len(doc["scenario"]["spot_shifts_pct"]) == 41
                assert {(lim["underlying"], lim["measure"]) for lim in doc["limits"]} >= \
                    {("000905.SH", "delta_cny"), ("000905.SH", "vega_cny")}
                assert all(set(lim) >= {"underlying", "measure", "value", "limit", "breached"} for lim in doc["limits"])
                assert doc["ladders"][0]["underlying"] == "000905.SH"
            # a short call and a short put on one index: the desk is short vega
            assert doc["totals"]["vega_cny"] < 0
            history = await (await trader.get("/api/risk/snapshots?limit=5")).json()
            assert [h["snapshot_id"] for h in history] == [summary["snapshot_id"]]
            assert (await trader.get("/api/risk/snapshots?limit=0")).status == 400
            limits = await (await risk.get("/api/risk/limits")).json()
            assert {"underlying": "*", "measure": "delta_cny"}.items() <= \
                next(lim for lim in limits if lim["underlying"] == "*" and lim["measure"] == "delta_cny").items()
        assert audit(book_settings, "risk.refreshed") == [("risk1", f"risk_snapshot:{summary['snapshot_id']}")]
    finally:
        await desk.stop()


async def test_a_booked_trade_is_folded_into_the_served_book(tmp_path):
    settings = settings_on(tmp_path)
    book(settings, trade_row("T1"))
    desk = await RunningDesk(settings, demo=False).start()
    try:
        service = desk.app[DESK].risk
        async with await desk.login() as trader:
            first = await asyncio.to_thread(service.refresh, "risk1")
            before = await (await trader.get("/api/book")).json()
            book(settings, trade_row("T2", 50_000_000.0))
            folded = await asyncio.to_thread(service.fold_in, "T2")  # what booking calls after it books
            doc = await (await trader.get("/api/book")).json()
            assert doc["snapshot_id"] == folded["snapshot_id"] == first["snapshot_id"] + 1
            assert doc["live_trades"] == 2 and doc["folded_trades"] == ["T2"]
            # T2 is T1 five times over: the desk's (short) delta grows six-fold
            assert doc["totals"]["delta_cny"] == pytest.approx(6 * before["totals"]["delta_cny"], rel=1e-6)
            assert before["totals"]["delta_cny"] < 0
    finally:
        await desk.stop()
    assert audit(settings, "risk.folded_in") == [("booking", f"risk_snapshot:{folded['snapshot_id']}")]


async def test_the_scheduler_refreshes_while_the_server_runs_and_stops_with_it(tmp_path):
    settings = settings_on(tmp_path, risk_refresh_s=1.0)
    book(settings, trade_row("T1"))
    desk = await RunningDesk(settings, demo=False).start()
    try:
        async with await desk.login() as trader:
            async def two_snapshots():
                r = await trader.get("/api/risk/snapshots")
                return r.status == 200 and len(await r.json()) >= 2

            await wait_for(two_snapshots, timeout=60)
            doc = await (await trader.get("/api/book")).json()
            assert doc["live_trades"] == 1 and doc["kind"] == "refresh"
    finally:
        await desk.stop()
    refreshed = audit(settings, "risk.refreshed")
    assert len(refreshed) >= 2 and {actor for actor, _ in refreshed} == {"scheduler"}
    await asyncio.sleep(2.5)
    assert audit(settings, "risk.refreshed") == refreshed  # stopped with the server
