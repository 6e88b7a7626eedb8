"""The trader console in a real browser (Debian's chromium driven by Playwright): log in, see an item
arrive live without reloading, approve it, see it leave the queue and the reply reach the group."""
import os
import shutil
from pathlib import Path

import pytest

from desk_fixtures import IN_CI, TRADER, wait_for

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-quic", "--no-first-run"]
SCREENSHOT_COPY = os.environ.get("OTCDESK_SCREENSHOT_COPY")  # e.g. docs/console.png when refreshing the README


@pytest.fixture
async def browser():
    if not os.path.exists(CHROMIUM):
        if IN_CI:
            pytest.fail("chromium is required under CI (scripts/setup_test_env.sh installs it)")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        await b.close()


async def test_console_login_live_item_approve(desk, browser, tmp_path):
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await page.goto(f"{desk.url}/console")
    assert page.url.endswith("/login")
    await page.fill("#username", TRADER[0])
    await page.fill("#password", TRADER[1])
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{desk.url}/console")
    await page.wait_for_selector("#empty")
    await page.wait_for_selector("#live:has-text('实时更新已连接')")

    await desk.say("@询价机器人 中证500 2周 平值看涨 500万", sender="陈总")  # arrives by SSE, no reload
    card = page.locator(".item").first
    await card.wait_for(timeout=15000)
    assert "陈总" in await card.inner_text() and "000905.SH" in await card.inner_text()
    shot = tmp_path / "console.png"
    await page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if SCREENSHOT_COPY:
        Path(SCREENSHOT_COPY).write_bytes(shot.read_bytes())

    await card.locator("button.approve").click()
    await page.wait_for_selector(".item", state="detached", timeout=15000)
    await page.wait_for_selector("#empty")
    replies = await wait_for(lambda: _bot(desk))
    assert replies[0]["text"].startswith("@陈总")


async def _bot(desk):
    return [m for m in await desk.transcript() if m["from_bot"]]
