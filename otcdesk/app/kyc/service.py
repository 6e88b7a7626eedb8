"""KycService: invitations, the client's form and documents, the three reviews, screening, the due-diligence
report, the signed agreement and opening quoting for an approved institution (CONTRACTS Part 2 "KYC onboarding").

The machine (`workflows.kyc.fire`) decides every step; this service persists it. A step is ONE unit of work: the
application's conditional update (`state`, `version`), its `kyc_transition` row, the audit entry, the
institution's mirrored `kyc_status` and — for `open_quoting` / `close_quoting` — its `can_trade`, so a suspension
stops quotes at the commit. The slow effects run after the commit, each in short units of work of its own, and a
failure never undoes the step: `screen` (the blacklist by PSI and negative news; a holder that does not answer
leaves the application unscreened, and compliance screens again), `report` (the due-diligence report, again on
demand when it failed) and `prepare_agreement` (the unsigned draft the client reads, kept as a document of kind
`agreement_draft`; rendered again on demand). Signing is the exception: the e-seal signature is the content of
the `sign` step, so it is made first, outside any transaction, and the step, the signed agreement and its
evidence-chain entry then commit together (a failed signature changes nothing; the client signs again).

The client's credential is the invitation token (`secrets.token_urlsafe(32)`, kept as its SHA-256 only). A token
that is unknown, expired, revoked, spent (the application is final) or presented for another application is
refused and audited as `kyc.token_refused` with the first 8 hex digits of its hash, never the token. The token's
lifetime starts again when the application comes back to the client (returned, signing).

Personal data (ID numbers, mobiles, names of people) never goes into logs or audit details.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
import secrets
from datetime import datetime, timedelta, timezone
from pathlib import PurePosixPath
from typing import Any, Callable, Iterable

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from otcdesk.app.kyc.report import mask_id_number, mask_mobile
from otcdesk.app.kyc.validation import DOCUMENT_KINDS, FIELDS, MOBILE_RE, NAME_RE, normalise_mobile, \
    suitability, validate_institution
from otcdesk.app.models import Institution, KycApplication, KycDocument, KycInvitation, KycReport
from otcdesk.app.repositories import transaction
from otcdesk.workflows.kyc import AWAITING, DECISIONS, FINAL_STATES, REVIEW_STATES, STATES, KycContext, KycError, \
    allowed_triggers, fire, may_fire

log = logging.getLogger(__name__)

AGREEMENT_DRAFT = "agreement_draft"  # kind of the desk-generated unsigned agreement (not a client upload)
AGREEMENT_SUPERSEDED = "agreement_superseded"  # a signed agreement replaced by one for changed data
DESK_KINDS = (AGREEMENT_DRAFT, AGREEMENT_SUPERSEDED)  # documents the desk keeps, not the client's uploads
CONTENT_TYPES = {"application/pdf": "PDF", "image/png": "PNG", "image/jpeg": "JPEG"}
MAX_DOCUMENTS = 40  # per invitation
STAFF_TRIGGERS = ("suspend", "reinstate", "reopen", "withdraw")
LIMIT_KEYS = {"notional_cny": "total notional limit (CNY)", "single_trade_cny": "single trade notional (CNY)",
              "tenor_months": "longest tenor (months)"}
MAX_COMMENT = 2000
GROUP_RE = re.compile(r"^[\w@.:\-]{1,128}$")
CHANNEL_RE = re.compile(r"^[a-z][a-z0-9_]{1,15}$")
HTTP_STATUS = {"not_found": 404, "forbidden": 403, "conflict": 409, "invalid": 422, "gone": 410,
               "unauthorized": 401, "too_large": 413, "unsupported": 415, "unavailable": 503}
# who sees which personal identifier in clear: the role that decides on it
CLEAR_IDENTIFIERS = {"sales": {"contact_mobile"}, "compliance": {"legal_representative_id"}}
ROLE_DECIDES = {"sales": "client and contacts", "compliance": "screening and documents",
                "risk": "investor category, suitability and limits"}


class TokenRefused(KycError):
    """A refused invitation token: a security event (audited as `kyc.token_refused`)."""

    def __init__(self, code: str, message: str, token_sha256: str | None, invitation_id: str | None = None):
        super().__init__(code, message)
        self.token_prefix = token_sha256[:8] if token_sha256 else None
        self.invitation_id = invitation_id


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fingerprint(data: dict | None) -> str:
    """SHA-256 of the canonical JSON of an application's institution fields: what an agreement was signed for."""
    fields = {k: (data or {}).get(k) for k in FIELDS if k in (data or {})}
    canonical = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return sha256(canonical.encode("utf-8"))


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def _iso(value: datetime | None) -> str | None:
    value = _aware(value)
    return value.isoformat() if value else None


def _new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(5).upper()


def mask(field: str, value: Any) -> Any:
    """An identifier with its middle hidden: 110101********1234, 138****5678."""
    if not isinstance(value, str) or not value:
        return value
    if field == "legal_representative_id":
        return mask_id_number(value)
    if field == "contact_mobile":
        return mask_mobile(value)
    return value


def sniff_content_type(data: bytes) -> str | None:
    """The content type the bytes themselves say (magic numbers), or None."""
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    return None


def _clean_filename(name: Any) -> str | None:
    if not isinstance(name, str):
        return None
    base = PurePosixPath(name.replace("\\", "/")).name.strip()
    base = "".join(ch for ch in base if ch.isprintable())
    return base[:200] or None


def submit_first(tx, inv: KycInvitation, clean: dict, inst: Institution | None, now: datetime, *,
                 comment: str | None = None) -> tuple[KycApplication, Institution]:
    """The client's first `submit` of validated fields under `inv`, in the caller's unit of work: the institution
    (created when new) mirrors the machine's state, the application and its first step are written and linked to
    the invitation. The caller audits it. (The demo seeds its prospect through this too.)"""
    dest, _ = fire("invited", "submit", KycContext())
    if inst is None:
        inst = tx.clients.add_institution(clean["name"], dest, False)
    tx.clients.set_kyc(inst, dest, False, uscc=clean["uscc"])
    app = KycApplication(id=_new_id("KYC"), invitation_id=inv.id, institution_id=inst.id, state=dest,
                         awaiting_role=AWAITING[dest], data=clean, created_at=now, updated_at=now)
    tx.kyc.add_application(app)
    tx.kyc.record_step(app.id, "submit", "invited", dest, f"client:{inv.id}", "client", comment=comment, at=now)
    tx.kyc.link_application(inv, app.id)
    return app, inst


