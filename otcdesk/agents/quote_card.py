"""Reply drafts (Chinese, WeChat-sized): the quote card, the clarifying question, the onboarding notice, and what the
desk says about orders: questions for what an order lacks, the order as read, refusals, status, holdings, unwinds."""
from __future__ import annotations

STRUCTURE_CN = {
    "vanilla": "香草", "spread": "价差", "digital": "二元", "barrier": "障碍", "sharkfin": "鲨鱼鳍",
    "double_sharkfin": "双鲨", "snowball": "雪球", "phoenix": "凤凰", "asian": "亚式", "airbag": "安全气囊",
}
TYPE_CN = {"call": "看涨", "put": "看跌"}


def structure_cn(structure: str) -> str:
    """The Chinese name of a structure: built-in, or the first name of a structure template (`ner.structures`)."""
    from otcdesk.ner.structures import display_name

    return STRUCTURE_CN.get(structure) or display_name(structure) or structure
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
    name = structure_cn(structure) + TYPE_CN.get(req.get("option_type") or "", "")
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


VOL_MODEL_CN = {"flat": "常数波动率", "smile": "隐含波动率微笑", "implied_at_strike": "行权价隐含波动率",
               "local_vol": "局部波动率"}


def describe_vol_used(line: dict) -> str:
    """For the trader's review card (not the client): which vol priced the line — surface name, vol model, the
    implied vol at the strike and at the knock-in level (`vol_used` of the `price` result)."""
    v = line.get("vol_used") or {}
    if not v:
        return ""
    model = VOL_MODEL_CN.get(v.get("vol_model"), v.get("vol_model") or "")
    if not v.get("surface"):
        return f"波动率 {_fmt_vol(v.get('vol'))}（{model}，无曲面）"
    parts = [f"曲面 {v['surface']}", model]
    if v.get("vol_at_strike") is not None:
        parts.append(f"行权价 {_fmt_pct(v.get('strike_pct'))} σ={_fmt_vol(v['vol_at_strike'])}")
    if v.get("vol_at_knock_in") is not None:
        parts.append(f"敲入 {_fmt_pct(v.get('knock_in_pct'))} σ={_fmt_vol(v['vol_at_knock_in'])}")
    if v.get("shift"):
        parts.append(f"平移 {100 * v['shift']:+.2f} 个波动率点")
    return " · ".join(parts)


def _fmt_vol(x) -> str:
    return f"{100 * x:.2f}%" if isinstance(x, (int, float)) else "-"


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


def draft_knowledge(inbound: dict, answer: str, grounded: bool) -> str:
    """A client's product question: the knowledge base's answer when it has evidence, else a promise to follow up
    (never an invented answer)."""
    if not grounded or not answer.strip():
        return "您好，这个问题我们需要核实后答复，交易台同事会尽快跟进回复您，谢谢。"
    return f"您好，{answer.strip()}（如需进一步说明，请随时联系交易台。）"


EXECUTION_CN = {"market": "市价", "limit": "限价", "pov": "POV", "twap": "TWAP", "close": "收盘价", "vwap": "VWAP"}
MISSING_CN = {"quote": "对应哪一笔报价", "line": "下单哪几笔（序号）", "notional": "名义本金", "execution": "建仓指令（市价/限价/POV/TWAP/收盘价/VWAP）",
              "limit_price": "限价价格", "pov_pct": "POV比例", "window": "TWAP时间窗口（如10:00-11:30）", "account": "产品户",
              "trade": "平哪一笔交易（交易编号或持仓序号）", "unwind_notional": "平仓名义本金（全平或金额）",
              "unwind_execution": "平仓指令（市价/限价/POV/TWAP/收盘价/VWAP）"}
STATUS_CN = {"pending": "待交易员确认", "approved": "已确认", "sent": "已确认", "rejected": "未能成交", "expired": "已超时未确认",
             "withdrawn": "已撤销", "live": "已成交（存续）", "pending_second_approval": "已下单，待复核",
             "knocked_out": "已敲出", "matured": "已到期", "closed": "已平仓", "cancelled": "已取消"}


def describe_execution(ex: dict | None) -> str:
    """建仓/平仓指令 in words: 市价, 限价10, POV 12%（限价6.5）, TWAP 10:00-11:30, 收盘价, VWAP."""
    if not ex or not ex.get("type"):
        return "-"
    kind, limit = ex["type"], ex.get("limit_price")
    cap = f"（限价{limit:g}）" if limit is not None else ""
    if kind == "limit":
        return f"限价{limit:g}" if limit is not None else "限价"
    if kind == "pov":
        return f"POV {ex['pov_pct']:g}%{cap}" if ex.get("pov_pct") is not None else f"POV{cap}"
    if kind in ("twap", "vwap"):
        window = f" {ex['start']}-{ex['end']}" if ex.get("start") and ex.get("end") else ""
        return f"{EXECUTION_CN[kind]}{window}{cap}"
    return EXECUTION_CN.get(kind, kind) + cap


