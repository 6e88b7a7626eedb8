"""Follow-ups: `complete_followup` completes an earlier incomplete request with the client's next message."""
from __future__ import annotations

import itertools
import re

from .fields import percent, structure_hint
from .llm_fill import llm_complete, refinish
from .order_terms import merge_terms, read_order_terms
from .parser import ORDER_INTENTS, MessageParser, default_parser, parse_message
from .quote_request import ParseResult, clarification_for, strike_from_moneyness
from .vocabulary import Pattern

# fields a follow-up may supply, in the order they are merged
FOLLOWUP_FIELDS = ("underlying", "structure", "option_type", "tenor", "strike_pct", "upper_strike_pct", "strike_level",
                   "barrier_pct", "lower_barrier_pct", "barrier_type", "rebate_pct", "participation_pct", "payout_pct",
                   "ko_pct", "ki_pct", "ko_stepdown_pct", "coupon_pct", "coupon_barrier_pct", "lockup_months",
                   "notional", "side")
MULTI_FIELDS = ("underlying", "tenor", "strike_pct", "option_type")
# '5%', '虚值5%', '实5个点' (a bare 实 only as the whole answer: in a sentence it is 其实, 落实)
_MONEYNESS_SIZE = Pattern(r"\s*({moneyness:itm|moneyness:otm+abbr}|实)?\s*(\d+(?:\.\d+)?)\s*(?:%|个点|点)?\s*(?:的)?\s*", re.I)


def _moneyness_size(prev_reqs: list[dict], text: str, parser: MessageParser) -> list[dict] | None:
    """'5%' answering '虚值多少' for requests that said 虚值/实值 without a size: the strikes, or None."""
    if not any(r.get("moneyness") and "strike_pct" in r.get("missing", []) for r in prev_reqs):
        return None
    vocab = parser.vocab
    m = vocab.rx(_MONEYNESS_SIZE).fullmatch(text)
    if not m or float(m.group(2)) > 50:
        return None
    x = float(m.group(2))
    said = m.group(1) and (vocab.meaning("moneyness", m.group(1)) or "itm")
    out = []
    for r in prev_reqs:
        kind, ot = said or r.get("moneyness"), r.get("option_type")
        if kind and ot and "strike_pct" in r.get("missing", []):
            fill = {"strike_pct": strike_from_moneyness(kind, x, ot)}
            base = {k: val for k, val in r.items() if k != "moneyness"}
            base["missing"] = [f for f in r.get("missing", []) if f != "strike_pct"]
            out.append(refinish(base, fill, parser.pool))
        else:
            out.append(r)
    return out


NUMERIC_ANSWERS = ("strike_pct", "upper_strike_pct", "barrier_pct", "lower_barrier_pct", "ko_pct", "ki_pct", "coupon_pct",
                   "payout_pct", "participation_pct", "coupon_barrier_pct")


def _bare_number(prev_reqs: list[dict], text: str) -> dict[str, list]:
    """A bare number ("110", "95%") answers the one numeric field the earlier requests still miss."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(%)?\s*(?:的|吧)?\s*", text)
    if not m:
        return {}
    wanted = {f for r in prev_reqs for f in r.get("missing", []) if f in NUMERIC_ANSWERS}
    if len(wanted) != 1:
        return {}
    v = percent(m.group(1), bool(m.group(2)))
    return {wanted.pop(): [v]} if 0 < v <= 300 else {}


def _finish_merge(unrecognized: list, reqs: list[dict], llm, text: str) -> ParseResult:
    """The follow-up's merged requests, with one clarification for what is still missing."""
    merged = ParseResult("quote", reqs, None, unrecognized)
    merged.clarification = clarification_for(reqs, unrecognized)
    merged.extra["followup"] = True
    if llm is not None and not merged.complete:
        merged = llm_complete(merged, text, llm)
    return merged


def _stated(req: dict) -> dict:
    assumed = set(req.get("assumed", []))
    out = {k: req[k] for k in FOLLOWUP_FIELDS if req.get(k) is not None and k not in assumed}
    if out.get("side") == "client_buys":  # the default, not a statement
        out.pop("side")
    return out


