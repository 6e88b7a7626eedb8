"""The assistant page in a real browser under the strict CSP: a trader's refused call is listed with ✗ and runs
nothing; compliance asking about alerts sees the tool call ✓, the alerts table and a spoofing order timeline.
`OTCDESK_ASSISTANT_SCREENSHOT_COPY` (e.g. docs/screenshots/assistant-compliance.png) keeps the screenshot."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from otcdesk.app.auth import upsert_user
from otcdesk.app.db import init_db, make_engine
from otcdesk.app.settings import load_settings
from assistant_fixtures import write_surveillance_folder
from desk_fixtures import RunningDesk

pytestmark = pytest.mark.browser
SCREENSHOT_COPY = os.environ.get("OTCDESK_ASSISTANT_SCREENSHOT_COPY")


async def _login(browser, desk, username, password):
    page = await browser.new_page(viewport={"width": 1280, "height": 1100})
    problems = []
    page.on("console", lambda msg: problems.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    await page.goto(f"{desk.url}/login")
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("button")
    await page.wait_for_url("**/console")
    await page.goto(f"{desk.url}/assistant")
    await page.wait_for_selector(f"#who:has-text('{username}')")
    return page, problems


async def _ask(page, text: str, turn: int):
    await page.fill("#msg", text)
    await page.click("#chat button.approve")
    return await page.wait_for_selector(f"#chat-log .chat-turn:nth-child({turn})")


async def test_assistant_page_shows_tool_calls_by_role(browser, tmp_path):
    folder = tmp_path / "surveillance"
    write_surveillance_folder(folder)
    settings = load_settings(data_dir=tmp_path, DATABASE_URL=None, surveillance_dir=str(folder), risk_refresh_s=0)
    engine = make_engine(settings.db_url)
    init_db(engine)
    upsert_user(engine, "trader1", "trader-password-1", role="trader")
    upsert_user(engine, "comp1", "compliance-pass-1", role="compliance")
    engine.dispose()
    desk = await RunningDesk(settings).start()
    try:
        trader, problems = await _login(browser, desk, "trader1", "trader-password-1")
        turn = await _ask(trader, "有没有幌骗预警", 1)
        row = await turn.wait_for_selector("table.tool-calls tr.denied")
        assert await row.get_attribute("data-tool") == "surveillance_alerts"
        assert (await (await row.query_selector(".allowed-mark")).inner_text()) == "✗"
        assert "不能查看" in await turn.inner_text() and await turn.query_selector(".view") is None
        assert problems == []

        comp, problems = await _login(browser, desk, "comp1", "compliance-pass-1")
        turn = await _ask(comp, "有没有幌骗预警", 1)
        row = await turn.wait_for_selector("table.tool-calls tr.allowed")
        assert (await (await row.query_selector(".allowed-mark")).inner_text()) == "✓"
        assert '"type":"spoofing"' in await (await row.query_selector(".args")).inner_text()
        rows = await turn.query_selector_all(".view table.view-table")
        assert len(rows) == 2  # the alerts and the order timeline of the first spoofing alert
        timeline = await rows[1].inner_text()
        assert "new" in timeline and "cancel" in timeline and "fill" in timeline
        turn = await _ask(comp, "示例资产管理的交易", 2)  # a thread continues; compliance may look up trades
        await turn.wait_for_selector("table.tool-calls tr.allowed[data-tool='trade_lookup']")
        assert problems == []
        shot = tmp_path / "assistant-compliance.png"
        await comp.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 20_000
        if SCREENSHOT_COPY:
            Path(SCREENSHOT_COPY).parent.mkdir(parents=True, exist_ok=True)
            Path(SCREENSHOT_COPY).write_bytes(shot.read_bytes())
    finally:
        await desk.stop()
