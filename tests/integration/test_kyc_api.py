"""The KYC API on the real server (CONTRACTS Part 2 "KYC onboarding"): who may call each route (401 / 403), the
token as the client's only credential (unknown, expired, revoked, spent, someone else's), uploads checked at the
edge and in the service, a 422 with per-field reasons that stores nothing, a decision by the wrong role."""
from __future__ import annotations

import base64
import datetime as dt

import pytest
from sqlalchemy import update

from otcdesk.app.auth import upsert_user
from otcdesk.app.db import init_db, make_engine
from otcdesk.app.demo import seed_demo
from otcdesk.app.kyc.screening import SAMPLE_LIST
from otcdesk.app.models import KycInvitation
from otcdesk.app.repositories import transaction
from otcdesk.app.settings import load_settings
from desk_fixtures import RunningDesk
from kyc_fixtures import NAME, form, pdf_bytes, png_bytes

USERS = {"sales1": "sales", "comp1": "compliance", "risk1": "risk", "trader1": "trader", "admin1": "admin"}
STAFF = {"sales1", "comp1", "risk1", "admin1"}
# route, method, who may (None: the token's holder, no login)
ROUTES = [
    ("post", "/api/kyc/invitations", {"sales1"}),
    ("get", "/api/kyc/invitations", {"sales1", "admin1"}),
    ("post", "/api/kyc/invitations/INVX/revoke", {"sales1", "admin1"}),
    ("post", "/api/kyc/invitations/INVX/reissue", {"sales1", "admin1"}),
    ("get", "/api/kyc/applications", STAFF),
    ("get", "/api/kyc/applications/KYCX", STAFF),
    ("post", "/api/kyc/applications/KYCX/decision", STAFF),
    ("post", "/api/kyc/applications/KYCX/transition", STAFF),
    ("post", "/api/kyc/applications/KYCX/screen", {"comp1"}),
    ("get", "/api/kyc/applications/KYCX/report", {"comp1", "risk1", "admin1"}),  # not sales: screening in clear
    ("get", "/api/kyc/applications/KYCX/report.pdf", {"comp1", "risk1", "admin1"}),
    ("get", "/api/kyc/applications/KYCX/documents/DOCX", {"comp1", "admin1"}),
    ("get", "/api/kyc/applications/KYCX/agreement.pdf", STAFF),
    ("post", "/api/kyc/institutions/1/groups", {"sales1"}),
]
TOKEN_ROUTES = ["/api/kyc/me", "/api/kyc/documents", "/api/kyc/applications", "/api/kyc/applications/KYCX/sign"]


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request, tmp_path):
    url = request.getfixturevalue("pg_schema_url") if request.param == "postgres" else None
    settings = load_settings(data_dir=tmp_path, DATABASE_URL=url, blacklist_file=SAMPLE_LIST,
                             kyc_upload_max_bytes=200_000, risk_refresh_s=0)
    engine = make_engine(settings.db_url)
    init_db(engine)
    seed_demo(engine)
    for name, role in USERS.items():
        upsert_user(engine, name, f"{name}-password", role=role)
    engine.dispose()
    return settings


@pytest.fixture
async def desk(settings):
    running = await RunningDesk(settings, demo=False).start()
    yield running
    await running.stop()


async def _login(desk, name):
    return await desk.login(name, f"{name}-password")


def _call(session, method: str, path: str, **kw):
    return session.post(path, json={}, **kw) if method == "post" else session.get(path, **kw)


async def _invite(sales) -> dict:
    r = await sales.post("/api/kyc/invitations", json={"institution_name": NAME, "contact_name": "李雷",
                                                        "contact_mobile": "13812345678"})
    assert r.status == 200, await r.text()
    return await r.json()


async def _upload(anon, token, kind="business_licence", data: bytes | None = None, content_type="application/pdf",
                  filename="a.pdf"):
    return await anon.post("/api/kyc/documents", json={
        "token": token, "kind": kind, "filename": filename, "content_type": content_type,
        "data_base64": base64.b64encode(data if data is not None else pdf_bytes()).decode()})


