"""Login protection on real servers: a flood of logins leaves the trader's console fast; a guessed account locks,
admin sees and lifts the lockout (admin only), and the audit log says so without any password."""
import asyncio
import statistics

import aiohttp

from otcdesk.app.auth import upsert_user
from otcdesk.app.db import init_db, make_engine
from otcdesk.app.repositories import transaction
from otcdesk.app.settings import load_settings
from desk_fixtures import TRADER, RunningDesk, ServeProcess
from login_flood import run_login_flood, time_requests

FLOOD_CLIENTS = 30
FLOOD_S = 5.0


async def test_a_login_flood_does_not_slow_the_traders_review_list(tmp_path):
    """30 clients, in a process of their own, guess passwords of ever-new usernames (so only the bounded password
    pool holds them back, not the throttle) against `otcdesk serve`; the trader's review list stays fast."""
    engine = make_engine(load_settings(data_dir=tmp_path, DATABASE_URL=None).db_url)
    init_db(engine)
    upsert_user(engine, *TRADER, role="trader")
    engine.dispose()
    server = ServeProcess(tmp_path, env={"OTCDESK_LOGIN_ADDRESS_LOCKOUT_FAILURES": "1000000"})
    try:
        await asyncio.to_thread(server.wait_for_log, "otcdesk serving on")
        async with aiohttp.ClientSession(server.url, cookie_jar=aiohttp.CookieJar(unsafe=True)) as trader:
            r = await trader.post("/api/login", json={"username": TRADER[0], "password": TRADER[1]})
            assert r.status == 200
            answers, latencies = await run_login_flood(
                server.url, FLOOD_CLIENTS, FLOOD_S, None,
                lambda done: time_requests(trader, "/api/review?status=pending", done))
    finally:
        server.stop()
    p95 = statistics.quantiles(latencies, n=20, method="inclusive")[-1]
    assert len(latencies) >= 20 and p95 < 0.5, (p95, answers)
    assert set(answers) == {"401", "429"} and answers["401"] >= 2, answers  # verified some, refused the rest at once


async def test_a_guessed_account_locks_and_only_admin_sees_and_lifts_the_lockout(tmp_path):
    settings = load_settings(data_dir=tmp_path, DATABASE_URL=None, login_lockout_failures=2)  # free: 0
    engine = make_engine(settings.db_url)
    init_db(engine)
    upsert_user(engine, *TRADER, role="trader")
    upsert_user(engine, "admin1", "admin-password-1", role="admin")
    desk = await RunningDesk(settings, demo=False).start()
    try:
        async with desk.session() as anon:
            r = await anon.post("/api/login", json={"username": TRADER[0], "password": "wrong-password"})
            assert r.status == 401
            r = await anon.post("/api/login", json={"username": TRADER[0], "password": TRADER[1]})
            assert r.status == 429 and int(r.headers["Retry-After"]) == 2  # 2**(1-0) s after the first failure
            await asyncio.sleep(float(r.headers["Retry-After"]) + 0.1)
            r = await anon.post("/api/login", json={"username": TRADER[0], "password": "wrong-again"})
            assert r.status == 401
            r = await anon.post("/api/login", json={"username": TRADER[0], "password": TRADER[1]})
            assert r.status == 429 and int(r.headers["Retry-After"]) > 800  # locked, even with the right password
            assert "locked" in (await r.json())["error"]
            assert (await anon.get("/api/admin/lockouts")).status == 401
            assert (await anon.post("/api/admin/lockouts/unlock", json={"kind": "user", "key": "x"})).status == 401
        async with await desk.login("admin1", "admin-password-1") as admin:
            [lockout] = await (await admin.get("/api/admin/lockouts")).json()
            assert (lockout["kind"], lockout["key"], lockout["failures"]) == ("user", TRADER[0], 2)
            r = await admin.post("/api/admin/lockouts/unlock", json={"kind": "user", "key": "nobody"})
            assert r.status == 404
            r = await admin.post("/api/admin/lockouts/unlock", json={"kind": "badge", "key": "x"})
            assert r.status == 400
            r = await admin.post("/api/admin/lockouts/unlock", json={"kind": "user", "key": TRADER[0]})
            assert r.status == 200 and (await r.json())["key"] == TRADER[0]
            assert await (await admin.get("/api/admin/lockouts")).json() == []
        async with await desk.login() as trader:  # unlocked: the right password works again
            assert (await trader.get("/api/admin/lockouts")).status == 403
            r = await trader.post("/api/admin/lockouts/unlock", json={"kind": "user", "key": TRADER[0]})
            assert r.status == 403
    finally:
        await desk.stop()
    with transaction(engine) as tx:
        rows = [r for r in tx.audit.entries() if r.action in ("login.lockout", "login.unlock")]
    engine.dispose()
    assert [(r.actor, r.action, r.subject) for r in rows] == [("system", "login.lockout", f"user:{TRADER[0]}"),
                                                             ("admin1", "login.unlock", f"user:{TRADER[0]}")]
    assert not any(pw in str(r.detail) for r in rows for pw in (TRADER[1], "wrong-password", "wrong-again"))
