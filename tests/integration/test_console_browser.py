"""The trader console in a real browser (Debian's chromium driven by Playwright): log in, see an item
arrive live without reloading, approve it, see it leave the queue and the reply reach the group. The audit
page, under a CSP that forbids inline script and style, shows compliance the chain and where it broke."""
import os
import sqlite3
from pathlib import Path

import pytest

from desk_fixtures import TRADER, wait_for
from otcdesk.app.auth import upsert_user
from otcdesk.app.db import make_engine

SCREENSHOT_COPY = os.environ.get("OTCDESK_SCREENSHOT_COPY")  # e.g. docs/console.png when refreshing the README


async def test_console_login_live_item_approve(desk, browser, tmp_path):
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await page.goto(f"{desk.url}/console")
    assert page.url.endswith("/login")
    await _log_in(page, desk)

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


async def _log_in(page, desk):
    """Log in on the login page as the trader; the console opens with its live updates connected."""
    await page.fill("#username", TRADER[0])
    await page.fill("#password", TRADER[1])
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{desk.url}/console")
    await page.wait_for_selector("#empty")
    await page.wait_for_selector("#live:has-text('实时更新已连接')")


async def _bot(desk):
    return [m for m in await desk.transcript() if m["from_bot"]]


STRICT_CSP = "default-src 'self'"  # no inline script or style: what the audit page must work under


async def _with_strict_csp(route):
    response = await route.fetch(max_redirects=0)  # the redirect to /login is the browser's to follow
    await route.fulfill(response=response, headers={**response.headers, "content-security-policy": STRICT_CSP})


async def _login(browser, desk, username, password):
    page = await browser.new_page(viewport={"width": 1280, "height": 900})  # a context (cookie jar) of its own
    await page.route(f"{desk.url}/audit", _with_strict_csp)
    await page.goto(f"{desk.url}/audit")
    assert page.url.endswith("/login")
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{desk.url}/console")
    return page


