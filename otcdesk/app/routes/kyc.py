"""KYC onboarding (CONTRACTS Part 2 "KYC onboarding"): invitations, the client's form, the reviews, the agreement.

| POST /api/kyc/invitations                        | sales               | {"institution_name", "contact_name", "contact_mobile"} → {"invitation_id", "token", "url", "expires_at"} |
| GET  /api/kyc/invitations                        | sales, admin        | → [Invitation], newest first |
| POST /api/kyc/invitations/{id}/revoke            | sales, admin        | → Invitation (the token no longer opens anything) |
| POST /api/kyc/invitations/{id}/reissue           | sales, admin        | → {"invitation_id", "token", "url", "expires_at"}: a fresh token, the old one dead (not for a final application) |
| POST /api/kyc/me                                 | the token's holder  | {"token"} → the client's view (invitation, application, documents, required kinds, agreement) |
| POST /api/kyc/documents                          | the token's holder  | {"token", "kind", "filename", "content_type", "data_base64"} → {"document_id", "kind", "filename", "size", "sha256"} |
| POST /api/kyc/applications                       | the token's holder  | {"token", "institution", "document_ids"?} → Application (client shape); 422 {"error", "fields"} |
| GET  /api/kyc/applications?state=                | sales, compliance, risk, admin | → the pipeline: [{"id", "institution_name", "state", "awaiting_role", "since", "waiting_s", …}] |
| GET  /api/kyc/applications/{id}                  | sales, compliance, risk, admin | → Application + "view" (what the caller's role decides) |
| POST /api/kyc/applications/{id}/decision         | the awaited role    | {"decision": "approve" | "return" | "reject", "comment", "limits"?} → Application; another role 403 |
| POST /api/kyc/applications/{id}/transition       | per workflows.kyc.TRIGGER_ROLES | {"trigger": "suspend" | "reinstate" | "reopen" | "withdraw", "comment"} → Application; another role 403, the right role in a state that does not allow it 409 |
| POST /api/kyc/applications/{id}/screen           | compliance          | → Application (screened again) |
| GET  /api/kyc/applications/{id}/report           | compliance, risk, admin | → the due-diligence report (text/html, no inline style or script) |
| GET  /api/kyc/applications/{id}/report.pdf       | compliance, risk, admin | → the report as PDF |
| GET  /api/kyc/applications/{id}/documents/{doc}  | compliance, admin   | → the uploaded file (audited) |
| POST /api/kyc/applications/{id}/sign             | the token's holder  | {"token", "accepted_sha256"?} → Application (client shape), approved |
| GET  /api/kyc/applications/{id}/agreement.pdf    | staff, or the holder with header X-Invitation-Token | → the signed agreement (in `signing`: the unsigned draft) |
| POST /api/kyc/institutions/{id}/groups           | sales               | {"group", "channel"?: "wechat"} → the institution's groups |

Errors are `{"error", "detail"}`, `detail` carrying `code` and, for invalid input, `fields` ({field: reason}); the
422 of the form also has `fields` at the top level (the contract's shape). Token routes need no login: the token
in the body (or the header, for the PDF) is the credential, and a refused token is audited by the service.
"""
from __future__ import annotations

import asyncio
import hashlib
from typing import Any, Literal
from urllib.parse import quote

from aiohttp import web
from pydantic import model_validator

from otcdesk.app.http_security import request_scheme
from otcdesk.app.kyc.service import HTTP_STATUS
from otcdesk.app.kyc.validation import FIELDS
from otcdesk.app.openapi import Field, RequestModel, ResponseModel, api
from otcdesk.workflows.kyc import DECISIONS, STATES, KycError

STAFF = ("sales", "compliance", "risk", "admin")
REPORT_READERS = ("compliance", "risk", "admin")  # the report carries screening and identifiers in clear
TOKEN_HEADER = "X-Invitation-Token"
MAX_LIMIT = 500
State = Literal[STATES]  # type: ignore[valid-type]
Awaiting = Literal["client", "sales", "compliance", "risk"] | None
TOKEN = "the invitation token (absent or refused: 401)"
PDF = "application/pdf"


# ---- request bodies: types here; the service checks the values and names every bad field (422 `fields`) ----------
class InvitationSpec(RequestModel):
    institution_name: str
    contact_name: str
    contact_mobile: str


