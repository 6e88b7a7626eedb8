"""The assistant's deterministic router (no LLM): which tool a staff question needs, and its arguments.

`ROUTES` is an ordered table, first match wins: a name, a condition over `Reading` (what the message says: cue
words of `CUES`, a trade id, a parsed quote request), the tool, and why. Arguments come from the quote-request
parser (`otcdesk.ner`: underlying, tenor, strikes, structure, notional), institution names by fuzzy match against
the institutions the desk knows, trade ids (T…) and account ids by pattern. A follow-up ("那6个月的呢?", "那500呢?",
"换成看跌呢") reuses the thread's previous call with the slots it changes.

The router only proposes calls; the graph checks each against the role table and the schema before it runs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from rapidfuzz import fuzz, process

from otcdesk.agents.assistant_tools import BY_NAME, TOOLS

# cue words per tool (a row per tool; each also answers to its own name, e.g. "surveillance_alerts")
CUES: dict[str, tuple[str, ...]] = {
    "surveillance_alerts": ("监察", "监控预警", "异常交易", "对倒", "幌骗", "虚假申报", "实控", "实际控制", "控制组",
                            "操纵", "预警", "告警", "surveillance", "spoof", "wash trade", "wash_trade", "alert",
                            "control group"),
    "kyc_status": ("kyc", "准入", "开户", "尽调", "尽职调查", "审核到哪", "审核进度", "onboarding", "尽职"),
    "trade_lookup": ("交易编号", "成交记录", "存续交易", "哪些交易", "查交易", "这笔交易", "笔交易", "交易列表",
                     "的交易", "交易记录", "交易情况", "trade lookup", "trades", "持仓明细"),
    "book_exposure": ("敞口", "风险暴露", "账本", "希腊值", "delta", "gamma", "vega", "theta", "exposure",
                      "the book", "风险快照", "pv"),
    "price": ("报价", "询价", "定价", "试算", "估值", "多少钱", "期权费", "票息多少", "参与率多少", "what-if",
              "what if", "price"),
}
FOLLOWUP = re.compile(r"^\s*(?:那么?|那个|换成|改成|如果是|要是|what about|and|how about)\s*(?P<body>.*?)"
                      r"\s*(?:的话)?\s*(?:的)?\s*(?:呢|吗|怎么样|如何)?\s*[?？。.!！]*\s*$", re.I)
EN_QUESTION = re.compile(r"^\s*(how|what|why|when|which|who|is|are|does|do|can)\b", re.I)
TRADE_ID = re.compile(r"(?<![0-9A-Za-z])(T(?=[A-Za-z]*\d)[0-9A-Za-z]{5,31})(?![0-9A-Za-z])", re.I)  # a digit in it
ACCOUNT = re.compile(r"(?:账户|账号|account)\s*[:：]?\s*([0-9A-Za-z_\-/]{2,64})|(?<![0-9A-Za-z])([A-Z]\d{6})(?![0-9A-Za-z])",
                     re.I)
ALERT_TYPES = (("spoofing", ("幌骗", "虚假申报", "spoof")), ("wash_trade", ("对倒", "wash")),
               ("control_group", ("实控", "实际控制", "控制组", "control group")))
TRADE_STATUS = (("pending_second_approval", ("待复核", "第二复核", "待审批")), ("live", ("存续",)),
                ("knocked_out", ("敲出",)), ("matured", ("到期",)), ("closed", ("平仓",)), ("cancelled", ("撤销",)))
PRICE_FIELDS = tuple(BY_NAME["price"].schema["properties"])
INSTITUTION_SCORE = 80  # rapidfuzz partial_ratio a fuzzy institution match needs


def _has(text: str, words: tuple[str, ...]) -> bool:
    low = text.lower()
    return any(w in low for w in words)


def cue(text: str, tool: str) -> bool:
    return tool.lower() in text.lower() or _has(text, CUES.get(tool, ()))


@dataclass
class Reading:
    """What the router reads in one message."""

    text: str
    request: dict  # the first request's stated fields (ner), filtered to the price tool's arguments
    intent: str  # the parser's intent (quote, knowledge, other…)
    quote: bool  # the parser read a quote request (intent quote), complete or not
    complete: bool  # ... with nothing missing
    missing: list[str]
    clarification: str | None
    underlyings: list[str]
    trade_id: str | None
    account: str | None
    institution: str | None
    followup: str | None  # the body of "那…呢" when the message is a follow-up
    tools: list[str] = field(default_factory=list)  # tools whose cue words appear


@dataclass(frozen=True)
class Route:
    name: str
    when: Callable[[Reading, dict | None], bool]
    tool: str
    why: str


ROUTES: tuple[Route, ...] = (
    Route("surveillance", lambda r, last: "surveillance_alerts" in r.tools, "surveillance_alerts",
          "监察/预警/对倒/幌骗/实控: market-abuse alerts"),
    Route("kyc", lambda r, last: "kyc_status" in r.tools, "kyc_status", "KYC/准入/尽调: an institution's onboarding"),
    Route("trade_id", lambda r, last: r.trade_id is not None, "trade_lookup", "a trade id (T…)"),
    Route("trades", lambda r, last: "trade_lookup" in r.tools, "trade_lookup", "交易/成交记录: booked trades"),
    Route("exposure", lambda r, last: "book_exposure" in r.tools, "book_exposure", "敞口/delta/vega: the risk book"),
    Route("followup", lambda r, last: bool(last) and r.followup is not None, "", "那…呢: the previous call, changed"),
    Route("question", lambda r, last: r.intent == "knowledge" or (
        bool(EN_QUESTION.match(r.text)) and not r.request.get("underlying")), "kb_search",
          "a question about the products (the parser's knowledge intent, or how/what/why… naming no underlying)"),
    Route("price", lambda r, last: r.quote or ("price" in r.tools and bool(r.request.get("underlying"))),
          "price", "a quote request (underlying, tenor, structure…): what-if pricing"),
    Route("knowledge", lambda r, last: True, "kb_search", "anything else: the internal knowledge base"),
)


LEGAL_SUFFIX = re.compile(r"(股份有限公司|有限责任公司|有限合伙|有限公司|公司|\(有限合伙\)|（有限合伙）)$")


def stem(name: str) -> str:
    """An institution's name without its legal-form suffix (有限公司, 有限责任公司…)."""
    return LEGAL_SUFFIX.sub("", name.strip())


