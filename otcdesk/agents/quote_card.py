"""Reply drafts: the quote card, the clarifying question and the onboarding notice (Chinese, WeChat-sized)."""
from __future__ import annotations

STRUCTURE_CN = {
    "vanilla": "香草", "spread": "价差", "digital": "二元", "barrier": "障碍", "sharkfin": "鲨鱼鳍",
    "double_sharkfin": "双鲨", "snowball": "雪球", "phoenix": "凤凰", "asian": "亚式", "airbag": "安全气囊",
}
TYPE_CN = {"call": "看涨", "put": "看跌"}
FIELD_CN = {
    "underlying": "标的", "option_type": "看涨还是看跌", "tenor": "期限", "strike_pct": "行权价",
    "upper_strike_pct": "价差的第二个行权价", "barrier_pct": "敲出价", "ko_pct": "敲出价", "ki_pct": "敲入价",
    "coupon_pct": "票息", "payout_pct": "赔付", "participation_pct": "参与率", "notional": "名义本金",
    "structure": "结构", "barrier_type": "障碍类型", "coupon_barrier_pct": "派息线",
}


def _fmt_pct(x) -> str:
    return f"{x:g}%" if isinstance(x, (int, float)) else "-"


def _fmt_notional(n) -> str:
    if not n:
        return ""
    return f"{n / 1e8:g}亿" if n >= 1e8 else f"{n / 1e4:g}万"


def describe_request(req: dict) -> str:
    """One-line Chinese description of a QuoteRequest: 000300.SH 沪深300 香草看跌 2W 行权100%."""
    structure = req.get("structure") or "vanilla"
    name = STRUCTURE_CN.get(structure, structure) + TYPE_CN.get(req.get("option_type") or "", "")
    parts = [f"{req.get('underlying', '?')} {req.get('underlying_name', '')}".strip(), name, req.get("tenor") or "?"]
    if req.get("strike_pct") is not None:
        parts.append(f"行权{_fmt_pct(req['strike_pct'])}")
    if req.get("upper_strike_pct") is not None:
        parts.append(f"/{_fmt_pct(req['upper_strike_pct'])}")
    if req.get("strike_level") is not None:
        parts.append(f"行权{req['strike_level']:g}点")
    for key, label in (("ko_pct", "敲出"), ("ki_pct", "敲入"), ("barrier_pct", "障碍"), ("coupon_pct", "票息")):
        if req.get(key) is not None:
            parts.append(f"{label}{_fmt_pct(req[key])}")
    if req.get("notional"):
        parts.append(f"名义{_fmt_notional(req['notional'])}")
    return " ".join(parts)


def draft_quote(inbound: dict, lines: list[dict], quote_id: str) -> str:
    """The quote card: one block per priced line, assumptions, quote id and validity note."""
    out = [f"【报价 {quote_id}】"]
    assumptions: list[str] = []
    for i, line in enumerate(lines, 1):
        req = line.get("request", {})
        head = f"{i}. {describe_request(req)}"
        if line.get("error"):
            out.append(f"{head}：暂无法报价（{line['error']}）")
            continue
        if "coupon_pct" in (line.get("solved") or {}):
            body = f"年化票息 {line['solved']['coupon_pct']:.2f}%"
        else:
            body = f"期权费 {line['price_pct']:.2f}%"
            if req.get("notional") and line.get("pv") is not None:
                body += f"（约 {abs(line['pv']) / 1e4:,.2f} 万元）"
        out.append(f"{head}：{body}")
        for field in req.get("assumed") or []:
            assumptions.append(f"{FIELD_CN.get(field, field)}按惯例假设（{describe_assumed(req, field)}）")
    if assumptions:
        out.append("假设：" + "；".join(dict.fromkeys(assumptions)))
    out.append("以上为指示性报价，以成交确认为准。")
    return "\n".join(out)


def describe_assumed(req: dict, field: str) -> str:
    value = req.get(field)
    if field.endswith("_pct") and value is not None:
        return _fmt_pct(value)
    return str(value) if value is not None else "默认"


def draft_clarification(inbound: dict, parse: dict) -> str:
    """A short question for the missing fields (the parser's own question when it gave one)."""
    if parse.get("clarification"):
        return parse["clarification"]
    missing: list[str] = []
    for req in parse.get("requests") or []:
        for f in req.get("missing") or []:
            if f not in missing:
                missing.append(f)
    if not missing:
        return "请问您想询价的标的、结构、期限和行权价是？"
    return "请补充" + "、".join(FIELD_CN.get(f, f) for f in missing) + "，我们马上报价。"


def draft_onboarding(inbound: dict, kyc: dict) -> str:
    """Polite notice that the client's institution must finish onboarding (KYC) before quotes."""
    who = kyc.get("institution") or "贵司"
    return (f"您好，{who}尚未完成场外衍生品交易的准入（KYC）流程，暂时无法提供报价。"
            "我们的销售同事会尽快联系您协助开户，谢谢理解。")


def draft_order(inbound: dict, parse: dict, quote_ref: dict | None) -> str:
    """Acknowledge an order instruction; the trader confirms the fill (nothing is booked by the bot)."""
    notional = (parse.get("order") or {}).get("notional")
    size = f"名义本金{_fmt_notional(notional)}" if notional else ""
    if quote_ref:
        return (f"收到，您确认按报价 {quote_ref['id']} 下单{('（' + size + '）') if size else ''}。"
                "交易员核对额度和最新价格后回复成交确认，以成交确认书为准。")
    return "收到您的下单意向。请问对应哪一笔报价（标的、结构、期限）？交易员将与您确认。"
