"""KycService on SQLite and PostgreSQL with its real collaborators (the screener on the embedded sample list and
news, the report, the agreement sealed by the desk's e-seal): every step persisted with its transition row and
audit entry, the institution mirroring the machine, refusals that change nothing, tokens as the only credential."""
from __future__ import annotations

import base64
import hashlib

import pytest
from sqlmodel import select

from otcdesk.app.kyc import agreement, report
from otcdesk.app.kyc.eseal import load_eseal
from otcdesk.app.kyc.screening import SAMPLE_BLACKLISTED_USCC, SAMPLE_LIST, SAMPLE_NEWS_DIR, Screener
from otcdesk.app.kyc.service import KycService
from otcdesk.app.models import AuditLog, Institution, KycApplication, KycInvitation, KycTransitionRow
from otcdesk.app.repositories import transaction
from otcdesk.workflows.kyc import KycError
from kyc_fixtures import NAME, ManualClock, form, pdf_bytes, png_bytes


@pytest.fixture
def kyc(db_settings, db_engine):
    clock = ManualClock()
    return KycService(db_engine, db_settings, clock,
                      screener=Screener(endpoint=None, list_file=SAMPLE_LIST, news_dir=SAMPLE_NEWS_DIR),
                      reports=report, agreements=agreement, eseal=lambda: load_eseal(db_settings))


def _audit(engine, action: str | None = None) -> list[AuditLog]:
    with transaction(engine) as tx:
        rows = list(tx.session.exec(select(AuditLog).order_by(AuditLog.id)))
        for r in rows:
            tx.session.expunge(r)
    return [r for r in rows if action is None or r.action == action]


def _upload_all(kyc: KycService, token: str) -> list[str]:
    pdf = base64.b64encode(pdf_bytes()).decode()
    ids = [kyc.upload_document(token, "business_licence", "营业执照.pdf", "application/pdf", pdf)["document_id"],
           kyc.upload_document(token, "authorisation_letter", "授权书.pdf", "application/pdf", pdf)["document_id"],
           kyc.upload_document(token, "id_copy", "id.png", "image/png", png_bytes())["document_id"]]
    return ids


def _refused(fn, *args, code: str, **kw) -> KycError:
    with pytest.raises(KycError) as err:
        fn(*args, **kw)
    assert err.value.code == code, (err.value.code, err.value.message)
    return err.value


def _state(engine, app_id: str) -> tuple[str, str, bool, int]:
    with transaction(engine) as tx:
        app = tx.kyc.application(app_id)
        inst = tx.session.get(Institution, app.institution_id)
        return app.state, inst.kyc_status, inst.can_trade, app.version


