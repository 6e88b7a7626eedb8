"""Optional LLM completion of requests the deterministic path leaves incomplete.

The LLM is asked (with a JSON schema) only for the fields that are missing. Its answer is untrusted input: each
field is checked on its own (type, enum, range, tenor syntax) and an underlying is accepted only when it resolves
through the pool or the exchange prefix rules AND is grounded in the message (its code digits or one of its
names appear in the text) — the LLM may locate an underlying, never invent one. Every other field must be
stated in the message too (its number appears in the text, a call/put word is there). Only valid fields fill
missing slots; nothing the rules extracted is overwritten. Any failure (timeout, connection, bad JSON) leaves the
deterministic result untouched.
"""
from __future__ import annotations

import logging
import re
from typing import Any, Protocol

from .normalize import normalize
from .pool import UnderlyingPool, default_pool
from .quote_request import ParseResult, clarification_for, finish_request

log = logging.getLogger(__name__)


class JSONCompleter(Protocol):
    def complete_json(self, messages: list[dict], schema: dict, timeout: float | None = None) -> dict: ...


STRUCTURES = ["vanilla", "spread", "digital", "barrier", "sharkfin", "double_sharkfin", "snowball", "phoenix", "asian",
              "airbag"]
NUMERIC_RANGES = {
    "strike_pct": (1, 300), "upper_strike_pct": (1, 300), "strike_level": (0.01, 1e7), "barrier_pct": (1, 300),
    "lower_barrier_pct": (1, 300), "rebate_pct": (0, 100), "participation_pct": (0, 500), "payout_pct": (0, 100),
    "ko_pct": (50, 150), "ki_pct": (20, 100), "ko_stepdown_pct": (0, 5), "coupon_pct": (0, 60),
    "coupon_barrier_pct": (20, 120), "notional": (1e4, 1e11),
}
FIELD_SCHEMA: dict[str, dict] = {
    "underlying": {"type": "string", "description": "Wind code like 600519.SH or 000905.SH, or the name as written"},
    "option_type": {"type": "string", "enum": ["call", "put"]},
    "tenor": {"type": "string", "pattern": "^[0-9]{1,3}[DWM]$"},
    "structure": {"type": "string", "enum": STRUCTURES},
    "lockup_months": {"type": "integer", "minimum": 0, "maximum": 36},
    **{k: {"type": "number"} for k in NUMERIC_RANGES},
}
DEFAULT_TIMEOUT_S = None  # the client's own configured timeout (settings.llm_timeout_s)


def request_schema(fields: list[str]) -> dict:
    return {"type": "object", "properties": {f: FIELD_SCHEMA[f] for f in fields if f in FIELD_SCHEMA},
            "additionalProperties": False}


def _prompt(text: str, fields: list[str]) -> list[dict]:
    sys = ("You extract fields of an OTC option quote request written in Chinese chat. Answer with JSON only, "
           "containing only fields stated in the message; omit anything not stated. tenor like 1M, 2W, 90D "
           "(years as months: 1年 → 12M); percentages as numbers (95% → 95).")
    ex_user = "Message: 茅台 一个月 行权价95% 看跌\nFields: option_type, tenor, strike_pct"
    ex_answer = '{"option_type": "put", "tenor": "1M", "strike_pct": 95}'
    return [{"role": "system", "content": sys},
            {"role": "user", "content": ex_user}, {"role": "assistant", "content": ex_answer},
            {"role": "user", "content": f"Message: {text}\nFields: {', '.join(fields)}"}]


def _num_in(text: str, v: float) -> bool:
    s = f"{v:g}"
    return re.search(rf"(?<![\d.]){re.escape(s)}(?![\d])", text) is not None


_TYPE_WORDS = re.compile(r"涨|跌|购|沽|多|空|call|put|bull|bear", re.I)
_STRUCT_WORDS = {"snowball": r"雪|球|snow|autocall", "phoenix": r"凤|凰|phoenix", "sharkfin": r"鲨|鳍|shark",
                 "double_sharkfin": r"双|double", "airbag": r"气囊|airbag", "asian": r"亚|asian|均价",
                 "digital": r"二元|数字|digital|binary", "barrier": r"障碍|敲|barrier|out|in",
                 "spread": r"价差|spread", "vanilla": r"看涨|看跌|认购|认沽|call|put|香草|欧式|vanilla"}


def grounded(name: str, value: Any, text: str) -> bool:
    """Whether the message itself states `value` for `name` (the LLM may read, never invent)."""
    t = normalize(text)
    if name == "option_type":
        return bool(_TYPE_WORDS.search(t))
    if name == "structure":
        return bool(re.search(_STRUCT_WORDS.get(value, r"$^"), t, re.I))
    if name == "tenor":
        n, unit = int(value[:-1]), value[-1]
        cands = [n] + ([n / 12] if unit == "M" and n % 6 == 0 else [])
        words = {"6M": "半年", "3M": "季度", "2W": "半个月"}
        return any(_num_in(t, c) for c in cands) or (value in words and words[value] in t)
    if name == "notional":
        return any(_num_in(t, value / d) for d in (1, 1e4, 1e6, 1e7, 1e8))
    if isinstance(value, (int, float)):
        return _num_in(t, value) or _num_in(t, value / 100)
    return True


def validate_field(name: str, value: Any, text: str, pool: UnderlyingPool) -> Any | None:
    """The cleaned value of one LLM-proposed field, or None when it is not acceptable (bad type/range/enum, or
    not stated in the message)."""
    clean = _clean_field(name, value, text, pool)
    if clean is None or (name != "underlying" and not grounded(name, clean, text)):
        return None
    return clean