def _stated(req: dict) -> dict:
    assumed = set(req.get("assumed", []))
    out = {k: req[k] for k in PRICE_FIELDS if req.get(k) is not None and k not in assumed}
    if out.get("side") == "client_buys":
        out.pop("side")
    return out


class Router:
    """`route(text, last)` → {"calls": [{"tool", "args"}], "note", "route"}; `last` is the thread's previous call."""

    def __init__(self, parser=None, institutions: Callable[[], list[str]] | None = None):
        if parser is None:
            from otcdesk.ner.parser import default_parser

            parser = default_parser()
        self.parser = parser
        self.institutions = institutions or (lambda: [])

    # ---- reading ------------------------------------------------------------------------------------
    def read(self, text: str) -> Reading:
        follow = FOLLOWUP.match(text)
        body = follow.group("body") if follow and follow.group("body") else None
        parsed = self.parser.parse(text)
        requests = parsed.requests if parsed.intent == "quote" else []
        probe = self.parser.parse(f"询价 {body or text}")
        probe_reqs = probe.requests if probe.intent == "quote" else []
        first = requests[0] if requests else (probe_reqs[0] if probe_reqs else {})
        underlyings = list(dict.fromkeys(r["underlying"] for r in (requests or probe_reqs) if r.get("underlying")))
        trade = TRADE_ID.search(text)
        account = ACCOUNT.search(text)
        return Reading(
            text=text, request=_stated(first), intent=parsed.intent, quote=bool(requests),
            complete=bool(requests) and not any(r.get("missing") for r in requests),
            missing=list(first.get("missing", [])) if requests else [], clarification=parsed.clarification,
            underlyings=underlyings, trade_id=trade.group(1).upper() if trade else None,
            account=(account.group(1) or account.group(2)) if account else None,
            institution=self.institution_in(text), followup=body,
            tools=[t.name for t in TOOLS if cue(text, t.name)])

    def institution_in(self, text: str) -> str | None:
        """The known institution the text names: the full name, its stem without the legal-form suffix (示例资产管理
        for 示例资产管理有限公司), or a near spelling of the stem (partial ratio ≥ 80); else None."""
        names = [n for n in self.institutions() if n]
        exact = [n for n in names if n in text] or [n for n in names if len(stem(n)) >= 2 and stem(n) in text]
        if exact:
            return max(exact, key=len)
        stems = {stem(n): n for n in names if len(stem(n)) >= 4}
        if not stems:
            return None
        best = process.extractOne(text, list(stems), scorer=fuzz.partial_ratio)
        return stems[best[0]] if best and best[1] >= INSTITUTION_SCORE else None

    # ---- routing ------------------------------------------------------------------------------------
    def route(self, text: str, last: dict | None = None) -> dict:
        r = self.read(text)
        rule = next(x for x in ROUTES if x.when(r, last))
        if rule.name == "followup":
            return self._followup(r, last)
        if rule.tool == "price":
            return self._price(r, {})
        return {"calls": [{"tool": rule.tool, "args": self.args_for(rule.tool, r)}], "note": None, "route": rule.name}

    def args_for(self, tool: str, r: Reading) -> dict:
        if tool == "kb_search":
            return {"question": r.text.strip()[:2000]}
        if tool == "surveillance_alerts":
            args = {}
            if r.account:
                args["account"] = r.account
            kind = next((k for k, words in ALERT_TYPES if _has(r.text, words)), None)
            if kind:
                args["type"] = kind
            return args
        if tool == "kyc_status":
            return {"institution": r.institution} if r.institution else {}
        if tool == "book_exposure":
            return {"underlying": r.underlyings[0]} if len(r.underlyings) == 1 else {}
        if tool == "trade_lookup":
            if r.trade_id:
                return {"trade_id": r.trade_id}
            args = {}
            if len(r.underlyings) == 1:
                args["underlying"] = r.underlyings[0]
            if r.institution:
                args["institution"] = r.institution
            status = next((s for s, words in TRADE_STATUS if _has(r.text, words)), None)
            if status:
                args["status"] = status
            return args
        if tool == "price":
            return dict(r.request)
        return {}

    def _price(self, r: Reading, base: dict) -> dict:
        args = {**base, **r.request}
        if base and r.request.get("structure") == "vanilla" and base.get("structure") not in (None, "vanilla"):
            args["structure"] = base["structure"]  # "换成看跌" names no structure: keep the previous one
        missing = [f for f in BY_NAME["price"].schema["required"] if f not in args]
        if missing:
            note = r.clarification if (r.clarification and not base) else None
            return {"calls": [], "note": note or "请补充：" + "、".join(MISSING_CN.get(f, f) for f in missing),
                    "route": "price", "missing": missing}
        return {"calls": [{"tool": "price", "args": args}], "note": None, "route": "price"}

    def _followup(self, r: Reading, last: dict) -> dict:
        tool, base = last["tool"], dict(last.get("args") or {})
        if tool == "price":
            return {**self._price(r, base), "route": "followup"}
        changed = self.args_for(tool, r)
        if tool == "kb_search":  # a follow-up question to the knowledge base is a question of its own
            changed = {"question": f"{base.get('question', '')} {r.text}".strip()[:2000]}
        return {"calls": [{"tool": tool, "args": {**base, **changed}}], "note": None, "route": "followup"}


MISSING_CN = {"underlying": "标的", "structure": "结构", "tenor": "期限"}
