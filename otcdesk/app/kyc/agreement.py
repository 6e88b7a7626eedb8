"""The master agreement (场外衍生品交易主协议及补充协议): drawn from an application, sealed by the desk, verified.

- `render_agreement(application)` draws the agreement with fpdf2 (the trade confirmation's fonts, `find_fonts`),
  filled from the contract's Application dict. Deterministic: the date and the PDF's creation date are the
  application's (`agreement_date`, else the `at` of its last history step, else `created_at`), so the document
  the client accepted (its SHA-256) can be drawn again byte for byte until the application moves on.
- `sign_agreement(pdf, eseal, acceptance=...)` adds a PAdES baseline B-B signature (pyhanko, ETSI.CAdES.detached)
  with the desk's e-seal. The client's acceptance — the SHA-256 of the invitation token (never the token), the
  time and the SHA-256 of the unsigned document — goes into the signature's /Reason, which the signature covers.
- `verify_agreement_pdf(pdf, eseal)` validates it with pyhanko against the e-seal's trust roots only.
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from io import BytesIO
from typing import Any, Mapping

from otcdesk.app.kyc.report import category_text, mask_id_number, mask_mobile
from otcdesk.app.trading.confirmation import Fonts, find_fonts, new_pdf

TITLE = "场外衍生品交易主协议"
SUBTITLE = "（含补充协议）"
DESK_PARTY = "甲方（交易商）：otcdesk 场外衍生品交易台"
SIGNATURE_FIELD = "DeskESeal"
_PDF_ACCEPTANCE_KEYS = ("token_sha256", "accepted_at", "content_sha256")

# The agreement's articles: (heading, [paragraphs]). Generic terms, drafted for this desk.
ARTICLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("第一条 定义与解释", (
        "1.1 “本协议”指本主协议、其补充协议以及双方就每笔交易签署或确认的交易确认书；三者构成双方之间的单一完整协议。",
        "1.2 “交易”指双方依据本协议达成的场外衍生品交易，包括但不限于收益凭证挂钩结构、场外期权（含雪球、鲨鱼鳍等结构）及收益互换。",
        "1.3 “交易日”指标的资产所在交易所的交易日；“营业日”指中华人民共和国境内商业银行对公营业的日子。",
        "1.4 “名义本金”“期初价格”“观察日”“敲入”“敲出”等术语，以相关交易确认书的定义为准。",
        "1.5 交易确认书与本主协议不一致的，就该笔交易而言以交易确认书为准；补充协议与主协议不一致的，以补充协议为准。",
    )),
    ("第二条 交易的达成与确认", (
        "2.1 乙方通过甲方认可的即时通讯渠道或书面方式提出询价，甲方报价经乙方明确接受后，交易即告达成。",
        "2.2 交易达成后，甲方向乙方发送交易确认书；乙方应于收到后一个交易日内核对，逾期未提出书面异议的，视为确认。",
        "2.3 报价在甲方注明的有效期内有效；有效期届满后乙方的接受不构成交易，甲方可重新报价。",
        "2.4 双方同意以电子数据（包括经数字签名的电子文件及其哈希值）作为交易达成及内容的证据。",
    )),
    ("第三条 陈述与保证", (
        "3.1 双方各自陈述：其依法设立并有效存续，具备签署和履行本协议的权利能力和行为能力，签署本协议已获得必要的内部授权。",
        "3.2 乙方陈述：其提交的机构信息、证照文件及投资者适当性材料真实、准确、完整；其资金来源合法；其已充分理解场外衍生品交易的风险，"
        "并具备相应的风险识别和承受能力。",
        "3.3 上述陈述在每笔交易达成之日视为重复作出。",
    )),
    ("第四条 履约保障（保证金与担保品）", (
        "4.1 乙方应按照甲方届时适用的保证金规则及交易确认书的约定，在交易达成后及存续期间提供并维持足额的履约保障品。",
        "4.2 履约保障品可以为现金或甲方认可的证券；证券按甲方公布的折算率计算价值。",
        "4.3 当履约保障品价值低于维持要求时，甲方有权向乙方发出追加通知；乙方应于通知后的一个交易日内补足。",
        "4.4 乙方未按时补足的，甲方有权采取对冲、部分或全部提前终止交易、处置履约保障品等风险控制措施，由此产生的损失和费用由乙方承担。",
    )),
    ("第五条 支付与交割", (
        "5.1 期权费、票息、终止款项等应按交易确认书约定的日期和方式支付；约定日非营业日的，顺延至下一营业日。",
        "5.2 同一日同一币种的应付款项，双方可以轧差结算。",
        "5.3 任何一方逾期支付的，应按逾期金额每日万分之五向对方支付违约金。",
    )),
    ("第六条 违约事件与提前终止", (
        "6.1 下列情形构成违约事件：未按约定支付或交付且在通知后两个营业日内未纠正；陈述与保证存在重大不实；"
        "破产、解散、被撤销或丧失清偿能力；未按约定补足履约保障品。",
        "6.2 下列情形构成终止事件：法律法规或监管要求变化导致继续履行违法；标的资产停牌、退市或发生其他市场中断事件且持续超过约定期限。",
        "6.3 发生违约事件的，守约方有权书面指定提前终止日，终止全部或部分未到期交易；发生终止事件的，双方应先行协商，协商不成的任一方可提前终止受影响的交易。",
        "6.4 提前终止时，由非违约方（或双方协商）以商业上合理的方式确定各笔交易的终止价值，与其他应付款项轧差后得出单一净额，由应付方在终止日后三个营业日内支付。",
    )),
    ("第七条 信息披露、保密与个人信息保护", (
        "7.1 双方对因本协议获知的对方商业信息及交易信息负有保密义务，法律法规、监管机构或司法机关要求披露的除外。",
        "7.2 甲方为履行反洗钱、投资者适当性及监管报送义务处理乙方及其相关人员的个人信息，应遵循合法、正当、必要原则，并采取加密、去标识化等安全措施。",
    )),
    ("第八条 通知", (
        "8.1 通知以书面形式或双方认可的电子方式送达本协议所载地址或联系方式；电子方式发出即视为送达。",
        "8.2 任何一方变更联系方式的，应在变更后三个营业日内通知对方。",
    )),
    ("第九条 适用法律与争议解决", (
        "9.1 本协议的订立、效力、解释、履行及争议解决，适用中华人民共和国法律（为本协议之目的，不包括香港特别行政区、澳门特别行政区和台湾地区法律）。",
        "9.2 因本协议引起或与本协议有关的争议，双方应友好协商解决；协商不成的，任何一方可将争议提交甲方所在地有管辖权的人民法院诉讼解决，"
        "或经双方书面同意提交仲裁机构依其届时有效的仲裁规则仲裁。",
    )),
    ("第十条 生效与其他", (
        "10.1 本协议经乙方以电子方式确认接受、并经甲方加盖电子印章（数字签名）后生效；双方确认电子签名与手写签名或盖章具有同等法律效力。",
        "10.2 本协议长期有效；任何一方可提前三十日书面通知终止本协议，但终止前已达成且未到期的交易继续适用本协议直至履行完毕。",
        "10.3 本协议未尽事宜，双方可另行签署补充协议。",
    )),
)
SUPPLEMENT: tuple[str, ...] = (
    "一、适当性匹配：乙方确认其投资者分类如本协议首部所载；甲方仅向专业投资者提供场外衍生品交易，乙方分类发生变化的应及时告知甲方。",
    "二、电子证据：乙方确认接受本协议时的令牌摘要、时间及协议内容摘要由甲方记入不可篡改的证据链，双方同意以其作为协议订立的证据。",
    "三、风险揭示：场外衍生品交易可能导致乙方损失全部期权费或履约保障品；结构性收益取决于标的价格路径，历史表现不预示未来。",
)


class AgreementError(RuntimeError):
    """The agreement cannot be drawn or signed (no font, a raw token in the acceptance...)."""


def agreement_date(application: Mapping[str, Any]) -> datetime:
    """The date the agreement carries: `agreement_date`, else the last history step's `at`, else `created_at`,
    else now (UTC). Naive values are UTC."""
    history = application.get("history") or []
    raw = application.get("agreement_date") or (history[-1].get("at") if history else None) \
        or application.get("created_at")
    if isinstance(raw, datetime):
        value = raw
    elif raw:
        value = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    else:
        value = datetime.now(timezone.utc)
    return value.replace(tzinfo=timezone.utc) if value.utcoffset() is None else value


def party_rows(application: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The client's particulars as printed (ID number and mobile masked)."""
    inst = application.get("institution") or {}
    contact = inst.get("contact_name") or "—"
    if inst.get("contact_mobile"):
        contact += f"（{mask_mobile(str(inst['contact_mobile']))}）"
    return [
        ("申请编号", str(application.get("id") or "—")),
        ("乙方名称", str(inst.get("name") or "—")),
        ("统一社会信用代码", str(inst.get("uscc") or "—")),
        ("法定代表人", str(inst.get("legal_representative") or "—")),
        ("法定代表人身份证号", mask_id_number(str(inst["legal_representative_id"]))
         if inst.get("legal_representative_id") else "—"),
        ("住所", str(inst.get("address") or "—")),
        ("联系人", contact),
        ("投资者分类", category_text(inst.get("investor_category"))),
    ]