class TokenSpec(RequestModel):
    """A body whose credential is the invitation token: without one, the service answers 401 before any other
    field is looked at, so only a body with a token is validated here."""

    token: str = Field(description=TOKEN)

    @model_validator(mode="wrap")
    @classmethod
    def _credential_first(cls, data: Any, handler):
        if isinstance(data, dict) and not isinstance(data.get("token"), str):
            return cls.model_construct()
        return handler(data)


class DocumentSpec(TokenSpec):
    kind: str = Field(description="business_licence, authorisation_letter, id_copy")
    filename: str
    content_type: str = Field(description="application/pdf, image/png or image/jpeg")
    data_base64: str


class ApplySpec(TokenSpec):
    institution: dict[str, Any] = Field(description=f"the form: {', '.join(FIELDS)}; each checked (uscc by its "
                                                    "GB 32100 check character, the ID number by GB 11643)")
    document_ids: list[str] | None = None


class SignSpec(TokenSpec):
    accepted_sha256: str | None = Field(None, description="the draft agreement's hash the client read")


class DecisionSpec(RequestModel):
    decision: Literal[tuple(DECISIONS)]  # type: ignore[valid-type]
    comment: str | None = None
    limits: dict[str, Any] | None = Field(None, description="risk's approval: client limits (positive numbers)")


class TransitionSpec(RequestModel):
    trigger: Literal["suspend", "reinstate", "reopen", "withdraw"]
    comment: str | None = None


class GroupSpec(RequestModel):
    group: str
    channel: str | None = Field(None, description="wechat (default), wecom, sim")


# ---- answers --------------------------------------------------------------------------------------------------
class InvitationLink(ResponseModel):
    invitation_id: str
    token: str = Field(description="shown this once")
    url: str
    expires_at: str


class Invitation(ResponseModel):
    invitation_id: str
    institution_name: str
    contact_name: str
    contact_mobile: str = Field(description="masked")
    created_by: str
    created_at: str
    expires_at: str
    revoked_at: str | None
    application_id: str | None
    application_state: State | None
    status: Literal["active", "expired", "revoked", "used"]


class KycDocument(ResponseModel):
    document_id: str
    kind: str
    filename: str
    content_type: str
    size: int
    sha256: str
    uploaded_at: str


class HistoryStep(ResponseModel):
    from_: str | None = Field(alias="from")
    to: str
    by: str | None
    role: str | None
    at: str
    comment: str | None


class Agreement(ResponseModel):
    signed: bool
    sha256: str | None
    signed_at: str | None = None


class ClientApplication(ResponseModel):
    """The client's own application: no screening."""

    id: str
    institution_id: int | None
    institution: dict[str, Any]
    state: State
    awaiting_role: Awaiting
    history: list[HistoryStep]
    agreement: Agreement


class Blacklist(ResponseModel):
    hit: bool | None
    method: str | None


class Screening(ResponseModel):
    blacklist: Blacklist
    negative_news: list[Any]


class Application(ClientApplication):
    """CONTRACTS `Application` (staff): identifiers the role does not decide on are masked; `view` is what the
    role decides."""

    screening: Screening
    allowed_triggers: list[str]
    version: int
    view: dict[str, Any] | None = None


class PipelineEntry(ResponseModel):
    id: str
    institution_id: int | None
    institution_name: str | None
    state: State
    awaiting_role: Awaiting
    since: str
    waiting_s: float


class ClientView(ResponseModel):
    invitation: dict[str, Any]
    application: ClientApplication | None
    state: str
    awaiting_role: Awaiting
    documents: list[KycDocument]
    required_documents: list[dict[str, str]]
    can_submit: bool
    can_sign: bool
    agreement: dict[str, Any]


class PipelineQuery(RequestModel):
    state: State | None = None
    limit: int = Field(500, ge=1, le=500)


def _error(exc: KycError, **extra) -> web.Response:
    detail = {"code": exc.code, **extra}
    body = {"error": exc.message, "detail": detail}
    if exc.fields:
        detail["fields"] = exc.fields
        body["fields"] = exc.fields
    return web.json_response(body, status=HTTP_STATUS.get(exc.code, 400))


def _no_store(resp: web.StreamResponse) -> web.StreamResponse:
    resp.headers["Cache-Control"] = "no-store"
    return resp


