"""The due-diligence report's HTML in a real browser (Debian's chromium) under the console's own CSP and
stylesheet, served by a real HTTP server: no violation, the console's styles apply, a hostile institution name
stays text (no dialog, no element made from it)."""
from pathlib import Path

from aiohttp import web

from desk_fixtures import free_port
from otcdesk.app.http_security import SECURITY_HEADERS
from otcdesk.app.kyc.report import render_report_html

STATIC = Path(__file__).resolve().parents[2] / "otcdesk" / "app" / "static"
HOSTILE = '恶意机构"><script>alert(1)</script><img src=x onerror=alert(2) style="color:red">'


async def test_report_renders_under_the_consoles_csp(browser):
    html = render_report_html({
        "application": {"id": "KA7F3Q2", "state": "compliance_review", "awaiting_role": "compliance",
                        "institution": {"name": HOSTILE, "legal_representative_id": "110101199003074514",
                                        "contact_mobile": "13812345678", "investor_category": "professional"},
                        "history": [{"from": "sales_review", "to": "compliance_review", "by": "sales1",
                                     "role": "sales", "at": "2026-12-01T09:00:00+00:00", "comment": HOSTILE}],
                        "screening": {"blacklist": {"hit": True, "method": "ecdh-psi", "matched_fields": ["uscc"],
                                                    "at": "2026-12-01T09:00:01+00:00"},
                                      "negative_news": [{"title": HOSTILE, "passage": HOSTILE, "negative": True}]}},
        "documents": [{"kind": "business_licence", "filename": HOSTILE, "size": 10, "sha256": "ab" * 32}],
        "generated_at": "2026-12-01T09:00:02+00:00"})

    async def report(_request):
        return web.Response(text=html, content_type="text/html", headers=SECURITY_HEADERS)

    async def style(_request):
        return web.Response(body=(STATIC / "style.css").read_bytes(), content_type="text/css",
                            headers=SECURITY_HEADERS)

    app = web.Application()
    app.router.add_get("/report", report)
    app.router.add_get("/static/style.css", style)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        page = await (await browser.new_context()).new_page()
        problems, dialogs = [], []
        page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        page.on("dialog", lambda d: dialogs.append(d.message))
        stylesheet = []
        page.on("response", lambda r: stylesheet.append(r.status) if r.url.endswith("/static/style.css") else None)
        r = await page.goto(f"http://127.0.0.1:{port}/report")
        assert r.status == 200 and r.headers["content-security-policy"].startswith("default-src 'self'")
        await page.wait_for_load_state("networkidle")
        assert stylesheet == [200]
        assert problems == [] and dialogs == []
        assert await page.locator("script, img, [style]").count() == 0
        assert await page.locator(".card").count() >= 5
        radius = await page.locator(".card").first.evaluate("e => getComputedStyle(e).borderRadius")
        assert radius == "8px"  # the console's stylesheet applied
        body = await page.locator("body").inner_text()
        assert body.count(HOSTILE) >= 4 and "110101********4514" in body and "138****5678" in body
        assert "命中黑名单" in body
    finally:
        await runner.cleanup()


async def test_the_stylesheet_keeps_hidden_elements_hidden(browser):
    """`hidden` wins over the console's display rules: apply.js shows the agreement's links (a.button.big) only
    once their blob URL is set, and a link that failed to load stays out of sight."""
    page_html = ('<!doctype html><html><head><link rel="stylesheet" href="/static/style.css"></head>'
                 '<body class="client"><a id="big" class="button big" hidden>x</a><a id="plain" class="button" hidden>y</a></body></html>')

    async def page_(_request):
        return web.Response(text=page_html, content_type="text/html", headers=SECURITY_HEADERS)

    async def style(_request):
        return web.Response(body=(STATIC / "style.css").read_bytes(), content_type="text/css",
                            headers=SECURITY_HEADERS)

    app = web.Application()
    app.router.add_get("/page", page_)
    app.router.add_get("/static/style.css", style)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        page = await (await browser.new_context()).new_page()
        await page.goto(f"http://127.0.0.1:{port}/page")
        await page.wait_for_load_state("networkidle")
        for sel in ("#big", "#plain"):
            assert not await page.locator(sel).is_visible(), sel
        await page.locator("#big").evaluate("e => { e.hidden = false; }")
        assert await page.locator("#big").is_visible()
    finally:
        await runner.cleanup()