def test_onboarding_end_to_end_with_refusals(kyc, db_engine):
    inv = kyc.invite(NAME, "李雷", "13812345678", "sales1", "http://desk.example")
    token = inv["token"]
    assert inv["url"] == f"http://desk.example/apply#token={token}"
    with transaction(db_engine) as tx:
        row = tx.session.get(KycInvitation, inv["invitation_id"])
        assert row.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
        assert token not in repr(row.model_dump())
    assert token not in repr([a.detail for a in _audit(db_engine)])

    # a refused submission stores nothing, names each field, and its audit entry holds no values
    bad = form(uscc=form()["uscc"][:-1] + "0" if not form()["uscc"].endswith("0") else form()["uscc"][:-1] + "1",
               legal_representative_id="110105194902300023")
    err = _refused(kyc.apply, token, bad, code="invalid")
    assert {"uscc", "legal_representative_id", "documents.business_licence", "documents.authorisation_letter",
            "documents.id_copy"} <= set(err.fields)
    with transaction(db_engine) as tx:
        assert tx.kyc.applications() == [] and tx.clients.institution_named(NAME) is None
    [refusal] = _audit(db_engine, "kyc.submission_refused")
    assert "110105194902300023" not in repr(refusal.detail) and "uscc" in refusal.detail["fields"]

    docs = _upload_all(kyc, token)
    _refused(kyc.apply, token, form(name="别的机构有限公司"), code="invalid")  # not the invited institution
    app = kyc.apply(token, form())
    aid = app["id"]
    assert app["state"] == "sales_review" and app["awaiting_role"] == "sales"
    assert _state(db_engine, aid)[:3] == ("sales_review", "sales_review", False)
    _refused(kyc.apply, token, form(), code="conflict")  # nothing to submit while it is reviewed

    # a decision by a role whose turn it is not: 403, nothing changes, audited
    before = _state(db_engine, aid)
    _refused(kyc.decide, aid, "approve", "ok", "risk1", "risk", code="forbidden")
    assert _state(db_engine, aid) == before
    assert _audit(db_engine, "kyc.decision_refused")[-1].detail["role"] == "risk"
    _refused(kyc.decide, aid, "return", "", "sales1", "sales", code="invalid")  # a return needs its reason

    sales_view = kyc.get(aid, "sales")
    assert sales_view["view"]["institution"]["contact_mobile"] == "13812345678"
    assert "*" in sales_view["institution"]["legal_representative_id"]

    app = kyc.decide(aid, "approve", "客户信息核实", "sales1", "sales")
    assert app["state"] == "compliance_review"
    bl = app["screening"]["blacklist"]
    assert bl["hit"] is False and bl["method"] == "local-file" and bl["holder_size"] > 100
    assert app["report"]["sha256"] and app["report"]["pdf_url"]
    html, ctype = kyc.report(aid, "html")
    assert ctype == "text/html" and b"<script" not in html and b"style=" not in html
    pdf, ctype = kyc.report(aid, "pdf")
    assert pdf.startswith(b"%PDF-")
    comp = kyc.get(aid, "compliance")
    assert comp["view"]["identifiers"]["legal_representative_id"] == form()["legal_representative_id"]
    assert [d["kind"] for d in comp["view"]["documents"]] == ["business_licence", "authorisation_letter", "id_copy"]
    doc, content = kyc.document(aid, docs[2], "comp1")
    assert content == png_bytes() and doc.sha256 == hashlib.sha256(content).hexdigest()
    assert _audit(db_engine, "kyc.document_read")

    # returned to the client, who resubmits with the same token and one more document
    app = kyc.decide(aid, "return", "请补充最新营业执照", "comp1", "compliance")
    assert app["state"] == "returned" and app["awaiting_role"] == "client"
    view = kyc.client_view(token)
    assert view["can_submit"] and view["application"]["history"][-1]["comment"] == "请补充最新营业执照"
    assert "screening" not in view["application"]
    kyc.upload_document(token, "business_licence", "营业执照2.pdf", "application/pdf",
                        base64.b64encode(pdf_bytes("new")).decode())
    app = kyc.apply(token, form(address="上海市浦东新区世纪大道200号"))
    assert app["state"] == "sales_review"
    kyc.decide(aid, "approve", None, "sales1", "sales")
    kyc.decide(aid, "approve", "筛查无命中", "comp1", "compliance")

    risk = kyc.get(aid, "risk")
    assert risk["view"]["suitability"]["eligible"] is True
    assert "*" in risk["institution"]["legal_representative_id"] and "*" in risk["institution"]["contact_mobile"]
    _refused(kyc.decide, aid, "approve", None, "risk1", "risk", limits={"notional_cny": -1}, code="invalid")
    app = kyc.decide(aid, "approve", "额度如下", "risk1", "risk", limits={"notional_cny": 2e8, "tenor_months": 12})
    assert app["state"] == "signing" and app["limits"] == {"notional_cny": 2e8, "tenor_months": 12}
    assert _state(db_engine, aid)[2] is False  # no quotes before the agreement is signed

    # the client reads the unsigned draft, then signs; only its token signs
    draft, digest, kind = kyc.agreement_pdf(aid, token=token)
    assert kind == "draft" and draft.startswith(b"%PDF-") and digest == hashlib.sha256(draft).hexdigest()
    other = kyc.invite("另一家资管有限公司", "韩梅梅", "13900000000", "sales1")["token"]
    _refused(kyc.sign, aid, other, code="forbidden")
    assert _audit(db_engine, "kyc.token_refused")[-1].detail["action"] == "sign"
    _refused(kyc.sign, aid, token, accepted_sha256="0" * 64, code="conflict")
    assert _state(db_engine, aid)[0] == "signing"
    app = kyc.sign(aid, token, accepted_sha256=digest)
    assert app["state"] == "approved" and app["agreement"]["signed"]
    assert _state(db_engine, aid)[:3] == ("approved", "approved", True)
    signed, signed_sha, kind = kyc.agreement_pdf(aid, user="comp1")
    assert kind == "signed" and signed_sha == app["agreement"]["sha256"]
    check = agreement.verify_agreement_pdf(signed, kyc.eseal())
    assert check["valid"] and check["intact"] and check["trusted"]
    assert check["acceptance"]["content_sha256"] == digest
    assert check["acceptance"]["token_sha256"] == hashlib.sha256(token.encode()).hexdigest()
    with transaction(db_engine) as tx:
        assert tx.evidence.verify()["ok"]
        assert len(tx.evidence.entries(aid)) == 1

    # the token is spent: no second submission or signature
    _refused(kyc.apply, token, form(), code="gone")
    _refused(kyc.sign, aid, token, code="gone")

    # every step persisted with who, role and why, and audited
    with transaction(db_engine) as tx:
        steps = [(t.trigger, t.from_state, t.to_state, t.role) for t in tx.kyc.transitions(aid)]
    assert steps == [("submit", "invited", "sales_review", "client"),
                     ("approve", "sales_review", "compliance_review", "sales"),
                     ("return_to_client", "compliance_review", "returned", "compliance"),
                     ("resubmit", "returned", "sales_review", "client"),
                     ("approve", "sales_review", "compliance_review", "sales"),
                     ("approve", "compliance_review", "risk_review", "compliance"),
                     ("approve", "risk_review", "signing", "risk"),
                     ("sign", "signing", "approved", "client")]
    actions = [a.action for a in _audit(db_engine) if a.subject == f"kyc_application:{aid}"]
    for action in ("kyc.submit", "kyc.approve", "kyc.return_to_client", "kyc.resubmit", "kyc.screen", "kyc.report",
                   "kyc.agreement_prepared", "kyc.sign"):
        assert action in actions
    personal = (form()["legal_representative_id"], "13812345678")
    assert not any(p in repr(a.detail) for a in _audit(db_engine) for p in personal)

    # suspension and periodic review close quoting in the step itself; reinstatement opens it
    _refused(kyc.transition, aid, "suspend", "涉嫌违规", "sales1", "sales", code="forbidden")
    kyc.transition(aid, "suspend", "涉嫌违规", "comp1", "compliance")
    assert _state(db_engine, aid)[:3] == ("suspended", "suspended", False)
    kyc.transition(aid, "reinstate", "已核实", "comp1", "compliance")
    assert _state(db_engine, aid)[:3] == ("approved", "approved", True)
    kyc.transition(aid, "reopen", "年度复核", "sales1", "sales")
    assert _state(db_engine, aid)[:3] == ("sales_review", "sales_review", False)
    _refused(kyc.transition, aid, "reinstate", "x", "comp1", "compliance", code="conflict")
    # the periodic review passes the three reviews again; the signed agreement takes it straight to approved
    kyc.decide(aid, "approve", None, "sales1", "sales")
    kyc.decide(aid, "approve", None, "comp1", "compliance")
    assert kyc.decide(aid, "approve", None, "risk1", "risk")["state"] == "approved"
    assert _state(db_engine, aid)[2] is True
    pipeline = kyc.applications()
    assert [p["id"] for p in pipeline] == [aid] and pipeline[0]["state"] == "approved"
    assert "13812345678" not in repr(pipeline)


