"""The trades API on the real server (CONTRACTS Part 2 "Orders and trades"), on SQLite and PostgreSQL: who may
list, read, approve and download; four eyes end to end (nothing reaches the group before risk approves, then
the booking message does, through the outbox); the confirmation PDF with its recorded hash."""
from __future__ import annotations

import asyncio
import hashlib
import json

import pytest
from sqlmodel import select

from otcdesk.app.auth import upsert_user
from otcdesk.app.db import init_db, make_engine
from otcdesk.app.demo import seed_demo
from otcdesk.app.models import AuditLog
from otcdesk.app.repositories import transaction
from otcdesk.app.server import DESK
from otcdesk.app.settings import load_settings
from booking_fixtures import NOW, add_order, add_quote, pdf_text
from desk_fixtures import RunningDesk, wait_for

USERS = {"trader1": "trader", "risk1": "risk", "risk2": "risk", "comp1": "compliance", "sales1": "sales",
         "admin1": "admin"}
READERS = ("trader1", "risk1", "comp1")
OUTSIDERS = ("sales1", "admin1")


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request, tmp_path):
    url = request.getfixturevalue("pg_schema_url") if request.param == "postgres" else None
    settings = load_settings(data_dir=tmp_path, DATABASE_URL=url, now=NOW)
    engine = make_engine(settings.db_url)
    init_db(engine)
    seed_demo(engine)
    for name, role in USERS.items():
        upsert_user(engine, name, f"{name}-password", role=role)
    engine.dispose()
    return settings


def _call(session, method: str, path: str):
    return session.post(path, json={}) if method == "post" else session.get(path)


async def _login(desk: RunningDesk, name: str):
    return await desk.login(name, f"{name}-password")


async def _book(desk: RunningDesk, review_id: str, by: str) -> dict:
    return await asyncio.to_thread(desk.app[DESK].trades.book, review_id, by)


async def _next_trade_event(resp, timeout: float = 20.0) -> dict:
    async def read():
        kind = None
        while True:
            line = (await resp.content.readline()).decode()
            if line.startswith("event: "):
                kind = line[7:].strip()
            elif line.startswith("data: ") and kind == "trade":
                return json.loads(line[6:])

    return await asyncio.wait_for(read(), timeout)


