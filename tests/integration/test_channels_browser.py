"""The channels' health panel (console) and the canary allowlist page (/channels) in a real browser (Debian's
chromium driven by Playwright) on a real server: staff see each channel's state, last message and last error as
they change; the admin turns canary mode on, puts a group in, is told why a malformed group id is refused, and
takes the group out, each change audited; other roles see the list without the controls. No CSP violation, no
script error."""
import asyncio

import pytest
from playwright.async_api import expect

from desk_fixtures import TRADER, RunningDesk, settings_with_users
from desk_fixtures import logged_in_page as logged_in
from otcdesk.app.repositories import transaction
from otcdesk.app.server import DESK, SIM

ADMIN = ("admin1", "admin-password-1")


@pytest.fixture
async def desk(tmp_path):
    settings = settings_with_users(tmp_path, {"trader": TRADER, "admin": ADMIN}, risk_refresh_s=0)
    running = await RunningDesk(settings, demo=False).start()
    yield running
    await running.stop()


async def test_health_panel_follows_the_channel(browser, desk):
    w = await logged_in(browser, desk, TRADER)
    sim = w.page.locator('#channel-health tr[data-channel="sim"]')
    await expect(sim.locator(".state")).to_have_text("已连接")
    await expect(sim.locator(".last-message")).to_have_text("-")
    await asyncio.to_thread(desk.app[SIM].post, "demo", "张经理", "在吗")  # a client speaks in the group
    await expect(sim.locator(".last-message")).not_to_have_text("-", timeout=10_000)
    health = desk.app[DESK].outbox.channels["sim"].health
    health.down("ConnectionError: platform unreachable", retry_in_s=4.0)
    await expect(sim).to_have_attribute("data-connected", "false", timeout=10_000)
    await expect(sim.locator(".state")).to_have_text("已断开")
    await expect(sim.locator(".last-error")).to_contain_text("ConnectionError: platform unreachable")
    await expect(sim).to_contain_text("4 秒后重连")
    health.up()
    await expect(sim.locator(".state")).to_have_text("已连接", timeout=10_000)
    await expect(sim.locator("td.num")).to_have_text("1")  # one reconnect
    await w.page.goto(f"{desk.url}/channels")  # read-only for a trader
    await expect(w.page.locator("#canary-mode")).to_have_attribute("data-enabled", "false")
    await expect(w.page.locator("#canary-toggle")).to_be_hidden()
    await expect(w.page.locator("#canary-add")).to_be_hidden()
    assert w.problems == []


async def test_admin_edits_the_canary_allowlist(browser, desk):
    w = await logged_in(browser, desk, ADMIN)
    page = w.page
    await page.goto(f"{desk.url}/channels")
    await expect(page.locator('#channel-health tr[data-channel="sim"] .state')).to_have_text("已连接")
    await expect(page.locator("#canary-empty")).to_be_visible()
    await page.click("#canary-toggle")
    await expect(page.locator("#canary-mode")).to_have_attribute("data-enabled", "true")
    await expect(page.locator("#canary-updated")).to_contain_text("admin1")

    await page.select_option("#canary-channel", "wechat")
    await page.fill("#canary-group", "<b>x</b>")
    await page.click("#canary-add button[type=submit]")
    await expect(page.locator("#canary-error")).to_contain_text("group_id")
    await page.fill("#canary-group", "12345678@chatroom")
    await page.click("#canary-add button[type=submit]")
    row = page.locator('#canary-groups tr[data-group="wechat:12345678@chatroom"]')
    await expect(row.locator(".group-id")).to_have_text("12345678@chatroom")
    await expect(page.locator("#canary-error")).to_have_text("")
    await expect(page.locator("#canary-group")).to_have_value("")

    await page.reload()  # stored, not only shown
    await expect(row).to_contain_text("admin1")
    await row.locator("button.remove").click()
    await expect(row).to_have_count(0)
    await expect(page.locator("#canary-empty")).to_be_visible()
    assert w.problems == []
    with transaction(desk.app[DESK].engine) as tx:
        changes = [(a.actor, a.action, a.subject) for a in tx.audit.entries() if a.action.startswith("canary.")]
    assert changes == [("admin1", "canary.mode", "canary"),
                       ("admin1", "canary.group_in", "group:wechat:12345678@chatroom"),
                       ("admin1", "canary.group_out", "group:wechat:12345678@chatroom")]
