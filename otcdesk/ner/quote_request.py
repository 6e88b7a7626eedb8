"""QuoteRequest dicts (CONTRACTS.md): field order, the structure conventions (defaults → `assumed`, required fields →
`missing`, what is quoted), the clarification question, and `ParseResult`."""
from __future__ import annotations

from dataclasses import dataclass, field

from .structures import DECLARED

FIELD_ORDER = ["underlying", "underlying_name", "structure", "option_type", "tenor", "strike_pct", "upper_strike_pct",
               "strike_level", "barrier_pct", "lower_barrier_pct", "barrier_type", "rebate_pct", "participation_pct",
               "payout_pct", "ko_pct", "ki_pct", "ko_stepdown_pct", "coupon_pct", "coupon_barrier_pct",
               "lockup_months", "ko_observation", "moneyness", "notional", "side", "quote"]
FIELD_LABEL = {
    "underlying": "标的是哪个",
    "option_type": "看涨还是看跌",
    "tenor": "期限多长",
    "strike_pct": "行权价多少",
    "upper_strike_pct": "价差的另一个行权价多少",
    "barrier_pct": "障碍价（敲出价）多少",
    "lower_barrier_pct": "下方障碍价多少",
    "barrier_type": "障碍类型（向上/向下，敲出/敲入）",
    "ko_pct": "敲出价多少",
    "ki_pct": "敲入价多少",
    "coupon_pct": "票息多少",
    "payout_pct": "赔付比例多少",
    "structure": "什么结构",
}


@dataclass
class ParseResult:
    """Parsed message: intent, requests (QuoteRequest dicts), clarification question."""

    intent: str = "other"
    requests: list[dict] = field(default_factory=list)
    clarification: str | None = None
    unrecognized: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = {"intent": self.intent, "requests": [dict(r) for r in self.requests], "clarification": self.clarification}
        if self.unrecognized:
            d["unrecognized"] = list(self.unrecognized)
        d.update(self.extra)
        return d

    @property
    def complete(self) -> bool:
        return bool(self.requests) and all(not r.get("missing") for r in self.requests)


def strike_from_moneyness(kind: str, x: float, option_type: str) -> float:
    """Strike in % of spot for 实值 (itm) / 虚值 (otm) by x %: a call x% in the money is 100 − x."""
    sign = -1 if (kind == "itm") == (option_type == "call") else 1
    v = 100 + sign * x
    return int(v) if v == int(v) else round(v, 6)


