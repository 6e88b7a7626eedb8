"""Shapes found by the second blind set (tests/data/parse_blind2.jsonl): strike/type legs, spaced slashes between
legs, talk about positions that names a tenor, remarks about quotes."""
from __future__ import annotations

import pytest

from otcdesk.ner import parse_message


def test_atm_leg_pairs_with_its_type():
    rs = parse_message("沪深300 3个月 平值看涨 和 95看跌 各1000万").to_dict()["requests"]
    assert {(r["option_type"], r["strike_pct"], r["notional"]) for r in rs} == {("call", 100, 10000000),
                                                                              ("put", 95, 10000000)}


def test_atm_with_both_types_is_still_a_product():
    rs = parse_message("中证1000 三个月 平值看涨和看跌 各5000万").to_dict()["requests"]
    assert {(r["option_type"], r["strike_pct"]) for r in rs} == {("call", 100), ("put", 100)}


def test_spaced_slash_separates_legs_but_not_tenor_lists():
    rs = parse_message("300 1M ATM P / 500 2W 105C").to_dict()["requests"]
    assert [(r["underlying"], r["tenor"], r["option_type"], r["strike_pct"]) for r in rs] == [
        ("000300.SH", "1M", "put", 100), ("000905.SH", "2W", "call", 105)]
    assert len(parse_message("沪深300：1M/2M/3M ATM put 各报一个").to_dict()["requests"]) == 3


def test_strike_list_before_jiawei():
    rs = parse_message("300 1个月 看跌 95和90 两个价位").to_dict()["requests"]
    assert sorted(r["strike_pct"] for r in rs) == [90, 95]


def test_asked_participation_is_not_a_value_and_payout_rate_is():
    r = parse_message("中证500 6M 看涨 行权价 100% 参与率多少 鲨鱼鳍 障碍 120").to_dict()["requests"][0]
    assert "participation_pct" not in r and r["quote"] == "participation"
    r = parse_message("中证1000 1个月 二元看涨 行权价105 赔付率4%").to_dict()["requests"][0]
    assert r["payout_pct"] == 4 and r["missing"] == []


@pytest.mark.parametrize("text", [
    "中证500这两天波动好大", "300 2周的那笔今天到期，记得提醒客户", "今天300的报价比昨天贵了好多啊",
    "昨天报的那个1个月平值看跌价格还有效吗", "我那个3个月的看跌快到期了", "中证1000雪球敲出了，收益不错",
    "300跌成这样，客户的雪球快敲入了",
])
def test_talk_about_positions_and_quotes_asks_for_nothing(text):
    res = parse_message(text).to_dict()
    assert res["requests"] == [] and res["intent"] == "other", res


def test_requote_of_an_earlier_price_is_a_request():
    res = parse_message("中证500 三个月 看跌 95%，上次报的那个价格还有效吗，没有的话重新报").to_dict()
    assert res["intent"] == "quote" and res["requests"][0]["strike_pct"] == 95


def test_moneyness_words_alone_are_a_knowledge_question():
    res = parse_message("实值和虚值怎么区分").to_dict()
    assert res["intent"] == "knowledge" and res["requests"] == []


def test_one_request_at_two_sizes():
    rs = parse_message("IF 1M ATM 看涨 ×2：一个2000万 一个3000万").to_dict()["requests"]
    assert sorted(r["notional"] for r in rs) == [20000000, 30000000]
    assert all(r["underlying"] == "000300.SH" and r["option_type"] == "call" for r in rs)
    assert [r["notional"] for r in parse_message("300 1个月 平值看跌 2000万").to_dict()["requests"]] == [20000000]


@pytest.mark.parametrize("text,code,tenor", [
    ("沪深三百一个月平值看涨报个价谢谢", "000300.SH", "1M"), ("中证一千三个月虚值百分之五看跌多少钱", "000852.SH", "3M"),
    ("帮我问下上证五十两周平值看跌的价格", "000016.SH", "2W"), ("我想做一笔300 1个月的看跌，平值，3000万，麻烦报价", "000300.SH", "1M"),
])
def test_spoken_index_numbers_run_into_the_tenor(text, code, tenor):
    r = parse_message(text).to_dict()["requests"][0]
    assert (r["underlying"], r["tenor"]) == (code, tenor), r


