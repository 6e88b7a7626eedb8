"""The assistant's tools (`agents.assistant_tools.ToolPort`): thin wrappers over the services the console uses.

Each answers {"summary", "text", "data", "view"?, "citations"?}: `summary` one line for the tool-call list, `text`
the words of the reply (every number in it comes from the service), `view` a table (and chart data) for the
console. Nothing here decides who may call what: the graph does that with the role table before a tool runs.

- kb_search → `KnowledgeHub.ask` (the internal knowledge base; citations)
- price → the desk's price function (fair value through the margin table; what-if, never a quote to a client)
- kyc_status → the institution (fuzzy name) and its onboarding state, whose turn it is (`workflows.kyc.AWAITING`)
- book_exposure → the latest risk snapshot (`RiskService.latest`)
- trade_lookup → `TradeService.get` / `TradeService.find`
- surveillance_alerts → `SurveillanceService.alerts` (with an alert's order timeline)

`audit_tool_call` writes one audit entry per proposed call, allowed or not, with ID numbers, mobiles and bank
accounts masked.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from rapidfuzz import fuzz, process
from sqlalchemy.engine import Engine

from otcdesk.app.pii import mask_pii
from otcdesk.app.repositories import transaction

CN_TZ = timezone(timedelta(hours=8))
STRUCTURE_CN = {"vanilla": "香草", "spread": "价差", "digital": "二元", "barrier": "障碍", "sharkfin": "鲨鱼鳍",
                "double_sharkfin": "双鲨", "snowball": "雪球", "phoenix": "凤凰", "asian": "亚式", "airbag": "安全气囊"}
OPTION_CN = {"call": "看涨", "put": "看跌"}
KYC_CN = {"invited": "已邀请，待客户填写", "sales_review": "销售审核中", "compliance_review": "合规审核中",
          "risk_review": "风控审核中", "signing": "待客户签署协议", "approved": "已准入", "returned": "已退回客户修改",
          "rejected": "已拒绝", "suspended": "已暂停"}
AWAITING_CN = {"client": "客户", "sales": "销售", "compliance": "合规", "risk": "风控"}
TRADE_STATUS_CN = {"pending_second_approval": "待第二复核", "live": "存续", "knocked_out": "已敲出", "matured": "已到期",
                   "closed": "已平仓", "cancelled": "已撤销"}
ALERT_CN = {"spoofing": "幌骗（虚假申报）", "wash_trade": "对倒", "control_group": "实际控制关系账户组"}
EXPOSURE_COLUMNS = [{"key": "underlying", "label": "标的"}, {"key": "trades", "label": "笔数"},
                    {"key": "pv_cny", "label": "PV"}, {"key": "delta_cny", "label": "Delta（1%）"},
                    {"key": "gamma_cny", "label": "Gamma（1%）"}, {"key": "vega_cny", "label": "Vega（1 vol）"},
                    {"key": "theta_cny", "label": "Theta（1 天）"}]


def audit_tool_call(engine: Engine) -> Callable[[str, str, str, dict, bool, str | None], None]:
    """`AssistantDeps.audit`: one `assistant.tool` entry per proposed call (who, tool, masked arguments, allowed)."""
    def audit(user: str, role: str, tool: str, args: dict, allowed: bool, reason: str | None) -> None:
        detail = {"role": role, "args": mask_pii(args), "allowed": allowed}
        if reason:
            detail["reason"] = mask_pii(reason)
        with transaction(engine) as tx:
            tx.audit.record(user, "assistant.tool", f"tool:{tool}", detail)

    return audit


def institution_names(engine: Engine) -> Callable[[], list[str]]:
    """The names of the institutions the desk knows (for the router's fuzzy match)."""
    def names() -> list[str]:
        with transaction(engine) as tx:
            return [i.name for i in tx.clients.institutions()]

    return names


def _when(iso: str | None) -> str:
    """An ISO time in Beijing time to the minute (the desk's clock)."""
    if not iso:
        return "-"
    try:
        return datetime.fromisoformat(iso).astimezone(CN_TZ).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso


def _money(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


def _pct(x: float | None, nd: int = 2) -> str:
    return "-" if x is None else f"{x:.{nd}f}%"


class AssistantTools:
    """The tools over one desk's services. `price` is the desk's quote function (`wiring.Desk.price`)."""

    def __init__(self, engine: Engine, *, hub=None, price: Callable[[dict], dict] | None = None, risk=None,
                 trades=None, surveillance=None, pool=None):
        self.engine, self.hub, self._price, self.risk, self.trades = engine, hub, price, risk, trades
        self.surveillance = surveillance
        if pool is None:
            from otcdesk.ner.pool import default_pool

            pool = default_pool()
        self.pool = pool

    def _name(self, code: str | None) -> str:
        return (self.pool.name_of(code) if code else None) or (code or "-")

    # ---- kb_search ---------------------------------------------------------------------------------
    def kb_search(self, question: str, kb: str = "default") -> dict:
        if self.hub is None:
            return {"summary": "知识库未配置", "text": "知识库未配置。", "data": None}
        from otcdesk.app.assistant import UnknownKnowledgeBase

        try:
            answer = self.hub.ask(kb, question)
        except UnknownKnowledgeBase:
            return {"summary": f"没有知识库 {kb}", "text": f"没有名为 {kb} 的知识库。", "data": None}
        cites = [{"source": c.get("source"), "heading": c.get("heading"), "chunk_id": c.get("chunk_id"),
                  "score": c.get("score"), "text": (c.get("text") or "")[:600], "kb": kb}
                 for c in answer.get("citations") or []]
        if answer.get("refused"):
            return {"summary": f"知识库 {kb}：没有依据", "text": answer.get("answer") or "知识库中没有找到依据。",
                    "data": {"refused": True}, "citations": cites}
        return {"summary": f"知识库 {kb}：{len(cites)} 条引用", "text": answer.get("answer") or "",
                "data": {"refused": False}, "citations": cites}

    # ---- price -------------------------------------------------------------------------------------
    def price(self, **request: Any) -> dict:
        from otcdesk.ner.quote_request import finish_request

        req = finish_request({**request, "underlying_name": self._name(request.get("underlying"))})
        label = self._describe(req)
        if req.get("missing"):
            return {"summary": f"试算未执行：缺少 {', '.join(req['missing'])}",
                    "text": f"试算 {label} 需要补充：{'、'.join(req['missing'])}。", "data": {"request": req}}
        if self._price is None:
            return {"summary": "定价服务未配置", "text": "定价服务未配置。", "data": None}
        line = self._price(req)
        note = "（内部试算，仅供参考，不是对客报价）"
        if line.get("error"):
            fair = line.get("fair_price_pct")
            extra = f"；公允价 {_pct(fair, 4)}" if fair is not None else ""
            return {"summary": f"试算失败：{line['error']}", "text": f"{label} 试算未能完成：{line['error']}{extra}。{note}",
                    "data": {"request": req, "error": line["error"]}}
        rows = [{"item": "标的", "value": f"{self._name(req['underlying'])} {req['underlying']}"},
                {"item": "结构", "value": label}]
        market = line.get("market") or {}
        words = [f"{label}{note}："]
        solved, fair_solved = line.get("solved") or {}, line.get("fair_solved") or {}
        if solved:
            for field, value in solved.items():
                fair_value = fair_solved.get(field)
                words.append(f"求解 {field}：含点差 {value:.4f}，公允 {fair_value:.4f}" if fair_value is not None
                             else f"求解 {field}：{value:.4f}")
                rows.append({"item": f"{field}（含点差）", "value": round(value, 4)})
                if fair_value is not None:
                    rows.append({"item": f"{field}（公允）", "value": round(fair_value, 4)})
        else:
            words.append(f"公允价 {_pct(line.get('fair_price_pct', line.get('price_pct')), 4)}，"
                         f"含点差报价 {_pct(line.get('price_pct'), 4)}")
            rows += [{"item": "公允价 %", "value": round(line.get("fair_price_pct", line.get("price_pct")), 4)},
                     {"item": "含点差 %", "value": round(line["price_pct"], 4)}]
        if market:
            words.append(f"现价 {market.get('spot')}，波动率 {market.get('vol')}（{market.get('source') or '行情快照'}）")
            rows += [{"item": "现价", "value": market.get("spot")}, {"item": "波动率", "value": market.get("vol")}]
        greeks = line.get("greeks") or {}
        for g in ("delta", "gamma", "vega", "theta"):
            if greeks.get(g) is not None:
                rows.append({"item": g, "value": round(greeks[g], 6)})
        if line.get("engine"):
            words.append(f"引擎 {line['engine']}")
            rows.append({"item": "引擎", "value": line["engine"]})
        return {"summary": f"试算 {label}", "text": words[0] + "；".join(words[1:]) + "。",
                "data": {"request": req, "price_pct": line.get("price_pct"),
                         "fair_price_pct": line.get("fair_price_pct"),
                         "solved": solved or None, "engine": line.get("engine")},
                "view": {"kind": "table", "title": "试算（非对客报价）",
                         "columns": [{"key": "item", "label": "项目"}, {"key": "value", "label": "数值"}],
                         "rows": rows}}

    def _describe(self, req: dict) -> str:
        parts = [self._name(req.get("underlying")), req.get("tenor") or "?"]
        if req.get("strike_pct") is not None:
            parts.append(f"行权 {req['strike_pct']:g}%")
        for key, word in (("barrier_pct", "障碍"), ("ko_pct", "敲出"), ("ki_pct", "敲入")):
            if req.get(key) is not None:
                parts.append(f"{word} {req[key]:g}%")
        parts.append(OPTION_CN.get(req.get("option_type"), "") + STRUCTURE_CN.get(req.get("structure"), ""))
        return " ".join(p for p in parts if p)

    # ---- kyc_status --------------------------------------------------------------------------------
    def kyc_status(self, institution: str | None = None) -> dict:
        from otcdesk.workflows.kyc import AWAITING

        with transaction(self.engine) as tx:
            rows = [{"institution": i.name, "state": i.kyc_status, "can_trade": i.can_trade}
                    for i in tx.clients.institutions()]
        for r in rows:
            r["awaiting_role"] = AWAITING.get(r["state"])
            r["state_cn"] = KYC_CN.get(r["state"], r["state"])
        columns = [{"key": "institution", "label": "机构"}, {"key": "state_cn", "label": "准入状态"},
                   {"key": "awaiting_role", "label": "待处理方"}, {"key": "can_trade", "label": "可交易"}]
        if institution:
            exact = next((r for r in rows if r["institution"] == institution), None)
            if exact is None and rows:
                best = process.extractOne(institution, [r["institution"] for r in rows], scorer=fuzz.WRatio)
                exact = rows[best[2]] if best and best[1] >= 80 else None
            if exact is None:
                return {"summary": f"未找到机构 {institution}", "text": f"没有找到名为“{institution}”的机构。",
                        "data": None}
            turn = AWAITING_CN.get(exact["awaiting_role"] or "", "无")
            return {"summary": f"{exact['institution']}：{exact['state_cn']}",
                    "text": f"{exact['institution']} 的准入状态：{exact['state_cn']}（{exact['state']}），待处理方：{turn}，"
                            f"{'可以' if exact['can_trade'] else '不可'}交易。",
                    "data": exact, "view": {"kind": "table", "title": "准入状态", "columns": columns, "rows": [exact]}}
        pending = [r for r in rows if r["state"] not in ("approved", "rejected")]
        text = (f"共 {len(rows)} 家机构，{len(pending)} 家在准入流程中：" +
                "；".join(f"{r['institution']}（{r['state_cn']}）" for r in pending[:10])) if pending else \
            f"共 {len(rows)} 家机构，没有在准入流程中的机构。"
        return {"summary": f"{len(rows)} 家机构，{len(pending)} 家在流程中", "text": text, "data": {"institutions": rows},
                "view": {"kind": "table", "title": "机构准入状态", "columns": columns,
                         "rows": sorted(rows, key=lambda r: r["state"] in ("approved", "rejected"))}}

    # ---- book_exposure -----------------------------------------------------------------------------
    def book_exposure(self, underlying: str | None = None) -> dict:
        book = self.risk.latest() if self.risk is not None else None
        if book is None:
            return {"summary": "还没有风险快照", "data": None,
                    "text": "风险账本还没有快照（尚未重估）：请风控刷新（POST /api/risk/refresh）或等待定时重估。"}
        rows = [{k: e.get(k) for k in ("underlying", "trades", "pv_cny", "delta_cny", "gamma_cny", "vega_cny",
                                        "theta_cny")} | {"name": self._name(e.get("underlying"))}
                for e in book.get("by_underlying") or []]
        totals = book.get("totals") or {}
        as_of = book.get("as_of")
        head = f"截至 {_when(as_of)}（快照 {book.get('snapshot_id')}，{book.get('live_trades')} 笔存续交易，本方视角）"
        if underlying:
            row = next((r for r in rows if r["underlying"] == underlying), None)
            if row is None:
                return {"summary": f"{self._name(underlying)} 无敞口", "data": {"underlying": underlying},
                        "text": f"{head}，{self._name(underlying)}（{underlying}）没有存续持仓敞口。"}
            rows, subject = [row], f"{row['name']}（{underlying}）"
            fig = row
        else:
            subject, fig = "全账本", totals
        text = (f"{head}，{subject}：PV {_money(fig.get('pv_cny'))} 元，Delta {_money(fig.get('delta_cny'))} 元/1%，"
                f"Gamma {_money(fig.get('gamma_cny'))} 元/1%，Vega {_money(fig.get('vega_cny'))} 元/vol，"
                f"Theta {_money(fig.get('theta_cny'))} 元/天。")
        breached = [lim for lim in book.get("limits") or [] if lim.get("breached")
                    and (underlying is None or lim.get("underlying") == underlying)]
        if breached:
            text += " 超限：" + "；".join(f"{self._name(b['underlying'])} {b['measure']} {_money(b['value'])}"
                                        f"（限额 {_money(b['limit'])}）" for b in breached)
        view_rows = [{**r, "underlying": f"{r['name']} {r['underlying']}"} for r in rows]
        if not underlying:
            view_rows.append({"underlying": "合计", "trades": book.get("live_trades"),
                              **{k: totals.get(k) for k in ("pv_cny", "delta_cny", "gamma_cny", "vega_cny",
                                                            "theta_cny")}})
        return {"summary": f"{subject} 敞口（快照 {book.get('snapshot_id')}）", "text": text,
                "data": {"as_of": as_of, "snapshot_id": book.get("snapshot_id"), "totals": totals,
                         "by_underlying": rows},
                "view": {"kind": "table", "title": "分标的敞口（本方视角，元）", "columns": EXPOSURE_COLUMNS,
                         "rows": view_rows, "chart": {"kind": "bars", "label": "Delta（1%）",
                                                      "bars": [{"label": r["name"], "value": r["delta_cny"]}
                                                               for r in rows]}}}

    # ---- trade_lookup ------------------------------------------------------------------------------
    def trade_lookup(self, trade_id: str | None = None, underlying: str | None = None,
                     institution: str | None = None, status: str | None = None, limit: int = 10) -> dict:
        from otcdesk.workflows.trade import LifecycleError

        columns = [{"key": "id", "label": "交易编号"}, {"key": "institution", "label": "机构"},
                   {"key": "structure", "label": "结构"}, {"key": "underlying", "label": "标的"},
                   {"key": "notional", "label": "名义本金"}, {"key": "status", "label": "状态"},
                   {"key": "booked_at", "label": "簿记时间"}]
        if trade_id:
            try:
                trades = [self.trades.get(trade_id)]
            except LifecycleError:
                return {"summary": f"未找到交易 {trade_id}", "text": f"没有编号为 {trade_id} 的交易。", "data": None}
        else:
            trades = self.trades.find(underlying=underlying, institution=institution, status=status, limit=limit)
        rows = [self._trade_row(t) for t in trades]
        where = "，".join(x for x in (self._name(underlying) if underlying else "", institution or "",
                                      TRADE_STATUS_CN.get(status, "") if status else "") if x) or "全部"
        if not rows:
            return {"summary": f"{where}：没有交易", "text": f"没有符合条件（{where}）的交易。", "data": {"trades": []}}
        if trade_id:
            r = rows[0]
            text = (f"{r['id']}：{r['institution']}，{r['structure']} {r['underlying']}，名义本金 {_money(r['notional'])} 元，"
                    f"状态 {r['status']}，簿记于 {r['booked_at']}（{r['booked_by']}）。")
        else:
            text = f"{where}：最近 {len(rows)} 笔交易，" + "；".join(
                f"{r['id']} {r['underlying']} {r['structure']} {_money(r['notional'])} 元 {r['status']}"
                for r in rows[:5])
            text += "。" if len(rows) <= 5 else "……"
        return {"summary": f"{where}：{len(rows)} 笔交易", "text": text, "data": {"trades": [r["id"] for r in rows]},
                "view": {"kind": "table", "title": "交易", "columns": columns, "rows": rows}}

    def _trade_row(self, t: dict) -> dict:
        p = t.get("product") or {}
        return {"id": t["id"], "institution": t.get("institution"),
                "structure": OPTION_CN.get(p.get("option_type"), "") + STRUCTURE_CN.get(p.get("structure"), "?"),
                "underlying": f"{self._name(p.get('underlying'))} {p.get('underlying') or ''}".strip(),
                "notional": t.get("notional"), "status": TRADE_STATUS_CN.get(t.get("status"), t.get("status")),
                "booked_at": _when(t.get("booked_at")), "booked_by": t.get("booked_by")}

    # ---- surveillance_alerts -----------------------------------------------------------------------
    def surveillance_alerts(self, account: str | None = None, type: str | None = None, limit: int = 10) -> dict:
        from otcdesk.app.surveillance import SurveillanceError, timeline

        if self.surveillance is None:
            return {"summary": "监察服务未配置", "text": "监察服务未配置。", "data": None}
        try:
            found = self.surveillance.alerts(account=account, type=type, limit=limit)
        except SurveillanceError as exc:
            return {"summary": "监察数据读取失败", "text": f"监察数据读取失败：{exc}", "data": None, "error": "failed"}
        alerts = found["alerts"]
        src = found["source"]
        scope = "，".join(x for x in (f"账户 {account}" if account else "", ALERT_CN.get(type, "") if type else "") if x)
        head = (f"监察结果（{src.get('kind')} 数据源，{src.get('orders')} 条委托事件、{src.get('trades')} 笔成交、"
                f"{src.get('accounts')} 个账户，计算于 {_when(found['as_of'])}）")
        if not alerts:
            return {"summary": f"{scope or '全部'}：没有预警", "text": f"{head}：{scope or '全部'}没有预警。",
                    "data": {"alerts": [], "total": 0}}
        counts: dict[str, int] = {}
        for a in alerts:
            counts[a["type"]] = counts.get(a["type"], 0) + 1
        text = f"{head}：{scope + '，' if scope else ''}共 {found['total']} 条预警，显示 {len(alerts)} 条（" + "，".join(
            f"{ALERT_CN[k]} {v} 条" for k, v in counts.items()) + "）。"
        top = alerts[0]
        text += f" 最高分：{ALERT_CN[top['type']]}，账户 {', '.join(top['accounts'][:6])}，分数 {top['score']}。"
        rows = [{"type": ALERT_CN.get(a["type"], a["type"]), "accounts": ", ".join(a["accounts"][:8]),
                 "instrument": (a.get("evidence") or {}).get("instrument") or "-", "score": a["score"],
                 "orders": len(a["order_ids"]), "trades": len(a["trade_ids"])} for a in alerts]
        view = {"kind": "table", "title": "监察预警",
                "columns": [{"key": "type", "label": "类型"}, {"key": "accounts", "label": "账户"},
                            {"key": "instrument", "label": "品种"}, {"key": "score", "label": "分数"},
                            {"key": "orders", "label": "委托数"}, {"key": "trades", "label": "成交数"}],
                "rows": rows}
        shown = next((a for a in alerts if a["type"] == "spoofing"), None)
        if shown is not None:
            view["timeline"] = {"title": f"委托时间线：{shown['evidence'].get('account')} "
                                         f"{shown['evidence'].get('instrument')}",
                                "rows": timeline(shown)[:60]}
        return {"summary": f"{scope or '全部'}：{found['total']} 条预警", "text": text,
                "data": {"total": found["total"], "alerts": [{k: a[k] for k in ("type", "accounts", "score")}
                                                             for a in alerts]},
                "view": view}