def test_a_blacklist_hit_cannot_reach_approved(kyc, db_engine):
    token = kyc.invite(NAME, "李雷", "13812345678", "sales1")["token"]
    _upload_all(kyc, token)
    aid = kyc.apply(token, form(uscc=SAMPLE_BLACKLISTED_USCC))["id"]
    app = kyc.decide(aid, "approve", None, "sales1", "sales")
    assert app["screening"]["blacklist"]["hit"] is True
    assert app["screening"]["blacklist"]["matched_fields"] == ["uscc"]
    err = _refused(kyc.decide, aid, "approve", "looks fine", "comp1", "compliance", code="conflict")
    assert "blacklist" in err.message
    assert _state(db_engine, aid)[0] == "compliance_review"
    assert kyc.decide(aid, "reject", "黑名单命中", "comp1", "compliance")["state"] == "rejected"
    assert _state(db_engine, aid)[:3] == ("rejected", "rejected", False)
    assert kyc.client_view(token)["state"] == "rejected"  # the holder still reads the outcome
    _refused(kyc.apply, token, form(), code="gone")


def test_a_holder_that_does_not_answer_leaves_it_unscreened_until_screened_again(kyc, db_engine):
    from desk_fixtures import free_port

    kyc.screener = Screener(endpoint=f"http://127.0.0.1:{free_port()}", list_file=None, news_dir=None, timeout_s=3)
    token = kyc.invite(NAME, "李雷", "13812345678", "sales1")["token"]
    _upload_all(kyc, token)
    aid = kyc.apply(token, form())["id"]
    app = kyc.decide(aid, "approve", None, "sales1", "sales")
    assert app["state"] == "compliance_review"  # the step stands although screening failed
    assert app["screening"]["blacklist"]["hit"] is None and app["screening"]["blacklist"]["error"]
    err = _refused(kyc.decide, aid, "approve", None, "comp1", "compliance", code="conflict")
    assert "screen" in err.message
    kyc.screener = Screener(endpoint=None, list_file=SAMPLE_LIST, news_dir=None)
    app = kyc.rescreen(aid, "comp1")
    assert app["screening"]["blacklist"]["hit"] is False
    assert kyc.decide(aid, "approve", None, "comp1", "compliance")["state"] == "risk_review"