async def test_trades_api_roles_four_eyes_and_confirmation(settings):
    engine = make_engine(settings.db_url)
    quote = add_quote(engine)
    small = add_order(engine, quote, notional=20_000_000)
    big = add_order(engine, quote, notional=80_000_000, account="稳健1号")
    big_by_risk = add_order(engine, quote, notional=60_000_000)
    desk = await RunningDesk(settings).start()
    try:
        live = await _book(desk, small, "trader1")
        pending = await _book(desk, big, "trader1")
        odd = await _book(desk, big_by_risk, "risk1")  # booked by a risk user: that user cannot approve it
        assert live["status"] == "live" and pending["status"] == odd["status"] == "pending_second_approval"
        assert pending["message"] is None
        tid = pending["trade_id"]
        routes = [("get", "/api/trades"), ("get", f"/api/trades/{tid}"), ("post", f"/api/trades/{tid}/approve"),
                  ("get", f"/api/trades/{tid}/confirmation.pdf")]

        async with desk.session() as anonymous:
            for method, path in routes:
                assert (await _call(anonymous, method, path)).status == 401, path
        for name in OUTSIDERS:
            async with await _login(desk, name) as s:
                for method, path in routes:
                    assert (await _call(s, method, path)).status == 403, (name, path)
        for name in ("trader1", "comp1"):
            async with await _login(desk, name) as s:
                r = await s.post(f"/api/trades/{tid}/approve", json={})
                assert r.status == 403, name

        for name in READERS:
            async with await _login(desk, name) as s:
                r = await s.get("/api/trades")  # ours and the demo's generated sample book
                listed = await r.json()
                assert r.status == 200 and len(listed) == len({t["id"] for t in listed}) > 3
                ours = [odd["trade_id"], tid, live["trade_id"]]  # newest first
                assert [t["id"] for t in listed if t["id"] in ours] == ours
                r = await s.get("/api/trades?status=pending_second_approval")
                assert [t["id"] for t in await r.json()] == [odd["trade_id"], tid]
                r = await s.get(f"/api/trades/{tid}")
                trade = await r.json()
                assert r.status == 200 and trade["status"] == "pending_second_approval"
                assert (trade["notional"], trade["account"], trade["group"], trade["booked_by"]) == \
                    (80_000_000, "稳健1号", "demo", "trader1")
                for key in ("id", "institution", "client", "quote_id", "product", "price_pct", "premium_cny",
                            "booked_at", "approvals", "events"):
                    assert key in trade, key
        async with await _login(desk, "trader1") as s:
            assert (await s.get("/api/trades?status=bogus")).status == 400
            assert (await s.get("/api/trades?limit=0")).status == 400
            assert (await s.get("/api/trades/TNOSUCHTRADE")).status == 404
            r = await s.get(f"/api/trades/{tid}/confirmation.pdf")
            assert r.status == 409  # no confirmation before the second approval

        async def group_lines() -> list[str]:
            return [m["text"] for m in await desk.transcript("demo") if m["from_bot"]]

        assert not any(tid in text for text in await group_lines())  # the client hears nothing yet

        async with await _login(desk, "risk1") as risk1, await _login(desk, "risk2") as risk2:
            r = await risk1.post(f"/api/trades/{odd['trade_id']}/approve", json={})
            assert r.status == 403 and "other than the one who booked" in (await r.json())["error"]
            stream = await risk2.get("/api/events")
            assert stream.status == 200
            r = await risk1.post(f"/api/trades/{tid}/approve", json={})
            approved = await r.json()
            assert r.status == 200 and approved["status"] == "live"
            assert [(a["user"], a["role"]) for a in approved["approvals"]] == [("trader1", "trader"), ("risk1", "risk")]
            event = await _next_trade_event(stream)
            assert event["id"] == tid and event["status"] == "live"
            stream.close()
            assert (await risk2.post(f"/api/trades/{tid}/approve", json={})).status == 409

        sent = await wait_for(lambda: _message_with(desk, tid), timeout=30)
        assert sent.startswith("@张经理") and f"【成交确认 {tid}】" in sent and "8,000万元" in sent and "产品户：稳健1号" in sent

        async with await _login(desk, "comp1") as s:
            r = await s.get(f"/api/trades/{tid}/confirmation.pdf")
            body = await r.read()
            assert r.status == 200 and r.content_type == "application/pdf"
            digest = hashlib.sha256(body).hexdigest()
            assert r.headers["X-Content-SHA256"] == digest == approved["confirmation"]["sha256"]
            text = pdf_text(body)
            for expected in ("场外衍生品交易确认书", tid, quote, "示例资产管理有限公司", "稳健1号", "中证500（000905.SH）",
                             "雪球", "80,000,000.00 元", "2026-12-01", "6,050.00", "市价"):
                assert expected in text, expected
            r = await s.get(f"/api/trades/{live['trade_id']}/confirmation.pdf")
            assert r.status == 200 and live["trade_id"] in pdf_text(await r.read())
            sample = next(t for t in listed if t["booked_by"] == "demo-seed")  # booked without a confirmation
            r = await s.get(f"/api/trades/{sample['id']}/confirmation.pdf")  # drawn on first download
            body = await r.read()
            assert r.status == 200 and sample["id"] in pdf_text(body)
            r = await s.get(f"/api/trades/{sample['id']}")
            assert (await r.json())["confirmation"]["sha256"] == hashlib.sha256(body).hexdigest()
    finally:
        await desk.stop()
    with transaction(engine) as tx:
        audit = list(tx.session.exec(select(AuditLog.actor, AuditLog.action, AuditLog.subject)
                                     .where(AuditLog.subject.like("trade:%"))))
    engine.dispose()
    assert ("risk1", "trade.approve_second", f"trade:{tid}") in audit
    assert ("comp1", "trade.confirmation.download", f"trade:{tid}") in audit
    assert ("trader1", "trade.book", f"trade:{tid}") in audit
    assert ("risk1", "trade.confirmation", f"trade:{tid}") in audit


async def _message_with(desk: RunningDesk, trade_id: str) -> str | None:
    return next((m["text"] for m in await desk.transcript("demo") if m["from_bot"] and trade_id in m["text"]), None)
