"""The optional LLM path: schema-constrained request, field-by-field validation, clean fallback.

Validation and merging are pure functions and are tested with literal answers; the request/response plumbing is
tested against the real local llama.cpp server (`llm_server` fixture, `@pytest.mark.llm`).
"""
from __future__ import annotations

import pytest

from otcdesk.ner import parse_message
from otcdesk.ner.llm_fill import FIELD_SCHEMA, apply_llm_answer, llm_complete, validate_field
from otcdesk.ner.pool import default_pool

POOL = default_pool()


@pytest.mark.parametrize("name,value,text,ok", [
    ("tenor", "6M", "茅台 六个月 看涨", "6M"),
    ("tenor", "1M", "茅台 看涨", None),                    # not stated: the LLM may not invent a tenor
    ("tenor", "12 months", "茅台 12个月 看涨", None),        # wrong syntax
    ("strike_pct", 95, "茅台 行权价0.95 看涨", 95),
    ("strike_pct", 9999, "茅台 9999 看涨", None),            # out of range
    ("option_type", "both", "茅台 看涨", None),              # not in the enum
    ("option_type", "put", "茅台 看跌", "put"),
    ("underlying", "600519.SH", "茅台 1个月 看涨", "600519.SH"),
    ("underlying", "贵州茅台", "茅台 1个月 看涨", "600519.SH"),
    ("underlying", "300750.SZ", "蓝月亮集团 1个月 看涨", None),  # a resolvable code the message does not name
    ("underlying", "700001", "700001 1个月 看涨", None),      # impossible code
    ("ko_pct", "103", "雪球 敲出103", None),                  # wrong type
    ("notional", 10_000_000, "规模1000万", 10_000_000),
])
def test_validate_field(name, value, text, ok):
    assert validate_field(name, value, text, POOL) == ok


def test_only_valid_fields_fill_missing_slots():
    text = "茅台 看涨 3个月"
    base = parse_message("茅台 看涨")  # missing tenor
    assert base.requests[0]["missing"] == ["tenor"]
    res = apply_llm_answer(base, {"tenor": "3M", "option_type": "put", "strike_pct": 9999}, text, ["tenor"])
    r = res.requests[0]
    assert r["tenor"] == "3M" and r["missing"] == [] and r["option_type"] == "call"  # rules' call kept
    assert r["llm_filled"] == ["tenor"] and res.clarification is None
    assert res.extra["llm"] == {"used": True, "filled": ["tenor"], "rejected": ["option_type", "strike_pct"]}
    bad = apply_llm_answer(parse_message("茅台 看涨"), {"tenor": "9M"}, "茅台 看涨", ["tenor"])
    assert bad.requests[0]["missing"] == ["tenor"] and bad.extra["llm"]["filled"] == []


class RecordingClient:
    """Delegates to the real client and keeps what was sent and what came back (no answer is made up here)."""

    def __init__(self, client):
        self.client, self.calls, self.answers = client, [], []

    def complete_json(self, messages, schema, timeout=None):
        self.calls.append((messages, schema, timeout))
        answer = self.client.complete_json(messages, schema, timeout=timeout)
        self.answers.append(answer)
        return answer


@pytest.mark.llm
def test_schema_constrained_request_to_the_real_server(llm_server):
    """Checks the request (one call, a schema asking for exactly the missing field, the message quoted), that the
    real server's answer keeps to that schema, and that validation rejects every value it proposes: the message
    states no knock-in level (its numbers are 500, 2 and 103, none a valid KI), so nothing may be filled. Any
    answer, the empty one included, must end with each proposed field listed as rejected and ki_pct still asked."""
    rec = RecordingClient(llm_server.client)
    det = parse_message("中证500 雪球 两年 敲出103")
    res = parse_message("中证500 雪球 两年 敲出103", llm=rec)
    assert len(rec.calls) == 1
    messages, schema, timeout = rec.calls[0]
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert set(schema["properties"]) == {"ki_pct"} and schema["properties"]["ki_pct"] == FIELD_SCHEMA["ki_pct"]
    assert "中证500 雪球 两年 敲出103" in messages[-1]["content"]
    answer = rec.answers[0]
    assert isinstance(answer, dict) and set(answer) <= {"ki_pct"}, answer  # the server kept to the schema
    assert res.extra["llm"] == {"used": True, "filled": [], "rejected": sorted(answer)}, (answer, res.extra)
    r, d = res.requests[0], det.requests[0]
    for k in ("underlying", "structure", "tenor", "ko_pct"):
        assert r[k] == d[k]  # nothing the rules read is overwritten
    assert "ki_pct" not in r and r["missing"] == ["ki_pct"] and "敲入" in res.clarification


@pytest.mark.llm
def test_timeout_falls_back_to_the_deterministic_result(llm_server):
    from otcdesk.app.llm import LLMClient

    client = LLMClient(llm_server.base_url, llm_server.model, "sk-local", timeout=0.001, flavor="llama_cpp")
    det = parse_message("茅台 看涨").to_dict()
    res = parse_message("茅台 看涨", llm=client)
    assert res.extra["llm"] == {"used": False, "error": "LLMTimeoutError"}, res.extra
    d = res.to_dict()
    d.pop("llm")
    assert d == det


@pytest.mark.llm
def test_invalid_output_falls_back(llm_server):
    from otcdesk.app.llm import LLMClient

    client = LLMClient(llm_server.base_url, llm_server.model, "sk-local", timeout=60, flavor="llama_cpp", max_tokens=2)
    base = parse_message("沪深300 看跌")
    res = llm_complete(parse_message("沪深300 看跌"), "沪深300 看跌", client)
    assert res.extra["llm"] == {"used": False, "error": "LLMResponseError"}, res.extra  # truncated JSON → untouched
    assert res.requests == base.requests