def test_tokens_unknown_expired_revoked(kyc, db_engine):
    _refused(kyc.client_view, "x" * 43, code="unauthorized")
    _refused(kyc.client_view, None, code="unauthorized")
    inv = kyc.invite(NAME, "李雷", "13812345678", "sales1")
    kyc.clock.advance(seconds=kyc.settings.kyc_invitation_ttl_s + 1)
    err = _refused(kyc.upload_document, inv["token"], "id_copy", "a.png", "image/png", png_bytes(), code="gone")
    assert "expired" in err.message
    inv2 = kyc.invite(NAME, "李雷", "13812345678", "sales1")
    kyc.revoke(inv2["invitation_id"], "sales1")
    _refused(kyc.revoke, inv2["invitation_id"], "sales1", code="conflict")
    assert "revoked" in _refused(kyc.client_view, inv2["token"], code="gone").message
    refused = _audit(db_engine, "kyc.token_refused")
    assert len(refused) == 4
    assert all(inv["token"] not in repr(r.detail) and inv2["token"] not in repr(r.detail) for r in refused)
    assert {r.detail["token_prefix"] for r in refused} >= {hashlib.sha256(inv2["token"].encode()).hexdigest()[:8]}
    statuses = {i["invitation_id"]: i["status"] for i in kyc.invitations()}
    assert statuses == {inv["invitation_id"]: "expired", inv2["invitation_id"]: "revoked"}
    _refused(kyc.invite, "x", "1", "123", "sales1", code="invalid")


def test_uploads_checked_by_kind_size_and_content(kyc, db_engine, db_settings):
    token = kyc.invite(NAME, "李雷", "13812345678", "sales1")["token"]
    big = b"%PDF-1.4\n" + b"0" * db_settings.kyc_upload_max_bytes
    _refused(kyc.upload_document, token, "id_copy", "big.pdf", "application/pdf", big, code="too_large")
    _refused(kyc.upload_document, token, "id_copy", "x.pdf", "application/pdf", png_bytes(), code="unsupported")
    _refused(kyc.upload_document, token, "id_copy", "x.exe", "application/x-msdownload", b"MZ\x90", code="unsupported")
    _refused(kyc.upload_document, token, "selfie", "x.png", "image/png", png_bytes(), code="invalid")
    _refused(kyc.upload_document, token, "id_copy", "x.png", "image/png", "not base64!", code="invalid")
    with transaction(db_engine) as tx:
        assert tx.kyc.documents() == []
    doc = kyc.upload_document(token, "id_copy", "../../etc/身份证.png", "image/png", png_bytes())
    assert doc["filename"] == "身份证.png" and doc["sha256"] == hashlib.sha256(png_bytes()).hexdigest()


def test_bind_group_only_for_an_approved_institution(kyc, db_engine):
    token = kyc.invite(NAME, "李雷", "13812345678", "sales1")["token"]
    _upload_all(kyc, token)
    app = kyc.apply(token, form())
    _refused(kyc.bind_group, app["institution_id"], "sim", "g1", "sales1", code="conflict")
    _refused(kyc.bind_group, 99999, "sim", "g1", "sales1", code="not_found")
    with transaction(db_engine) as tx:
        inst = tx.clients.add_institution("已准入机构", "approved", True)
        other = inst.id
        tx.clients.add_group("sim", "taken", None)
    bound = kyc.bind_group(other, None, "room1@chatroom", "sales1")
    assert bound["channel"] == "wechat" and bound["groups"] == [{"channel": "wechat", "group": "room1@chatroom"}]
    assert {"channel": "sim", "group": "taken"} in kyc.bind_group(other, "sim", "taken", "sales1")["groups"]
    _refused(kyc.bind_group, app["institution_id"], "sim", "taken", "sales1", code="conflict")
    _refused(kyc.bind_group, other, "sim", "bad group!", "sales1", code="invalid")


class _ScreenerWithACompetingRequest:
    """The real screener; while it screens, `during` (another reviewer's request) runs once: a deterministic
    interleaving of a decision with a screening that is still on its way."""

    def __init__(self, real: Screener, during):
        self.real, self.during, self.outcome = real, during, None

    def screen(self, institution: dict) -> dict:
        if self.during is not None:
            run, self.during = self.during, None
            try:
                self.outcome = run()
            except KycError as exc:
                self.outcome = exc
        return self.real.screen(institution)