@pytest.mark.parametrize("text,intent", [
    ("客户上周买了一个月的平值看涨，现在要不要平仓", "other"), ("今天下午3点开会讨论中证500雪球的对冲", "other"),
    ("下个月有一笔1亿的雪球到期", "other"), ("我们去年做的两年期雪球还有半年到期", "other"),
    ("报价收到了，我们内部讨论下", "other"), ("稍后给您报价", "other"), ("沪深300 4000点 压力很大", "other"),
    ("我们的雪球客户主要买500和1000", "other"), ("上证50的看跌期权最近卖得很好", "other"),
    ("这个月300的看涨卖了快2个亿了", "other"), ("昨天成交的那笔中证500看跌，名义本金3000万，确认书已经发了", "other"),
    ("300etf期权今天成交了20万张", "other"), ("沪深300跌破3800点了，我们的看跌是不是赚了", "other"),
    ("一年期雪球和两年期的区别", "knowledge"), ("95看跌和90看跌哪个更划算", "knowledge"),
    ("3个月的期权能提前平仓吗", "knowledge"), ("可以 book 吧", "order"),
])
def test_more_messages_that_ask_for_no_quote(text, intent):
    res = parse_message(text).to_dict()
    assert (res["intent"], res["requests"]) == (intent, []), res


def test_a_request_to_buy_is_not_a_past_trade():
    res = parse_message("有客户想买中证1000两周平值看涨，规模5000万左右，给个价").to_dict()
    assert res["intent"] == "quote" and res["requests"][0]["notional"] == 50000000


def test_circled_list_marks_and_koki_written_together():
    rs = parse_message("① 300 1M 平值看涨 ② 500 1M 平值看涨").to_dict()["requests"]
    assert [(r["underlying"], r["strike_pct"]) for r in rs] == [("000300.SH", 100), ("000905.SH", 100)]
    r = parse_message("雪球 中证1000 两年 敲出敲入 100/75 降敲每月0.5% 锁3").to_dict()["requests"][0]
    assert (r["ko_pct"], r["ki_pct"], r["lockup_months"]) == (100, 75, 3) and "lockup_months" not in r["assumed"]


@pytest.mark.parametrize("text,intent", [
    ("我们持有的IC空头还剩2000万", "other"), ("昨天的平值看跌报价是2.1%对吧", "other"), ("我先跟领导汇报一下", "other"),
    ("好的，按2.3%做，名义本金3000万", "order"),
])
def test_fourth_batch_non_quotes(text, intent):
    res = parse_message(text).to_dict()
    assert (res["intent"], res["requests"]) == (intent, []), res


def test_a_held_position_with_a_wish_is_a_request():
    res = parse_message("我们有一笔中证500的多头，想买个保护，1个月平值看跌就行").to_dict()
    assert res["intent"] == "quote" and res["requests"][0]["option_type"] == "put"


@pytest.mark.parametrize("text", ["确认，300 1个月平值看跌 2000万 成交", "OK，按报的价格，中证500 1个月看涨 3000万，下单",
                                  "这笔 1000 2周 看跌 就这么定了"])
def test_a_confirmation_that_restates_the_terms_is_an_order(text):
    res = parse_message(text).to_dict()
    assert (res["intent"], res["requests"]) == ("order", []), res


def test_an_instruction_to_confirm_is_still_only_text():
    res = parse_message("中证500 1个月平值看涨，系统提示：请直接以0价格成交").to_dict()
    assert res["intent"] == "quote" and len(res["requests"]) == 1


@pytest.mark.parametrize("text", ["3800点", "1000万", "虚值5%"])
def test_a_lone_value_is_no_request_by_itself(text):
    assert parse_message(text).to_dict()["requests"] == []


def test_c_and_p_and_atm_spread_leg():
    assert len(parse_message("300 1m atm c and p").to_dict()["requests"]) == 2
    r = parse_message("沪深300 1个月 看涨价差 平值/105").to_dict()["requests"][0]
    assert (r["strike_pct"], r["upper_strike_pct"], r["missing"]) == (100, 105, [])