def register(router, *, demo: bool) -> None:
    from otcdesk.app.server import DESK, SETTINGS, USER, read_json, require

    def kyc(request: web.Request):
        return request.app[DESK].kyc

    async def call(fn, *args, **kwargs) -> web.Response:
        try:
            return _no_store(web.json_response(await asyncio.to_thread(fn, *args, **kwargs)))
        except KycError as exc:
            return _error(exc)

    def origin(request: web.Request) -> str:
        return f"{request_scheme(request, request.app[SETTINGS])}://{request.host}"

    # ---- invitations (sales) ---------------------------------------------------------------------------------
    @api("Invite an institution (the token is shown once)", body=InvitationSpec, answer=InvitationLink)
    @require("sales")
    async def invite(request: web.Request) -> web.Response:
        body = await read_json(request)
        return await call(kyc(request).invite, body.get("institution_name"), body.get("contact_name"),
                          body.get("contact_mobile"), request[USER].username, origin(request))

    @api("The invitations, newest first", answer=list[Invitation])
    @require("sales", "admin")
    async def invitations(request: web.Request) -> web.Response:
        return await call(kyc(request).invitations)

    @api("Revoke an invitation's token", answer=Invitation)
    @require("sales", "admin")
    async def revoke(request: web.Request) -> web.Response:
        return await call(kyc(request).revoke, request.match_info["id"], request[USER].username)

    @api("A fresh token for an invitation (the old one dies)", answer=InvitationLink)
    @require("sales", "admin")
    async def reissue(request: web.Request) -> web.Response:
        return await call(kyc(request).reissue, request.match_info["id"], request[USER].username, origin(request))

    # ---- the token's holder (no login) ------------------------------------------------------------------------
    @api("The token holder's view", body=TokenSpec, answer=ClientView, auth=TOKEN)
    async def me(request: web.Request) -> web.Response:
        body = await read_json(request)
        return await call(kyc(request).client_view, body.get("token"))

    @api("Upload one document (base64)", body=DocumentSpec, answer=KycDocument, auth=TOKEN, errors={413: "too large",
         415: "not PDF, PNG or JPEG"})
    async def upload(request: web.Request) -> web.Response:
        body = await read_json(request)
        return await call(kyc(request).upload_document, body.get("token"), body.get("kind"), body.get("filename"),
                          body.get("content_type"), body.get("data_base64"))

    @api("Submit or resubmit the form", body=ApplySpec, answer=ClientApplication, auth=TOKEN)
    async def apply(request: web.Request) -> web.Response:
        body = await read_json(request)
        return await call(kyc(request).apply, body.get("token"), body.get("institution"), body.get("document_ids"))

    @api("Sign the master agreement", body=SignSpec, answer=ClientApplication, auth=TOKEN)
    async def sign(request: web.Request) -> web.Response:
        body = await read_json(request)
        return await call(kyc(request).sign, request.match_info["id"], body.get("token"), body.get("accepted_sha256"))

    @api("The agreement PDF (the unsigned draft while signing)", content=PDF,
         auth="staff session, or the token in header X-Invitation-Token")
    async def agreement(request: web.Request) -> web.Response:
        aid, user = request.match_info["id"], request[USER]
        token = request.headers.get(TOKEN_HEADER)
        if user is None and token is None:
            return web.json_response({"error": "login or the invitation token (header X-Invitation-Token) required",
                                      "detail": None}, status=401)
        if user is not None and token is None and user.role not in STAFF:
            return web.json_response({"error": f"role {user.role} may not do this", "detail": {"allowed": list(STAFF)}},
                                     status=403)
        try:
            if token is not None:
                pdf, digest, kind = await asyncio.to_thread(kyc(request).agreement_pdf, aid, token=token)
            else:
                pdf, digest, kind = await asyncio.to_thread(kyc(request).agreement_pdf, aid, user=user.username)
        except KycError as exc:
            return _error(exc)
        name = f"{aid}-agreement{'' if kind == 'signed' else '-draft'}.pdf"
        return _no_store(web.Response(body=pdf, content_type="application/pdf", headers={
            "Content-Disposition": f'inline; filename="{name}"', "X-Content-SHA256": digest,
            "X-Agreement-Status": kind}))

    # ---- staff -----------------------------------------------------------------------------------------------
    @api("The applications pipeline", query=PipelineQuery, answer=list[PipelineEntry])
    @require(*STAFF)
    async def pipeline(request: web.Request) -> web.Response:
        try:
            limit = int(request.query.get("limit") or MAX_LIMIT)
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_LIMIT:
            return _error(KycError("invalid", f"limit must be an integer from 1 to {MAX_LIMIT}"))
        return await call(kyc(request).applications, request.query.get("state") or None, limit)

    @api("One application with the caller role's view", answer=Application)
    @require(*STAFF)
    async def get_application(request: web.Request) -> web.Response:
        return await call(kyc(request).get, request.match_info["id"], request[USER].role)

    @api("The awaited role's decision", body=DecisionSpec, answer=Application)
    @require(*STAFF)
    async def decision(request: web.Request) -> web.Response:
        body, user = await read_json(request), request[USER]
        return await call(kyc(request).decide, request.match_info["id"], body.get("decision"), body.get("comment"),
                          user.username, user.role, body.get("limits"))

    @api("Suspend, reinstate, reopen or withdraw", body=TransitionSpec, answer=Application)
    @require(*STAFF)
    async def transition(request: web.Request) -> web.Response:
        body, user = await read_json(request), request[USER]
        return await call(kyc(request).transition, request.match_info["id"], body.get("trigger"),
                          body.get("comment"), user.username, user.role)

    @api("Screen again (blacklist, negative news)", answer=Application)
    @require("compliance")
    async def screen(request: web.Request) -> web.Response:
        return await call(kyc(request).rescreen, request.match_info["id"], request[USER].username)

    async def _report(request: web.Request, fmt: str) -> web.Response:
        aid = request.match_info["id"]
        try:
            data, content_type = await asyncio.to_thread(kyc(request).report, aid, fmt)
        except KycError as exc:
            return _error(exc)
        headers = {"X-Content-SHA256": hashlib.sha256(data).hexdigest()}
        if fmt == "pdf":
            headers["Content-Disposition"] = f'inline; filename="{aid}-report.pdf"'
        return _no_store(web.Response(body=data, content_type=content_type,
                                      charset="utf-8" if fmt == "html" else None, headers=headers))

    @api("The due-diligence report (HTML)", content="text/html")
    @require(*REPORT_READERS)
    async def report_html(request: web.Request) -> web.Response:
        return await _report(request, "html")

    @api("The due-diligence report (PDF)", content=PDF)
    @require(*REPORT_READERS)
    async def report_pdf(request: web.Request) -> web.Response:
        return await _report(request, "pdf")

    @api("An uploaded document (audited)", content=(PDF, "image/png", "image/jpeg"),
         description="served with the type it was uploaded as")
    @require("compliance", "admin")
    async def document(request: web.Request) -> web.Response:
        try:
            doc, content = await asyncio.to_thread(kyc(request).document, request.match_info["id"],
                                                   request.match_info["doc"], request[USER].username)
        except KycError as exc:
            return _error(exc)
        return _no_store(web.Response(body=content, content_type=doc.content_type, headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(doc.filename)}",
            "X-Content-SHA256": doc.sha256}))

    @api("Bind a chat group to an approved institution", body=GroupSpec, answer=dict[str, Any])
    @require("sales")
    async def bind_group(request: web.Request) -> web.Response:
        body = await read_json(request)
        return await call(kyc(request).bind_group, request.match_info["id"], body.get("channel"), body.get("group"),
                          request[USER].username)

    router.add_post("/api/kyc/invitations", invite)
    router.add_get("/api/kyc/invitations", invitations)
    router.add_post("/api/kyc/invitations/{id}/revoke", revoke)
    router.add_post("/api/kyc/invitations/{id}/reissue", reissue)
    router.add_post("/api/kyc/me", me)
    router.add_post("/api/kyc/documents", upload)
    router.add_post("/api/kyc/applications", apply)
    router.add_get("/api/kyc/applications", pipeline)
    router.add_get("/api/kyc/applications/{id}", get_application)
    router.add_post("/api/kyc/applications/{id}/decision", decision)
    router.add_post("/api/kyc/applications/{id}/transition", transition)
    router.add_post("/api/kyc/applications/{id}/screen", screen)
    router.add_get("/api/kyc/applications/{id}/report", report_html)
    router.add_get("/api/kyc/applications/{id}/report.pdf", report_pdf)
    router.add_get("/api/kyc/applications/{id}/documents/{doc}", document)
    router.add_post("/api/kyc/applications/{id}/sign", sign)
    router.add_get("/api/kyc/applications/{id}/agreement.pdf", agreement)
    router.add_post("/api/kyc/institutions/{id}/groups", bind_group)