def test_a_resubmission_is_not_approved_on_the_previous_screening(kyc, db_engine):
    """Back in compliance review after a return, the last cycle's clean screening no longer counts: until the new
    one answers, compliance cannot approve (the new legal representative is on the blacklist)."""
    from otcdesk.app.kyc.screening import SAMPLE_BLACKLISTED_ID

    token = kyc.invite(NAME, "李雷", "13812345678", "sales1")["token"]
    _upload_all(kyc, token)
    aid = kyc.apply(token, form())["id"]
    assert kyc.decide(aid, "approve", None, "sales1", "sales")["screening"]["blacklist"]["hit"] is False
    kyc.decide(aid, "return", "请更换法定代表人", "comp1", "compliance")
    kyc.apply(token, form(legal_representative_id=SAMPLE_BLACKLISTED_ID))
    kyc.screener = _ScreenerWithACompetingRequest(
        kyc.screener, lambda: kyc.decide(aid, "approve", "上次筛查无命中", "comp2", "compliance"))
    app = kyc.decide(aid, "approve", None, "sales1", "sales")
    assert isinstance(kyc.screener.outcome, KycError) and kyc.screener.outcome.code == "conflict", \
        kyc.screener.outcome
    assert app["state"] == "compliance_review" and app["screening"]["blacklist"]["hit"] is True
    assert "blacklist" in _refused(kyc.decide, aid, "approve", None, "comp1", "compliance", code="conflict").message


def test_a_screening_again_is_not_outrun_by_an_approval(kyc, db_engine, tmp_path):
    """While compliance screens again (the list changed), the previous clean result no longer approves: the hit
    the new screening finds stops the application at compliance."""
    token = kyc.invite(NAME, "李雷", "13812345678", "sales1")["token"]
    _upload_all(kyc, token)
    aid = kyc.apply(token, form())["id"]
    assert kyc.decide(aid, "approve", None, "sales1", "sales")["screening"]["blacklist"]["hit"] is False
    changed = tmp_path / "blacklist.txt"
    changed.write_text(SAMPLE_LIST.read_text(encoding="utf-8") + form()["uscc"] + "\n", encoding="utf-8")
    kyc.screener = _ScreenerWithACompetingRequest(
        Screener(endpoint=None, list_file=changed, news_dir=None),
        lambda: kyc.decide(aid, "approve", "筛查无命中", "comp2", "compliance"))
    app = kyc.rescreen(aid, "comp1")
    assert isinstance(kyc.screener.outcome, KycError) and kyc.screener.outcome.code == "conflict", \
        kyc.screener.outcome
    assert app["state"] == "compliance_review" and app["screening"]["blacklist"]["hit"] is True
    assert _state(db_engine, aid)[0] == "compliance_review"


class _SignerWithACompetingRequest:
    """The real agreement module; while the e-seal signs, `during` (a request by the desk) runs once."""

    def __init__(self, during):
        self.during = during

    def render_agreement(self, application: dict) -> bytes:
        return agreement.render_agreement(application)

    def sign_agreement(self, pdf: bytes, eseal, **kw) -> bytes:
        if self.during is not None:
            run, self.during = self.during, None
            run()
        return agreement.sign_agreement(pdf, eseal, **kw)


def test_an_invitation_revoked_while_the_agreement_is_sealed_signs_nothing(kyc, db_engine):
    inv = kyc.invite(NAME, "李雷", "13812345678", "sales1")
    token = inv["token"]
    _upload_all(kyc, token)
    aid = kyc.apply(token, form())["id"]
    for user, role in (("sales1", "sales"), ("comp1", "compliance"), ("risk1", "risk")):
        kyc.decide(aid, "approve", None, user, role)
    assert _state(db_engine, aid)[0] == "signing"
    kyc.agreements = _SignerWithACompetingRequest(lambda: kyc.revoke(inv["invitation_id"], "sales1"))
    assert "revoked" in _refused(kyc.sign, aid, token, code="gone").message
    assert _state(db_engine, aid)[:3] == ("signing", "signing", False)
    with transaction(db_engine) as tx:
        assert tx.evidence.agreement(aid) is None and tx.evidence.entries(aid) == []
    assert _audit(db_engine, "kyc.token_refused")[-1].detail["action"] == "sign"


