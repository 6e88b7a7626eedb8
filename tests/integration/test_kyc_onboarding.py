"""Issue #11 done: a client is onboarded end to end over HTTP on SQLite and PostgreSQL, and then gets quotes.

invitation (sales) → the client's form (one refused submission, documents uploaded) → sales review → compliance
returns it → the client resubmits with the same token → sales → compliance (screened on entry by private set
intersection against `otcdesk screen serve`, a second real process holding tens of thousands of identifiers; the
due-diligence report generated) → risk (limits) → the client reads the draft and signs through its token → the
signed agreement verified by `otcdesk kyc verify-agreement` as a subprocess → a chat group bound → a quote request
in that group reaches the review queue. Then a suspension stops quotes at once: the drafted quote can no longer be
approved, and the group's next message gets the onboarding notice. A second applicant on the holder's list is
caught by the same holder and cannot pass compliance.
"""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from otcdesk.app.auth import upsert_user
from otcdesk.app.db import init_db, make_engine
from otcdesk.app.kyc.screening import SAMPLE_BLACKLISTED_USCC
from otcdesk.app.kyc.synthetic import synthetic_identifiers
from otcdesk.app.settings import load_settings
from desk_fixtures import OTCDESK, RunningDesk, free_port, wait_for
from kyc_fixtures import NAME, form, pdf_bytes, png_bytes

HELD_N = 30_000
USERS = {"sales1": "sales", "comp1": "compliance", "risk1": "risk", "trader1": "trader"}
QUOTE = "@询价机器人 沪深300 1个月 平值看跌 1000万"


@pytest.fixture
def holder(tmp_path):
    """`otcdesk screen serve` in a process of its own, holding HELD_N synthetic identifiers and the sample hit."""
    held = synthetic_identifiers(HELD_N, seed=11) + [SAMPLE_BLACKLISTED_USCC]
    (tmp_path / "held.txt").write_text("\n".join(held) + "\n", encoding="utf-8")
    port = free_port()
    out = tmp_path / "holder.out"
    with open(out, "w") as stdout, open(tmp_path / "holder.err", "w") as stderr:
        proc = subprocess.Popen([OTCDESK, "screen", "serve", "--list", str(tmp_path / "held.txt"), "--port", str(port)],
                                stdout=stdout, stderr=stderr, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not out.read_text().strip():
        time.sleep(0.2)
    assert out.read_text().strip(), (tmp_path / "holder.err").read_text()
    ready = json.loads(out.read_text().splitlines()[0])
    assert ready["holder_size"] == HELD_N + 1
    yield ready["serving"]
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request, tmp_path, holder):
    url = request.getfixturevalue("pg_schema_url") if request.param == "postgres" else None
    settings = load_settings(data_dir=tmp_path / "desk", DATABASE_URL=url, blacklist_endpoint=holder,
                             risk_refresh_s=0, market_tick_s=0)
    settings.ensure_dirs()
    engine = make_engine(settings.db_url)
    init_db(engine)
    for name, role in USERS.items():
        upsert_user(engine, name, f"{name}-password", role=role)
    engine.dispose()
    return settings


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def _ok(resp, status: int = 200):
    body = await resp.json()
    assert resp.status == status, body
    return body


async def _decide(session, aid: str, decision: str, comment: str | None = None, **extra) -> dict:
    return await _ok(await session.post(f"/api/kyc/applications/{aid}/decision",
                                        json={"decision": decision, "comment": comment, **extra}))


async def _apply(desk, sales, anon, name: str, institution: dict) -> tuple[str, str]:
    inv = await _ok(await sales.post("/api/kyc/invitations", json={
        "institution_name": name, "contact_name": "李雷", "contact_mobile": "13812345678"}))
    token = inv["token"]
    for kind, filename, ctype, data in (("business_licence", "营业执照.pdf", "application/pdf", pdf_bytes()),
                                        ("authorisation_letter", "授权委托书.pdf", "application/pdf", pdf_bytes("auth")),
                                        ("id_copy", "身份证.png", "image/png", png_bytes())):
        await _ok(await anon.post("/api/kyc/documents", json={"token": token, "kind": kind, "filename": filename,
                                                              "content_type": ctype, "data_base64": _b64(data)}))
    app = await _ok(await anon.post("/api/kyc/applications", json={"token": token, "institution": institution}))
    return app["id"], token