async def _documents(anon, token):
    for kind in ("business_licence", "authorisation_letter"):
        assert (await _upload(anon, token, kind)).status == 200
    r = await _upload(anon, token, "id_copy", png_bytes(), "image/png", "id.png")
    assert r.status == 200


async def test_who_may_call_each_route(desk):
    async with desk.session() as anon:
        for method, path, _ in ROUTES:
            r = await _call(anon, method, path)
            assert r.status == 401, (method, path, r.status)
        for path in TOKEN_ROUTES:  # no token: 401, whoever asks
            r = await anon.post(path, json={})
            assert r.status == 401, (path, r.status, await r.text())
    for user in USERS:
        async with await _login(desk, user) as s:
            for method, path, allowed in ROUTES:
                r = await _call(s, method, path)
                if user in allowed:
                    assert r.status not in (401, 403), (user, method, path, r.status)
                else:
                    assert r.status == 403, (user, method, path, r.status)


async def test_client_flow_refusals_over_http(desk, settings):
    async with await _login(desk, "sales1") as sales, desk.session() as anon, \
            await _login(desk, "comp1") as comp, await _login(desk, "risk1") as risk:
        inv = await _invite(sales)
        token = inv["token"]
        assert inv["url"] == f"{desk.url}/apply#token={token}"

        # the form: a 422 with per-field reasons stores nothing
        bad = form(contact_mobile="12345", registered_capital_cny="lots")
        r = await anon.post("/api/kyc/applications", json={"token": token, "institution": bad})
        assert r.status == 422
        body = await r.json()
        assert {"contact_mobile", "registered_capital_cny", "documents.business_licence"} <= set(body["fields"])
        r = await comp.get("/api/kyc/applications")
        assert [a["institution_name"] for a in await r.json()] == ["未准入私募基金"]  # the demo's prospect only

        # uploads: too large at the edge and in the service, a type the bytes contradict, an unknown kind
        r = await _upload(anon, token, data=b"%PDF-1.4\n" + b"0" * 200_000)
        assert r.status == 413 and "data" in (await r.json())["fields"]
        r = await anon.post("/api/kyc/documents", data=b"x" * (2 * 1024 * 1024),
                            headers={"Content-Type": "application/json"})
        assert r.status == 413
        r = await _upload(anon, token, data=png_bytes())  # declared PDF, is a PNG
        assert r.status == 415 and "PNG" in (await r.json())["error"]
        r = await _upload(anon, token, "passport")
        assert r.status == 422
        await _documents(anon, token)
        r = await anon.post("/api/kyc/me", json={"token": token})
        me = await r.json()
        assert me["state"] == "invited" and len(me["documents"]) == 3 and me["can_submit"]

        r = await anon.post("/api/kyc/applications", json={"token": token, "institution": form()})
        assert r.status == 200, await r.text()
        app = await r.json()
        aid = app["id"]
        assert app["state"] == "sales_review" and app["awaiting_role"] == "sales"

        # a decision by a role whose turn it is not: 403 and the state unchanged
        r = await risk.post(f"/api/kyc/applications/{aid}/decision", json={"decision": "approve"})
        assert r.status == 403 and "awaits sales" in (await r.json())["error"]
        r = await comp.get(f"/api/kyc/applications/{aid}")
        got = await r.json()
        assert got["state"] == "sales_review" and got["view"]["documents"]
        assert {"id", "institution_id", "institution", "state", "awaiting_role", "history", "screening",
                "agreement"} <= got.keys()
        r = await sales.post(f"/api/kyc/applications/{aid}/decision", json={"decision": "maybe"})
        assert r.status == 422
        r = await sales.post(f"/api/kyc/applications/{aid}/decision", json={"decision": "approve", "comment": "ok"})
        assert r.status == 200 and (await r.json())["state"] == "compliance_review"

        r = await comp.get(f"/api/kyc/applications/{aid}/report")
        assert r.status == 200 and r.content_type == "text/html"
        assert "script-src 'self'" in r.headers["Content-Security-Policy"]
        html = await r.text()
        assert "<script" not in html and "style=" not in html and "<style" not in html
        r = await comp.get(f"/api/kyc/applications/{aid}/report.pdf")
        assert r.status == 200 and (await r.read()).startswith(b"%PDF-")
        doc_id = got["view"]["documents"][2]["id"]
        r = await comp.get(f"/api/kyc/applications/{aid}/documents/{doc_id}")
        assert r.status == 200 and await r.read() == png_bytes()
        r = await anon.get(f"/api/kyc/applications/{aid}/agreement.pdf", headers={"X-Invitation-Token": token})
        assert r.status == 409  # no agreement before risk approves

        # a cross-site POST is refused at the edge, token or not
        r = await anon.post("/api/kyc/applications", json={"token": token, "institution": form()},
                            headers={"Origin": "https://evil.example"})
        assert r.status == 403

        # reject: the token is spent (410), still readable
        r = await comp.post(f"/api/kyc/applications/{aid}/decision", json={"decision": "reject", "comment": "材料不实"})
        assert (await r.json())["state"] == "rejected"
        r = await anon.post("/api/kyc/applications", json={"token": token, "institution": form()})
        assert r.status == 410 and "used" in (await r.json())["error"]
        assert (await _upload(anon, token)).status == 410
        r = await anon.post("/api/kyc/me", json={"token": token})
        assert (await r.json())["state"] == "rejected"

        # revoked and expired invitations
        inv2 = await _invite(sales)
        r = await sales.post(f"/api/kyc/invitations/{inv2['invitation_id']}/revoke", json={})
        assert r.status == 200 and (await r.json())["status"] == "revoked"
        r = await anon.post("/api/kyc/me", json={"token": inv2["token"]})
        assert r.status == 410 and "revoked" in (await r.json())["error"]
        inv3 = await _invite(sales)
        engine = make_engine(settings.db_url)
        with transaction(engine) as tx:
            tx.session.exec(update(KycInvitation).where(KycInvitation.id == inv3["invitation_id"])
                            .values(expires_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)))
        engine.dispose()
        r = await anon.post("/api/kyc/me", json={"token": inv3["token"]})
        assert r.status == 410 and "expired" in (await r.json())["error"]
        r = await anon.post("/api/kyc/me", json={"token": "A" * 43})
        assert r.status == 401

        # someone else's token does not open this application's agreement
        inv4 = await _invite(sales)
        r = await anon.get(f"/api/kyc/applications/{aid}/agreement.pdf", headers={"X-Invitation-Token": inv4["token"]})
        assert r.status == 403
        r = await anon.post(f"/api/kyc/applications/{aid}/sign", json={"token": inv4["token"]})
        assert r.status == 403

        r = await sales.get("/api/kyc/invitations")
        statuses = {i["invitation_id"]: i["status"] for i in await r.json()}
        assert statuses[inv["invitation_id"]] == "used" and statuses[inv2["invitation_id"]] == "revoked"
        assert statuses[inv3["invitation_id"]] == "expired" and statuses[inv4["invitation_id"]] == "active"

        r = await sales.post("/api/kyc/institutions/1/groups", json={"group": "g-new", "channel": "sim"})
        assert r.status == 200  # the demo's approved institution
        r = await sales.post(f"/api/kyc/institutions/{app['institution_id']}/groups", json={"group": "g2"})
        assert r.status == 409 and "rejected" in (await r.json())["error"]


async def test_only_the_upload_route_takes_a_document_sized_body(settings):
    big_settings = settings.model_copy(update={"kyc_upload_max_bytes": 3 * 1024 * 1024})
    desk = await RunningDesk(big_settings, demo=False).start()
    try:
        async with await _login(desk, "sales1") as sales, desk.session() as anon:
            token = (await _invite(sales))["token"]
            scan = pdf_bytes() + b"%" + b"0" * (2 * 1024 * 1024)  # a 2 MiB scan: 2.7 MB of base64
            r = await _upload(anon, token, "id_copy", scan)
            assert r.status == 200, await r.text()
            assert (await r.json())["size"] == len(scan)
            r = await anon.post("/api/kyc/applications", json={"token": token, "institution": form(),
                                                               "padding": "x" * (2 * 1024 * 1024)})
            assert r.status == 413  # every other route keeps the 1 MiB limit
            r = await _upload(anon, token, "id_copy", b"%PDF-1.4\n" + b"0" * (3 * 1024 * 1024))
            assert r.status == 413
    finally:
        await desk.stop()
