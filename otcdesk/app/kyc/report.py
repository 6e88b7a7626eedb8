"""The due-diligence report (尽职调查报告) of an application, drawn when it enters compliance review.

`report_input = {"application": Application dict, "documents": [{"id", "kind", "filename", "content_type", "size",
"sha256", "uploaded_at"}], "generated_at": iso}`. Sections: institution, suitability, documents (SHA-256),
screening (blacklist; negative news with passages), review history.

- `render_report_html` is served inside the console under `default-src 'self'; script-src 'self';
  style-src 'self'`: a whole document linking `/static/style.css`, classes only (no style attribute, no
  script), every value escaped.
- `render_report_pdf` draws the same sections with fpdf2 and the confirmation's fonts.

Personal identifiers are masked in both: an ID number keeps its first 6 and last 4 characters, a mobile number
has its middle 4 digits masked.
"""
from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any, Iterable, Mapping

from otcdesk.app.kyc.validation import DOCUMENT_KINDS, suitability

TITLE = "尽职调查报告"
CATEGORY_CN = {"professional": "专业投资者", "ordinary": "普通投资者"}
ROLE_CN = {"sales": "销售", "compliance": "合规", "risk": "风控", "client": "客户", "admin": "管理员"}
# keyed by what `screening.Screener.method` writes
METHOD_CN = {"ecdh-psi": "隐私集合求交（ECDH-PSI）", "local-file": "本地名单", "not_configured": "未配置"}
INSTITUTION_FIELDS = (("name", "机构名称"), ("uscc", "统一社会信用代码"), ("legal_representative", "法定代表人"),
                      ("legal_representative_id", "法定代表人身份证号"), ("registered_capital_cny", "注册资本"),
                      ("address", "住所"), ("contact_name", "联系人"), ("contact_mobile", "联系人手机"),
                      ("investor_category", "投资者分类"))


def mask_id_number(value: str) -> str:
    """A resident ID number with its first 6 and last 4 characters kept (shorter values: all but the last 4)."""
    value = str(value).strip()
    if len(value) > 10:
        return value[:6] + "*" * (len(value) - 10) + value[-4:]
    return "*" * max(len(value) - 4, 0) + value[-4:]


def mask_mobile(value: str) -> str:
    """A mobile number with its middle 4 digits masked (138****5678)."""
    value = str(value).strip()
    if len(value) >= 11:
        return value[:-8] + "****" + value[-4:]
    return value[:3] + "*" * max(len(value) - 3, 0) if len(value) > 3 else "*" * len(value)


def category_text(category: str | None) -> str:
    return CATEGORY_CN.get(category or "", category or "—")


