"""Client onboarding (KYC) in a real browser (Debian's chromium driven by Playwright) on a real server and database:
the invited client fills the public /apply page on a phone-sized screen, the server's per-field errors appear next to
the fields while everything typed stays, documents are uploaded with their SHA-256 shown; sales, compliance and risk
review on /onboarding and /kyc?id= (only the role whose turn it is sees decision buttons), compliance reads the
screening, the documents and the due-diligence report and returns the application; the client sees the comment,
corrects and resubmits; the reviews pass, the client signs, and the pipeline shows the institution approved. Every
page runs under the service's CSP: the browser reports no violation and no script error."""
import hashlib
import os
import re
import struct
import zlib
from pathlib import Path

import pytest
from playwright.async_api import expect

from desk_fixtures import RunningDesk, Watched
from desk_fixtures import logged_in_page as staff
from otcdesk.app.auth import upsert_user
from otcdesk.app.db import init_db, make_engine
from otcdesk.app.kyc.validation import USCC_CHARS, id_check_char, uscc_check_char
from otcdesk.app.settings import load_settings

pytestmark = pytest.mark.browser

SALES = ("sales1", "sales-password-1")
COMPLIANCE = ("compliance1", "compliance-password-1")
RISK = ("risk1", "risk-password-1")
ADMIN = ("admin1", "admin-password-1")
PHONE = {"width": 390, "height": 844}
INSTITUTION = "上海青岚拓川资产管理有限公司"  # fictional, as is its news below
REPRESENTATIVE = "闻溪舟"
USCC = "91310115MA1K3B7Q2" + uscc_check_char("91310115MA1K3B7Q2")
WRONG_USCC = USCC[:17] + next(c for c in USCC_CHARS if c != USCC[17])
ID = "11010519800307201" + id_check_char("11010519800307201")
IMPOSSIBLE_ID = "11010519800231201" + id_check_char("11010519800231201")  # 31 February
MOBILE = "13812345678"
COMMENT = "营业执照扫描件不清晰，请重新上传清晰的彩色扫描件"
SCREENSHOT_COPY = os.environ.get("OTCDESK_KYC_SCREENSHOT_COPY")  # docs/screenshots/onboarding-pipeline.png when refreshing


