"""Properties that hold for any text: the parser never raises and always returns the contract's shape."""
from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otcdesk.ner import complete_followup, parse_message

PIECES = ["沪深300", "中证500", "茅台", "看涨", "看跌", "平值", "1个月", "两年", "雪球", "敲出103", "敲入75", "95%",
          "/", "，", "；", "\n", "1000万", "还有", "另要", "123456", "某某科技", "谢谢", "？", "3800点", "KO", "100/90",
          "价差", "鲨鱼鳍", "障碍110", "@机器人", "ＩＦ", "5kw", "call", "put", " ", "0.9", "半年", "成交"]
TEXT = st.one_of(st.text(max_size=80), st.lists(st.sampled_from(PIECES), max_size=12).map("".join))


def _check(doc: dict) -> None:
    json.dumps(doc, ensure_ascii=False)
    assert doc["intent"] in ("quote", "order", "knowledge", "other")
    assert isinstance(doc["requests"], list)
    if doc["intent"] != "quote":
        assert doc["requests"] == []
    assert doc["clarification"] is None or isinstance(doc["clarification"], str)
    for r in doc["requests"]:
        assert isinstance(r["missing"], list) and isinstance(r["assumed"], list)
        assert r.get("structure") in ("vanilla", "spread", "digital", "barrier", "sharkfin", "double_sharkfin",
                                      "snowball", "phoenix", "asian", "airbag")
        assert r.get("option_type") in (None, "call", "put")
        assert r.get("side") in ("client_buys", "client_sells")
        assert r.get("quote") in ("price", "vol", "coupon", "participation")
        for v in r.values():
            assert v is not None
            if isinstance(v, float):
                assert math.isfinite(v)
        if r["missing"]:
            assert doc["clarification"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXT)
def test_any_text_parses_to_the_contract_shape(text):
    _check(parse_message(text).to_dict())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXT)
def test_any_followup_parses_to_the_contract_shape(text):
    prev = parse_message("沪深300 平值看涨").to_dict()
    _check(complete_followup(prev, text).to_dict())


def test_threads_get_the_same_answers_as_sequential_calls():
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    from otcdesk.ner.evaluate import load_jsonl

    texts = [r["text"] for r in load_jsonl(Path(__file__).resolve().parents[2] / "data" / "parse_test.jsonl")][:150]
    sequential = [parse_message(t).to_dict() for t in texts]
    with ThreadPoolExecutor(8) as ex:
        parallel = list(ex.map(lambda t: parse_message(t).to_dict(), texts))
    assert parallel == sequential