def fmt_notional(n) -> str:
    """1亿, 2000万, 0, -200万 (what the client wrote, in the desk's units)."""
    if n is None:
        return "-"
    if n == 0:
        return "0"
    return f"{n / 1e8:g}亿" if abs(n) >= 1e8 else f"{n / 1e4:g}万"


def _ask(missing: list[str]) -> str:
    return "、".join(MISSING_CN.get(m, m) for m in dict.fromkeys(missing))


def draft_order(inbound: dict, parse: dict, quote_ref: dict | None) -> str:
    """An order with no quote to refer to: ask which quote (nothing is booked without one)."""
    qid = (parse.get("order") or {}).get("quote_id")
    if qid and not quote_ref:
        return f"未找到发送给您的报价 {qid}。请问对应哪一笔报价（报价编号或标的、结构、期限）？交易员将与您确认。"
    return "收到您的下单意向。请问对应哪一笔报价（标的、结构、期限）？交易员将与您确认。"


def _line_head(quote_id: str, line_no: int, n_lines: int, req: dict) -> str:
    seq = f" 序号{line_no}" if n_lines > 1 else ""
    terms = describe_request({k: v for k, v in req.items() if k != "notional"})  # the order's size is its own
    return f"报价 {quote_id}{seq}（{terms}）"


def draft_order_question(quote_id: str, n_lines: int, lines: list[dict], missing_by_line: dict, missing: list[str],
                         accounts: list[str], stated: dict) -> str:
    """One message asking for everything an order on a sent quote still lacks (per line when several)."""
    out = [f"收到，您确认按报价 {quote_id} 下单" + (f"（名义本金{fmt_notional(stated['notional'])}）"
                                                  if stated.get("notional") is not None else "") + "。请补充："]
    if "line" in missing:
        out.append(f"· 下单哪几笔：报价共{n_lines}笔，请回复序号（如“序号1”或“两笔都做”）")
    per_line = {k: v for k, v in missing_by_line.items() if v}
    if per_line:
        same = len({tuple(v) for v in per_line.values()}) == 1
        if same or len(per_line) == 1:
            out.append("· " + _ask(next(iter(per_line.values()))))
        else:
            for k, v in per_line.items():
                out.append(f"· 序号{k}：{_ask(v)}")
    if "account" in missing:
        out.append("· 产品户，请回复序号或名称：" + "；".join(f"{i}. {a}" for i, a in enumerate(accounts, 1)))
    if len(per_line) > 1:
        out.append("（可按序号分别回复，如“序号1，100w；序号2，市价”）")
    return "\n".join(out)


def draft_order_confirm(quote_id: str, line_no: int, n_lines: int, req: dict, order: dict, *, stale: dict | None = None,
                        booking: bool = True) -> str:
    """The order as the desk read it; on approval the trade service's booking confirmation replaces it (or, with no
    trade service, this acknowledgement is what the client gets). A stale quote's order says it must be repriced."""
    head = _line_head(quote_id, line_no, n_lines, req)
    terms = f"名义本金{fmt_notional(order.get('notional'))}，建仓指令{describe_execution(order.get('execution'))}"
    if order.get("account"):
        terms += f"，产品户{order['account']}"
    if stale:
        return (f"您好，{head}已超过有效期（报价于{stale['age_min']:g}分钟前给出，有效期{stale['valid_min']:g}分钟），"
                f"不能按原价格成交。我们按最新行情重新报价后请您再确认（{terms}）。")
    tail = "交易员确认后发送成交确认，以成交确认书为准。" if booking else "交易员核对额度和最新价格后与您确认成交，以成交确认书为准。"
    return f"收到，您确认按{head}下单：{terms}。{tail}"


def draft_order_refused(quote_id: str | None, notional, max_notional: float) -> str:
    """A size that cannot be traded: said with the reason, nothing booked."""
    which = f"报价 {quote_id} 的" if quote_id else ""
    if notional is not None and notional <= 0:
        why = "名义本金需大于0"
    else:
        why = f"超过单笔上限{fmt_notional(max_notional)}"
    return f"您好，{which}下单名义本金{fmt_notional(notional)}无法受理（{why}），本次未下单。请确认金额后重新发送。"


