"""The surveillance page in a real browser (Debian's chromium) on a real server over a generated order-flow folder:
compliance runs surveillance, opens a spoofing alert, sees its order timeline (SVG marks for new orders, cancels
and fills), investigates and escalates it with a note; a trader sees no nav link, a refusal on the page and 403
from the API. Under the service's CSP: no violation, no script error. `OTCDESK_SURVEILLANCE_SCREENSHOT_COPY`
(docs/screenshots/surveillance-alert.png when refreshing) keeps the alert's screenshot."""
import os
import re
from pathlib import Path

import pytest
from playwright.async_api import expect

from assistant_fixtures import write_surveillance_folder
from desk_fixtures import TRADER, RunningDesk
from otcdesk.app.auth import upsert_user
from otcdesk.app.db import init_db, make_engine
from otcdesk.app.settings import load_settings

COMPLIANCE = ("carol", "compliance-password-1")
SCREENSHOT_COPY = os.environ.get("OTCDESK_SURVEILLANCE_SCREENSHOT_COPY")


@pytest.fixture
async def desk(tmp_path):
    folder = tmp_path / "surveillance"
    write_surveillance_folder(folder, seed=9)
    settings = load_settings(data_dir=tmp_path, DATABASE_URL=None, surveillance_dir=str(folder), risk_refresh_s=0,
                             risk_worker_process=False)
    engine = make_engine(settings.db_url)
    init_db(engine)
    upsert_user(engine, *TRADER, role="trader")
    upsert_user(engine, *COMPLIANCE, role="compliance")
    engine.dispose()
    running = await RunningDesk(settings, demo=False).start()
    yield running
    await running.stop()


async def logged_in(browser, desk, user):
    context = await browser.new_context(viewport={"width": 1200, "height": 900})
    page = await context.new_page()
    problems = []
    page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    await page.goto(f"{desk.url}/login")
    await page.fill("#username", user[0])
    await page.fill("#password", user[1])
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{desk.url}/console")
    return page, problems


async def test_page_holds_no_inline_code(desk):
    async with await desk.login(*COMPLIANCE) as s:
        html = await (await s.get("/surveillance")).text()
        assert "<main>" in html and re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
        assert re.findall(r"\son[a-z]+\s*=", html) == [] and " style=" not in html
        for src in ("/static/surveillance.js", "/static/charts.js"):
            js = await (await s.get(src)).text()
            assert "style=" not in js and not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|\.style\.", js), src
    async with desk.session() as anonymous:
        r = await anonymous.get("/surveillance", allow_redirects=False)
        assert r.status == 302 and r.headers["Location"] == "/login"


async def test_compliance_runs_opens_a_spoofing_alert_and_escalates_it(desk, browser, tmp_path):
    page, problems = await logged_in(browser, desk, COMPLIANCE)
    link = page.locator("#survlink")
    await expect(link).to_be_visible()
    await link.click()
    await page.wait_for_url(f"{desk.url}/surveillance")
    await expect(page.locator("#alerts-empty")).to_be_visible()

    await page.click("#run")
    await expect(page.locator("#run-result")).to_contain_text("发现")
    await expect(page.locator("#counts .count[data-type=spoofing] b")).not_to_have_text("0")
    await page.select_option("#type", "spoofing")
    rows = page.locator("#alerts tr.alert")
    await expect(page.locator("#alerts tr.alert:not([data-type=spoofing])")).to_have_count(0)
    await expect(rows.first).to_have_attribute("data-type", "spoofing")
    await expect(page.locator("#groups tr.group").first).to_be_visible()

    await rows.first.click()
    chart = page.locator("#timeline svg.order-timeline")
    await expect(chart).to_be_visible()
    for event in ("new", "cancel", "fill"):
        assert await chart.locator(f".order-mark[data-event={event}]").count() >= 1, event
    assert await chart.locator("line.order-life").count() >= 2
    assert await page.locator("#detail tr.evidence-order").count() >= 2
    await page.select_option("#yaxis", "qty")
    await expect(page.locator("#timeline .axis-title").first).to_have_text("数量")

    await page.click("#act-investigate")
    await expect(page.locator("#detail .badge").first).to_have_text("调查中")
    await page.click("#act-escalate")  # no note: refused before it reaches the server
    await expect(page.locator("#triage-err")).to_contain_text("处置说明")
    await page.fill("#note", "大额买单 1 秒内撤单，同时卖出成交，移交调查")
    await page.click("#act-escalate")
    await expect(page.locator("#detail .badge").first).to_have_text("已上报")
    await expect(page.locator("#detail tr.triage-step")).to_have_count(2)
    await expect(page.locator("#triage-final")).to_be_visible()
    await expect(page.locator("#alerts tr.alert.selected td .badge")).to_have_text("已上报")

    await page.locator("#detail").scroll_into_view_if_needed()
    shot = tmp_path / "surveillance-alert.png"
    await page.locator("#detail").screenshot(path=str(shot))
    if SCREENSHOT_COPY:
        Path(SCREENSHOT_COPY).parent.mkdir(parents=True, exist_ok=True)
        Path(SCREENSHOT_COPY).write_bytes(shot.read_bytes())
    assert problems == []


async def test_a_trader_gets_no_link_and_no_alerts(desk, browser):
    page, problems = await logged_in(browser, desk, TRADER)
    await expect(page.locator("#who")).to_contain_text(TRADER[0])
    await expect(page.locator("#survlink")).to_be_hidden()
    await page.goto(f"{desk.url}/trades")
    await expect(page.locator("#who")).to_contain_text("交易员")
    await expect(page.locator("#survlink")).to_be_hidden()
    await page.goto(f"{desk.url}/surveillance")
    await expect(page.locator("#denied")).to_contain_text("仅限合规")
    assert await page.locator("#alerts").count() == 0
    status = await page.evaluate("fetch('/api/surveillance/alerts').then((r) => r.status)")
    assert status == 403
    assert problems == []