def test_a_role_whose_turn_it_is_not_is_refused_before_its_input_is_checked(kyc, db_engine):
    """403 (audited) for another role whatever its body holds: limits, a return without its reason, a suspension
    without one; the awaited role still gets 422 for the same input."""
    token = kyc.invite(NAME, "李雷", "13812345678", "sales1")["token"]
    _upload_all(kyc, token)
    aid = kyc.apply(token, form())["id"]
    before = _state(db_engine, aid)
    _refused(kyc.decide, aid, "approve", None, "risk1", "risk", limits={"notional_cny": 1e8}, code="forbidden")
    _refused(kyc.decide, aid, "approve", None, "comp1", "compliance", limits={"notional_cny": 1e8}, code="forbidden")
    _refused(kyc.decide, aid, "return", None, "comp1", "compliance", code="forbidden")
    assert _state(db_engine, aid) == before
    assert [a.detail["role"] for a in _audit(db_engine, "kyc.decision_refused")] == ["risk", "compliance",
                                                                                     "compliance"]
    _refused(kyc.decide, aid, "approve", None, "sales1", "sales", limits={"notional_cny": 1e8}, code="invalid")
    _refused(kyc.decide, aid, "return", None, "sales1", "sales", code="invalid")
    for user, role in (("sales1", "sales"), ("comp1", "compliance"), ("risk1", "risk")):
        kyc.decide(aid, "approve", None, user, role)
    # signing awaits the client: a role that may not fire it here is refused (403) whatever its body holds; the
    # role that may suspend, in a state that does not allow it, gets 409
    _refused(kyc.transition, aid, "suspend", None, "sales1", "sales", code="forbidden")
    _refused(kyc.decide, aid, "approve", None, "risk1", "risk", limits={"tenor_months": 0.5}, code="forbidden")
    _refused(kyc.transition, aid, "suspend", "x", "comp1", "compliance", code="conflict")


def test_the_report_names_the_service_documents_and_screening_method(kyc, db_engine):
    """The report reads the kinds and methods the service and screener really write (not codes left in English)."""
    token = kyc.invite(NAME, "李雷", "13812345678", "sales1")["token"]
    _upload_all(kyc, token)
    aid = kyc.apply(token, form())["id"]
    kyc.decide(aid, "approve", None, "sales1", "sales")
    html = kyc.report(aid, "html")[0].decode("utf-8")
    for label in ("营业执照", "授权委托书", "身份证件复印件", "本地名单"):
        assert label in html, label
    for code in ("business_licence", "authorisation_letter", "id_copy", "local-file"):
        assert code not in html, code


def _through_reviews(kyc: KycService, aid: str) -> dict:
    app = None
    for user, role in (("sales1", "sales"), ("comp1", "compliance"), ("risk1", "risk")):
        app = kyc.decide(aid, "approve", None, user, role)
    return app


def test_withdraw_and_reissue_free_an_application_whose_client_no_longer_acts(kyc, db_engine):
    """Returned to a client whose link lapsed: sales reissues a token (the old one dead at once), or staff withdraw
    it with the reason (rejected), after which the institution can be invited again."""
    inv = kyc.invite(NAME, "李雷", "13812345678", "sales1")
    token = inv["token"]
    _upload_all(kyc, token)
    aid = kyc.apply(token, form())["id"]
    kyc.decide(aid, "return", "请补充材料", "sales1", "sales")
    kyc.clock.advance(seconds=kyc.settings.kyc_invitation_ttl_s + 1)
    _refused(kyc.client_view, token, code="gone")
    fresh = kyc.invite(NAME, "李雷", "13812345678", "sales1")["token"]  # a second invitation cannot apply
    _upload_all(kyc, fresh)
    assert "name" in _refused(kyc.apply, fresh, form(), code="invalid").fields

    reissued = kyc.reissue(inv["invitation_id"], "sales1", "http://desk.example")
    assert reissued["token"] != token and reissued["url"] == f"http://desk.example/apply#token={reissued['token']}"
    _refused(kyc.client_view, token, code="unauthorized")  # the old token opens nothing any more
    assert kyc.client_view(reissued["token"])["can_submit"]
    with transaction(db_engine) as tx:
        row = tx.session.get(KycInvitation, inv["invitation_id"])
        assert row.token_sha256 == hashlib.sha256(reissued["token"].encode()).hexdigest()
    [audit] = _audit(db_engine, "kyc.token_reissued")
    assert audit.subject == f"kyc_invitation:{inv['invitation_id']}" and audit.actor == "sales1"
    assert reissued["token"] not in repr(audit.detail) and token not in repr(audit.detail)
    # a revoked token is replaced too: the client acts with the new one
    kyc.revoke(inv["invitation_id"], "sales1")
    again = kyc.reissue(inv["invitation_id"], "sales1")["token"]
    assert kyc.client_view(again)["state"] == "returned"

    # withdraw: staff roles that may, with a reason; quoting stays closed; the institution can be invited again
    _refused(kyc.transition, aid, "withdraw", "客户失联", "risk1", "risk", code="forbidden")
    _refused(kyc.transition, aid, "withdraw", None, "sales1", "sales", code="invalid")
    assert _state(db_engine, aid)[0] == "returned"
    app = kyc.transition(aid, "withdraw", "客户失联", "sales1", "sales")
    assert app["state"] == "rejected" and app["awaiting_role"] is None
    assert _state(db_engine, aid)[:3] == ("rejected", "rejected", False)
    assert _audit(db_engine, "kyc.withdraw")[-1].detail["comment"] == "客户失联"
    _refused(kyc.reissue, inv["invitation_id"], "sales1", code="conflict")  # final: the invitation is spent
    _refused(kyc.apply, again, form(), code="gone")
    assert kyc.apply(fresh, form())["state"] == "sales_review"
    _refused(kyc.reissue, "INVNONE", "sales1", code="not_found")