class KycService:
    """Onboarding over one database. Collaborators (all optional, injected by `wiring.build_desk`):

    - `screener`: `.screen(institution_dict) -> {"blacklist": {"hit": bool | None, "method", ...},
      "negative_news": [...]}` (`app.kyc.screening.Screener`); None: nothing screens (the application stays
      unscreened and compliance cannot approve it);
    - `reports`: `.render_report_html(input)`, `.render_report_pdf(input)` (`app.kyc.report`);
    - `agreements`: `.render_agreement(application) -> bytes`, `.sign_agreement(pdf, eseal, acceptance=,
      signed_at=) -> bytes` (`app.kyc.agreement`); `eseal`: a zero-argument callable returning the desk's e-seal
      (`app.kyc.eseal.load_eseal(settings)`), called on first use;
    - `events`: the event bus (kind `kyc`: `{"id", "state", "awaiting_role"}` when an application moves).
    """

    def __init__(self, engine: Engine, settings, clock, *, screener=None, reports=None, agreements=None,
                 eseal: Callable[[], Any] | None = None, events=None):
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.screener = screener
        self.reports = reports
        self.agreements = agreements
        self._eseal_loader = eseal
        self._eseal = None
        self.events = events
        self.ttl = timedelta(seconds=float(settings.kyc_invitation_ttl_s))
        self.max_upload = int(settings.kyc_upload_max_bytes)

    # ==== invitations (sales) ===================================================================================
    def invite(self, institution_name: Any, contact_name: Any, contact_mobile: Any, user: str,
               base_url: str | None = None) -> dict:
        """A new invitation → {"invitation_id", "token", "url", "expires_at"}; the token is shown this once."""
        fields: dict[str, str] = {}
        name = institution_name.strip() if isinstance(institution_name, str) else ""
        if not 2 <= len(name) <= 100:
            fields["institution_name"] = "机构名称应为2至100个字符"
        contact = contact_name.strip() if isinstance(contact_name, str) else ""
        if not NAME_RE.match(contact):
            fields["contact_name"] = "联系人姓名应为2至40个汉字或字母"
        mobile = normalise_mobile(contact_mobile) if isinstance(contact_mobile, str) else ""
        if not MOBILE_RE.match(mobile):
            fields["contact_mobile"] = "手机号应为11位中国大陆手机号码（1开头，第二位3-9）"
        if fields:
            raise KycError("invalid", "the invitation has invalid fields", fields)
        token = secrets.token_urlsafe(32)
        now = self.clock.now()
        inv = KycInvitation(id=_new_id("INV"), token_sha256=token_hash(token), institution_name=name,
                            contact_name=contact, contact_mobile=mobile, created_by=user, created_at=now,
                            expires_at=now + self.ttl)
        with transaction(self.engine) as tx:
            tx.kyc.add_invitation(inv)
            tx.audit.record(user, "kyc.invite", f"kyc_invitation:{inv.id}",
                            {"institution_name": name, "expires_at": _iso(inv.expires_at),
                             "token_prefix": inv.token_sha256[:8]})
        return self._link(inv, token, base_url)

    def _link(self, inv: KycInvitation, token: str, base_url: str | None) -> dict:
        base = (self.settings.public_base_url or base_url or "").rstrip("/")
        return {"invitation_id": inv.id, "token": token, "url": f"{base}/apply#token={token}",
                "expires_at": _iso(inv.expires_at)}

    def reissue(self, invitation_id: str, user: str, base_url: str | None = None) -> dict:
        """A fresh token for an invitation whose application is not final (the old token, expired, revoked or
        lost, stops opening anything at the commit) → {"invitation_id", "token", "url", "expires_at"}, shown
        this once. How a client whose link lapsed in `returned` or `signing` acts again."""
        token = secrets.token_urlsafe(32)
        now = self.clock.now()
        with transaction(self.engine) as tx:
            inv = tx.kyc.invitation(invitation_id)
            if inv is None:
                raise KycError("not_found", f"no invitation {invitation_id}")
            app = tx.kyc.application(inv.application_id) if inv.application_id else None
            if app is not None and app.state in FINAL_STATES:
                raise KycError("conflict", f"the application is {app.state}: its invitation is spent")
            old_prefix = inv.token_sha256[:8]
            if not tx.kyc.replace_token(inv, token_hash(token), now + self.ttl):
                raise KycError("conflict", f"invitation {invitation_id} was changed concurrently; try again")
            tx.audit.record(user, "kyc.token_reissued", f"kyc_invitation:{inv.id}",
                            {"application_id": inv.application_id, "expires_at": _iso(inv.expires_at),
                             "token_prefix": inv.token_sha256[:8], "previous_token_prefix": old_prefix})
        return self._link(inv, token, base_url)

    def invitations(self, limit: int = 500) -> list[dict]:
        with transaction(self.engine) as tx:
            return [self._invitation_dict(tx, inv) for inv in tx.kyc.invitations(limit)]

    def revoke(self, invitation_id: str, user: str) -> dict:
        """Revoke an invitation's token (the application, if any, stays; its client can no longer act)."""
        with transaction(self.engine) as tx:
            inv = tx.kyc.invitation(invitation_id)
            if inv is None:
                raise KycError("not_found", f"no invitation {invitation_id}")
            if not tx.kyc.revoke(inv, user, self.clock.now()):
                raise KycError("conflict", f"invitation {invitation_id} was revoked already")
            tx.audit.record(user, "kyc.invitation_revoked", f"kyc_invitation:{inv.id}",
                            {"application_id": inv.application_id})
            return self._invitation_dict(tx, inv)

    def _invitation_dict(self, tx, inv: KycInvitation) -> dict:
        app = tx.kyc.application(inv.application_id) if inv.application_id else None
        return {"invitation_id": inv.id, "institution_name": inv.institution_name, "contact_name": inv.contact_name,
                "contact_mobile": mask_mobile(inv.contact_mobile), "created_by": inv.created_by,
                "created_at": _iso(inv.created_at), "expires_at": _iso(inv.expires_at),
                "revoked_at": _iso(inv.revoked_at), "revoked_by": inv.revoked_by,
                "application_id": inv.application_id, "application_state": app.state if app else None,
                "status": self._invitation_status(inv, app)}

    def _invitation_status(self, inv: KycInvitation, app: KycApplication | None) -> str:
        if inv.revoked_at is not None:
            return "revoked"
        if app is not None and app.state in FINAL_STATES:
            return "used"
        if _aware(inv.expires_at) <= self.clock.now():
            return "expired"
        return "active"

    # ==== the token holder ======================================================================================
    def _holder(self, tx, token: Any, *, spent_ok: bool = False) -> KycInvitation:
        """The invitation `token` opens, or TokenRefused. A token whose application is final (approved, rejected)
        is spent: it still reads (`spent_ok`, the client's view of the outcome) but acts no more."""
        if not isinstance(token, str) or not 20 <= len(token) <= 200:
            raise TokenRefused("unauthorized", "an invitation token is required", None)
        digest = token_hash(token)
        inv = tx.kyc.invitation_by_token_hash(digest)
        if inv is None:
            raise TokenRefused("unauthorized", "unknown invitation token", digest)
        if inv.revoked_at is not None:
            raise TokenRefused("gone", "this invitation was revoked", digest, inv.id)
        if _aware(inv.expires_at) <= self.clock.now():
            raise TokenRefused("gone", "this invitation has expired; ask your sales contact for a new one", digest,
                               inv.id)
        if not spent_ok and inv.application_id:
            app = tx.kyc.application(inv.application_id)
            if app is not None and app.state in FINAL_STATES:
                raise TokenRefused("gone", f"this invitation is used: the application is {app.state}", digest, inv.id)
        return inv

    def _token_refused(self, exc: TokenRefused, action: str, subject: str = "kyc_invitation:?") -> None:
        with transaction(self.engine) as tx:
            tx.audit.record("client", "kyc.token_refused", subject,
                            {"action": action, "code": exc.code, "reason": exc.message,
                             "token_prefix": exc.token_prefix, "invitation_id": exc.invitation_id})

    def _as_holder(self, action: str, run: Callable[[], Any], subject: str = "kyc_invitation:?"):
        try:
            return run()
        except TokenRefused as exc:
            self._token_refused(exc, action, subject)
            raise

    def client_view(self, token: Any) -> dict:
        """What the token's holder sees: its invitation, its application (client shape), its documents, the
        document kinds a submission needs, and the agreement's status."""
        return self._as_holder("view", lambda: self._client_view(token))

    def _client_view(self, token: Any) -> dict:
        with transaction(self.engine) as tx:
            inv = self._holder(tx, token, spent_ok=True)
            app = tx.kyc.application(inv.application_id) if inv.application_id else None
            docs = [d for d in tx.kyc.documents(invitation_id=inv.id) if d.kind not in DESK_KINDS]
            state = app.state if app else "invited"
            agreement = {"status": "none", "sha256": None, "signed_at": None}
            if app is not None and app.state == "signing":  # to sign (again, when the data changed)
                draft = self._draft(tx, app.id)
                agreement = {"status": "ready", "sha256": draft.sha256 if draft else None, "signed_at": None}
            elif app is not None and app.agreement_sha256:
                agreement = {"status": "signed", "sha256": app.agreement_sha256, "signed_at": _iso(app.signed_at)}
            return {
                "invitation": {"invitation_id": inv.id, "institution_name": inv.institution_name,
                               "contact_name": inv.contact_name, "expires_at": _iso(inv.expires_at)},
                "application": self._client_application(tx, app) if app else None,
                "state": state, "awaiting_role": AWAITING[state],
                "documents": [self._document_dict(d) for d in docs],
                "required_documents": [{"kind": k, "label": v} for k, v in DOCUMENT_KINDS.items()],
                "accepted_content_types": list(CONTENT_TYPES), "max_upload_bytes": self.max_upload,
                "can_submit": state in ("invited", "returned"), "can_sign": state == "signing",
                "agreement": agreement,
            }

    def upload_document(self, token: Any, kind: Any, filename: Any, content_type: Any, data: bytes | str) -> dict:
        """Store one document under the token's invitation → {"document_id", "kind", "filename", "size",
        "sha256"}. `data`: the bytes, or their base64. Refused: unknown kind (invalid), too large (too_large),
        a type other than PDF/PNG/JPEG or bytes that are not what the type says (unsupported)."""
        return self._as_holder("upload", lambda: self._upload(token, kind, filename, content_type, data))

    def _upload(self, token, kind, filename, content_type, data) -> dict:
        """The bytes are checked first; then ONE unit of work holds the invitation's row lock while it checks the
        token and the application's state, counts and inserts: a revoke or reissue waits for it (or it sees
        theirs), and concurrent uploads of one invitation count one after the other."""
        with transaction(self.engine) as tx:  # who asks, before what they sent (a stranger learns nothing)
            self._holder(tx, token)
        if kind not in DOCUMENT_KINDS:
            raise KycError("invalid", "unknown document kind",
                           {"kind": f"应为 {', '.join(DOCUMENT_KINDS)} 之一"})
        name = _clean_filename(filename)
        if name is None:
            raise KycError("invalid", "a file name is required", {"filename": "请提供文件名"})
        if isinstance(data, str):
            if len(data) > (self.max_upload * 4) // 3 + 8:
                raise KycError("too_large", f"the document is larger than {self.max_upload} bytes",
                               {"data": f"文件超过{self.max_upload // 1024} KB上限"})
            try:
                data = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                raise KycError("invalid", "data_base64 is not base64", {"data": "文件内容不是有效的base64"}) from None
        if not isinstance(data, (bytes, bytearray)) or not data:
            raise KycError("invalid", "the document is empty or missing (data_base64)", {"data": "缺少文件内容"})
        if len(data) > self.max_upload:
            raise KycError("too_large", f"the document is larger than {self.max_upload} bytes",
                           {"data": f"文件超过{self.max_upload // 1024} KB上限"})
        if content_type not in CONTENT_TYPES:
            raise KycError("unsupported", f"content type {content_type!r} is not accepted",
                           {"content_type": "仅接受 PDF、PNG 或 JPEG 文件"})
        actual = sniff_content_type(bytes(data))
        if actual != content_type:
            raise KycError("unsupported", f"the file is not a {CONTENT_TYPES[content_type]} "
                                          f"({'it looks like ' + CONTENT_TYPES[actual] if actual else 'unknown content'})",
                           {"data": f"文件内容与声明的类型{CONTENT_TYPES[content_type]}不符"})
        with transaction(self.engine) as tx:
            if isinstance(token, str):
                tx.kyc.lock_invitation(token_hash(token))
            inv = self._holder(tx, token)
            app = tx.kyc.application(inv.application_id) if inv.application_id else None
            if app is not None and app.state != "returned":
                raise KycError("conflict", f"the application is {app.state}: documents are added before submitting "
                                           "or after it was returned")
            if tx.kyc.count_documents(inv.id) >= MAX_DOCUMENTS:
                raise KycError("conflict", f"at most {MAX_DOCUMENTS} documents per invitation")
            inv_id = inv.id
            doc = KycDocument(id=_new_id("DOC"), invitation_id=inv_id, application_id=app.id if app else None,
                              kind=kind, filename=name, content_type=content_type, size=len(data),
                              sha256=sha256(bytes(data)), content=bytes(data), uploaded_at=self.clock.now())
            tx.kyc.add_document(doc)
            tx.audit.record(f"client:{inv_id}", "kyc.document_upload", f"kyc_invitation:{inv_id}",
                            {"document_id": doc.id, "kind": kind, "content_type": content_type, "size": doc.size,
                             "sha256": doc.sha256})
        return self._document_dict(doc)

    def apply(self, token: Any, institution: Any, document_ids: Any = None) -> dict:
        """Submit (first time) or resubmit (after a return) the form → the Application in the client's shape.

        Invalid fields: KycError("invalid", fields={field: reason}); nothing is stored but an audit entry naming
        the refused fields (never their values)."""
        return self._as_holder("apply", lambda: self._apply(token, institution, document_ids))

    def _apply(self, token, institution, document_ids) -> dict:
        now = self.clock.now()
        invitation_id = None  # the refusal's audit subject once the token named it
        try:
            with transaction(self.engine) as tx:
                inv = self._holder(tx, token)
                invitation_id = inv.id
                app = tx.kyc.application(inv.application_id) if inv.application_id else None
                state = app.state if app else "invited"
                trigger = "submit" if app is None else "resubmit"
                if state not in ("invited", "returned"):
                    raise KycError("conflict", f"the application is {state}: there is nothing to submit now")
                clean, errors = validate_institution(institution, self.clock.today())
                if "name" in clean and _norm(clean["name"]) != _norm(inv.institution_name):
                    errors["name"] = f"机构名称须与邀请一致：{inv.institution_name}"
                inst = tx.clients.institution(app.institution_id) if app else \
                    tx.clients.institution_named(clean.get("name", inv.institution_name))
                if inst is not None and app is None:
                    other = tx.kyc.active_for_institution(inst.id)
                    if other is not None:
                        errors["name"] = "该机构已有进行中或已通过的准入申请"
                if "uscc" in clean:
                    holder = tx.clients.institution_by_uscc(clean["uscc"])
                    if holder is not None and (inst is None or holder.id != inst.id):
                        errors["uscc"] = "该统一社会信用代码已登记在其他机构名下"
                docs = self._chosen_documents(tx, inv, app, document_ids, errors)
                if errors:
                    raise KycError("invalid", "the application has invalid fields", errors)
                actor = f"client:{inv.id}"
                if app is None:
                    app, inst = submit_first(tx, inv, clean, inst, now)
                    dest = app.state
                else:
                    dest, _ = fire(state, trigger, KycContext())
                    data = {**clean, **({"limits": app.data["limits"]} if "limits" in (app.data or {}) else {})}
                    if not tx.kyc.move(app, trigger, dest, actor, "client", at=now, data=data,
                                       awaiting_role=AWAITING[dest]):
                        raise KycError("conflict", f"application {app.id} was changed concurrently")
                    tx.clients.set_kyc(inst, dest, False, uscc=clean["uscc"])
                tx.kyc.attach_documents([d.id for d in docs if d.application_id != app.id], app.id)
                tx.audit.record(actor, f"kyc.{trigger}", f"kyc_application:{app.id}",
                                {"from": state, "to": dest, "institution_id": inst.id,
                                 "documents": sorted(d.id for d in docs)})
                result = self._client_application(tx, app)
        except IntegrityError:  # two submissions of one invitation at once: the other one won
            raise KycError("conflict", "this invitation's application was submitted concurrently") from None
        except KycError as exc:
            if exc.code == "invalid":
                with transaction(self.engine) as tx:
                    tx.audit.record("client", "kyc.submission_refused", f"kyc_invitation:{invitation_id or '?'}",
                                    {"fields": sorted(exc.fields)})
            raise
        self._publish(result)
        return result

    def _chosen_documents(self, tx, inv: KycInvitation, app: KycApplication | None, document_ids: Any,
                          errors: dict) -> list[KycDocument]:
        """The documents a submission carries (its ids, or every upload of the invitation) — each required kind
        at least once, counting those attached to the application before."""
        uploaded = {d.id: d for d in tx.kyc.documents(invitation_id=inv.id) if d.kind not in DESK_KINDS}
        if document_ids is None:
            chosen = list(uploaded.values())
        elif not isinstance(document_ids, list) or not all(isinstance(i, str) for i in document_ids):
            errors["documents"] = "document_ids 应为文档编号列表"
            return []
        else:
            unknown = [i for i in document_ids if i not in uploaded]
            if unknown:
                errors["documents"] = f"文档{', '.join(unknown[:5])}不属于本邀请"
                return []
            chosen = [uploaded[i] for i in dict.fromkeys(document_ids)]
        have = {d.kind for d in chosen} | {d.kind for d in uploaded.values() if app and d.application_id == app.id}
        for kind, label in DOCUMENT_KINDS.items():
            if kind not in have:
                errors[f"documents.{kind}"] = f"请上传{label}（PDF或图片）"
        return chosen

    def sign(self, application_id: str, token: Any, accepted_sha256: Any = None) -> dict:
        """The token's holder accepts and signs the agreement: the draft is signed with the desk's e-seal, the
        acceptance {token_sha256, accepted_at, content_sha256} recorded, the evidence chain appended → Application
        (client shape), `approved` with quoting open."""
        return self._as_holder("sign", lambda: self._sign(application_id, token, accepted_sha256),
                               f"kyc_application:{application_id}")

    def _sign(self, application_id: str, token: Any, accepted_sha256: Any) -> dict:
        if self.agreements is None:
            raise KycError("unavailable", "agreement signing is not configured")
        with transaction(self.engine) as tx:
            inv = self._holder(tx, token)
            if inv.application_id != application_id:
                raise TokenRefused("forbidden", "only the holder of this application's invitation token may sign",
                                   inv.token_sha256, inv.id)
            app = self._get(tx, application_id)
            fire(app.state, "sign", self._context(tx, app, signer_holds_token=True))  # refused with the reason
            token_sha, inv_id, data_sha = inv.token_sha256, inv.id, fingerprint(app.data)
        draft = self._ensure_draft(application_id, "client")
        if accepted_sha256 is not None and accepted_sha256 != draft.sha256:
            raise KycError("conflict", "the agreement you accepted is not the current draft: read it again",
                           {"accepted_sha256": f"当前协议的SHA-256为{draft.sha256}"})
        now = self.clock.now()
        acceptance = {"token_sha256": token_sha, "accepted_at": now.isoformat(), "content_sha256": draft.sha256,
                      "invitation_id": inv_id, "data_sha256": data_sha}
        try:
            signed = self.agreements.sign_agreement(draft.content, self.eseal(), acceptance=acceptance,
                                                    signed_at=now)
        except Exception as exc:
            log.exception("signing the agreement of %s failed", application_id)
            with transaction(self.engine) as tx:
                tx.audit.record(f"client:{inv_id}", "kyc.sign_failed", f"kyc_application:{application_id}",
                                {"error": type(exc).__name__})
            raise KycError("unavailable", "the agreement could not be signed now; try again shortly") from exc
        digest = sha256(signed)
        with transaction(self.engine) as tx:
            self._holder(tx, token)  # revoked or expired while the e-seal signed: nothing is signed
            app = self._get(tx, application_id)
            if fingerprint(app.data) != data_sha:
                raise KycError("conflict", "the application changed while the agreement was sealed; sign again")
            dest, after = fire(app.state, "sign", self._context(tx, app, signer_holds_token=True))
            actor = f"client:{inv_id}"
            superseded = self._supersede_agreement(tx, app)
            if not tx.kyc.move(app, "sign", dest, actor, "client", at=now, awaiting_role=AWAITING[dest],
                               agreement_sha256=digest, signed_at=now):
                raise KycError("conflict", f"application {application_id} was changed concurrently")
            tx.evidence.store_agreement(application_id, unsigned_sha256=draft.sha256, pdf=signed, sha256=digest,
                                        signer=self._signer_name(), signed_at=now, acceptance=acceptance,
                                        replace=superseded is not None)
            self._mirror(tx, app, dest, after)
            tx.audit.record(actor, "kyc.sign", f"kyc_application:{application_id}",
                            {"from": "signing", "to": dest, "sha256": digest, "unsigned_sha256": draft.sha256,
                             "token_prefix": token_sha[:8], "data_sha256": data_sha,
                             **({"superseded_sha256": superseded} if superseded else {})})
            result = self._client_application(tx, app)
        self._publish(result)
        return result

    def _supersede_agreement(self, tx, app: KycApplication) -> str | None:
        """An earlier signed agreement (for data that changed since) is kept as a document of kind
        `agreement_superseded` before the new one replaces it; its SHA-256, or None when there is none."""
        old = tx.evidence.agreement(app.id)
        if old is None:
            return None
        pdf = bytes(old.pdf)
        tx.kyc.add_document(KycDocument(id=_new_id("DOC"), invitation_id=app.invitation_id, application_id=app.id,
                                        kind=AGREEMENT_SUPERSEDED, filename=f"{app.id}-agreement-{old.sha256[:8]}.pdf",
                                        content_type="application/pdf", size=len(pdf), sha256=old.sha256,
                                        content=pdf, uploaded_at=self.clock.now()))
        return old.sha256

    # ==== staff ================================================================================================
    def get(self, application_id: str, role: str) -> dict:
        """The Application (CONTRACTS) with `view`: what `role` decides, identifiers it does not decide on
        masked."""
        with transaction(self.engine) as tx:
            app = self._get(tx, application_id)
            return self._staff_application(tx, app, role)

    def applications(self, state: str | None = None, limit: int = 500) -> list[dict]:
        """The pipeline: each application's state, whose turn it is and how long it has waited (no personal
        data)."""
        if state is not None and state not in STATES:
            raise KycError("invalid", f"state must be one of {', '.join(STATES)}")
        now = self.clock.now()
        with transaction(self.engine) as tx:
            apps = tx.kyc.applications(state, limit=limit)
            since = tx.kyc.last_step_at([a.id for a in apps])
            out = []
            for app in apps:
                inst = tx.clients.institution(app.institution_id)
                at = _aware(since.get(app.id) or app.updated_at)
                out.append({"id": app.id, "institution_id": app.institution_id,
                            "institution_name": inst.name if inst else None, "state": app.state,
                            "awaiting_role": app.awaiting_role, "since": _iso(at),
                            "waiting_s": max(0.0, round((now - at).total_seconds(), 1)),
                            "screened": self._screened(app), "blacklist_hit": app.blacklist_hit,
                            "negative_news": len((app.screening or {}).get("negative_news") or []),
                            "agreement_signed": bool(app.agreement_sha256), "updated_at": _iso(app.updated_at)})
            return out

    def decide(self, application_id: str, decision: Any, comment: Any, user: str, role: str,
               limits: Any = None) -> dict:
        """The awaited role's review decision: approve | return | reject → Application (staff shape).

        Another role: forbidden (audited `kyc.decision_refused`); a decision the machine does not allow now
        (a blacklist hit, an unscreened application, an unsuitable investor): conflict with the reason."""
        if decision not in DECISIONS:
            raise KycError("invalid", f"decision must be one of {', '.join(DECISIONS)}")
        return self._step(application_id, DECISIONS[decision], _comment(comment), user, role,
                          needs_comment=decision in ("return", "reject"), limits=limits)

    def transition(self, application_id: str, trigger: Any, comment: Any, user: str, role: str) -> dict:
        """suspend | reinstate | reopen (periodic review) | withdraw (an application waiting on a client that no
        longer acts) by the roles `workflows.kyc.TRIGGER_ROLES` names, each with its reason.

        `reinstate` screens afresh first (the result is kept and audited): a hit, or a screening that did not
        answer, refuses it with the reason and the application stays suspended."""
        if trigger not in STAFF_TRIGGERS:
            raise KycError("invalid", f"trigger must be one of {', '.join(STAFF_TRIGGERS)}")
        comment = _comment(comment)
        if trigger == "reinstate" and comment:
            with transaction(self.engine) as tx:
                state = self._get(tx, application_id).state
            if state == "suspended" and may_fire(state, trigger, role):  # otherwise _step refuses it as usual
                self._screen(application_id, user, in_state="suspended")
        return self._step(application_id, trigger, comment, user, role, needs_comment=True)

    def _step(self, application_id: str, trigger: str, comment: str | None, user: str, role: str, *,
              needs_comment: bool = False, limits: Any = None) -> dict:
        """Fire `trigger` as one unit of work. Who may is checked before what they sent (another role: 403
        whatever its body holds); then the reason a return, reject or staff trigger needs, and risk's limits."""
        now = self.clock.now()
        try:
            with transaction(self.engine) as tx:
                app = self._get(tx, application_id)
                source = app.state
                if not may_fire(source, trigger, role):  # 403: not this role's to fire (in this state)
                    if trigger in DECISIONS.values():
                        raise KycError("forbidden", f"the application ({source}) awaits "
                                                    f"{AWAITING.get(source) or 'nobody'}: role {role} may not decide")
                    raise KycError("forbidden", f"role {role} may not {trigger.replace('_', ' ')}")
                if trigger not in allowed_triggers(source):  # 409: the right role, a state that does not allow it
                    raise KycError("conflict", f"an application in {source} cannot {trigger.replace('_', ' ')}"
                                               f" (allowed: {', '.join(allowed_triggers(source)) or 'nothing'})")
                if needs_comment and not comment:
                    raise KycError("invalid", f"a {trigger.replace('_', ' ')} needs a comment (the reason)",
                                   {"comment": "请填写理由"})
                if limits is not None:
                    if not (trigger == "approve" and role == "risk"):
                        raise KycError("invalid", "limits go with the risk approval only")
                    limits = _validate_limits(limits)
                dest, after = fire(source, trigger, self._context(tx, app))
                changes: dict[str, Any] = {"awaiting_role": AWAITING[dest]}
                if limits is not None:
                    changes["data"] = {**(app.data or {}), "limits": limits}
                if dest == "compliance_review":  # a screening of an earlier cycle no longer counts (see _screen)
                    changes["screening"] = {}
                inv = tx.kyc.invitation(app.invitation_id)
                detail: dict[str, Any] = {}
                if trigger == "reopen" and inv is not None:
                    # the months-old token must not come back with the review: sales reissues one when the
                    # client has to act (a return, the agreement to sign again)
                    detail["token_invalidated"] = inv.token_sha256[:8]
                    tx.kyc.replace_token(inv, token_hash(secrets.token_urlsafe(32)), now, clear_revocation=False)
                elif dest in ("returned", "signing") and inv is not None and inv.revoked_at is None:
                    # the client acts again: its token gets a fresh lifetime
                    inv.expires_at = max(_aware(inv.expires_at), now + self.ttl)
                    tx.session.add(inv)
                if not tx.kyc.move(app, trigger, dest, user, role, comment=comment, at=now, **changes):
                    raise KycError("conflict", f"application {application_id} was changed concurrently; reload it")
                self._mirror(tx, app, dest, after)
                tx.audit.record(user, f"kyc.{trigger}", f"kyc_application:{app.id}",
                                {"from": source, "to": dest, "role": role, "comment": comment,
                                 **({"limits": limits} if limits else {}), **detail})
        except KycError as exc:
            if exc.code in ("forbidden", "conflict"):
                with transaction(self.engine) as tx:
                    tx.audit.record(user, "kyc.decision_refused", f"kyc_application:{application_id}",
                                    {"trigger": trigger, "role": role, "code": exc.code, "reason": exc.message})
            raise
        self._after(application_id, after, user)
        result = self.get(application_id, role)
        self._publish(result)
        return result

    def rescreen(self, application_id: str, user: str) -> dict:
        """Compliance screens again (a holder that did not answer, a list that changed) → Application."""
        with transaction(self.engine) as tx:
            app = self._get(tx, application_id)
            if app.state != "compliance_review":
                raise KycError("conflict", f"only an application in compliance review is screened (it is {app.state})")
            if not tx.kyc.save(app, screening={}):  # unscreened until the answer: no approval on the old one
                raise KycError("conflict", f"application {application_id} was changed concurrently; reload it")
        self._screen(application_id, user)
        self._report(application_id, user)
        return self.get(application_id, "compliance")

    def report(self, application_id: str, fmt: str = "html") -> tuple[bytes, str]:
        """The latest due-diligence report as (bytes, content type); generated now when none is stored."""
        with transaction(self.engine) as tx:
            app = self._get(tx, application_id)
            report = tx.kyc.latest_report(app.id)
            entered = any(t.to_state == "compliance_review" for t in tx.kyc.transitions(app.id))
        if report is None or (fmt == "pdf" and report.pdf is None):
            if not entered:
                raise KycError("conflict", "the report is written when the application reaches compliance review")
            self._report(application_id, "system")
            with transaction(self.engine) as tx:
                report = tx.kyc.latest_report(application_id)
            if report is None or (fmt == "pdf" and report.pdf is None):
                raise KycError("unavailable", "the report could not be generated")
        if fmt == "pdf":
            return report.pdf, "application/pdf"
        return report.html.encode("utf-8"), "text/html"

    def document(self, application_id: str, document_id: str, user: str) -> tuple[KycDocument, bytes]:
        """One of the application's documents (compliance; audited)."""
        with transaction(self.engine) as tx:
            app = self._get(tx, application_id)
            doc = tx.kyc.document(document_id)
            if doc is None or doc.invitation_id != app.invitation_id:
                raise KycError("not_found", f"application {application_id} has no document {document_id}")
            tx.audit.record(user, "kyc.document_read", f"kyc_application:{app.id}",
                            {"document_id": doc.id, "kind": doc.kind, "sha256": doc.sha256})
            content = bytes(doc.content)
            tx.session.expunge(doc)
            return doc, content

    def agreement_pdf(self, application_id: str, *, user: str | None = None, token: Any = None) -> tuple[bytes, str, str]:
        """(pdf, sha256, "signed" | "draft") for staff (`user`) or the token's holder: the signed agreement, or in
        `signing` the unsigned draft the client is asked to accept."""
        if user is None:
            return self._as_holder("agreement", lambda: self._agreement_pdf(application_id, None, token),
                                   f"kyc_application:{application_id}")
        return self._agreement_pdf(application_id, user, None)

    def _agreement_pdf(self, application_id: str, user: str | None, token: Any) -> tuple[bytes, str, str]:
        with transaction(self.engine) as tx:
            if user is None:
                inv = self._holder(tx, token, spent_ok=True)
                if inv.application_id != application_id:
                    raise TokenRefused("forbidden", "this token is not for this application", inv.token_sha256,
                                       inv.id)
            app = self._get(tx, application_id)
            if app.agreement_sha256 and app.state != "signing":
                stored = tx.evidence.agreement(app.id)
                if stored is None:
                    raise KycError("not_found", f"application {application_id} has no stored agreement")
                pdf = bytes(stored.pdf if hasattr(stored, "pdf") else stored["pdf"])
                result = (pdf, sha256(pdf), "signed")
            elif app.state != "signing":
                raise KycError("conflict", f"the application is {app.state}: there is no agreement yet")
            else:
                result = None
            if user is not None:
                tx.audit.record(user, "kyc.agreement_read", f"kyc_application:{application_id}",
                                {"kind": result[2] if result else "draft"})
        if result is not None:
            return result
        draft = self._ensure_draft(application_id, user or "client")
        return bytes(draft.content), draft.sha256, "draft"

    def bind_group(self, institution_id: Any, channel: Any, group: Any, user: str) -> dict:
        """Bind a chat group to an approved institution: quotes open there. 409 for an institution that is not
        approved, or a group bound to another institution."""
        channel = channel or "wechat"
        if not isinstance(group, str) or not GROUP_RE.match(group):
            raise KycError("invalid", "group must be 1-128 letters, digits or _@.:-", {"group": "群编号无效"})
        if not isinstance(channel, str) or not CHANNEL_RE.match(channel):
            raise KycError("invalid", "channel must be a channel name such as wechat, wecom or sim",
                           {"channel": "渠道名称无效"})
        try:
            inst_id = int(institution_id)
        except (TypeError, ValueError):
            raise KycError("not_found", f"no institution {institution_id}") from None
        with transaction(self.engine) as tx:
            inst = tx.clients.institution(inst_id)
            if inst is None:
                raise KycError("not_found", f"no institution {institution_id}")
            if inst.kyc_status != "approved" or not inst.can_trade:
                raise KycError("conflict", f"institution {inst.id} is {inst.kyc_status}: only an approved "
                                           "institution's groups are bound")
            existing = tx.clients.group(channel, group)
            if existing is not None and existing.institution_id not in (None, inst.id):
                raise KycError("conflict", f"group {channel}/{group} belongs to another institution")
            if existing is None:
                tx.clients.add_group(channel, group, inst.id)
            elif existing.institution_id is None:
                existing.institution_id = inst.id
                tx.session.add(existing)
            tx.audit.record(user, "kyc.group_bound", f"institution:{inst.id}", {"channel": channel, "group": group})
            tx.session.flush()
            return {"institution_id": inst.id, "institution_name": inst.name, "channel": channel, "group": group,
                    "groups": [{"channel": g.channel, "group": g.group_id} for g in tx.clients.groups_of(inst.id)]}

    # ==== effects ==============================================================================================
    def _mirror(self, tx, app: KycApplication, dest: str, after: Iterable[str]) -> None:
        """Institution.kyc_status follows the machine; quoting opens or closes in the step's own transaction."""
        inst = tx.clients.institution(app.institution_id)
        can_trade = True if "open_quoting" in after else False if ("close_quoting" in after or dest != "approved") \
            else None
        tx.clients.set_kyc(inst, dest, can_trade)

    def _after(self, application_id: str, after: Iterable[str], by: str) -> None:
        """The slow effects of a committed step; a failure is logged and audited, never undoes the step."""
        for effect in after:
            run = {"screen": self._screen, "report": self._report, "prepare_agreement": self._prepare}.get(effect)
            if run is None:
                continue  # open_quoting / close_quoting ran in the step; sign_agreement before it
            try:
                run(application_id, by)
            except Exception as exc:
                log.exception("KYC effect %s of %s failed", effect, application_id)
                with transaction(self.engine) as tx:
                    tx.audit.record(by, f"kyc.{effect}_failed", f"kyc_application:{application_id}",
                                    {"error": type(exc).__name__})

    def _screen(self, application_id: str, by: str, in_state: str = "compliance_review") -> dict:
        """Screen and keep the answer while the application is still in compliance review. Whoever starts a
        screening first clears the previous one (on entry to compliance review, or `rescreen`), so `screened` never
        holds an older answer while this one is on its way: compliance cannot approve past a hit it brings. A suspended
        application is screened before it is reinstated (`in_state`)."""
        with transaction(self.engine) as tx:
            app = self._get(tx, application_id)
            data = dict(app.data or {})
            if in_state != "compliance_review" and app.state == in_state and not tx.kyc.save(app, screening={}):
                raise KycError("conflict", f"application {application_id} was changed concurrently; reload it")
        subject = {k: data.get(k) for k in FIELDS}
        at = self.clock.now().isoformat()
        if self.screener is None:
            result = {"blacklist": {"hit": None, "method": None, "error": "no blacklist screening is configured",
                                    "at": at}, "negative_news": []}
        else:
            try:
                result = self.screener.screen(subject)
            except Exception as exc:  # the holder did not answer: unscreened, compliance screens again
                log.warning("screening of %s failed: %s", application_id, type(exc).__name__)
                result = {"blacklist": {"hit": None, "method": None, "error": f"{type(exc).__name__}: {exc}",
                                        "at": at}, "negative_news": []}
        bl = result.get("blacklist") or {}
        if bl.get("method") == "not_configured":  # nothing was asked: that is no answer, not a clean result
            result = {**result, "blacklist": {**bl, "hit": None, "error": "no blacklist screening is configured"}}
        hit = result["blacklist"].get("hit")
        for _ in range(3):  # a concurrent save (a decision) moved the version on: read again
            with transaction(self.engine) as tx:
                app = self._get(tx, application_id)
                if app.state != in_state:
                    log.info("screening of %s dropped: the application is %s now", application_id, app.state)
                    return result
                if tx.kyc.save(app, screening=result, blacklist_hit=bool(hit)):
                    bl = result.get("blacklist") or {}
                    tx.audit.record(by, "kyc.screen", f"kyc_application:{application_id}",
                                    {"hit": hit, "method": bl.get("method"), "queried": bl.get("queried"),
                                     "holder_size": bl.get("holder_size"), "error": bl.get("error"),
                                     "matched_fields": bl.get("matched_fields"),
                                     "negative_news": len(result.get("negative_news") or [])})
                    return result
        raise KycError("conflict", f"application {application_id} kept changing; screen again")

    def _report(self, application_id: str, by: str) -> None:
        if self.reports is None:
            raise KycError("unavailable", "report rendering is not configured")
        with transaction(self.engine) as tx:
            app = self._get(tx, application_id)
            doc = {"application": self._application_dict(tx, app, clear=True),
                   "documents": [self._document_dict(d) for d in tx.kyc.documents(invitation_id=app.invitation_id)
                                 if d.kind not in DESK_KINDS],
                   "generated_at": self.clock.now().isoformat()}
        html = self.reports.render_report_html(doc)
        try:
            pdf = self.reports.render_report_pdf(doc)
        except Exception:
            log.exception("the PDF report of %s failed; the HTML is kept", application_id)
            pdf = None
        digest = sha256(html.encode("utf-8"))
        with transaction(self.engine) as tx:
            tx.kyc.add_report(KycReport(application_id=application_id, generated_at=self.clock.now(), html=html,
                                        pdf=pdf, sha256=digest))
            tx.audit.record(by, "kyc.report", f"kyc_application:{application_id}",
                            {"sha256": digest, "pdf": pdf is not None})

    def _prepare(self, application_id: str, by: str) -> None:
        self._ensure_draft(application_id, by)

    def _draft(self, tx, application_id: str) -> KycDocument | None:
        drafts = tx.kyc.documents(application_id=application_id, kinds=(AGREEMENT_DRAFT,))
        return drafts[-1] if drafts else None

    def _ensure_draft(self, application_id: str, by: str) -> KycDocument:
        """The unsigned agreement of an application in `signing`, rendered once and kept (its hash is what the
        client accepts)."""
        if self.agreements is None:
            raise KycError("unavailable", "agreement rendering is not configured")
        with transaction(self.engine) as tx:
            app = self._get(tx, application_id)
            draft = self._draft(tx, application_id)
            if draft is not None and draft.uploaded_at and _aware(draft.uploaded_at) >= _aware(self._entered_signing(tx, app)):
                tx.session.expunge(draft)
                return draft
            doc = self._application_dict(tx, app, clear=True)
            inv_id = app.invitation_id
        pdf = self.agreements.render_agreement(doc)
        draft = KycDocument(id=_new_id("DOC"), invitation_id=inv_id, application_id=application_id,
                            kind=AGREEMENT_DRAFT, filename=f"{application_id}-agreement.pdf",
                            content_type="application/pdf", size=len(pdf), sha256=sha256(pdf), content=pdf,
                            uploaded_at=self.clock.now())
        with transaction(self.engine) as tx:
            tx.kyc.add_document(draft)
            tx.audit.record(by, "kyc.agreement_prepared", f"kyc_application:{application_id}",
                            {"document_id": draft.id, "sha256": draft.sha256})
            tx.session.expunge(draft)
        return draft

    @staticmethod
    def _entered_signing(tx, app: KycApplication) -> datetime:
        steps = [t for t in tx.kyc.transitions(app.id) if t.to_state == "signing"]
        return steps[-1].at if steps else app.created_at

    def eseal(self):
        if self._eseal is None:
            if self._eseal_loader is None:
                raise KycError("unavailable", "no e-seal is configured")
            self._eseal = self._eseal_loader()
        return self._eseal

    def _signer_name(self) -> str:
        seal = self.eseal()
        for attr in ("signer", "subject", "name"):
            value = getattr(seal, attr, None) or (seal.get(attr) if isinstance(seal, dict) else None)
            if isinstance(value, str) and value:
                return value
        return "desk e-seal"

    # ==== shapes ===============================================================================================
    def _get(self, tx, application_id: str) -> KycApplication:
        app = tx.kyc.application(application_id)
        if app is None:
            raise KycError("not_found", f"no application {application_id}")
        return app

    @staticmethod
    def _screened(app: KycApplication) -> bool:
        return (app.screening or {}).get("blacklist", {}).get("hit") is not None

    def _context(self, tx, app: KycApplication, *, signer_holds_token: bool = False) -> KycContext:
        category = (app.data or {}).get("investor_category", "")
        return KycContext(screened=self._screened(app), blacklist_hit=app.blacklist_hit,
                          suitable=suitability(category)["eligible"],
                          agreement_current=self._agreement_current(tx, app), signer_holds_token=signer_holds_token)

    @staticmethod
    def _agreement_current(tx, app: KycApplication) -> bool:
        """A signed agreement whose acceptance names the fingerprint of the application's data as it is now (an
        agreement signed before fingerprints were recorded counts as not current: it is signed again)."""
        if not app.agreement_sha256:
            return False
        stored = tx.evidence.agreement(app.id)
        return stored is not None and (stored.acceptance or {}).get("data_sha256") == fingerprint(app.data)

    def _history(self, tx, app: KycApplication) -> list[dict]:
        return [{"from": t.from_state, "to": t.to_state, "trigger": t.trigger, "by": t.actor, "role": t.role,
                 "at": _iso(t.at), "comment": t.comment} for t in tx.kyc.transitions(app.id)]

    def _application_dict(self, tx, app: KycApplication, *, clear: bool, role: str | None = None) -> dict:
        data = app.data or {}
        institution = {k: data.get(k) for k in FIELDS if k in data}
        if not clear:
            shown = CLEAR_IDENTIFIERS.get(role or "", set())
            institution = {k: (v if k in shown else mask(k, v)) for k, v in institution.items()}
        screening = app.screening or {}
        report = tx.kyc.latest_report(app.id)
        return {
            "id": app.id, "institution_id": app.institution_id, "invitation_id": app.invitation_id,
            "institution": institution, "state": app.state, "awaiting_role": app.awaiting_role,
            "history": self._history(tx, app),
            "screening": {"blacklist": screening.get("blacklist") or {"hit": None, "method": None},
                          "negative_news": screening.get("negative_news") or []},
            "screened": self._screened(app),
            "agreement": {"signed": bool(app.agreement_sha256), "sha256": app.agreement_sha256,
                          "signed_at": _iso(app.signed_at)},
            "limits": data.get("limits"),
            "report": {"generated_at": _iso(report.generated_at), "sha256": report.sha256,
                       "html_url": f"/api/kyc/applications/{app.id}/report",
                       "pdf_url": f"/api/kyc/applications/{app.id}/report.pdf" if report.pdf else None}
            if report else None,
            "allowed_triggers": allowed_triggers(app.state),
            "version": app.version, "created_at": _iso(app.created_at), "updated_at": _iso(app.updated_at),
        }

    def _staff_application(self, tx, app: KycApplication, role: str) -> dict:
        out = self._application_dict(tx, app, clear=False, role=role)
        inst = tx.clients.institution(app.institution_id)
        out["institution_name"] = inst.name if inst else None
        out["can_trade"] = bool(inst and inst.can_trade)
        docs = [self._document_dict(d, app.id) for d in tx.kyc.documents(invitation_id=app.invitation_id)
                if d.kind not in DESK_KINDS]
        out["decides"] = ROLE_DECIDES.get(role)
        out["may_decide"] = app.awaiting_role == role and app.state in REVIEW_STATES
        if role == "sales":
            inv = tx.kyc.invitation(app.invitation_id)
            out["view"] = {"institution": out["institution"],
                           "contacts": [{"name": out["institution"].get("contact_name"),
                                         "mobile": out["institution"].get("contact_mobile"), "role": "contact"},
                                        {"name": out["institution"].get("legal_representative"),
                                         "role": "legal_representative"}],
                           "invitation": {"institution_name": inv.institution_name, "contact_name": inv.contact_name,
                                          "created_by": inv.created_by} if inv else None,
                           "groups": [{"channel": g.channel, "group": g.group_id}
                                      for g in tx.clients.groups_of(app.institution_id)]}
        elif role == "compliance":
            out["view"] = {"screening": out["screening"], "screened": out["screened"],
                           "blacklist_hit": app.blacklist_hit, "documents": docs, "report": out["report"],
                           "identifiers": {k: out["institution"].get(k) for k in ("uscc", "legal_representative_id")}}
        elif role == "risk":
            category = (app.data or {}).get("investor_category")
            out["view"] = {"investor_category": category, "suitability": suitability(category or ""),
                           "registered_capital_cny": (app.data or {}).get("registered_capital_cny"),
                           "limits": out["limits"], "limit_fields": LIMIT_KEYS}
        else:
            out["view"] = {"documents": docs}
        return out

    def _client_application(self, tx, app: KycApplication) -> dict:
        """The client's own application: its fields, its steps (a return's reason shown), no screening."""
        data = app.data or {}
        return {"id": app.id, "institution_id": app.institution_id,
                "institution": {k: data.get(k) for k in FIELDS if k in data}, "state": app.state,
                "awaiting_role": app.awaiting_role,
                "history": [{"from": t.from_state, "to": t.to_state, "at": _iso(t.at),
                             "by": "client" if t.role == "client" else "desk",
                             "role": t.role, "comment": t.comment if t.trigger == "return_to_client" else None}
                            for t in tx.kyc.transitions(app.id)],
                "agreement": {"signed": bool(app.agreement_sha256), "sha256": app.agreement_sha256,
                              "signed_at": _iso(app.signed_at)}}

    @staticmethod
    def _document_dict(doc: KycDocument, application_id: str | None = None) -> dict:
        out = {"document_id": doc.id, "id": doc.id, "kind": doc.kind, "filename": doc.filename,
               "content_type": doc.content_type, "size": doc.size, "sha256": doc.sha256,
               "uploaded_at": _iso(doc.uploaded_at), "application_id": doc.application_id}
        if application_id:
            out["url"] = f"/api/kyc/applications/{application_id}/documents/{doc.id}"
        return out

    def _publish(self, application: dict) -> None:
        if self.events is not None:
            self.events.publish("kyc", {"id": application["id"], "state": application["state"],
                                        "awaiting_role": application["awaiting_role"]})