def _fonts(fonts: Fonts | str | None) -> Fonts:
    return fonts if isinstance(fonts, Fonts) else find_fonts(str(fonts) if fonts else None)


def render_agreement(application: dict, *, fonts: Fonts | str | None = None) -> bytes:
    """The unsigned master agreement PDF for an Application dict (`fonts`: a `Fonts`, a font file, or None for
    `find_fonts()`). Same application and date, same fonts: same bytes."""
    from fpdf import FPDF

    fonts = _fonts(fonts)
    when = agreement_date(application)
    app_id = str(application.get("id") or "—")
    date_text = f"{when.year} 年 {when.month} 月 {when.day} 日"
    digits = "latin" if fonts.latin is not None else "cjk"

    class _Doc(FPDF):
        def header(self):
            self.set_font("cjk", size=8)
            self.cell(0, 5, f"{TITLE}  申请编号 {app_id}", align="R", new_x="LMARGIN", new_y="NEXT")
            self.ln(2)

        def footer(self):
            # the page total ({nb}) is filled in after the text is laid out, past the font fallback: Latin font
            self.set_y(-12)
            self.set_font(digits, size=8)
            self.cell(0, 6, f"- {self.page_no()} / {{nb}} -", align="C")

    pdf = new_pdf(fonts, title=f"{TITLE} {app_id}", created=when, margin=18, cls=_Doc)
    pdf.set_subject(f"application {app_id}")
    pdf.set_creator("otcdesk")
    pdf.add_page()
    pdf.set_font("cjk", size=18)
    pdf.cell(0, 12, TITLE, new_x="LMARGIN", new_y="NEXT", align="C")
    pdf.set_font("cjk", size=11)
    pdf.cell(0, 7, SUBTITLE, new_x="LMARGIN", new_y="NEXT", align="C")
    pdf.set_font("cjk", size=10)
    pdf.cell(0, 7, f"协议编号：MA-{app_id}    签订日期：{date_text}", new_x="LMARGIN", new_y="NEXT", align="C")
    pdf.ln(4)
    pdf.multi_cell(0, 6, DESK_PARTY, new_x="LMARGIN", new_y="NEXT")
    pdf.multi_cell(0, 6, "乙方（交易对手）：", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)
    with pdf.table(col_widths=(45, 135), first_row_as_headings=False, line_height=7) as table:
        for key, value in party_rows(application):
            row = table.row()
            row.cell(key)
            row.cell(value)
    pdf.ln(4)
    pdf.multi_cell(0, 6, "鉴于甲方具备开展场外衍生品业务的资格，乙方有意与甲方进行场外衍生品交易，双方经平等协商，"
                         "就交易的一般条款达成如下协议，以资共同遵守：", new_x="LMARGIN", new_y="NEXT")
    for heading, paragraphs in ARTICLES:
        pdf.ln(3)
        pdf.set_font("cjk", size=11)
        pdf.multi_cell(0, 7, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("cjk", size=10)
        for paragraph in paragraphs:
            pdf.multi_cell(0, 6, paragraph, new_x="LMARGIN", new_y="NEXT", wrapmode="CHAR")
    pdf.ln(5)
    pdf.set_font("cjk", size=12)
    pdf.multi_cell(0, 8, "补充协议", new_x="LMARGIN", new_y="NEXT", align="C")
    pdf.set_font("cjk", size=10)
    for paragraph in SUPPLEMENT:
        pdf.multi_cell(0, 6, paragraph, new_x="LMARGIN", new_y="NEXT", wrapmode="CHAR")
    pdf.ln(8)
    pdf.multi_cell(0, 6, "（以下无正文，为签署部分）", new_x="LMARGIN", new_y="NEXT", align="C")
    pdf.ln(6)
    inst = application.get("institution") or {}
    pdf.multi_cell(0, 7, "甲方（电子印章）：otcdesk 场外衍生品交易台\n本文件的数字签名即甲方电子印章，可由标准 PDF 验证工具验证。",
                   new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.multi_cell(0, 7, f"乙方：{inst.get('name') or '—'}\n法定代表人或授权代表：{inst.get('legal_representative') or '—'}\n"
                         f"乙方以电子方式确认接受本协议，确认记录载于甲方数字签名之中并记入证据链。",
                   new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.multi_cell(0, 7, f"签订日期：{date_text}", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def signed_over(signed: bytes, unsigned_sha256: str) -> bool:
    """Whether `signed` is an incremental update of the document whose SHA-256 is `unsigned_sha256`: one of its
    earlier revisions (up to an `%%EOF` marker and its end of line) hashes to it."""
    at = signed.find(b"%%EOF")
    while at != -1:
        end = at + len(b"%%EOF")
        for tail in (b"", b"\n", b"\r\n", b"\r"):
            if signed.startswith(tail, end) and sha256(signed[:end + len(tail)]) == unsigned_sha256:
                return True
        at = signed.find(b"%%EOF", end)
    return False


def acceptance_reason(acceptance: Mapping[str, Any]) -> str:
    """The signature's /Reason: the client's acceptance as `key=value` pairs (ASCII, so any validator shows it)."""
    if "token" in acceptance:
        raise AgreementError("the acceptance must carry the invitation token's SHA-256, never the token")
    parts = [f"{k}={acceptance[k]}" for k in _PDF_ACCEPTANCE_KEYS if acceptance.get(k)]
    parts += [f"{k}={v}" for k, v in sorted(acceptance.items()) if k not in _PDF_ACCEPTANCE_KEYS and v is not None]
    return "client acceptance; " + "; ".join(parts)


def parse_reason(reason: str | None) -> dict:
    """The acceptance pairs back from a /Reason written by `acceptance_reason` ({} for any other text)."""
    if not reason or not reason.startswith("client acceptance; "):
        return {}
    pairs = (p.split("=", 1) for p in reason[len("client acceptance; "):].split("; ") if "=" in p)
    return {k: v for k, v in pairs}


def sign_agreement(pdf: bytes, eseal, *, acceptance: dict, signed_at: datetime | None = None) -> bytes:
    """Seal `pdf` with the desk's e-seal: a PAdES baseline B-B signature (ETSI.CAdES.detached, SHA-256) covering
    the whole file, its /Reason the client's acceptance (`token_sha256`, `accepted_at`, `content_sha256`; a raw
    `token` is refused) and its signing time `signed_at` (default now, UTC)."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers

    when = (signed_at or datetime.now(timezone.utc))
    when = when.replace(tzinfo=timezone.utc) if when.utcoffset() is None else when

    class _Signer(signers.PdfSigner):
        def init_signing_session(self, pdf_out, existing_fields_only=False):
            session = super().init_signing_session(pdf_out, existing_fields_only=existing_fields_only)
            session.system_time = when  # pyhanko takes the clock; the caller's time is the one recorded
            return session

    meta = signers.PdfSignatureMetadata(
        field_name=SIGNATURE_FIELD, md_algorithm="sha256", subfilter=fields.SigSeedSubFilter.PADES,
        reason=acceptance_reason(acceptance), location="otcdesk", name=eseal.subject)
    writer = IncrementalPdfFileWriter(BytesIO(pdf), strict=False)
    out = _Signer(meta, signer=eseal.signer()).sign_pdf(writer)
    return out.getvalue()


def _subject(cert) -> str | None:
    """An asn1crypto certificate's subject in RFC 4514 text, as `ESeal.subject` gives it."""
    from cryptography import x509

    return x509.load_der_x509_certificate(cert.dump()).subject.rfc4514_string() if cert is not None else None


def verify_agreement_pdf(pdf: bytes, eseal) -> dict:
    """Validate the agreement's signature against the e-seal's trust roots (nothing fetched):
    `{"valid", "intact", "trusted", "coverage", "signer", "signed_at", "sha256", "reason", "acceptance",
    "signatures", "error"}`. `valid` needs exactly one signature, intact, cryptographically valid, chaining to a
    trusted root, covering the entire file."""
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature

    doc: dict[str, Any] = {"valid": False, "intact": False, "trusted": False, "coverage": None, "signer": None,
                           "signed_at": None, "sha256": sha256(pdf), "reason": None, "acceptance": {},
                           "signatures": 0, "error": None}
    try:
        reader = PdfFileReader(BytesIO(pdf), strict=False)
        sigs = reader.embedded_signatures
        doc["signatures"] = len(sigs)
        if not sigs:
            doc["error"] = "the PDF has no signature"
            return doc
        sig = sigs[-1]
        status = validate_pdf_signature(sig, signer_validation_context=eseal.validation_context())
    except Exception as exc:  # a damaged file is an invalid agreement, whatever the parser says
        doc["error"] = f"{type(exc).__name__}: {exc}"
        return doc
    reason = sig.sig_object.get("/Reason")
    signed = status.signer_reported_dt
    coverage = status.coverage.name.lower() if status.coverage is not None else None
    doc.update(intact=bool(status.intact), trusted=bool(status.trusted), coverage=coverage,
               signer=_subject(status.signing_cert),
               signed_at=signed.astimezone(timezone.utc).isoformat() if signed else None,
               reason=str(reason) if reason is not None else None, acceptance=parse_reason(str(reason or "")))
    doc["valid"] = bool(status.bottom_line and status.intact and status.valid and status.trusted
                        and coverage == "entire_file" and len(sigs) == 1)
    if not doc["valid"]:
        doc["error"] = status.summary()
    return doc