async def _pending(trader, group: str, kind: str):
    async def find():
        items = await (await trader.get("/api/review?status=pending")).json()
        return next((i for i in items if i["group"] == group and i["kind"] == kind), None)

    return await wait_for(find, timeout=60)


async def test_onboarding_to_first_quote(settings):
    desk = await RunningDesk(settings, demo=True).start()
    try:
        async with await desk.login("sales1", "sales1-password") as sales, \
                await desk.login("comp1", "comp1-password") as comp, \
                await desk.login("risk1", "risk1-password") as risk, \
                await desk.login("trader1", "trader1-password") as trader, desk.session() as anon:
            # invitation → the form: one refused submission (wrong check character, no documents yet)
            inv = await _ok(await sales.post("/api/kyc/invitations", json={
                "institution_name": NAME, "contact_name": "李雷", "contact_mobile": "13812345678"}))
            token = inv["token"]
            assert inv["url"].endswith(f"/apply#token={token}")
            good = form()
            wrong = good["uscc"][:-1] + ("1" if good["uscc"][-1] != "1" else "2")
            r = await anon.post("/api/kyc/applications", json={"token": token, "institution": {**good, "uscc": wrong}})
            refused = await r.json()
            assert r.status == 422 and "校验位" in refused["fields"]["uscc"]
            assert "documents.id_copy" in refused["fields"]
            for kind, name, ctype, data in (("business_licence", "营业执照.pdf", "application/pdf", pdf_bytes()),
                                            ("authorisation_letter", "授权委托书.pdf", "application/pdf", pdf_bytes("a")),
                                            ("id_copy", "身份证.png", "image/png", png_bytes())):
                await _ok(await anon.post("/api/kyc/documents", json={
                    "token": token, "kind": kind, "filename": name, "content_type": ctype, "data_base64": _b64(data)}))
            app = await _ok(await anon.post("/api/kyc/applications", json={"token": token, "institution": good}))
            aid, inst_id = app["id"], app["institution_id"]

            # three reviews, with one return to the client and its resubmission
            assert (await _decide(sales, aid, "approve", "联系人已核实"))["state"] == "compliance_review"
            returned = await _decide(comp, aid, "return", "授权委托书缺少盖章，请补充")
            assert returned["state"] == "returned" and returned["awaiting_role"] == "client"
            me = await _ok(await anon.post("/api/kyc/me", json={"token": token}))
            assert me["can_submit"] and me["application"]["history"][-1]["comment"] == "授权委托书缺少盖章，请补充"
            await _ok(await anon.post("/api/kyc/documents", json={
                "token": token, "kind": "authorisation_letter", "filename": "授权委托书-盖章.pdf",
                "content_type": "application/pdf", "data_base64": _b64(pdf_bytes("sealed"))}))
            again = await _ok(await anon.post("/api/kyc/applications", json={"token": token, "institution": good}))
            assert again["id"] == aid and again["state"] == "sales_review"
            await _decide(sales, aid, "approve")

            # compliance review: screened on entry by PSI against the holder process; the report is there
            seen = await _ok(await comp.get(f"/api/kyc/applications/{aid}"))
            bl = seen["screening"]["blacklist"]
            assert (bl["hit"], bl["method"], bl["holder_size"], bl["queried"]) == (False, "ecdh-psi", HELD_N + 1, 2)
            assert seen["report"] and seen["view"]["report"]["pdf_url"]
            r = await comp.get(f"/api/kyc/applications/{aid}/report")
            html = await r.text()
            assert r.status == 200 and r.content_type == "text/html" and NAME in html
            r = await comp.get(f"/api/kyc/applications/{aid}/report.pdf")
            assert r.status == 200 and (await r.read()).startswith(b"%PDF-")
            assert (await _decide(comp, aid, "approve", "筛查无命中，材料齐全"))["state"] == "risk_review"
            risk_view = await _ok(await risk.get(f"/api/kyc/applications/{aid}"))
            assert risk_view["view"]["suitability"]["eligible"] and "*" in risk_view["institution"]["contact_mobile"]
            signing = await _decide(risk, aid, "approve", "适当性匹配", limits={"notional_cny": 1e8})
            assert signing["state"] == "signing" and signing["awaiting_role"] == "client"

            # the client reads the draft (token in a header, never the URL) and signs what it read
            r = await anon.get(f"/api/kyc/applications/{aid}/agreement.pdf", headers={"X-Invitation-Token": token})
            assert r.status == 200 and r.headers["X-Agreement-Status"] == "draft"
            accepted = r.headers["X-Content-SHA256"]
            signed = await _ok(await anon.post(f"/api/kyc/applications/{aid}/sign",
                                               json={"token": token, "accepted_sha256": accepted}))
            assert signed["state"] == "approved" and signed["agreement"]["signed"]
            r = await comp.get(f"/api/kyc/applications/{aid}/agreement.pdf")
            assert r.status == 200 and r.headers["X-Content-SHA256"] == signed["agreement"]["sha256"]
            r = await anon.post(f"/api/kyc/applications/{aid}/sign", json={"token": token})
            assert r.status == 410  # the token is spent

            # the agreement verified by the operator's command, a process of its own
            env = {**os.environ, "OTCDESK_DATA_DIR": str(settings.data_dir)}
            env.pop("DATABASE_URL", None)
            if settings.database_url:
                env["DATABASE_URL"] = settings.database_url
            run = subprocess.run([OTCDESK, "kyc", "verify-agreement", aid], env=env, capture_output=True, text=True,
                                 timeout=120)
            assert run.returncode == 0, run.stdout + run.stderr
            verified = json.loads(run.stdout)
            assert verified["ok"] and verified["signature"]["valid"] and verified["chain"]["ok"]
            assert verified["signature"]["acceptance"]["content_sha256"] == accepted

            # a group bound to the approved institution gets quotes
            bound = await _ok(await sales.post(f"/api/kyc/institutions/{inst_id}/groups",
                                               json={"group": "kyc-new", "channel": "sim"}))
            assert {"channel": "sim", "group": "kyc-new"} in bound["groups"]
            await desk.say(QUOTE, sender="李雷", group="kyc-new")
            quote = await _pending(trader, "kyc-new", "quote")
            assert quote["lines"] and quote["lines"][0]["price_pct"] > 0

            # a suspension stops quotes at once: the drafted quote is refused, the next message gets the notice
            await _ok(await comp.post(f"/api/kyc/applications/{aid}/transition",
                                      json={"trigger": "suspend", "comment": "监管问询，暂停交易"}))
            r = await trader.post(f"/api/review/{quote['id']}/approve", json={})
            assert r.status == 409 and "suspended" in (await r.json())["error"]
            await desk.say("再来一个 中证500 1个月 平值看涨 1000万", sender="李雷", group="kyc-new")
            notice = await _pending(trader, "kyc-new", "onboarding")
            assert notice["lines"] == []

            # a second applicant on the holder's list is caught by the same holder and cannot pass compliance
            hit_id, _ = await _apply(desk, sales, anon, "另一家资产管理有限公司",
                                     form("second", name="另一家资产管理有限公司", uscc=SAMPLE_BLACKLISTED_USCC))
            caught = await _decide(sales, hit_id, "approve")
            assert caught["state"] == "compliance_review"
            got = await _ok(await comp.get(f"/api/kyc/applications/{hit_id}"))
            assert got["screening"]["blacklist"]["hit"] is True
            r = await comp.post(f"/api/kyc/applications/{hit_id}/decision", json={"decision": "approve"})
            assert r.status == 409 and "blacklist" in (await r.json())["error"]
    finally:
        await desk.stop()