def test_withdraw_from_signing(kyc, db_engine):
    token = kyc.invite(NAME, "李雷", "13812345678", "sales1")["token"]
    _upload_all(kyc, token)
    aid = kyc.apply(token, form())["id"]
    assert _through_reviews(kyc, aid)["state"] == "signing"
    _refused(kyc.transition, aid, "withdraw", "未签署", "risk1", "risk", code="forbidden")
    assert kyc.transition(aid, "withdraw", "逾期未签署", "comp1", "compliance")["state"] == "rejected"
    _refused(kyc.sign, aid, token, code="gone")
    _refused(kyc.transition, aid, "withdraw", "x", "comp1", "compliance", code="conflict")  # right role, final


def test_a_reopened_application_needs_a_new_token_and_a_new_signature_for_changed_data(kyc, db_engine):
    """The periodic review kills the months-old token (a return does not bring it back); the client acts on a
    reissued one, and data that changed since the agreement goes to `signing` again instead of `approved`."""
    from otcdesk.app.commands.kyc import check
    from otcdesk.app.kyc.service import fingerprint
    from otcdesk.app.repositories.evidence import verify_evidence

    inv = kyc.invite(NAME, "李雷", "13812345678", "sales1")
    token = inv["token"]
    _upload_all(kyc, token)
    aid = kyc.apply(token, form())["id"]
    _through_reviews(kyc, aid)
    first = kyc.sign(aid, token)["agreement"]["sha256"]
    with transaction(db_engine) as tx:
        signed_for = tx.evidence.agreement(aid).acceptance["data_sha256"]
        assert signed_for == fingerprint(tx.kyc.application(aid).data)

    kyc.clock.advance(days=200)
    kyc.transition(aid, "reopen", "年度复核", "sales1", "sales")
    assert _audit(db_engine, "kyc.reopen")[-1].detail["token_invalidated"]
    kyc.decide(aid, "return", "请更新法定代表人", "sales1", "sales")
    _refused(kyc.client_view, token, code="unauthorized")  # not revived (nor its lifetime extended) by the return
    token2 = kyc.reissue(inv["invitation_id"], "sales1")["token"]
    kyc.apply(token2, form(legal_representative="王小明"))
    app = _through_reviews(kyc, aid)
    assert app["state"] == "signing" and app["awaiting_role"] == "client"  # not approved on the old agreement
    assert _state(db_engine, aid)[2] is False
    view = kyc.client_view(token2)
    assert view["can_sign"] and view["agreement"]["status"] == "ready"
    assert kyc.agreement_pdf(aid, user="comp1")[2] == "draft"
    app = kyc.sign(aid, token2)
    assert app["state"] == "approved" and app["agreement"]["sha256"] != first
    with transaction(db_engine) as tx:
        stored = tx.evidence.agreement(aid)
        entries = tx.evidence.entries(aid)
        assert stored.acceptance["data_sha256"] == fingerprint(tx.kyc.application(aid).data) != signed_for
        assert [e.agreement_sha256 for e in entries] == [first, app["agreement"]["sha256"]]
        old = tx.kyc.documents(application_id=aid, kinds=("agreement_superseded",))
        assert [d.sha256 for d in old] == [first] and hashlib.sha256(old[0].content).hexdigest() == first
        for e in entries:
            tx.session.expunge(e)
        tx.session.expunge(stored)
    assert check(aid, stored, entries, kyc.eseal(), verify_evidence(db_engine))["ok"]
    assert _audit(db_engine, "kyc.sign")[-1].detail["superseded_sha256"] == first
    # unchanged data on the next review: the current agreement approves at risk
    kyc.transition(aid, "reopen", "年度复核", "sales1", "sales")
    assert _through_reviews(kyc, aid)["state"] == "approved"


