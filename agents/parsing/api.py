"""Public entry points used by the desk graph and the CLI."""
from __future__ import annotations

import itertools

from .llm_fill import llm_complete, refinish
from .parser import ParseResult, clarification_for, default_parser

# fields a follow-up may supply, in the order they are merged
FOLLOWUP_FIELDS = ("underlying", "structure", "option_type", "tenor", "strike_pct", "upper_strike_pct", "strike_level",
                   "barrier_pct", "lower_barrier_pct", "barrier_type", "rebate_pct", "participation_pct", "payout_pct",
                   "ko_pct", "ki_pct", "ko_stepdown_pct", "coupon_pct", "coupon_barrier_pct", "lockup_months",
                   "notional", "side")
MULTI_FIELDS = ("underlying", "tenor", "strike_pct", "option_type")


def parse_message(text: str, *, llm=None) -> ParseResult:
    """Parse one chat message into intent, QuoteRequests and a clarification question.

    `llm` (optional, duck-typed `complete_json(messages, schema, timeout=None) -> dict`) is consulted only when
    the deterministic result has requests with missing fields; its answer is validated field by field.
    """
    result = default_parser().parse(text)
    if llm is not None and result.intent == "quote" and not result.complete:
        result = llm_complete(result, text, llm)
    return result


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
    # what the follow-up states: field -> ordered distinct values
    supplied: dict[str, list] = {}
    for r in new_reqs:
        for k, v in _stated(r).items():
            supplied.setdefault(k, [])
            if v not in supplied[k]:
                supplied[k].append(v)
    if not new_reqs:  # parse found no request shape; read the bare fields ("一个月的", "3800点")
        supplied = _bare_fields(parser, text)
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
    merged = ParseResult("quote", out_reqs, None, unrecognized)
    merged.clarification = clarification_for(out_reqs, unrecognized)
    merged.extra["followup"] = True
    if llm is not None and not merged.complete:
        merged = llm_complete(merged, text, llm)
    return merged


def _bare_fields(parser, text: str) -> dict[str, list]:
    """Fields in a message that is not a request by itself: parse it as if it followed a request shape."""
    probe = parser.parse("询价 " + text)  # a request verb as anchor so bare tenors/strikes/types are read as terms
    out: dict[str, list] = {}
    for r in probe.requests:
        for k, v in _stated(r).items():
            if k == "structure" and "structure" in r.get("assumed", []):
                continue
            out.setdefault(k, [])
            if v not in out[k]:
                out[k].append(v)
    return out