def _text(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "是" if value else "否"
    return str(value)


def _when(value: Any) -> str:
    """An ISO time as `YYYY-MM-DD HH:MM:SS` (UTC offset kept when not UTC)."""
    if not value:
        return "—"
    try:
        ts = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    text = ts.strftime("%Y-%m-%d %H:%M:%S")
    offset = ts.utcoffset()
    if offset is None or not offset:
        return text + " UTC" if offset is not None else text
    return text + ts.strftime(" %z")


def _size(n: Any) -> str:
    try:
        n = int(n)
    except (TypeError, ValueError):
        return _text(n)
    return f"{n:,} 字节" if n < 10_240 else f"{n / 1024:,.1f} KB" if n < 10_485_760 else f"{n / 1048576:,.1f} MB"


def institution_rows(institution: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, value) of the institution, identifiers masked."""
    rows = []
    for key, label in INSTITUTION_FIELDS:
        value = institution.get(key)
        if key == "legal_representative_id" and value:
            value = mask_id_number(value)
        elif key == "contact_mobile" and value:
            value = mask_mobile(value)
        elif key == "registered_capital_cny" and value not in (None, ""):
            try:
                value = f"{float(value):,.2f} 元"
            except (TypeError, ValueError):
                pass
        elif key == "investor_category":
            value = category_text(value)
        rows.append((label, _text(value)))
    return rows


def _blacklist(screening: Mapping[str, Any]) -> tuple[str, list[tuple[str, str]]]:
    """(verdict, rows) of the blacklist screening."""
    bl = screening.get("blacklist") or {}
    if not bl:
        return "未筛查", []
    if bl.get("error"):
        verdict = "筛查未完成"
    elif bl.get("hit"):
        verdict = "命中黑名单"
    elif bl.get("hit") is False:
        verdict = "未命中"
    else:
        verdict = "未筛查"
    fields = bl.get("matched_fields") or []
    rows = [("结论", verdict), ("方式", METHOD_CN.get(bl.get("method") or "", _text(bl.get("method")))),
            ("命中字段", "、".join(map(str, fields)) if fields else "—"),
            ("查询数 / 名单规模", f"{_text(bl.get('queried'))} / {_text(bl.get('holder_size'))}"),
            ("筛查时间", _when(bl.get("at")))]
    if bl.get("error"):
        rows.append(("错误", _text(bl.get("error"))))
    return verdict, rows


def _news(screening: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [n for n in (screening.get("negative_news") or []) if isinstance(n, Mapping)]


def _document_rows(documents: Iterable[Mapping[str, Any]]) -> list[list[str]]:
    return [[DOCUMENT_KINDS.get(d.get("kind") or "", _text(d.get("kind"))), _text(d.get("filename")),
             _size(d.get("size")), _text(d.get("sha256")), _when(d.get("uploaded_at"))] for d in documents]


def _history_rows(history: Iterable[Mapping[str, Any]]) -> list[list[str]]:
    return [[_when(h.get("at")), f"{_text(h.get('from'))} → {_text(h.get('to'))}", _text(h.get("by")),
             ROLE_CN.get(h.get("role") or "", _text(h.get("role"))), _text(h.get("comment"))] for h in history]


# --- HTML -------------------------------------------------------------------------------------------------------

_HASH = ' class="hash"'

def _e(value: Any) -> str:
    return escape(_text(value), quote=True)


def _facts(rows: Iterable[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f'<table class="facts"><tbody>{body}</tbody></table>'


def _table(head: list[str], rows: list[list[str]], hash_col: int | None = None, empty: str = "无") -> str:
    if not rows:
        return f'<p class="empty">{_e(empty)}</p>'
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td{_HASH if i == hash_col else ''}>{_e(c)}</td>" for i, c in enumerate(row))
                  + "</tr>" for row in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"


def render_report_html(report_input: Mapping[str, Any]) -> str:
    """The report as a standalone HTML document (CSP-clean: classes only, everything escaped)."""
    app = report_input.get("application") or {}
    inst = app.get("institution") or {}
    screening = app.get("screening") or {}
    fit = suitability(inst.get("investor_category") or "")
    verdict, bl_rows = _blacklist(screening)
    news = _news(screening)
    parts = [
        "<!doctype html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        f"<title>{_e(TITLE)} {_e(app.get('id'))}</title>",
        '<link rel="stylesheet" href="/static/style.css"></head>',
        '<body class="report"><main>',
        f'<div class="card"><h2>{_e(TITLE)}</h2>'
        f'<p class="meta">申请编号 <span class="mono">{_e(app.get("id"))}</span> · 状态 {_e(app.get("state"))}'
        f' · 待处理角色 {_e(ROLE_CN.get(app.get("awaiting_role") or "", app.get("awaiting_role")))}'
        f' · 生成时间 {_e(_when(report_input.get("generated_at")))}</p></div>',
        f'<section class="card"><h3>一、机构信息</h3>{_facts(institution_rows(inst))}</section>',
        f'<section class="card"><h3>二、投资者适当性</h3>'
        f'<p class="{"ok" if fit["eligible"] else "err"}">{_e(category_text(inst.get("investor_category")))}：'
        f'{_e(fit["reason"])}</p></section>',
        '<section class="card"><h3>三、证明文件</h3>'
        + _table(["类型", "文件名", "大小", "SHA-256", "上传时间"], _document_rows(report_input.get("documents") or []),
                 hash_col=3, empty="未上传文件") + "</section>",
        '<section class="card"><h3>四、筛查结果</h3><h4>黑名单（隐私求交）</h4>'
        f'<p class="{"err" if verdict != "未命中" else "ok"}">{_e(verdict)}</p>{_facts(bl_rows)}'
        f'<h4>负面舆情</h4>{_news_html(news)}</section>',
        '<section class="card"><h3>五、审核记录</h3>'
        + _table(["时间", "状态变化", "操作人", "角色", "意见"], _history_rows(app.get("history") or []),
                 empty="暂无审核记录") + "</section>",
        "</main></body></html>",
    ]
    return "\n".join(parts)


def _news_html(news: list[Mapping[str, Any]]) -> str:
    if not news:
        return '<p class="empty">未检索到相关报道</p>'
    items = []
    for n in news:
        badge = '<span class="badge onboarding">负面</span>' if n.get("negative") else '<span class="badge">中性</span>'
        items.append(
            f'<div class="item">{badge}<strong>{_e(n.get("title"))}</strong>'
            f'<p class="meta">{_e(n.get("source"))} · {_e(n.get("date"))} · '
            f'对象 {_e(n.get("name") or n.get("subject"))}</p>'
            f'<p class="passage-text">{_e(n.get("passage"))}</p></div>')
    return "".join(items)


# --- PDF --------------------------------------------------------------------------------------------------------

def render_report_pdf(report_input: Mapping[str, Any], *, fonts=None) -> bytes:
    """The same report as a PDF (fpdf2; `fonts`: a `Fonts`, a font file, or None for `find_fonts()`).
    Deterministic for the same input: the PDF's creation date is `generated_at`."""
    from otcdesk.app.trading.confirmation import Fonts, find_fonts, new_pdf

    fonts = fonts if isinstance(fonts, Fonts) else find_fonts(str(fonts) if fonts else None)
    app = report_input.get("application") or {}
    inst = app.get("institution") or {}
    screening = app.get("screening") or {}
    app_id = _text(app.get("id"))
    generated = report_input.get("generated_at")
    created = datetime.fromisoformat(str(generated).replace("Z", "+00:00")) if generated else None
    pdf = new_pdf(fonts, title=f"{TITLE} {app_id}", created=created)
    pdf.add_page()
    pdf.set_font("cjk", size=16)
    pdf.cell(0, 12, TITLE, new_x="LMARGIN", new_y="NEXT", align="C")
    pdf.set_font("cjk", size=9)
    pdf.multi_cell(0, 6, f"申请编号：{app_id}    状态：{_text(app.get('state'))}    生成时间：{_when(generated)}",
                   new_x="LMARGIN", new_y="NEXT", align="C")

    def heading(text: str) -> None:
        pdf.ln(3)
        pdf.set_font("cjk", size=12)
        pdf.cell(0, 8, text, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("cjk", size=9)

    def facts(rows: list[tuple[str, str]]) -> None:
        with pdf.table(col_widths=(45, 135), first_row_as_headings=False, line_height=6) as table:
            for k, v in rows:
                row = table.row()
                row.cell(k)
                row.cell(v)

    def table(head: list[str], rows: list[list[str]], widths: tuple[int, ...], empty: str) -> None:
        if not rows:
            pdf.cell(0, 6, empty, new_x="LMARGIN", new_y="NEXT")
            return
        from fpdf.fonts import FontFace

        with pdf.table(col_widths=widths, line_height=5, headings_style=FontFace(fill_color=(227, 236, 247))) as t:
            for r in [head, *rows]:
                row = t.row()
                for c in r:
                    row.cell(c)

    heading("一、机构信息")
    facts(institution_rows(inst))
    heading("二、投资者适当性")
    fit = suitability(inst.get("investor_category") or "")
    pdf.multi_cell(0, 6, f"{category_text(inst.get('investor_category'))}：{fit['reason']}",
                   new_x="LMARGIN", new_y="NEXT")
    heading("三、证明文件")
    docs = [[r[0], r[1], r[2], r[3], r[4]] for r in _document_rows(report_input.get("documents") or [])]
    table(["类型", "文件名", "大小", "SHA-256", "上传时间"], docs, (24, 36, 18, 72, 30), "未上传文件")
    heading("四、筛查结果")
    verdict, bl_rows = _blacklist(screening)
    pdf.cell(0, 6, f"黑名单：{verdict}", new_x="LMARGIN", new_y="NEXT")
    if bl_rows:
        facts(bl_rows)
    news = _news(screening)
    pdf.ln(2)
    pdf.cell(0, 6, f"负面舆情：{len([n for n in news if n.get('negative')])} 条负面 / 共 {len(news)} 条",
             new_x="LMARGIN", new_y="NEXT")
    for n in news:
        pdf.multi_cell(0, 5, f"{'【负面】' if n.get('negative') else '【中性】'}{_text(n.get('title'))}"
                             f"（{_text(n.get('source'))}，{_text(n.get('date'))}）", new_x="LMARGIN", new_y="NEXT")
        pdf.multi_cell(0, 5, f"    {_text(n.get('passage'))}", new_x="LMARGIN", new_y="NEXT")
    heading("五、审核记录")
    table(["时间", "状态变化", "操作人", "角色", "意见"], _history_rows(app.get("history") or []),
          (34, 44, 26, 16, 60), "暂无审核记录")
    return bytes(pdf.output())
