"""Orders from the group: order terms as data (order_terms.py, data/order_terms.csv), the order intents as rule rows,
and the completion of an incomplete order by the client's next message."""
from __future__ import annotations

import pytest

from otcdesk.ner import complete_followup, parse_message
from otcdesk.ner.order_terms import (EXECUTION_KEYS, execution_missing, merge_execution, pick_account,
                                     read_order_terms)
from otcdesk.ner.parser import default_parser

MKT = {"type": "market", "limit_price": None, "pov_pct": None, "start": None, "end": None}


def ex(type_, limit=None, pov=None, start=None, end=None) -> dict:
    return {"type": type_, "limit_price": limit, "pov_pct": pov, "start": start, "end": end}


# realistic messages: (text, intent, the order terms the parser must read)
MESSAGES = [
    ("200万，市价，确认下单", "order", {"notional": 2_000_000, "execution": MKT}),
    ("2000万 确认下单", "order", {"notional": 20_000_000}),
    ("按 Q3228A67025 做 5000万", "order", {"quote_id": "Q3228A67025", "notional": 50_000_000}),
    ("按Q3228a67025 做", "order", {"quote_id": "Q3228A67025"}),  # hex in lower case
    ("Q3228A67025", "order", {"quote_id": "Q3228A67025"}),
    ("ok 就按Q3228A67025做 3kw 市价", "order", {"quote_id": "Q3228A67025", "notional": 30_000_000, "execution": MKT}),
    ("确认下单，2000w，pov 12%，限价 6.50", "order", {"notional": 20_000_000, "execution": ex("pov", 6.5, 12)}),
    ("POV 12% 限价6.5", "order", {"execution": ex("pov", 6.5, 12)}),
    ("pov12", "order", {"execution": ex("pov", pov=12)}),
    ("下单 5000万 最大跟量", "order", {"notional": 50_000_000, "execution": ex("pov", pov=25)}),
    ("跟量20% 下单", "order", {"execution": ex("pov", pov=20)}),
    ("POV百分之十五 确认", "order", {"execution": ex("pov", pov=15)}),
    ("TWAP 10:00-11:30", "order", {"execution": ex("twap", start="10:00", end="11:30")}),
    ("twap 十点到十一点半", "order", {"execution": ex("twap", start="10:00", end="11:30")}),
    ("TWAP 9:30-10:30 下单 1000万", "order", {"notional": 10_000_000,
                                           "execution": ex("twap", start="09:30", end="10:30")}),
    ("二千万 确认 twap 14:00到收盘 限价6.5", "order", {"notional": 20_000_000,
                                                 "execution": ex("twap", 6.5, start="14:00", end="15:00")}),
    ("1e 收盘价建仓 产品户2", "order", {"notional": 100_000_000, "execution": ex("close"), "account_no": 2}),
    ("成交，vwap，2kw", "order", {"notional": 20_000_000, "execution": ex("vwap")}),
    ("均价成交 1亿", "order", {"notional": 100_000_000, "execution": ex("vwap")}),
    ("deal 50mm at market", "order", {"notional": 50_000_000, "execution": MKT}),
    ("confirm, limit 6.8, 3000万元", "order", {"notional": 30_000_000, "execution": ex("limit", 6.8)}),
    ("pls book 20mm, limit 6.5", "order", {"notional": 20_000_000, "execution": ex("limit", 6.5)}),
    ("市价单 确任下单 200万", "order", {"notional": 2_000_000, "execution": MKT}),  # 确任: a typo of 确认
    ("限价6.5 名本3kw 确认", "order", {"notional": 30_000_000, "execution": ex("limit", 6.5)}),
    ("就这个", "order", {}),
    ("就这个，做了", "order", {}),
    ("5kw vwap", "order", {"notional": 50_000_000, "execution": ex("vwap")}),
    ("100w 市价", "order", {"notional": 1_000_000, "execution": MKT}),
    ("序号1，100w；序号2，市价", "order", {"picks": [1, 2], "by_line": {"1": {"notional": 1_000_000},
                                                                   "2": {"execution": MKT}}}),
    ("序号2 收盘价 1kw 确认", "order", {"picks": [2], "by_line": {"2": {"notional": 10_000_000,
                                                                     "execution": ex("close")}}}),
    ("第一个成交，第二个不要了", "order", {"picks": [1]}),
    ("好的，两笔都成交", "order", {"pick_all": True}),
    ("改限价10", "amend", {"execution": ex("limit", 10)}),
    ("限价改成6.8", "amend", {"execution": ex("limit", 6.8)}),
    ("改POV12", "amend", {"execution": ex("pov", pov=12)}),
    ("POV改成15%", "amend", {"execution": ex("pov", pov=15)}),
    ("改成市价", "amend", {"execution": MKT}),
    ("名义本金改成300万", "amend", {"notional": 3_000_000}),
    ("名义本金改为五千万", "amend", {"notional": 50_000_000}),
    ("撤单", "cancel", {}),
    ("帮忙撤一下单", "cancel", {}),
    ("cancel the order", "cancel", {}),
    ("订单状态", "order_status", {}),
    ("下单了吗", "order_status", {}),
    ("成交了吗", "order_status", {}),
    ("Q3228A67025 成交了吗", "order_status", {"quote_id": "Q3228A67025"}),
    ("查持仓", "holdings", {}),
    ("查一下持仓", "holdings", {}),
    ("持仓明细发一下", "holdings", {}),
    ("平掉 T0123456789 100万 市价", "unwind", {"trade_id": "T0123456789", "notional": 1_000_000,
                                           "execution": MKT}),
    ("第一笔，全平", "unwind", {"picks": [1], "by_line": {"1": {"full": True}}}),
    ("全部平掉 T0123456789 市价", "unwind", {"trade_id": "T0123456789", "full": True, "execution": MKT}),
    ("T0123456789 平一半 收盘价", "unwind", {"trade_id": "T0123456789", "fraction": 0.5, "execution": ex("close")}),
    ("第二笔提前终止，市价", "unwind", {"picks": [2], "by_line": {"2": {"execution": MKT}}}),
    ("提前终止", "unwind", {}),
    ("平掉 TDEMO00001 全平 市价", "unwind", {"trade_id": "TDEMO00001", "full": True, "execution": MKT}),
    ("t0123456789abc 平仓", "unwind", {}),  # not an id: too long
]


