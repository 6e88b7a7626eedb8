"""The trades, book and second-approval pages in a real browser (Debian's chromium driven by Playwright) on a real
server, with trades booked by the server's own TradeService from approved order items (so its events reach the
pages over /api/events) and the book revalued by its RiskService. Each page runs under the service's CSP: the
browser reports no violation and no script error."""
import asyncio
import os
import re
from pathlib import Path

import pytest
from playwright.async_api import expect

from booking_fixtures import NOW, SNOWBALL, VANILLA, add_order, add_quote
from desk_fixtures import TRADER, RunningDesk
from desk_fixtures import logged_in_page as logged_in
from otcdesk.app.auth import upsert_user
from otcdesk.app.db import init_db, make_engine
from otcdesk.app.demo import seed_demo
from otcdesk.app.repositories import transaction
from otcdesk.app.server import DESK
from otcdesk.app.settings import load_settings

RISK = ("risk1", "risk-password-1")
RISK2 = ("risk2", "risk-password-2")
COMPLIANCE = ("carol", "compliance-password-1")
LATER = "2026-12-04T10:00:00+08:00"  # three days after the booking fixtures' trading day
BOOK_SCREENSHOT_COPY = os.environ.get("OTCDESK_BOOK_SCREENSHOT_COPY")  # the book page with demo-like data


@pytest.fixture
async def desk(tmp_path):
    """A server whose clock is the booking fixtures' trading day, with the demo institutions (not demo mode: its
    generated sample book would be in every list), a trader, two risk users and compliance; no scheduled refresh
    during the test (the tests refresh when they mean to)."""
    settings = load_settings(data_dir=tmp_path, DATABASE_URL=None, now=NOW, risk_refresh_s=0)
    engine = make_engine(settings.db_url)
    init_db(engine)
    seed_demo(engine)
    for (user, password), role in ((TRADER, "trader"), (RISK, "risk"), (RISK2, "risk"), (COMPLIANCE, "compliance")):
        upsert_user(engine, user, password, role=role)
    engine.dispose()
    running = await RunningDesk(settings, demo=False).start()
    yield running
    await running.stop()


async def book(desk, notional: float, *, by: str = TRADER[0], text: str = SNOWBALL) -> str:
    """A quote, an approved order on it, and the booking by the server's TradeService; the trade's id."""
    service = desk.app[DESK]

    def work():
        qid = add_quote(service.engine, text)
        rid = add_order(service.engine, qid, notional=notional, text=text)
        return service.trades.book(rid, by)["trade_id"]

    return await asyncio.to_thread(work)


async def api(desk, user, method: str, path: str, **kw):
    async with desk.session() as s:
        r = await s.post("/api/login", json={"username": user[0], "password": user[1]})
        assert r.status == 200
        r = await s.request(method, path, **kw)
        return r.status, await r.json()


async def test_pages_hold_no_inline_code_and_build_no_markup_from_data(desk):
    """The pages' HTML has no inline script, style or handler; their scripts set no style attribute and never
    parse strings as markup (server data only reaches the page as text)."""
    async with desk.session() as anonymous:
        r = await anonymous.get("/book", allow_redirects=False)
        assert r.status == 302 and r.headers["Location"] == "/login"
    async with await desk.login() as trader:
        for page in ("trades", "book", "approvals"):
            r = await trader.get(f"/{page}")
            html = await r.text()
            assert r.status == 200 and "<main>" in html, page
            assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == [], page
            assert re.findall(r"\son[a-z]+\s*=", html) == [] and " style=" not in html, page
            scripts = re.findall(r'<script src="([^"]+)"', html)
            assert f"/static/{page}.js" in scripts
            for src in scripts:
                js = await (await trader.get(src)).text()
                assert "style=" not in js and not re.search(r"\son[a-z]+=", js), src
                if src != "/static/common.js":  # common.js is shared with the older pages
                    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\.style\.", js), src