def _clean_field(name: str, value: Any, text: str, pool: UnderlyingPool) -> Any | None:
    if value is None or isinstance(value, bool):
        return None
    if name == "option_type":
        return value if value in ("call", "put") else None
    if name == "structure":
        return value if value in STRUCTURES else None
    if name == "tenor":
        if not isinstance(value, str) or not re.fullmatch(r"[1-9][0-9]{0,2}[DWM]", value):
            return None
        n, unit = int(value[:-1]), value[-1]
        limit = {"D": 1100, "W": 156, "M": 60}[unit]
        return value if n <= limit else None
    if name == "lockup_months":
        return value if isinstance(value, int) and 0 <= value <= 36 else None
    if name in NUMERIC_RANGES:
        if not isinstance(value, (int, float)):
            return None
        lo, hi = NUMERIC_RANGES[name]
        if not lo <= float(value) <= hi:
            return None
        v = float(value)
        return int(v) if v == int(v) else v
    if name == "underlying":
        return resolve_grounded_underlying(value, text, pool)
    return None


def resolve_grounded_underlying(value: Any, text: str, pool: UnderlyingPool) -> str | None:
    """A code for `value` only if it resolves and the message itself names it (its digits or one of its names)."""
    if not isinstance(value, str) or not value.strip():
        return None
    norm = normalize(text)
    low = norm.lower()
    v = normalize(value).strip()
    m = re.fullmatch(r"(\d{6})(?:\.(SH|SZ|BJ|CSI))?", v, re.I)
    if m:
        code, _why = pool.resolve_code(m.group(1), m.group(2))
    else:
        key = v.upper() if re.fullmatch(r"[A-Za-z0-9.]+", v) else v
        code = key if key in pool.by_code else pool.aliases.get(key)
    if not code:
        return None
    if code.split(".")[0] in norm:
        return code
    names = [a for a, c in pool.aliases.items() if c == code and not a.isdigit()]
    return code if any(a.lower() in low for a in names) else None


def llm_complete(result: ParseResult, text: str, llm: JSONCompleter, *, pool: UnderlyingPool | None = None,
                 timeout: float | None = DEFAULT_TIMEOUT_S) -> ParseResult:
    """Fill missing fields of `result` from the LLM; returns `result` unchanged on any failure."""
    pool = pool or default_pool()
    if result.intent != "quote" or not result.requests:
        return result
    wanted: list[str] = []
    for r in result.requests:
        for f in r.get("missing", []):
            if f in FIELD_SCHEMA and f not in wanted:
                wanted.append(f)
    if not wanted:
        return result
    schema = request_schema(wanted)
    try:
        answer = llm.complete_json(_prompt(text, wanted), schema, timeout=timeout)
    except RuntimeError as exc:  # LLMError and subclasses: timeout, connection, invalid output
        log.info("LLM completion skipped: %s", exc)
        result.extra.setdefault("llm", {"used": False, "error": type(exc).__name__})
        return result
    except Exception as exc:  # noqa: BLE001 - an optional helper must never break parsing
        log.warning("LLM completion failed unexpectedly: %r", exc)
        result.extra.setdefault("llm", {"used": False, "error": type(exc).__name__})
        return result
    return apply_llm_answer(result, answer, text, wanted, pool)


def apply_llm_answer(result: ParseResult, answer: Any, text: str, wanted: list[str],
                     pool: UnderlyingPool | None = None) -> ParseResult:
    """Merge the valid fields of an LLM answer into the missing slots of `result` (pure; no I/O)."""
    pool = pool or default_pool()
    if not isinstance(answer, dict):
        result.extra["llm"] = {"used": False, "error": "not an object"}
        return result
    valid: dict[str, Any] = {}
    rejected: list[str] = []
    for name, value in answer.items():
        if name not in wanted:
            rejected.append(name)
            continue
        clean = validate_field(name, value, text, pool)
        if clean is None:
            rejected.append(name)
        else:
            valid[name] = clean
    if valid:
        new_reqs = []
        for r in result.requests:
            missing = set(r.get("missing", []))
            fill = {k: v for k, v in valid.items() if k in missing}
            if not fill:
                new_reqs.append(r)
                continue
            new_reqs.append(refinish(r, fill, pool, filled_by="llm"))
        result.requests = new_reqs
        if "underlying" in valid:
            result.unrecognized = []
        result.clarification = clarification_for(result.requests, result.unrecognized)
    result.extra["llm"] = {"used": True, "filled": sorted(valid), "rejected": sorted(rejected)}
    return result


def refinish(req: dict, fill: dict, pool: UnderlyingPool, filled_by: str | None = None) -> dict:
    """Rebuild a finished request with new field values, re-applying conventions (assumed) and required (missing)."""
    assumed = set(req.get("assumed", []))
    base = {k: v for k, v in req.items()
            if k not in ("missing", "assumed", "unrecognized_underlying", "llm_filled") and k not in assumed}
    if "structure" in assumed:
        base.pop("structure", None)
    base.update(fill)
    if "strike_level" in fill:
        base.pop("strike_pct", None)
    if "underlying" in fill:
        name = pool.name_of(fill["underlying"])
        base.pop("underlying_name", None)
        if name:
            base["underlying_name"] = name
    quote = base.pop("quote", None)
    base["_asks"] = {quote} if quote in ("vol", "participation", "coupon") else set()
    if req.get("unrecognized_underlying") and "underlying" not in fill:
        base["_unknown"] = req["unrecognized_underlying"]
    out = finish_request(base)
    if filled_by:
        out["llm_filled"] = sorted(set(req.get("llm_filled", [])) | set(fill))
    return out