@pytest.mark.parametrize("text,intent,terms", MESSAGES)
def test_realistic_order_messages(text, intent, terms):
    doc = parse_message(text).to_dict()
    assert doc["intent"] == intent
    assert doc["requests"] == [] and doc["order"] == terms


@pytest.mark.parametrize("text,intent", [
    # talk, questions and quote requests that mention the same words stay what they were
    ("客户问我们之前那个2000万的300看跌怎么平仓", "other"),
    ("那个500的看跌我们已经平仓了", "other"),
    ("3个月的期权能提前平仓吗", "knowledge"),
    ("雪球能提前终止吗", "knowledge"),
    ("这笔1个月的看涨客户想提前了结", "other"),
    ("下午三点一起过一下中证1000的持仓", "other"),
    ("你们上个月报的那个沪深300看涨，后来成交了吗", "other"),
    ("刚才那笔已经成交了吧？", "other"),
    ("茅台 1个月 平值看涨，要是价格太贵的话就改成105的", "quote"),
    ("明天上午10点的会改到下午了", "other"),
    ("今天几点收盘", "other"),
    ("价格有点高，先不做了", "other"),
    ("撤单要多久", "other"),
    ("2000万", "other"),  # a bare size: an order only after a sent quote, which the desk graph knows
])
def test_lookalikes_keep_their_intent(text, intent):
    assert parse_message(text).intent == intent


def test_the_rule_table_names_the_new_rules():
    p = default_parser()
    assert [p.intent_rule(t).name for t in ("撤单", "订单状态", "查持仓", "改限价10", "第一笔，全平", "市价")] == \
        ["cancel", "order_status", "holdings", "amend", "unwind", "order_terms"]


def test_a_quote_id_is_no_size_for_the_quote_parser():
    doc = parse_message("Q12E4567890 确认").to_dict()  # 12E… would read as 12e8 CNY
    assert doc["order"] == {"quote_id": "Q12E4567890"}


@pytest.mark.parametrize("text,notional", [("-200万 市价 确认下单", -2_000_000), ("负100万 确认下单", -1_000_000),
                                           ("名义本金0 确认下单", 0), ("300亿 市价 确认下单", 30_000_000_000)])
def test_absurd_sizes_are_read_as_written_so_the_desk_can_refuse_them(text, notional):
    assert parse_message(text).to_dict()["order"]["notional"] == notional