async def test_trades_list_live_detail_and_confirmation(desk, browser):
    first = await book(desk, 20_000_000)
    # three days on (the server restarted with a later clock), a close below the knock-in level: the fixing
    # service records the knock-in on the trade
    await desk.stop()
    desk.settings = desk.settings.model_copy(update={"now": LATER})
    await desk.start()
    status, fixed = await api(desk, RISK, "POST", "/api/market/fixings",
                              json={"date": "2026-12-02", "closes": {"000905.SH": 4000.0}})
    assert status == 200 and [(e["trade_id"], e["type"]) for e in fixed["events"]] == [(first, "knocked_in")]

    w = await logged_in(browser, desk, TRADER)
    page = w.page
    await page.goto(f"{desk.url}/trades")
    await page.wait_for_selector("#live:has-text('实时更新已连接')")
    await expect(page.locator("#trades tr.trade")).to_have_count(1)
    row = page.locator(f"#trades tr.trade[data-id='{first}']")
    assert "20,000,000" in await row.inner_text() and "000905.SH" in await row.inner_text()

    second = await book(desk, 30_000_000, text=VANILLA)  # arrives over /api/events, no reload
    await page.wait_for_selector(f"#trades tr.trade[data-id='{second}']", timeout=15000)
    ids = await page.eval_on_selector_all("#trades tr.trade", "rows => rows.map((r) => r.dataset.id)")
    assert ids == [second, first]  # newest first

    await row.click()
    await page.wait_for_selector(f"#detail-id:has-text('{first}')")
    events = page.locator("#detail table.events tr.event")
    await expect(events).to_have_count(1)
    assert "敲入" in await events.first.inner_text() and "2026-12-02" in await events.first.inner_text()
    approvals = await page.inner_text("#detail table.approvals")
    assert TRADER[0] in approvals and "簿记" in approvals
    assert "book" in await page.inner_text("#detail table.transitions")

    await page.screenshot(path=str(desk.settings.data_dir / "trade.png"), full_page=True)
    async with page.expect_download() as info:
        await page.click("#confirmation")
    pdf = Path(await (await info.value).path()).read_bytes()
    assert pdf.startswith(b"%PDF")
    href = await page.get_attribute("#confirmation", "href")
    response = await page.request.get(f"{desk.url}{href}")
    assert response.status == 200 and response.headers["content-type"].startswith("application/pdf")
    assert (await response.body()) == pdf

    compliance = await logged_in(browser, desk, COMPLIANCE)  # compliance reads trades too
    await compliance.page.goto(f"{desk.url}/trades#{first}")
    await compliance.page.wait_for_selector(f"#detail-id:has-text('{first}')")
    await compliance.page.wait_for_selector("#confirmation")
    assert (w.problems, compliance.problems) == ([], [])