def tiny_pdf(text: str) -> bytes:
    """A minimal valid one-page PDF (a real header, objects, xref and trailer)."""
    stream = f"BT /F1 12 Tf 20 100 Td ({text}) Tj ET".encode()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def tiny_png(rgb: tuple[int, int, int]) -> bytes:
    """A real 2×2 PNG of one colour."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + bytes(rgb) * 2 for _ in range(2))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


LICENCE = tiny_pdf("business licence")
LICENCE_AGAIN = tiny_pdf("business licence, clear colour scan")
LETTER = tiny_pdf("authorisation letter")
ID_COPY = tiny_png((200, 30, 30))


@pytest.fixture
async def desk(tmp_path):
    """A server (not demo mode) with a local blacklist that does not hold the applicant, a news folder with one
    fictional adverse article about it, and one user of each reviewing role."""
    blacklist = tmp_path / "blacklist.txt"
    blacklist.write_text("91440300Y1AWB92PMM\n", encoding="utf-8")
    news = tmp_path / "news"
    news.mkdir()
    (news / "warning.md").write_text(
        f"# {INSTITUTION}收到警示函\n\n发布日期：2025年3月18日\n\n本报讯（虚构新闻）　监管部门近日对{INSTITUTION}出具警示函，"
        "该公司在产品募集过程中存在违规推介行为。公司表示将认真整改。\n", encoding="utf-8")
    settings = load_settings(data_dir=tmp_path, DATABASE_URL=None, blacklist_file=blacklist, news_dir=news,
                             risk_refresh_s=0)
    engine = make_engine(settings.db_url)
    init_db(engine)
    for (user, password), role in ((SALES, "sales"), (COMPLIANCE, "compliance"), (RISK, "risk"), (ADMIN, "admin")):
        upsert_user(engine, user, password, role=role)
    engine.dispose()
    running = await RunningDesk(settings, demo=False).start()
    yield running
    await running.stop()


async def phone(browser) -> Watched:
    context = await browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
                                        accept_downloads=True)
    return Watched(await context.new_page())


async def review(w: Watched, desk, app_id: str):
    await w.page.goto(f"{desk.url}/kyc?id={app_id}")
    await w.page.wait_for_selector("#summary")


async def decide(w: Watched, decision: str, comment: str = "", state: str = ""):
    if comment:
        await w.page.fill("#comment", comment)
    await w.page.click(f"#decide-{decision}")
    await w.page.wait_for_selector("#action-ok:not(:empty), #action-err:not(:empty)")
    assert await w.page.inner_text("#action-err") == "", w.problems
    if state:
        await expect(w.page.locator("#summary .badge")).to_have_text(state)


async def test_public_apply_page_and_no_inline_code(desk):
    """/apply is served without a session (the token is the credential, in the fragment); the staff pages are not.
    No page holds inline code, and no script builds markup from strings."""
    async with desk.session() as anonymous:
        r = await anonymous.get("/apply", allow_redirects=False)
        assert r.status == 200 and 'id="view"' in await r.text()
        for page in ("onboarding", "kyc"):
            r = await anonymous.get(f"/{page}", allow_redirects=False)
            assert r.status == 302 and r.headers["Location"] == "/login", page
    async with await desk.login(*SALES) as sales:
        for page in ("apply", "onboarding", "kyc"):
            html = await (await sales.get(f"/{page}")).text()
            assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == [], page
            assert re.findall(r"\son[a-z]+\s*=", html) == [] and " style=" not in html, page
            scripts = re.findall(r'<script src="([^"]+)"', html)
            assert f"/static/{page}.js" in scripts
            for src in scripts:
                js = await (await sales.get(src)).text()
                assert "style=" not in js and not re.search(r"\son[a-z]+=", js), src
                if src != "/static/common.js":
                    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\.style\.", js), src
        html = await (await sales.get("/trades")).text()
        assert '<a href="/onboarding">' in html  # in the console's navigation


async def test_apply_with_a_bad_token_says_so(desk, browser):
    w = await phone(browser)
    await w.page.goto(f"{desk.url}/apply#token={'x' * 43}")
    await expect(w.page.locator("#fatal")).to_contain_text("邀请链接无效")
    assert await w.page.locator("#application").count() == 0
    await w.page.goto(f"{desk.url}/apply")
    await w.page.reload()
    await expect(w.page.locator("#fatal")).to_contain_text("缺少邀请码")
    assert w.problems == []


async def test_onboarding_from_invitation_to_signed_agreement(desk, browser):
    # ---- sales invites: the link is shown once ------------------------------------------------------------
    sales = await staff(browser, desk, SALES)
    await sales.page.goto(f"{desk.url}/onboarding")
    await sales.page.wait_for_selector("#invite-card:not([hidden])")
    await sales.page.fill("#inv-name", INSTITUTION)
    await sales.page.fill("#inv-contact", "严若岚")
    await sales.page.fill("#inv-mobile", MOBILE)
    await sales.page.click("#inv-create")
    url = await (await sales.page.wait_for_selector("#inv-url")).input_value()
    assert url.startswith(f"{desk.url}/apply#token=")
    await sales.page.click("#inv-copy")
    await expect(sales.page.locator("#inv-once")).to_contain_text("已复制")
    await expect(sales.page.locator("#invitations tr.invitation")).to_have_count(1)
    assert "待客户使用" in await sales.page.inner_text("#invitations")

    # ---- the client on a phone: a wrong USCC check character and an impossible birth date -----------------
    client = await phone(browser)
    page = client.page
    await page.goto(url)
    await page.wait_for_selector("#application")
    assert await page.input_value("#f-name") == INSTITUTION and await page.input_value("#f-contact_name") == "严若岚"
    assert await page.get_attribute("#f-registered_capital_cny", "inputmode") == "numeric"
    assert await page.get_attribute("#f-contact_mobile", "type") == "tel"
    assert await page.get_attribute("#f-uscc", "autocapitalize") == "characters"
    typed = {"#f-uscc": WRONG_USCC.lower(), "#f-legal_representative": REPRESENTATIVE,
             "#f-legal_representative_id": IMPOSSIBLE_ID, "#f-registered_capital_cny": "50000000",
             "#f-contact_mobile": MOBILE, "#f-address": "上海市浦东新区临港大道虚构路88号"}
    for selector, value in typed.items():
        await page.fill(selector, value)
        await page.dispatch_event(selector, "input")
    await page.check("input[name=investor_category][value=professional]")
    assert await page.input_value("#f-uscc") == WRONG_USCC  # typed in lower case, kept in upper case
    await page.click("#f-address")  # leaving the USCC field shows the client-side hint
    await expect(page.locator("#f-uscc-hint")).to_contain_text(f"应为 {USCC[17]}")
    await page.click("#submit")
    await expect(page.locator(".field-err[data-for=uscc]")).to_contain_text("校验位错误")
    await expect(page.locator(".field-err[data-for=legal_representative_id]")).to_contain_text("不是有效日期")
    await expect(page.locator(".field-err[data-for='documents.business_licence']")).to_contain_text("营业执照")
    assert await page.get_attribute("#f-uscc", "aria-invalid") == "true"
    assert await page.locator(".field-err[data-for=address]").inner_text() == ""
    for selector, value in typed.items():  # nothing typed is lost
        expected = value.upper() if selector in ("#f-uscc", "#f-legal_representative_id") else value
        assert await page.input_value(selector) == expected, selector
    assert await page.is_checked("input[name=investor_category][value=professional]")
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # one column, no sideways scroll

    # ---- uploads with the server's SHA-256, then a corrected submission ---------------------------------------
    for kind, name, mime, data in (("business_licence", "licence.pdf", "application/pdf", LICENCE),
                                   ("authorisation_letter", "letter.pdf", "application/pdf", LETTER),
                                   ("id_copy", "id.png", "image/png", ID_COPY)):
        await page.set_input_files(f"#doc-{kind}", files=[{"name": name, "mimeType": mime, "buffer": data}])
        await expect(page.locator(f"#doc-{kind}-status .sha")).to_have_text(hashlib.sha256(data).hexdigest())
        await expect(page.locator(f"#doc-{kind}-status")).to_contain_text("与本机计算一致")
    await page.set_input_files("#doc-id_copy", files=[{"name": "x.txt", "mimeType": "text/plain", "buffer": b"hello"}])
    await expect(page.locator("#doc-id_copy-status")).to_contain_text("仍使用之前上传的文件")
    await page.fill("#f-uscc", USCC)
    await page.fill("#f-legal_representative_id", ID)
    await page.screenshot(path=str(desk.settings.data_dir / "apply-phone.png"), full_page=True)
    await page.click("#submit")
    await expect(page.locator("#in-review")).to_contain_text("销售人员审核")
    app_id = (await sales_pipeline_row(sales, desk)).split("=")[-1]

    # ---- not compliance's turn: no decision buttons ------------------------------------------------------------
    compliance = await staff(browser, desk, COMPLIANCE)
    await review(compliance, desk, app_id)
    await expect(compliance.page.locator("#not-your-turn")).to_contain_text("销售")
    assert await compliance.page.locator("#decision, #decide-approve").count() == 0

    # ---- sales approves --------------------------------------------------------------------------------------
    await review(sales, desk, app_id)
    facts = await sales.page.inner_text("#sales-section")
    assert INSTITUTION in facts and REPRESENTATIVE in facts and MOBILE in facts
    assert ID not in facts  # sales do not decide on the ID number: masked
    assert await sales.page.locator("#compliance-section, #documents").count() == 0
    await decide(sales, "approve", state="合规审核")

    # ---- compliance: screening, documents, report; returns it -------------------------------------------------
    await review(compliance, desk, app_id)
    section = compliance.page.locator("#compliance-section")
    await expect(section.locator("#blacklist")).to_contain_text("未命中")
    await expect(section.locator("#blacklist")).to_contain_text("本地名单")
    await expect(section.locator("#news .news-hit")).to_have_count(1)
    assert "警示函" in await section.locator("#news .passage").inner_text()
    rows = section.locator("#documents tr.document")
    await expect(rows).to_have_count(3)
    shas = await section.locator("#documents td.sha").all_inner_texts()
    assert sorted(shas) == sorted(hashlib.sha256(d).hexdigest() for d in (LICENCE, LETTER, ID_COPY))
    async with compliance.page.expect_download() as info:
        await section.locator("tr.document[data-kind=business_licence] a.doc-download").click()
    assert Path(await (await info.value).path()).read_bytes() == LICENCE
    async with compliance.page.context.expect_page() as opened:
        await compliance.page.click("#report-html")
    report = await opened.value
    await report.wait_for_load_state()
    text = await report.inner_text("body")
    assert INSTITUTION in text and "警示函" in text
    pdf = await compliance.page.request.get(f"{desk.url}{await compliance.page.get_attribute('#report-pdf', 'href')}")
    assert pdf.status == 200 and (await pdf.body()).startswith(b"%PDF")
    await compliance.page.screenshot(path=str(desk.settings.data_dir / "kyc-compliance.png"), full_page=True)
    await compliance.page.click("#rescreen")
    await expect(compliance.page.locator("#action-ok")).to_contain_text("已重新筛查")
    await expect(compliance.page.locator("#blacklist")).to_contain_text("未命中")
    await compliance.page.click("#decide-return")  # a return needs a comment
    await expect(compliance.page.locator("#action-err")).to_contain_text("须填写审核意见")
    await decide(compliance, "return", COMMENT, state="已退回客户")

    # ---- the client reads the comment, corrects, resubmits ----------------------------------------------------
    await page.reload()
    await expect(page.locator("#return-comment")).to_have_text(COMMENT)
    await page.screenshot(path=str(desk.settings.data_dir / "apply-returned.png"), full_page=True)
    assert await page.input_value("#f-uscc") == USCC and await page.input_value("#f-legal_representative_id") == ID
    await page.set_input_files("#doc-business_licence",
                               files=[{"name": "licence-colour.pdf", "mimeType": "application/pdf", "buffer": LICENCE_AGAIN}])
    await expect(page.locator("#doc-business_licence-status .sha")).to_have_text(hashlib.sha256(LICENCE_AGAIN).hexdigest())
    await page.click("#submit")
    await expect(page.locator("#in-review")).to_be_visible()

    # ---- the reviews pass --------------------------------------------------------------------------------------
    await review(sales, desk, app_id)
    await decide(sales, "approve", state="合规审核")
    await review(compliance, desk, app_id)
    assert hashlib.sha256(LICENCE_AGAIN).hexdigest() in await compliance.page.inner_text("#documents")
    await decide(compliance, "approve", "材料齐全，筛查无命中；舆情已核实为已整改事项", state="风控审核")
    risk = await staff(browser, desk, RISK)
    await review(risk, desk, app_id)
    assert "专业投资者" in await risk.page.inner_text("#risk-section")
    assert await risk.page.locator("#compliance-section, #documents, #news").count() == 0
    await risk.page.fill("#limits input[data-key=notional_cny]", "200000000")
    await risk.page.fill("#limits input[data-key=single_trade_cny]", "50000000")
    await decide(risk, "approve", state="待客户签署")
    await expect(risk.page.locator("#limits input[data-key=notional_cny]")).to_have_value("200000000")

    # ---- the client signs ------------------------------------------------------------------------------------
    await page.reload()
    await expect(page.locator("#agreement-link")).to_be_visible()
    assert (await page.get_attribute("#agreement-link", "href")).startswith("blob:")  # the token stays out of URLs
    async with page.expect_download() as info:
        await page.click("#agreement-link")
    draft = Path(await (await info.value).path()).read_bytes()
    assert draft.startswith(b"%PDF-")
    await expect(page.locator("#agreement-sha")).to_contain_text(hashlib.sha256(draft).hexdigest())
    assert await page.is_disabled("#sign")
    await page.screenshot(path=str(desk.settings.data_dir / "apply-signing.png"), full_page=True)
    await page.check("#accept")
    await page.click("#sign")
    await expect(page.locator("#done")).to_contain_text("开户完成")
    signed_sha = await page.inner_text("#signed-sha")
    await expect(page.locator("#agreement-link")).to_be_visible()
    async with page.expect_download() as info:
        await page.click("#agreement-link")
    signed = Path(await (await info.value).path()).read_bytes()
    assert signed.startswith(b"%PDF-") and hashlib.sha256(signed).hexdigest() == signed_sha != hashlib.sha256(draft).hexdigest()

    # ---- staff: approved, the agreement, group binding ----------------------------------------------------------
    await review(sales, desk, app_id)
    await expect(sales.page.locator("#agreement-sha")).to_have_text(signed_sha)
    assert await sales.page.locator("#decision").count() == 0
    await sales.page.fill("#group", "qinglan-otc")
    await sales.page.click("#bind")
    await expect(sales.page.locator("#bound")).to_contain_text("qinglan-otc")
    await sales.page.screenshot(path=str(desk.settings.data_dir / "kyc-sales-approved.png"), full_page=True)
    assert await sales.page.locator("#trigger-suspend").count() == 0  # sales may reopen, not suspend

    admin = await staff(browser, desk, ADMIN)
    await review(admin, desk, app_id)
    assert await admin.page.locator("#decision").count() == 0
    await admin.page.click("#trigger-suspend")  # a suspension needs its reason
    await expect(admin.page.locator("#action-err")).to_contain_text("须填写原因")
    await admin.page.fill("#transition-comment", "年度复核资料逾期未交")
    await admin.page.click("#trigger-suspend")
    await expect(admin.page.locator("#summary .badge")).to_have_text("已暂停")
    await admin.page.fill("#transition-comment", "资料已补交")
    await admin.page.click("#trigger-reinstate")
    await expect(admin.page.locator("#summary .badge")).to_have_text("已准入")
    assert "年度复核资料逾期未交" in await admin.page.inner_text("#history")

    await sales.page.goto(f"{desk.url}/onboarding")
    await sales.page.click("#states button[data-state=approved]")
    row = sales.page.locator(f"#apps tr.app[data-id='{app_id}']")
    await expect(row).to_contain_text("已准入")
    for w in (sales, client, compliance, risk, admin):
        assert w.problems == [], w.problems


async def sales_pipeline_row(sales: Watched, desk) -> str:
    """The pipeline as sales sees the new application: awaiting sales, highlighted; its review link."""
    await sales.page.goto(f"{desk.url}/onboarding")
    row = sales.page.locator("#apps tr.app.mine")
    await expect(row).to_have_count(1)
    assert INSTITUTION in await row.inner_text() and "轮到您" in await row.inner_text()
    await expect(row.locator("td.waiting")).to_have_text(re.compile(r"刚刚|分钟"))
    shot = desk.settings.data_dir / "onboarding-pipeline.png"
    await sales.page.set_viewport_size({"width": 1200, "height": 640})  # the page's content, no empty band
    await sales.page.screenshot(path=str(shot), full_page=True)
    assert 5_000 < shot.stat().st_size < 300_000
    if SCREENSHOT_COPY:
        Path(SCREENSHOT_COPY).parent.mkdir(parents=True, exist_ok=True)
        Path(SCREENSHOT_COPY).write_bytes(shot.read_bytes())
    return await row.locator("td a").first.get_attribute("href")


async def test_revoked_invitation_no_longer_opens_the_form_until_a_link_is_reissued(desk, browser):
    sales = await staff(browser, desk, SALES)
    await sales.page.goto(f"{desk.url}/onboarding")
    await sales.page.fill("#inv-name", INSTITUTION)
    await sales.page.fill("#inv-contact", "严若岚")
    await sales.page.fill("#inv-mobile", MOBILE)
    await sales.page.click("#inv-create")
    url = await (await sales.page.wait_for_selector("#inv-url")).input_value()
    sales.page.once("dialog", lambda d: d.accept())
    await sales.page.click("#invitations button.revoke")
    await expect(sales.page.locator("#invitations .inv-status")).to_have_text("已撤销")
    assert await sales.page.locator("#invitations button.revoke").count() == 0

    client = await phone(browser)
    await client.page.goto(url)
    await expect(client.page.locator("#fatal")).to_contain_text("已过期或已被撤销")

    # sales reissues a link: shown once, the revoked one stays dead, the new one opens the form
    sales.page.once("dialog", lambda d: d.accept())
    await sales.page.click("#invitations button.reissue")
    fresh = await (await sales.page.wait_for_selector("#reissue-once #inv-url")).input_value()
    assert fresh != url and "#token=" in fresh
    await expect(sales.page.locator("#invitations .inv-status")).to_have_text("待客户使用")
    again = await phone(browser)
    await again.page.goto(fresh)
    await again.page.wait_for_selector("#application")
    for w in (sales, client, again):
        assert w.problems == [], w.problems