def test_execution_has_the_five_contract_keys():
    for text in ("市价", "限价6.5", "POV 12%", "TWAP 10:00-11:30", "收盘价", "VWAP"):
        assert tuple(read_order_terms(text).execution) == EXECUTION_KEYS


def test_what_an_instruction_still_lacks():
    assert execution_missing(None) == ["execution"]
    assert execution_missing(read_order_terms("限价").execution) == ["limit_price"]
    assert execution_missing(read_order_terms("POV").execution) == ["pov_pct"]
    assert execution_missing(read_order_terms("TWAP").execution) == ["window"]
    assert execution_missing(read_order_terms("POV 10% 限价6").execution) == []


def test_merging_instructions():
    pov = ex("pov", 6.5, 12)
    assert merge_execution(pov, ex("limit", 10)) == ex("pov", 10, 12)  # 改限价10 on a POV keeps the POV
    assert merge_execution(MKT, ex("limit", 10)) == ex("limit", 10)
    assert merge_execution(ex("limit", 6.5), ex("pov", pov=12)) == ex("pov", 6.5, 12)  # a new POV keeps the limit
    assert merge_execution(pov, MKT) == MKT
    assert merge_execution(None, {"type": None, "limit_price": 7, "pov_pct": None, "start": None, "end": None}) \
        == ex("limit", 7)


ACCOUNTS = ["示例资管稳健1号私募证券投资基金", "示例资管进取2号私募证券投资基金"]


@pytest.mark.parametrize("text,number,expected", [
    ("稳健一号", None, ACCOUNTS[0]),
    ("用进取2号做", None, ACCOUNTS[1]),
    ("进取", None, ACCOUNTS[1]),
    ("稳建1号", None, ACCOUNTS[0]),  # a near miss
    ("示例资管稳健1号私募证券投资基金", None, ACCOUNTS[0]),
    ("随便", None, None),
    ("示例资管", None, None),  # what every account shares names none of them
    ("", 2, ACCOUNTS[1]),
    ("", 3, None),
])
def test_product_accounts_by_name_near_miss_or_number(text, number, expected):
    assert pick_account(text, ACCOUNTS, number) == expected


def test_an_incomplete_order_is_completed_by_the_next_message():
    prev = parse_message("200万，确认下单").to_dict()
    prev["order"] = {**prev["order"], "quote_id": "Q0000000001", "awaiting": ["execution", "account"]}
    done = complete_followup(prev, "POV 12% 限价6.5").to_dict()
    assert done["intent"] == "order" and done["followup"] is True
    assert done["order"] == {"notional": 2_000_000, "quote_id": "Q0000000001", "execution": ex("pov", 6.5, 12)}
    assert complete_followup(prev, "2").to_dict()["order"]["account_no"] == 2  # a bare number answers the account
    assert complete_followup(prev, "产品2").to_dict()["order"]["account_no"] == 2


def test_per_line_completion_in_one_message():
    prev = {"intent": "order", "requests": [], "clarification": None,
            "order": {"quote_id": "Q0000000001", "picks": [1, 2], "awaiting": ["notional", "execution"],
                      "by_line": {"1": {"execution": MKT}, "2": {"notional": 3_000_000}}}}
    done = complete_followup(prev, "序号1，100w；序号2，市价").to_dict()["order"]
    assert done["by_line"] == {"1": {"execution": MKT, "notional": 1_000_000},
                               "2": {"notional": 3_000_000, "execution": MKT}}


def test_a_pick_answers_which_line_or_trade():
    prev = {"intent": "unwind", "requests": [], "clarification": None,
            "order": {"offered": ["T0000000001", "T0000000002"], "awaiting": ["trade"], "full": True}}
    done = complete_followup(prev, "第二个").to_dict()["order"]
    assert done["picks"] == [2] and done["offered"] == ["T0000000001", "T0000000002"] and done["full"] is True


@pytest.mark.parametrize("text,intent", [("沪深300 1个月 平值看跌", "quote"), ("撤单", "cancel"), ("查持仓", "holdings"),
                                         ("第一笔，全平", "unwind")])
def test_a_message_that_starts_something_else_is_not_read_as_the_answer(text, intent):
    prev = {"intent": "order", "requests": [], "clarification": None,
            "order": {"quote_id": "Q0000000001", "awaiting": ["execution"]}}
    assert complete_followup(prev, text).intent == intent
