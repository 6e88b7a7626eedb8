from otcdesk.agents.quote_card import describe_request, draft_clarification, draft_onboarding, draft_quote


def test_quote_card_lists_each_line_assumptions_and_quote_id():
    req = {"underlying": "000300.SH", "underlying_name": "沪深300", "structure": "vanilla", "option_type": "put",
           "tenor": "2W", "strike_pct": 100, "notional": 10_000_000, "assumed": ["strike_pct"], "missing": []}
    lines = [{"request": req, "price_pct": 1.234, "pv": 123400.0},
             {"request": {**req, "underlying": "399006.SZ", "underlying_name": "创业板指"}, "error": "标的不在报价标的池"}]
    text = draft_quote({}, lines, "Q123")
    assert "Q123" in text and "000300.SH 沪深300 香草看跌 2W 行权100% 名义1000万：期权费 1.23%（约 12.34 万元）" in text
    assert "399006.SZ" in text and "暂无法报价" in text and "行权价按惯例假设（100%）" in text
    assert describe_request({"underlying": "000905.SH", "structure": "snowball", "tenor": "24M", "ko_pct": 103,
                             "ki_pct": 75}) == "000905.SH 雪球 24M 敲出103% 敲入75%"


def test_clarification_and_onboarding_drafts():
    parse = {"requests": [{"missing": ["tenor", "option_type"]}], "clarification": None}
    assert draft_clarification({}, parse) == "请补充期限、看涨还是看跌，我们马上报价。"
    assert draft_clarification({}, {"requests": [], "clarification": "请问期限？"}) == "请问期限？"
    assert "KYC" in draft_onboarding({}, {"institution": "某私募"}) and "某私募" in draft_onboarding({}, {"institution": "某私募"})
