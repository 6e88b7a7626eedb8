"""Intent as an ordered table of named rules (otcdesk/ner/intent.py): the table's shape, and which rule decides."""
from __future__ import annotations

import pytest

from otcdesk.ner.intent import RULES
from otcdesk.ner.parser import default_parser


def test_rules_are_named_explained_and_end_with_a_default():
    names = [r.name for r in RULES]
    assert len(set(names)) == len(names)
    assert all(r.why and r.intent in ("quote", "order", "amend", "cancel", "order_status", "holdings", "unwind",
                                      "knowledge", "other") for r in RULES)
    assert RULES[-1].when(None) is True  # the last rule reads nothing and always holds


@pytest.mark.parametrize("text,rule,intent", [
    ("确认，300 1个月平值看跌 2000万 成交", "order", "order"),
    ("如果明天300跌到3700，我们的看跌大概值多少钱", "own_position_valued", "other"),
    ("沪深300平值看涨的delta大概0.5吧", "greeks_talk", "other"),
    ("下周可能要做一笔300的看跌，到时候再找你们报价", "plan", "other"),
    ("客户上周买了一个月的平值看涨", "position_talk", "other"),
    ("今天下午开会讨论中证500雪球的对冲", "chat", "other"),
    ("3800点", "bare_value", "other"),
    ("一年期雪球和两年期的区别", "product_question", "knowledge"),
    ("昨天那个沪深300看涨赚了不少", "position_talk", "other"),
    ("沪深300跌破3800点了", "narrative", "other"),
    ("雪球的敲入是怎么观察的？", "product_knowledge", "knowledge"),
    ("沪深300 1个月平值看涨", "request", "quote"),
    ("帮忙报个价", "short_ask", "quote"),
    ("谢谢", "bare_value", "other"),
])
def test_the_rule_that_decides(text, rule, intent):
    decided = default_parser().intent_rule(text)
    assert (decided.name, decided.intent) == (rule, intent)
    assert default_parser().parse(text).intent == intent