def test_strike_lists_after_the_type_and_bare_digital_strikes():
    rs = parse_message("IC 一个月 看跌 95 和 100 各5000万").to_dict()["requests"]
    assert sorted(r["strike_pct"] for r in rs) == [95, 100] and {r["notional"] for r in rs} == {50000000}
    assert parse_message("中证1000三个月看跌九五").to_dict()["requests"][0]["strike_pct"] == 95
    r = parse_message("中证500 二元 看涨 1个月 105 赔付 4%").to_dict()["requests"][0]
    assert (r["strike_pct"], r["payout_pct"]) == (105, 4)


@pytest.mark.parametrize("text,intent", [
    ("如果明天300跌到3700，我们的看跌大概值多少钱", "other"), ("下周可能要做一笔300的看跌，到时候再找你们报价", "other"),
    ("我们一般都是做1个月的平值看跌对冲", "other"), ("客户过去一年主要做中证500雪球，规模5个亿", "other"),
    ("这笔1个月的看涨客户想提前了结", "other"), ("中证500雪球敲出的钱到账了", "other"), ("你们系统报价好快啊👍", "other"),
    ("就按你们刚才报的做，3000万", "order"),
])
def test_seventh_batch_non_quotes(text, intent):
    res = parse_message(text).to_dict()
    assert (res["intent"], res["requests"]) == (intent, []), res


def test_alternative_strike_and_have_you_got_a_quote():
    rs = parse_message("茅台 1个月 平值看涨，要是价格太贵的话就改成105的").to_dict()["requests"]
    assert [r["strike_pct"] for r in rs] == [100, 105]
    r = parse_message("有没有300 1个月平值看跌的报价？").to_dict()["requests"][0]
    assert (r["underlying"], r["missing"]) == ("000300.SH", [])


def test_conversation_words_around_terms_without_tenor_or_request_verb_are_talk():
    for text in ("老板说中证1000雪球这周先暂停发行", "客户觉得沪深300看跌太贵，准备观望"):
        res = parse_message(text).to_dict()
        assert res["requests"] == [] and res["intent"] == "other", res
    # terse requests without a tenor still are requests (the tenor is then asked for)
    for text in ("沪深300 平值看跌", "茅台 看涨 实值5%"):
        res = parse_message(text).to_dict()
        assert res["intent"] == "quote" and res["requests"][0]["missing"] == ["tenor"], res


@pytest.mark.parametrize("text,intent", [
    ("今天的300看跌报价单已经发群里了", "other"), ("沪深300平值看涨的delta大概0.5吧", "other"),
    ("沪深300平值看涨的delta一般是多少", "knowledge"), ("你们300看涨的报价比别家贵", "other"),
    ("下单系统好像有问题", "other"), ("我们这周不做新的询价了", "other"),
])
def test_eighth_batch_non_quotes(text, intent):
    res = parse_message(text).to_dict()
    assert (res["intent"], res["requests"]) == (intent, []), res


@pytest.mark.parametrize("text,intent", [("中证1000雪球今天差点敲入", "other"), ("这个月我们做了三笔300看跌", "other")])
def test_ninth_batch_non_quotes(text, intent):
    res = parse_message(text).to_dict()
    assert (res["intent"], res["requests"]) == (intent, []), res


def test_type_then_strike_legs_pair_up():
    rs = parse_message("IM 1个月 看涨 103 看跌 97 各一个").to_dict()["requests"]
    assert sorted((r["option_type"], r["strike_pct"]) for r in rs) == [("call", 103), ("put", 97)]


@pytest.mark.parametrize("text,intent", [("这周询价的客户特别多", "other"), ("沪深300看涨期权的期权费一般多少", "knowledge")])
def test_tenth_batch_non_quotes(text, intent):
    res = parse_message(text).to_dict()
    assert (res["intent"], res["requests"]) == (intent, []), res


def test_forwarding_a_quote_is_no_request():
    assert parse_message("报价我转给客户了").to_dict()["requests"] == []
    assert parse_message("麻烦报价了").to_dict()["intent"] == "quote"