def _norm(name: str) -> str:
    return re.sub(r"\s+", "", name).replace("（", "(").replace("）", ")")


def _comment(comment: Any) -> str | None:
    if comment is None:
        return None
    if not isinstance(comment, str):
        raise KycError("invalid", "comment must be a string", {"comment": "理由应为文字"})
    comment = comment.strip()
    if len(comment) > MAX_COMMENT:
        raise KycError("invalid", f"comment longer than {MAX_COMMENT} characters", {"comment": "理由过长"})
    return comment or None


def _validate_limits(limits: Any) -> dict:
    """Proposed client limits of the risk approval: positive numbers under known names."""
    if not isinstance(limits, dict):
        raise KycError("invalid", "limits must be an object", {"limits": "额度应为对象"})
    fields: dict[str, str] = {}
    out: dict[str, float] = {}
    for key, value in limits.items():
        if key not in LIMIT_KEYS:
            fields[f"limits.{key}"] = f"未知额度项；可用：{', '.join(LIMIT_KEYS)}"
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1e13 or value != value:
            fields[f"limits.{key}"] = "应为大于0的数值"
            continue
        if key == "tenor_months" and (value != int(value) or value > 120):
            fields[f"limits.{key}"] = "期限应为1至120的整数月"
            continue
        out[key] = int(value) if key == "tenor_months" else float(value)
    if "single_trade_cny" in out and "notional_cny" in out and out["single_trade_cny"] > out["notional_cny"]:
        fields["limits.single_trade_cny"] = "单笔额度不应超过总额度"
    if fields:
        raise KycError("invalid", "invalid limits", fields)
    return out
