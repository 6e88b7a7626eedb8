"""The structure templates page in a real browser (Debian's chromium) on a real server: admin uploads a template
written here, sees it listed with its versions; a refused template shows its reason field by field; another role
is told the page is not theirs. No CSP violation, no script error."""
import json

import pytest
from playwright.async_api import expect

from desk_fixtures import TRADER, RunningDesk, settings_with_users
from desk_fixtures import logged_in_page as logged_in
from template_fixtures import capped_snowball

ADMIN = ("admin1", "admin-password-1")


@pytest.fixture
async def desk(tmp_path):
    settings = settings_with_users(tmp_path, {"admin": ADMIN, "trader": TRADER}, risk_refresh_s=0)
    running = await RunningDesk(settings, demo=False).start()
    yield running
    await running.stop()


async def test_admin_uploads_a_template_and_sees_a_refusal_with_its_reason(browser, desk):
    w = await logged_in(browser, desk, ADMIN)
    page = w.page
    await page.goto(f"{desk.url}/templates")
    await expect(page.locator("#empty")).to_be_visible()
    bad = capped_snowball("browser_capped", ["早利雪球"])
    await page.fill("#doc", json.dumps(bad, ensure_ascii=False))
    await page.click("#upload")
    await expect(page.locator("#refusal")).to_contain_text("未通过校验")
    await expect(page.locator('#fields li[data-field="names"]')).to_contain_text("already means snowball")
    good = capped_snowball("browser_capped", ["浏览器雪球"])
    await page.fill("#doc", json.dumps(good, ensure_ascii=False))
    await page.click("#upload")
    await expect(page.locator("#accepted")).to_contain_text("已上传 browser_capped 第 1 版")
    await expect(page.locator("#accepted")).to_contain_text("fd")
    row = page.locator('tr.template[data-structure="browser_capped"]')
    await expect(row).to_contain_text("浏览器雪球")
    good["params"]["floor_pct"]["default"] = 65
    await page.fill("#doc", json.dumps(good, ensure_ascii=False))
    await page.click("#upload")
    await expect(page.locator("#accepted")).to_contain_text("第 2 版")
    await row.locator("button.history").click()
    await expect(page.locator("#versions tr.version")).to_have_count(2)
    assert w.problems == []


async def test_admin_withdraws_a_template_and_sees_it_marked_withdrawn(browser, desk):
    w = await logged_in(browser, desk, ADMIN)
    page = w.page
    await page.goto(f"{desk.url}/templates")
    await page.fill("#doc", json.dumps(capped_snowball("browser_withdrawn", ["撤回浏览器雪球"]), ensure_ascii=False))
    await page.click("#upload")
    await expect(page.locator("#accepted")).to_contain_text("第 1 版")
    row = page.locator('tr.template[data-structure="browser_withdrawn"]')
    await expect(row.locator("td.status")).to_have_text("生效")
    await row.locator("button.withdraw").click()  # no reason: nothing is sent
    await expect(page.locator("#refusal")).to_contain_text("需填写原因")
    await row.locator("input.reason").fill("<b>敲入线</b> 写错了")
    await row.locator("button.withdraw").click()
    await expect(page.locator("#withdrawn")).to_contain_text("已撤回 browser_withdrawn")
    withdrawn = page.locator('tr.template.withdrawn[data-structure="browser_withdrawn"]')
    await expect(withdrawn.locator("td.status")).to_contain_text("已撤回（admin1，")
    await expect(withdrawn.locator("button.withdraw")).to_have_count(0)
    assert w.problems == []


async def test_the_page_is_not_for_a_trader(browser, desk):
    w = await logged_in(browser, desk, TRADER)
    await w.page.goto(f"{desk.url}/templates")
    await expect(w.page.locator("#denied")).to_contain_text("仅限管理员")
    assert w.problems == []
