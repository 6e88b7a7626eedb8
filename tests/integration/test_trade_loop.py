"""The desk's whole day over HTTP on the real server, on SQLite and PostgreSQL:
quote → order → booking → four eyes → confirmation → risk refresh → fixing → knock-out notice → notice sent.

The service clock (`OTCDESK_NOW`) starts on a trading day; for the knock-out the server is restarted on the
same database with its clock after the first knock-out observation date, as the next morning's process would be.
"""
from __future__ import annotations

import datetime as dt

import pytest

from otcdesk.app.auth import upsert_user
from otcdesk.app.db import init_db, make_engine
from otcdesk.app.repositories import transaction
from otcdesk.app.settings import load_settings
from desk_fixtures import TRADER, RunningDesk, wait_for

RISK = ("risk1", "risk-password-1")
BOOKED_ON = "2026-12-01T10:00:00+08:00"  # a Tuesday, a trading day on the exchange calendar
QUOTE = "@询价机器人 中证500 雪球 一年 敲出103 敲入75 1亿 报个票息"


def _settings(base, now: str):
    return load_settings(data_dir=base.data_dir, DATABASE_URL=base.database_url, now=now,
                         four_eyes_notional=50_000_000, review_ttl_s=600, risk_refresh_s=3600)


@pytest.fixture
def loop_settings(db_settings):
    settings = _settings(db_settings, BOOKED_ON)
    settings.ensure_dirs()
    engine = make_engine(settings.db_url)
    init_db(engine)
    upsert_user(engine, *TRADER, role="trader")
    upsert_user(engine, *RISK, role="risk")
    engine.dispose()
    return settings


async def _pending(session, kind: str) -> list[dict]:
    r = await session.get("/api/review?status=pending")
    assert r.status == 200
    return [i for i in await r.json() if i["kind"] == kind]


async def _bot_texts(desk) -> list[str]:
    return [m["text"] for m in await desk.transcript() if m["from_bot"]]


async def _approve(session, item_id: str) -> dict:
    r = await session.post(f"/api/review/{item_id}/approve", json={})
    assert r.status == 200, await r.text()
    return await r.json()


