"""The internal assistant's tools as ONE table: name, the roles that may use it, the JSON schema of its arguments,
what it is for, and the method of `ToolPort` that runs it (CONTRACTS Part 2, "The internal assistant").

The role column is the contract's table, and the only place roles are decided: the graph (`agents.assistant`)
checks every planned call against it and against the schema before anything runs; no prompt carries a rule. The
schemas are strict (`additionalProperties: false`, patterns, bounds); `wire_schema` is the looser form sent to an
LLM server, whose grammar compilers cannot take every keyword: what comes back is validated against the strict one.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Protocol

import jsonschema

STAFF = ("trader", "sales", "risk", "compliance", "admin")
STRUCTURES = ("vanilla", "spread", "digital", "barrier", "sharkfin", "double_sharkfin", "snowball", "phoenix", "asian",
              "airbag")
UNDERLYING = r"^[0-9A-Za-z]{1,12}\.[A-Za-z]{2,4}$"  # 000905.SH, 600519.SH, RB.SHF
TENOR = r"^[1-9][0-9]{0,2}[DWMY]$"
TRADE_ID = r"^T[0-9A-Z]{5,31}$"
TRADE_STATUSES = ("pending_second_approval", "live", "knocked_out", "matured", "closed", "cancelled")
ALERT_TYPES = ("spoofing", "wash_trade", "control_group")
_NAME = {"type": "string", "minLength": 1, "maxLength": 100}
_PCT = {"type": "number", "exclusiveMinimum": 0, "maximum": 300}


def _obj(properties: dict, required: tuple[str, ...] = ()) -> dict:
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


@dataclass(frozen=True)
class Tool:
    name: str
    roles: tuple[str, ...]
    schema: dict
    description: str
    method: str  # the `ToolPort` method that runs it (the app layer implements the port)


TOOLS: tuple[Tool, ...] = (
    Tool("kb_search", STAFF,
         _obj({"question": {"type": "string", "minLength": 1, "maxLength": 2000},
               "kb": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9_-]{0,63}$"}}, ("question",)),
         "Search the desk's internal knowledge base (product guides, rules); answers with citations.",
         "kb_search"),
    Tool("price", ("trader", "sales", "risk"),
         _obj({"underlying": {"type": "string", "pattern": UNDERLYING},
               "structure": {"type": "string", "enum": list(STRUCTURES)},
               "tenor": {"type": "string", "pattern": TENOR},
               "option_type": {"type": "string", "enum": ["call", "put"]},
               "strike_pct": _PCT, "upper_strike_pct": _PCT, "barrier_pct": _PCT, "lower_barrier_pct": _PCT,
               "ko_pct": _PCT, "ki_pct": _PCT, "coupon_pct": {"type": "number", "minimum": 0, "maximum": 100},
               "participation_pct": _PCT, "payout_pct": _PCT,
               "lockup_months": {"type": "integer", "minimum": 0, "maximum": 36},
               "notional": {"type": "number", "exclusiveMinimum": 0, "maximum": 1e11},
               "side": {"type": "string", "enum": ["client_buys", "client_sells"]}},
              ("underlying", "structure", "tenor")),
         "What-if pricing of a structure on the current market through the pricing engine (fair value and the "
         "desk's margin). Internal only: never a quote to a client.",
         "price"),
    Tool("kyc_status", ("sales", "compliance", "risk"),
         _obj({"institution": _NAME}),
         "An institution's onboarding (KYC) state and whose turn it is; without a name, the institutions in review.",
         "kyc_status"),
    Tool("book_exposure", ("trader", "risk"),
         _obj({"underlying": {"type": "string", "pattern": UNDERLYING}}),
         "The desk's exposure from the latest risk snapshot: totals and by underlying (PV, delta, gamma, vega, "
         "theta), or one underlying.",
         "book_exposure"),
    Tool("trade_lookup", ("trader", "risk", "compliance"),
         _obj({"trade_id": {"type": "string", "pattern": TRADE_ID},
               "underlying": {"type": "string", "pattern": UNDERLYING},
               "institution": _NAME,
               "status": {"type": "string", "enum": list(TRADE_STATUSES)},
               "limit": {"type": "integer", "minimum": 1, "maximum": 50}}),
         "Booked trades: one by id, or a list by underlying, institution or status, newest first.",
         "trade_lookup"),
    Tool("surveillance_alerts", ("compliance",),
         _obj({"account": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"^[^\s]+$"},
               "type": {"type": "string", "enum": list(ALERT_TYPES)},
               "limit": {"type": "integer", "minimum": 1, "maximum": 50}}),
         "Market-abuse surveillance alerts (spoofing, wash trades, actual-control groups), optionally for one "
         "account or one type.",
         "surveillance_alerts"),
)
BY_NAME: dict[str, Tool] = {t.name: t for t in TOOLS}
ROLE_TABLE: dict[str, tuple[str, ...]] = {t.name: t.roles for t in TOOLS}


class ToolPort(Protocol):
    """What runs the tools (`app.assistant_tools.AssistantTools`). Each returns {"summary", "text", "data",
    "citations"?, "view"?}: `summary` one line for the tool-call list, `text` the answer's words (every number in it
    comes from the service), `view` a table or chart for the console."""

    def kb_search(self, question: str, kb: str = "default") -> dict: ...

    def price(self, **request: Any) -> dict: ...

    def kyc_status(self, institution: str | None = None) -> dict: ...

    def book_exposure(self, underlying: str | None = None) -> dict: ...

    def trade_lookup(self, trade_id: str | None = None, underlying: str | None = None,
                     institution: str | None = None, status: str | None = None, limit: int = 10) -> dict: ...

    def surveillance_alerts(self, account: str | None = None, type: str | None = None, limit: int = 10) -> dict: ...


def allowed(tool: str, role: str) -> bool:
    """Whether `role` may use `tool` (unknown tools: nobody)."""
    return role in ROLE_TABLE.get(tool, ())


def validation_error(tool: str, args: Any) -> str | None:
    """Why `args` does not fit the tool's schema, or None when it does."""
    spec = BY_NAME.get(tool)
    if spec is None:
        return f"unknown tool {tool!r}"
    errors = sorted(jsonschema.Draft202012Validator(spec.schema).iter_errors(args), key=lambda e: list(e.path))
    if not errors:
        return None
    where = "/".join(str(p) for p in errors[0].path) or "arguments"
    return f"{where}: {errors[0].message}"[:300]


_WIRE_DROP = ("pattern", "minimum", "maximum", "exclusiveMinimum", "minLength", "maxLength", "additionalProperties")


def wire_schema(schema: dict) -> dict:
    """The schema as sent to an LLM server: types, enums and required fields only (validation stays strict here)."""
    out = copy.deepcopy(schema)
    for key in _WIRE_DROP:
        out.pop(key, None)
    for prop in (out.get("properties") or {}).values():
        for key in _WIRE_DROP:
            prop.pop(key, None)
    return out


def openai_tools(names: tuple[str, ...] | None = None) -> list[dict]:
    """The table (or the tools `names`) in the OpenAI `tools` form. Offering a tool is not permitting it: the roles
    are enforced when a call comes back."""
    return [{"type": "function", "function": {"name": t.name, "description": t.description,
                                              "parameters": wire_schema(t.schema)}}
            for t in TOOLS if names is None or t.name in names]