async def test_audit_page_shows_compliance_the_chain_and_where_it_broke(desk, browser, tmp_path):
    engine = make_engine(desk.settings.db_url)
    upsert_user(engine, "carol", "compliance-password-1", role="compliance")
    engine.dispose()
    page = await _login(browser, desk, "carol", "compliance-password-1")
    problems = []  # script errors and CSP violations (the console's 403 for non-traders is not one)
    page.on("console", lambda msg: problems.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    await page.goto(f"{desk.url}/audit")
    await page.wait_for_selector("#chain-state[data-state=ok]")
    assert int(await page.inner_text("#chain-entries")) >= 3  # two users created, logins
    assert (await page.inner_text("#chain-head")).startswith("#")
    assert await page.inner_text("#chain-broken") == "无"
    await page.screenshot(path=str(tmp_path / "audit.png"), full_page=True)

    with sqlite3.connect(desk.settings.data_dir / "otcdesk.db", isolation_level=None) as attacker:
        attacker.execute("DROP TRIGGER audit_log_no_update")
        attacker.execute("UPDATE audit_log SET actor = 'mallory' WHERE id = 1")
    await page.click("#reverify")
    await page.wait_for_selector("#chain-state[data-state=broken]")
    assert (await page.inner_text("#chain-broken")).startswith("#1：hash mismatch")
    assert problems == []

    trader = await _login(browser, desk, *TRADER)
    await trader.goto(f"{desk.url}/audit")
    await trader.wait_for_selector("#chain-state[data-state=error]")
    assert "仅限合规与管理员" in await trader.inner_text("#chain-state")
    assert await trader.is_hidden("#chain-facts")


async def test_console_pages_run_under_the_csp_without_a_violation(desk, browser):
    """Every page works with its scripts and styles from /static only: the browser reports no CSP violation
    (and does report one when inline code is injected, so the listener is live)."""
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    reports, errors = [], []
    page.on("console", lambda msg: reports.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    response = await page.goto(f"{desk.url}/login")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    await _log_in(page, desk)

    await page.goto(f"{desk.url}/sim")
    await page.fill("#text", "@询价机器人 中证500 2周 平值看涨 500万")
    await page.click("#say button")
    await page.wait_for_selector(".msg:has-text('中证500')")

    await page.goto(f"{desk.url}/console")  # the item rendered from the queue
    await page.locator(".item").first.wait_for(timeout=15000)

    await page.goto(f"{desk.url}/assistant")
    await page.wait_for_selector("#who:has-text('trader1')")
    await page.fill("#q", "雪球的敲入是怎么观察的？")
    await page.click("#ask button")
    await page.wait_for_selector("#answer-text")
    await page.locator(".cite a.open").first.click()
    await page.wait_for_selector("#passage .passage-text")
    assert await page.eval_on_selector("#passage .passage-text", "el => getComputedStyle(el).whiteSpace") == "pre-wrap"
    assert await page.eval_on_selector("#kb", "el => getComputedStyle(el).maxWidth") == "140px"
    assert (reports, errors) == ([], [])

    await page.evaluate("() => { const s = document.createElement('script'); s.textContent = 'window.x = 1';"
                        " document.body.appendChild(s); }")
    await wait_for(lambda: _reported(reports))
    assert await page.evaluate("() => window.x") is None


async def _reported(reports):
    return reports


async def test_review_card_shows_fair_margin_and_quote_side_by_side(desk, browser, tmp_path):
    """Each priced line of a quote item shows the engine's fair value, the desk's margin and the quoted value
    (a premium marked up; a snowball's coupon marked down), as the API has them, under the strict CSP."""
    page = await browser.new_page(viewport={"width": 1400, "height": 900})
    problems = []
    page.on("console", lambda msg: problems.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    await page.route(f"{desk.url}/console", _with_strict_csp)
    await page.goto(f"{desk.url}/console")
    await _log_in(page, desk)

    await desk.say("@询价机器人 中证500 1个月 平值看涨 500万", sender="陈总")
    await desk.say("@询价机器人 中证500 一年期雪球 103/75 1000万 票息多少", sender="李总")
    await page.locator(".item table.lines").nth(1).wait_for(timeout=30000)
    async with await desk.login() as trader:
        items = {it["sender"]: it for it in await (await trader.get("/api/review?status=pending")).json()}

    for sender, field in (("陈总", None), ("李总", "coupon_pct")):
        item = items[sender]
        [line] = item["lines"]
        row = page.locator(f".item[data-id='{item['id']}'] table.lines tr").nth(1)
        fair, margin, quote = [await row.locator(f"td.{c}").inner_text() for c in ("fair", "margin", "quote")]
        assert margin.startswith(f"{line['margin_pct']:.3f}%") and "万元" in margin and "≤" in margin
        if field is None:  # a premium: fair, then fair + margin
            assert (fair, quote) == (f"{line['fair_price_pct']:.3f}%", f"{line['price_pct']:.3f}%")
            assert line["price_pct"] > line["fair_price_pct"]
        else:  # a coupon: fair, then lower
            assert (fair, quote) == (f"票息 {line['fair_solved'][field]:.2f}%", f"票息 {line['solved'][field]:.2f}%")
            assert line["solved"][field] < line["fair_solved"][field]
        # the draft the trader approves quotes the desk's number
        draft = await page.locator(f".item[data-id='{item['id']}'] textarea.reply").input_value()
        shown = (line["price_pct"], line["fair_price_pct"]) if field is None else \
            (line["solved"][field], line["fair_solved"][field])
        assert f"{shown[0]:.2f}%" in draft and f"{shown[1]:.2f}%" not in draft
    assert await row.locator("td.quote").evaluate("el => getComputedStyle(el).fontWeight") == "600"  # style.css
    await page.screenshot(path=str(tmp_path / "margins.png"), full_page=True)
    assert problems == []