def test_reinstatement_screens_afresh(kyc, db_engine, tmp_path):
    """The list changed while the client was suspended: reinstating screens again; a hit, or no answer, refuses
    it with the reason, the result kept and the application still suspended."""
    from desk_fixtures import free_port

    token = kyc.invite(NAME, "李雷", "13812345678", "sales1")["token"]
    _upload_all(kyc, token)
    aid = kyc.apply(token, form())["id"]
    _through_reviews(kyc, aid)
    kyc.sign(aid, token)
    kyc.transition(aid, "suspend", "涉嫌违规", "comp1", "compliance")
    screens = len(_audit(db_engine, "kyc.screen"))

    listed = tmp_path / "blacklist.txt"
    listed.write_text(SAMPLE_LIST.read_text(encoding="utf-8") + form()["uscc"] + "\n", encoding="utf-8")
    kyc.screener = Screener(endpoint=None, list_file=listed, news_dir=None)
    assert "blacklist" in _refused(kyc.transition, aid, "reinstate", "已核实", "comp1", "compliance",
                                   code="conflict").message
    assert _state(db_engine, aid)[:3] == ("suspended", "suspended", False)
    with transaction(db_engine) as tx:
        app = tx.kyc.application(aid)
        assert app.blacklist_hit and app.screening["blacklist"]["hit"] is True
    assert len(_audit(db_engine, "kyc.screen")) == screens + 1

    kyc.screener = Screener(endpoint=f"http://127.0.0.1:{free_port()}", list_file=None, news_dir=None, timeout_s=3)
    assert "screen" in _refused(kyc.transition, aid, "reinstate", "已核实", "comp1", "compliance",
                                code="conflict").message
    assert _state(db_engine, aid)[0] == "suspended"

    kyc.screener = Screener(endpoint=None, list_file=SAMPLE_LIST, news_dir=None)
    _refused(kyc.transition, aid, "reinstate", "已核实", "sales1", "sales", code="forbidden")
    assert len(_audit(db_engine, "kyc.screen")) == screens + 2  # nobody screens for a role that may not
    assert kyc.transition(aid, "reinstate", "已核实", "comp1", "compliance")["state"] == "approved"
    assert _state(db_engine, aid)[:3] == ("approved", "approved", True)


def test_a_refused_submission_names_its_invitation(kyc, db_engine):
    inv = kyc.invite(NAME, "李雷", "13812345678", "sales1")
    _refused(kyc.apply, inv["token"], form(uscc="1"), code="invalid")
    assert _audit(db_engine, "kyc.submission_refused")[-1].subject == f"kyc_invitation:{inv['invitation_id']}"


def test_the_invitation_list_masks_mobiles(kyc):
    kyc.invite(NAME, "李雷", "13812345678", "sales1")
    [listed] = kyc.invitations()
    assert listed["contact_mobile"] == "138****5678"


def test_concurrent_uploads_and_a_revoke_keep_the_limit_and_store_nothing_after_it(kyc, db_engine, monkeypatch):
    """Uploads of one invitation from several threads at once, and a revoke among them: never more documents
    than the limit, and no upload stored after the revocation committed."""
    import threading

    from otcdesk.app.kyc import service

    monkeypatch.setattr(service, "MAX_DOCUMENTS", 3)
    inv = kyc.invite(NAME, "李雷", "13812345678", "sales1")
    pdf = base64.b64encode(pdf_bytes()).decode()
    start = threading.Barrier(9)
    outcomes: list = []

    def upload():
        start.wait()
        try:
            outcomes.append(kyc.upload_document(inv["token"], "id_copy", "a.pdf", "application/pdf", pdf)["document_id"])
        except KycError as exc:
            outcomes.append(exc.code)

    def revoke():
        start.wait()
        for _ in range(3):  # let a few uploads start first
            with transaction(db_engine) as tx:
                tx.kyc.count_documents(inv["invitation_id"])
        kyc.revoke(inv["invitation_id"], "sales1")

    threads = [threading.Thread(target=upload) for _ in range(8)] + [threading.Thread(target=revoke)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stored = [o for o in outcomes if o.startswith("DOC")]
    assert set(outcomes) - set(stored) <= {"conflict", "gone"}, outcomes
    with transaction(db_engine) as tx:
        assert len(tx.kyc.documents(invitation_id=inv["invitation_id"])) == len(stored) <= 3
    revoked_at = _audit(db_engine, "kyc.invitation_revoked")[0].id
    assert all(a.id < revoked_at for a in _audit(db_engine, "kyc.document_upload"))