def complete_followup(previous: dict, text: str, *, llm=None) -> ParseResult:
    """Complete an earlier incomplete request (`previous` = an earlier `ParseResult.to_dict()`) with a follow-up.

    "一个月的", "行权价95%", "3800点", "茅台" fill the fields listed in `missing` (several values, e.g. "1个月和3个月",
    multiply the requests). A follow-up that is itself a complete quote request on its own underlying is returned
    as that new request instead; a follow-up that supplies nothing (thanks, a question) is returned as parsed.
    """
    parser = default_parser()
    if (previous or {}).get("intent") in ORDER_FLOWS:
        return complete_order(previous, text, parser)
    prev_reqs = [r for r in (previous or {}).get("requests", []) if isinstance(r, dict)]
    new = parser.parse(text)
    if not prev_reqs or not any(r.get("missing") or r.get("assumed") for r in prev_reqs):
        return parse_message(text, llm=llm)
    if new.intent in ("order", "knowledge"):
        return new
    new_reqs = new.requests if new.intent == "quote" else []
    # a complete request naming its own underlying is a new quote, not an answer
    if new_reqs and all(not r.get("missing") for r in new_reqs) and any("underlying" in r for r in new_reqs):
        return new if llm is None else parse_message(text, llm=llm)
    sizes = _moneyness_size(prev_reqs, text, parser)
    if sizes is not None:
        return _finish_merge(list(previous.get("unrecognized", [])), sizes, llm, text)
    # read the follow-up in the earlier request's structure: "103/75" after a snowball is KO/KI, not two strikes
    structures = {r.get("structure") for r in prev_reqs}
    keyword = _structure_keyword(parser.vocab, structures.pop()) if len(structures) == 1 else None
    if keyword and structure_hint(text, parser.vocab) is None:
        ctx = parser.parse(f"{keyword} {text}")
        new_reqs = [{k: v for k, v in r.items() if k != "structure"} for r in ctx.requests] if ctx.intent == "quote" else new_reqs
    # what the follow-up states: field -> ordered distinct values
    supplied: dict[str, list] = {}
    for r in new_reqs:
        for k, v in _stated(r).items():
            supplied.setdefault(k, [])
            if v not in supplied[k]:
                supplied[k].append(v)
    bare = _bare_number(prev_reqs, text)
    if bare:  # "110" answering the one number still missing
        supplied = bare
    elif not new_reqs:  # parse found no request shape; read the bare fields ("一个月的", "3800点")
        supplied = _bare_fields(parser, text, keyword)
    if not supplied:
        if llm is not None:
            merged = ParseResult("quote", [dict(r) for r in prev_reqs], None, list(previous.get("unrecognized", [])))
            return llm_complete(merged, text, llm)
        return new
    out_reqs: list[dict] = []
    applied = False
    for r in prev_reqs:
        missing = set(r.get("missing", []))
        assumed = set(r.get("assumed", []))
        usable = {}
        for k, vals in supplied.items():
            if k in missing or k in assumed or (k in ("strike_level",) and ("strike_pct" in missing or "strike_pct" in assumed)):
                usable[k] = vals
            elif k == "strike_pct" and "strike_pct" in missing:
                usable[k] = vals
            elif k == "notional" and "notional" not in r:
                usable[k] = vals
            elif k == "structure" and "structure" in assumed:
                usable[k] = vals
        if not usable:
            out_reqs.append(r)
            continue
        applied = True
        keys = list(usable)
        combos = itertools.product(*[usable[k] if k in MULTI_FIELDS else usable[k][:1] for k in keys])
        for combo in combos:
            out_reqs.append(refinish(r, dict(zip(keys, combo)), parser.pool))
    if not applied:
        return new
    unrecognized = [] if "underlying" in supplied else list(previous.get("unrecognized", []))
    return _finish_merge(unrecognized, out_reqs, llm, text)


def _structure_keyword(vocab, structure: str | None) -> str | None:
    """The structure's first word in terms.csv (雪球, 鲨鱼鳍…); None for vanilla, which has no reading of its own."""
    words = vocab.words("structure", structure) if structure and structure != "vanilla" else []
    return words[0] if words else None


def _bare_fields(parser, text: str, keyword: str | None = None) -> dict[str, list]:
    """Fields in a message that is not a request by itself: parse it as if it followed a request shape."""
    # a request verb (and the earlier structure) as anchor so bare tenors/strikes/types are read as terms
    probe = parser.parse(f"询价 {keyword or ''} {text}")
    out: dict[str, list] = {}
    for r in probe.requests:
        for k, v in _stated(r).items():
            if k == "structure" and ("structure" in r.get("assumed", []) or keyword):
                continue
            out.setdefault(k, [])
            if v not in out[k]:
                out[k].append(v)
    return out


ORDER_FLOWS = ("order", "unwind")  # incomplete instructions the desk asked about, completed by the next message
_NEW_FLOW = ("quote", "knowledge", "cancel", "holdings", "order_status")


def complete_order(previous: dict, text: str, parser: MessageParser | None = None) -> ParseResult:
    """Complete an incomplete order or unwind with the client's answer ("市价", "100w", "序号1，100w；序号2，市价",
    "产品2", "2"): the answer's order terms merged over the remembered ones (`order_terms.merge_terms`; a bare number
    answers what the desk asked for, `previous["order"]["awaiting"]`). A message that starts something else (a quote
    request, a question, 撤单, 查持仓, an unwind after an order or an order after an unwind naming its own quote) is
    returned as parsed."""
    parser = parser or default_parser()
    new = parser.parse(text)
    flow = previous["intent"]
    terms = read_order_terms(text, parser.vocab).to_dict()
    if new.intent in _NEW_FLOW or (flow == "order" and new.intent == "unwind") \
            or (flow == "unwind" and new.intent == "order" and terms.get("quote_id")):
        return new
    merged = ParseResult(flow)
    merged.extra["order"] = merge_terms(previous.get("order") or {}, terms)
    merged.extra["followup"] = True
    return merged