def draft_order_status(order: dict | None, note: str | None = None) -> str:
    """Where the client's latest order stands (or why an amend / cancel could not be applied)."""
    if note:
        return note
    if not order:
        return "您好，目前没有查到您的订单记录。如需下单，请在收到报价后回复确认。"
    terms = order.get("order") or {}
    what = f"报价 {terms['quote_id']} " if terms.get("quote_id") else ""
    size = f"名义本金{fmt_notional(terms['notional'])}，" if terms.get("notional") is not None else ""
    trade = order.get("trade")
    if trade:
        state = STATUS_CN.get(trade["status"], trade["status"])
        return f"您好，您的订单（{what}{size}交易编号 {trade['id']}）状态：{state}。"
    if order.get("status") == "pending" and (order.get("detail") or {}).get("missing"):
        return f"您好，您的订单（{what.strip() or '下单'}）还缺少：{_ask(order['detail']['missing'])}，请补充后交易员确认。"
    state = STATUS_CN.get(order.get("status") or "", order.get("status") or "-")
    return f"您好，您的订单（{what}{size.rstrip('，')}）状态：{state}。".replace("（）", "")


def draft_cancelled(items: list[dict]) -> str:
    parts = []
    for it in items:
        o = it.get("order") or {}
        ref = f"报价 {o['quote_id']}" if o.get("quote_id") else ("平仓 " + o["trade_id"] if o.get("trade_id") else "下单")
        if o.get("line") and (it.get("detail") or {}).get("quote_lines", 1) > 1:
            ref += f" 序号{o['line']}"
        size = f"，名义本金{fmt_notional(o['notional'])}" if o.get("notional") is not None else ""
        parts.append(ref + size)
    return "您好，已为您撤销订单（" + "；".join(parts) + "），不会成交。"


def draft_holdings(trades: list[dict]) -> str:
    """The client's live trades, numbered (the numbers an unwind may refer to: 第一笔，全平)."""
    if not trades:
        return "您好，目前没有查到贵司的存续交易。"
    out = ["您好，贵司目前的存续交易："]
    for i, t in enumerate(trades, 1):
        structure = structure_cn(t.get("structure") or "")
        name = f"{t.get('underlying', '')} {t.get('underlying_name') or ''}".strip()
        out.append(f"{i}. {t['id']} {name} {structure} 名义本金{fmt_notional(t.get('notional'))} "
                   f"{STATUS_CN.get(t.get('status') or '', t.get('status') or '')}")
    out.append("如需平仓，请回复交易编号或序号、名义本金（或全平）和平仓指令。")
    return "\n".join(out)


def draft_unwind_question(missing: list[str], trades: list[dict] | None = None, trade: dict | None = None) -> str:
    head = f"收到，您要平仓交易 {trade['id']}" if trade else "收到您的平仓意向"
    out = [head + "。请补充：" + _ask(missing)]
    if "trade" in missing and trades:
        out.append("贵司存续交易：" + "；".join(f"{i}. {t['id']} {t.get('underlying', '')} "
                                             f"{fmt_notional(t.get('notional'))}" for i, t in enumerate(trades, 1)))
    if "trade" in missing and not trades:
        out = ["收到您的平仓意向，但目前没有查到贵司的存续交易，交易员将与您确认。"]
    return "\n".join(out)


def draft_unwind_refused(trade_id: str | None, reason: str) -> str:
    which = f"交易 {trade_id} " if trade_id else ""
    return f"您好，{which}的平仓指令无法受理（{reason}），本次未平仓。".replace(" 的", "的")


def draft_unwind(trade: dict, order: dict, quote: dict | None, *, booking: bool = True) -> str:
    """The unwind as the desk read it, with the price from the book when there is one."""
    full = order.get("notional") == trade.get("notional")
    size = f"名义本金{fmt_notional(order.get('notional'))}（{'全部' if full else '部分'}）"
    how = describe_execution(order.get("execution"))
    out = f"收到平仓指令：交易 {trade['id']}（{trade.get('underlying', '')}）{size}，平仓指令{how}。"
    if quote and quote.get("price_pct") is not None:
        value = f"，约 {abs(quote['value_cny']) / 1e4:,.2f} 万元" if quote.get("value_cny") is not None else ""
        out += f"参考平仓价 {quote['price_pct']:.2f}%{value}（以实际成交为准）。"
    out += "交易员确认后回复平仓确认。" if booking else "交易员核对后与您确认平仓。"
    return out