async def test_quote_to_knock_out_notice_over_http(loop_settings):
    desk = await RunningDesk(loop_settings).start()
    try:
        async with await desk.login() as trader, await desk.login(*RISK) as risk:
            # 1. a quote request, priced with the desk's margin, approved and sent
            await desk.say(QUOTE)
            [quote] = await wait_for(lambda: _pending(trader, "quote"), timeout=60)
            [line] = quote["lines"]
            assert line["request"]["structure"] == "snowball" and "fair_price_pct" in line and line["margin_pct"] > 0
            pretrade = line["pretrade"]  # how the quote would move the desk's delta and vega on 000905.SH
            assert {c["measure"] for c in pretrade["checks"]} == {"delta_cny", "vega_cny"} and "000905.SH" in pretrade["text"]
            await _approve(trader, quote["id"])
            await wait_for(lambda: _has_text(desk, quote["id"]), timeout=30)

            # 2. the client orders on it: notional, hedge instruction and product account in one message
            await desk.say("1亿，市价，产品1，确认下单")
            [order] = await wait_for(lambda: _pending(trader, "order"), timeout=60)
            assert order["ref_id"] == quote["id"] and order["order"]["quote_id"] == quote["id"]
            assert order["order"]["notional"] == 100_000_000 and order["order"]["execution"]["type"] == "market"
            assert order["order"]["account"] and not order["detail"].get("missing")
            before = len(await _bot_texts(desk))

            # 3. approval books it; above the four-eyes limit it waits for risk and the client hears nothing
            await _approve(trader, order["id"])
            trade = await wait_for(lambda: _trade_for(trader, quote["id"]), timeout=60)
            assert trade["status"] == "pending_second_approval" and trade["booked_by"] == TRADER[0]
            assert trade["notional"] == 100_000_000 and trade["product"]["initial_price"] > 0
            assert (await trader.post(f"/api/trades/{trade['id']}/approve", json={})).status == 403  # not a risk user
            r = await risk.get("/api/trades?status=pending_second_approval")
            assert trade["id"] in [t["id"] for t in await r.json()]
            assert len(await _bot_texts(desk)) == before

            # 4. the second approval by risk: live, the client gets the booking message once
            r = await risk.post(f"/api/trades/{trade['id']}/approve", json={})
            assert r.status == 200, await r.text()
            live = await r.json()
            assert live["status"] == "live" and [a["user"] for a in live["approvals"]][-1] == RISK[0]
            booking = await wait_for(lambda: _has_text(desk, trade["id"]), timeout=30)
            assert len([t for t in await _bot_texts(desk) if trade["id"] in t]) == 1, booking

            # 5. the confirmation (交易确认书) for compliance and the desk
            r = await risk.get(f"/api/trades/{trade['id']}/confirmation.pdf")
            assert r.status == 200 and r.content_type == "application/pdf"
            assert (await r.read()).startswith(b"%PDF")

            # 6. the risk book revalues it: it is in the book on its underlying
            r = await risk.post("/api/risk/refresh", json={})
            assert r.status == 200, await r.text()
            summary = await r.json()
            assert summary["live_trades"] >= 1 and summary["scenario_points"] > 0
            book = await (await trader.get("/api/book")).json()
            [csi500] = [u for u in book["by_underlying"] if u["underlying"] == "000905.SH"]
            assert csi500["trades"] >= 1 and book["snapshot_id"] == summary["snapshot_id"]

        ko_date = dt.date.fromisoformat(live["product"]["ko_observation_dates"][0])
        ko_level = live["product"]["initial_price"] * live["product"]["ko_pct"] / 100

        # 7. the next process, after the first knock-out observation date: the fixing knocks the trade out
        await desk.stop()
        desk.settings = _settings(loop_settings, f"{ko_date + dt.timedelta(days=1)}T09:00:00+08:00")
        await desk.start()
        async with await desk.login() as trader, await desk.login(*RISK) as risk:
            body = {"date": ko_date.isoformat(), "closes": {"000905.SH": round(ko_level * 1.01, 2)}}
            future = {"date": (ko_date + dt.timedelta(days=30)).isoformat(), "closes": body["closes"]}
            assert (await risk.post("/api/market/fixings", json=future)).status == 422
            assert (await trader.post("/api/market/fixings", json=body)).status == 403
            r = await risk.post("/api/market/fixings", json=body)
            assert r.status == 200, await r.text()
            events = [e for e in (await r.json())["events"] if e["trade_id"] == trade["id"]]
            assert [e["type"] for e in events] == ["knocked_out"] and events[0]["cash_cny"] > 0
            again = await (await risk.post("/api/market/fixings", json=body)).json()
            assert [e for e in again["events"] if e["trade_id"] == trade["id"]] == []  # same fixing: no new event

            done = await (await risk.get(f"/api/trades/{trade['id']}")).json()
            assert done["status"] == "knocked_out" and "knocked_out" in [e["type"] for e in done["events"]]
            live_now = len(await (await risk.get("/api/trades?status=live")).json())
            await wait_for(lambda: _book_counts(trader, live_now), timeout=90)  # revalued without it, unprompted

            # 8. the knock-out notice waits for the trader, then reaches the group
            notices = [n for n in await _pending(trader, "notice") if n["ref_id"] == trade["id"]]
            assert len(notices) == 1 and trade["id"] in notices[0]["draft_reply"]
            assert not [t for t in await _bot_texts(desk) if notices[0]["draft_reply"][:20] in t]
            await _approve(trader, notices[0]["id"])
            await wait_for(lambda: _has_text(desk, notices[0]["draft_reply"][:20]), timeout=30)
    finally:
        await desk.stop()

    engine = make_engine(loop_settings.db_url)
    with transaction(engine) as tx:
        actions = {e.action for e in tx.audit.entries()}
        steps = [(s.trigger, s.source, s.dest) for s in tx.trades.transitions(trade["id"])]
    engine.dispose()
    assert steps == [("book", "new", "pending_second_approval"),
                     ("approve_second", "pending_second_approval", "live"),
                     ("knock_out", "live", "knocked_out")]
    assert {"review.approved", "outbox.enqueue"} <= actions


async def _has_text(desk, fragment: str):
    return [t for t in await _bot_texts(desk) if fragment in t]


async def _trade_for(session, quote_id: str):
    r = await session.get("/api/trades")
    assert r.status == 200
    return next((t for t in await r.json() if t["quote_id"] == quote_id), None)


async def _book_counts(session, live_trades: int):
    """The book holds exactly the live trades: those it valued, and those it lists as unvalued (the sample book's
    trades past their maturity on this later clock wait for a maturity fixing)."""
    r = await session.get("/api/book")
    book = await r.json()
    return r.status == 200 and book["live_trades"] + len(book.get("unvalued") or []) == live_trades
