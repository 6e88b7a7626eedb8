"""The parser learns the names of structures declared at run time (templates): no code, no restart; their
parameters are read like the built-in structure's their parameters name, defaults fill the rest."""
from __future__ import annotations

import pytest

from otcdesk.ner import parse_message
from otcdesk.ner.structures import DECLARED, DeclaredStructure, name_conflicts, taken_names
from otcdesk.ner.vocabulary import default_vocabulary

PARAMS = {"ko_pct": {"default": 103}, "ki_pct": {"default": 75}, "coupon_pct": {"default": 10},
          "floor_pct": {"default": 70}, "lockup_months": {"default": 3, "type": "int"}}


@pytest.fixture
def declared():
    """Declare structures for one test, on a table cleared of what earlier tests' services declared in this process
    (the table is process-wide); those come back afterwards."""
    earlier = DECLARED.entries()
    for entry in earlier:
        DECLARED.withdraw(entry.structure)
    added = []

    def declare(structure, names, params=PARAMS, version=1):
        DECLARED.declare(DeclaredStructure(structure, tuple(names), params, version))
        added.append(structure)

    yield declare
    for s in added:
        DECLARED.withdraw(s)
    for entry in earlier:
        DECLARED.declare(entry)


def _one(text):
    res = parse_message(text).to_dict()
    assert res["intent"] == "quote", res
    [req] = res["requests"]
    return req


def test_a_declared_name_is_that_structure_from_the_next_message(declared):
    before = _one("中证500 一年 限亏雪球 103/75 2000万")
    assert before["structure"] == "snowball"  # 雪球 is all the built-in words know
    declared("np_capped", ["限亏雪球", "封底雪球"])
    req = _one("中证500 一年 限亏雪球 103/75 2000万")
    assert req["structure"] == "np_capped"
    assert (req["ko_pct"], req["ki_pct"], req["notional"], req["tenor"]) == (103, 75, 20_000_000, "12M")
    assert req["floor_pct"] == 70 and req["lockup_months"] == 3  # the defaults
    assert req["assumed"] == ["floor_pct", "lockup_months"] and req["missing"] == []
    assert req["quote"] == "coupon" and "coupon_pct" not in req  # the coupon is what is asked
    assert _one("中证500 一年 雪球 103/75 2000万")["structure"] == "snowball"  # the built-in word is untouched
    assert _one("封底雪球 中证1000 6个月 票息12% 锁2个月")["structure"] == "np_capped"


def test_what_the_message_says_of_the_parameters_is_kept_the_rest_defaulted_or_missing(declared):
    params = {**PARAMS, "ki_pct": {"required": True}}
    declared("np_required", ["保底凤凰"], params)
    req = _one("中证500 1年 保底凤凰 敲出101 票息8% 1000万")
    assert req["structure"] == "np_required" and req["ko_pct"] == 101 and req["coupon_pct"] == 8
    assert req["quote"] == "price" and req["missing"] == ["ki_pct"]
    assert "option_type" not in req and "ko_observation" not in req  # not parameters of this structure
    res = parse_message("保底凤凰 1年 敲出101 票息8%").to_dict()
    assert res["requests"][0]["missing"] == ["underlying", "ki_pct"] and res["clarification"]


def test_a_withdrawn_or_replaced_structure_changes_the_reading(declared):
    declared("np_old", ["摇篮结构"], {"barrier_pct": {"default": 110}})
    req = _one("沪深300 3个月 摇篮结构 120")
    assert req["structure"] == "np_old" and req["barrier_pct"] == 120  # read like a sharkfin: a bare level
    declared("np_old", ["摇篮二号"], {"barrier_pct": {"default": 110}}, version=2)
    assert _one("沪深300 3个月 摇篮二号 120")["structure"] == "np_old"
    assert _one("沪深300 3个月 摇篮结构 平值看涨").get("structure") != "np_old"


def test_names_a_template_may_not_take():
    vocab = default_vocabulary()
    taken = taken_names(vocab)
    assert taken["早利雪球"] == "snowball" and taken["sharkfin"] == "sharkfin"
    assert "option_type" in taken["看涨"]
    assert name_conflicts(["球"], "x", vocab) == "name '球' is part of the structure word '雪球'"
    assert name_conflicts(["限亏雪球"], "x", vocab) is None
