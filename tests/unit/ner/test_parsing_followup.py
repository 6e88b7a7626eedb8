"""Multi-turn completion: a follow-up fills what the first message left missing."""
from __future__ import annotations

import pytest

from otcdesk.ner import complete_followup, parse_message


def follow(first, second):
    prev = parse_message(first).to_dict()
    return complete_followup(prev, second).to_dict()


@pytest.mark.parametrize("first,second,field,value", [
    ("沪深300 平值看涨", "一个月的", "tenor", "1M"),
    ("中证500 3个月 看跌", "行权价95%", "strike_pct", 95),
    ("沪深300 一个月 看涨", "3800点", "strike_level", 3800),
    ("帮我报个XX科技 1个月平值看涨", "茅台", "underlying", "600519.SH"),
    ("沪深300 1个月", "看跌", "option_type", "put"),
])
def test_followup_fills_missing(first, second, field, value):
    res = follow(first, second)
    assert res["intent"] == "quote" and len(res["requests"]) == 1
    r = res["requests"][0]
    assert r[field] == value and r["missing"] == [] and res["clarification"] is None


def test_followup_snowball_levels():
    r = follow("中证500 雪球 两年", "敲出103 敲入75")["requests"][0]
    assert (r["ko_pct"], r["ki_pct"], r["tenor"], r["missing"]) == (103, 75, "24M", [])


def test_followup_with_two_tenors_multiplies():
    rs = follow("沪深300 平值看涨", "1个月和3个月")["requests"]
    assert [r["tenor"] for r in rs] == ["1M", "3M"]


def test_followup_that_is_a_new_complete_request_replaces():
    rs = follow("茅台 看涨", "宁德 1个月平值看跌")["requests"]
    assert [(r["underlying"], r["option_type"], r["tenor"]) for r in rs] == [("300750.SZ", "put", "1M")]


def test_followup_without_fields_is_just_parsed():
    assert follow("沪深300 平值看涨", "谢谢") == {"intent": "other", "requests": [], "clarification": None}
    assert follow("沪深300 一个月 看涨", "确认下单")["intent"] == "order"


@pytest.mark.parametrize("first,second,field,value", [
    ("中证500 雪球 两年", "103/75", "ki_pct", 75),            # read in the earlier structure, not as two strikes
    ("沪深300 鲨鱼鳍 看涨 3个月", "110", "barrier_pct", 110),   # a bare number answers the one number missing
    ("中证500 雪球 2年 敲出103", "75", "ki_pct", 75),
    ("沪深300 一个月 虚值 看涨", "5%", "strike_pct", 105),      # 虚值 without a size, then the size
    ("沪深300 一个月 实值 看跌", "虚值5%", "strike_pct", 95),
])
def test_followup_in_context(first, second, field, value):
    res = follow(first, second)
    r = res["requests"][0]
    assert r[field] == value and r["missing"] == [] and res["clarification"] is None


def test_followup_code_answers_an_unrecognized_name():
    res = follow("蓝月亮集团 1个月平值看涨", "600519")
    assert res["requests"][0]["underlying"] == "600519.SH" and res["clarification"] is None