def finish_request(req: dict) -> dict:
    """Apply structure conventions: defaults (→ assumed), required fields (→ missing), what is quoted."""
    req = dict(req)
    asks = req.pop("_asks", set())
    unknown = req.pop("_unknown", None)
    moneyness = req.pop("_moneyness", None)
    assumed: list[str] = []
    missing: list[str] = []
    st = req.get("structure")
    declared = DECLARED.get(st)
    if declared is not None:
        return _finish_declared(req, declared, asks, unknown)
    if not st:
        st = "vanilla"
        req["structure"] = st
        if not req.get("option_type") and "strike_pct" not in req:
            assumed.append("structure")
    ot = req.get("option_type")
    if st in ("snowball", "phoenix", "airbag", "double_sharkfin"):
        if st != "airbag":
            req.pop("option_type", None)
        ot = req.get("option_type")
    if st != "barrier":
        req.pop("barrier_type", None)  # 上敲出/下敲出 name the barriers of sharkfins, not a barrier option's type
    if st == "sharkfin" and not ot and "barrier_pct" in req:
        req["option_type"] = "call" if req["barrier_pct"] > 100 else "put"
        assumed.append("option_type")
    if st == "barrier" and "barrier_pct" in req and "barrier_type" not in req:
        req["barrier_type"] = ("up" if req["barrier_pct"] > 100 else "down") + "_out"
        assumed.append("barrier_type")
    if st in ("vanilla", "digital", "barrier", "sharkfin", "asian", "double_sharkfin"):
        if "strike_pct" not in req and "strike_level" not in req and moneyness is None:
            req["strike_pct"] = 100
            assumed.append("strike_pct")
    required = {"vanilla": ["option_type", "tenor"],
                "asian": ["option_type", "tenor"],
                "digital": ["option_type", "tenor", "payout_pct"],
                "spread": ["option_type", "tenor", "strike_pct", "upper_strike_pct"],
                "barrier": ["option_type", "tenor", "barrier_pct"],
                "sharkfin": ["option_type", "tenor", "barrier_pct"],
                "double_sharkfin": ["tenor", "barrier_pct", "lower_barrier_pct"],
                "snowball": ["tenor", "ko_pct", "ki_pct"],
                "phoenix": ["tenor", "ko_pct", "ki_pct"],
                "airbag": ["tenor", "ki_pct"]}[st]
    if moneyness is not None and (moneyness[1] is None or not req.get("option_type")):
        missing.append("strike_pct")
        req["moneyness"] = moneyness[0]  # 'otm'/'itm' without a size: a follow-up "5%" completes it
    if st in ("snowball", "phoenix"):
        if "lockup_months" not in req:
            req["lockup_months"] = 3
            assumed.append("lockup_months")
        req.setdefault("ko_observation", "monthly")
        assumed.append("ko_observation")
        if st == "phoenix" and "coupon_barrier_pct" not in req and "ki_pct" in req:
            req["coupon_barrier_pct"] = req["ki_pct"]
            assumed.append("coupon_barrier_pct")
    # what is asked
    if "vol" in asks:
        quote = "vol"
    elif st in ("snowball", "phoenix"):
        quote = "coupon" if "coupon_pct" not in req else "price"
    elif st in ("sharkfin", "double_sharkfin", "airbag"):
        quote = "participation" if "participation_pct" not in req and ("price" not in asks or "participation" in asks) else "price"
    elif "participation" in asks and "participation_pct" not in req:
        quote = "participation"
    else:
        quote = "price"
    req["quote"] = quote
    if st in ("snowball", "phoenix") and quote != "coupon" and "coupon_pct" not in req:
        required = required + ["coupon_pct"]
    req.setdefault("side", "client_buys")
    if "underlying" not in req:
        missing.insert(0, "underlying")
    for f in required:
        if req.get(f) is None and f not in missing:
            missing.append(f)
    out = {k: req[k] for k in FIELD_ORDER if k in req and req[k] is not None}
    out["missing"] = missing
    out["assumed"] = assumed
    if unknown:
        out["unrecognized_underlying"] = unknown
    return out


IDENTITY_FIELDS = ("underlying", "underlying_name", "structure", "tenor")
SOLVED_ASKS = {"coupon": "coupon_pct", "participation": "participation_pct"}  # what a client may ask to be solved


def _finish_declared(req: dict, declared, asks: set, unknown: str | None) -> dict:
    """The conventions of a structure declared by a template (`structures`): what the message says of the template's
    parameters is kept, defaults fill the rest (→ assumed), a required one without a value is missing. A coupon or
    participation the template has and the message does not give is what is quoted (solved), like a snowball's."""
    out = {k: req[k] for k in IDENTITY_FIELDS if req.get(k) is not None}
    assumed: list[str] = []
    missing: list[str] = [] if "underlying" in out else ["underlying"]
    if "tenor" not in out:
        missing.append("tenor")
    quote = "vol" if "vol" in asks else "price"
    if quote == "price":
        for ask, p in SOLVED_ASKS.items():
            if p in declared.params and req.get(p) is None and (ask == "coupon" or ask in asks):
                quote = ask
                break
    for p, spec in declared.params.items():
        if req.get(p) is not None:
            out[p] = req[p]
        elif SOLVED_ASKS.get(quote) == p:
            continue
        elif "default" in spec:
            out[p] = spec["default"]
            assumed.append(p)
        elif spec.get("required"):
            missing.append(p)
    for k in ("notional", "side"):
        if req.get(k) is not None:
            out[k] = req[k]
    out.setdefault("side", "client_buys")
    out["quote"] = quote
    out["missing"] = missing
    out["assumed"] = assumed
    if unknown:
        out["unrecognized_underlying"] = unknown
    return out


def clarification_for(requests: list[dict], unrecognized: list[str]) -> str | None:
    """One short question covering everything missing (None when nothing is)."""
    parts: list[str] = []
    missing = []
    for r in requests:
        for f in r.get("missing", []):
            if f not in missing:
                missing.append(f)
    if not missing:
        return None
    if unrecognized:
        names = "、".join(f"「{u}」" for u in unrecognized)
        parts.append(f"没有识别出标的{names}，请提供标的代码或全称")
        missing = [m for m in missing if m != "underlying"]
    asks = [FIELD_LABEL.get(m, m) for m in missing]
    if asks:
        parts.append("请问" + "、".join(asks))
    return "；".join(parts) + "？"