async def test_book_page_exposure_scenarios_ladder_and_breach(desk, browser):
    with transaction(desk.app[DESK].engine) as tx:  # a delta limit the book will breach
        tx.risk.set_limit("000905.SH", "delta_cny", 1.0, RISK[0])
        tx.audit.record(RISK[0], "risk.limit", "risk_limit:000905.SH/delta_cny", {"limit": 1.0})
    w = await logged_in(browser, desk, RISK)
    page = w.page
    await page.goto(f"{desk.url}/book")
    await page.wait_for_selector("#live:has-text('实时更新已连接')")
    await page.wait_for_selector("#book-empty:has-text('尚无风险快照')")  # nothing revalued yet
    assert await page.is_visible("#refresh") and await page.is_hidden("#book")

    await book(desk, 20_000_000)  # booking folds each trade into the book; the page follows without a reload
    await book(desk, 30_000_000, text=VANILLA)
    await page.wait_for_selector("#live-trades:has-text('存续交易 2 笔')", timeout=30000)
    before = await page.get_attribute("#snapshot-id", "data-id")
    await page.click("#refresh")  # a risk user revalues now (POST /api/risk/refresh)
    await page.wait_for_selector(f"#snapshot-id:not([data-id='{before}'])")
    status, api_book = await api(desk, RISK, "GET", "/api/book")
    assert status == 200 and api_book["live_trades"] == 2
    assert await page.get_attribute("#snapshot-id", "data-id") == str(api_book["snapshot_id"])

    for key in ("pv_cny", "delta_cny", "gamma_cny", "vega_cny", "theta_cny"):
        value = api_book["totals"][key]
        cell = page.locator(f"#exposure tfoot td[data-k={key}]")
        assert float(await cell.get_attribute("data-value")) == pytest.approx(value)
        assert float((await cell.inner_text()).replace(",", "")) == pytest.approx(value, abs=1)
    shown = await page.eval_on_selector_all("#exposure tbody tr.exposure",
                                            "rows => rows.map((r) => r.dataset.underlying)")
    assert shown == [e["underlying"] for e in api_book["by_underlying"]] and len(shown) == 2

    scenario = api_book["scenario"]
    cells = len(scenario["spot_shifts_pct"]) * len(scenario["vol_shifts"])
    assert cells > 1
    await expect(page.locator("#heatmap rect.cell")).to_have_count(cells)
    assert await page.locator("#ladder path.ladder").get_attribute("d")
    assert await page.locator("#ladder circle.pt").count() == len(scenario["spot_shifts_pct"])

    breached = page.locator("#limits tr.limit.breached[data-underlying='000905.SH'][data-measure='delta_cny']")
    await expect(breached).to_have_count(1)
    assert "超限" in await breached.inner_text()
    assert await breached.locator("td").first.evaluate("td => getComputedStyle(td).backgroundColor") \
        != await page.locator("#limits tr.limit:not(.breached) td").first.evaluate(
            "td => getComputedStyle(td).backgroundColor")
    assert "超限" in await page.inner_text("#breaches")

    await page.click("#exposure tr.exposure[data-underlying='000905.SH']")  # that underlying's scenarios
    assert await page.input_value("#scope") == "000905.SH"
    await expect(page.locator("#heatmap rect.cell")).to_have_count(cells)
    assert await page.locator("#ladder path.ladder").get_attribute("d")

    await page.screenshot(path=str(desk.settings.data_dir / "book.png"), full_page=True)
    if BOOK_SCREENSHOT_COPY:
        Path(BOOK_SCREENSHOT_COPY).write_bytes((desk.settings.data_dir / "book.png").read_bytes())

    await book(desk, 10_000_000)  # folded in at booking: live on the page
    await page.wait_for_selector("#live-trades:has-text('存续交易 3 笔')", timeout=30000)
    shown = await page.get_attribute("#snapshot-id", "data-id")
    status, summary = await api(desk, RISK2, "POST", "/api/risk/refresh", json={})  # another risk user's refresh
    assert status == 200 and str(summary["snapshot_id"]) != shown
    await page.wait_for_selector(f"#snapshot-id[data-id='{summary['snapshot_id']}']", timeout=15000)

    trader = await logged_in(browser, desk, TRADER)  # traders read the book, without the refresh button
    await trader.page.goto(f"{desk.url}/book")
    await trader.page.wait_for_selector("#exposure tfoot tr.totals")
    assert await trader.page.is_hidden("#refresh")
    assert (w.problems, trader.problems) == ([], [])


async def test_second_approval_queue_for_risk(desk, browser):
    by_trader = await book(desk, 60_000_000)  # above the four-eyes limit (50,000,000)
    by_risk2 = await book(desk, 70_000_000, by=RISK2[0])
    w = await logged_in(browser, desk, RISK2)
    page = w.page
    await page.goto(f"{desk.url}/approvals")
    await page.wait_for_selector("#live:has-text('实时更新已连接')")
    await expect(page.locator(".approval")).to_have_count(2)

    later = await book(desk, 80_000_000)  # a new pending trade arrives live
    await page.wait_for_selector(f".approval[data-id='{later}']", timeout=15000)

    await page.click(f".approval[data-id='{by_trader}'] button.approve")
    await page.wait_for_selector(f".approval[data-id='{by_trader}']", state="detached")
    await page.wait_for_selector(f"#done .done[data-id='{by_trader}']")
    status, trade = await api(desk, RISK, "GET", f"/api/trades/{by_trader}")
    assert status == 200 and trade["status"] == "live"
    assert [a["user"] for a in trade["approvals"]] == [TRADER[0], RISK2[0]]

    own = page.locator(f".approval[data-id='{by_risk2}']")  # the booker may not approve it
    assert "簿记人" in await own.inner_text()
    await own.locator("button.approve").click()
    status, refusal = await api(desk, RISK2, "POST", f"/api/trades/{by_risk2}/approve", json={})
    assert status == 403
    await expect(own.locator(".msg-err")).to_contain_text(refusal["error"])
    assert (await api(desk, RISK, "GET", f"/api/trades/{by_risk2}"))[1]["status"] == "pending_second_approval"
    await expect(page.locator(".approval")).to_have_count(2)

    trader = await logged_in(browser, desk, TRADER)
    await trader.page.goto(f"{desk.url}/approvals")
    await trader.page.wait_for_selector("#denied:has-text('仅限风控')")
    assert await trader.page.locator(".approval").count() == 0
    assert (w.problems, trader.problems) == ([], [])
