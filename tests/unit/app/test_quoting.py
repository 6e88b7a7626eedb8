"""`app.quoting`: a parsed QuoteRequest priced on the stored snapshot (the coupon rule left to
`pricing_engine.api.solve_field`), and the desk's quote from it through the margin table (`trading.margins`):
premium up, solved coupon or participation down, the client's reply showing the quoted numbers only."""
from __future__ import annotations

import datetime as dt
import re

import pytest

from otcdesk.agents.quote_card import draft_quote
from otcdesk.app.db import init_db, make_engine
from otcdesk.app.quoting import price_request, quote_request
from otcdesk.app.trading.margins import MarginPolicy
from otcdesk.bots.base import InboundMessage
from otcdesk.pricing_engine.api import price

VD = dt.date(2026, 11, 20)


def test_a_request_asking_for_a_coupon_gets_the_fair_coupon():
    req = {"underlying": "000905.SH", "structure": "snowball", "tenor": "12M", "ko_pct": 103, "ki_pct": 75,
           "quote": "coupon", "notional": 10_000_000, "missing": [], "assumed": ["lockup_months"]}
    line = price_request(req, valuation_date=VD)
    assert "error" not in line, line.get("error")
    assert 1 < line["solved"]["coupon_pct"] < 50 and line["price"] == pytest.approx(0.0, abs=1e-9)
    assert line["product"]["quote"] == "coupon" and line["market"]["spot"] > 0


def test_a_coupon_asked_of_a_structure_without_one_is_refused_with_the_reason():
    req = {"underlying": "000300.SH", "structure": "vanilla", "option_type": "call", "tenor": "1M", "quote": "coupon"}
    line = price_request(req, valuation_date=VD)
    assert "coupon_pct" in line["error"] and "price" not in line


# ---- the desk's quote: fair value through the margin table (trading.margins) ------------------------------------
SNOWBALL = {"underlying": "000905.SH", "structure": "snowball", "tenor": "12M", "ko_pct": 103, "ki_pct": 75,
            "quote": "coupon", "notional": 10_000_000, "lockup_months": 3, "ko_observation": "monthly",
            "missing": [], "assumed": ["lockup_months"]}
CALL = {"underlying": "000905.SH", "structure": "vanilla", "option_type": "call", "tenor": "1M", "strike_pct": 100,
        "notional": 5_000_000, "quote": "price", "side": "client_buys"}


@pytest.fixture
def policy(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'margins.db'}")
    init_db(engine)
    yield MarginPolicy(engine)
    engine.dispose()


def _numbers(text: str) -> set[str]:
    return set(re.findall(r"\d[\d,]*\.\d\d", text))


def _reprice(line: dict, **product_changes) -> float:
    """The client's value (price_pct) of the line's product with some terms changed, priced independently."""
    doc = {"product": {**line["product"], **product_changes},
           "market": {k: line["market"][k] for k in ("spot", "vol", "rate", "div")},
           "valuation_date": line["valuation_date"], "engine": line["engine"]}
    return price(doc)["price_pct"]


@pytest.mark.parametrize("side", ["client_buys", "client_sells"])
def test_a_premium_is_quoted_the_margin_above_fair(policy, side):
    fair = price_request({**CALL, "side": side}, valuation_date=VD)
    line = quote_request({**CALL, "side": side}, policy, valuation_date=VD)
    margin = policy.lookup("vanilla", 30).margin_pct
    assert margin > 0 and line["margin_pct"] == margin
    assert line["fair_price_pct"] == fair["price_pct"] and line["fair_pv"] == fair["pv"]
    assert line["price_pct"] == pytest.approx(fair["price_pct"] + margin)  # the client pays more / receives less
    assert abs(line["price_pct"]) > abs(fair["price_pct"]) if side == "client_buys" else \
        abs(line["price_pct"]) < abs(fair["price_pct"])
    assert line["pv"] == pytest.approx(line["price_pct"] / 100 * CALL["notional"])
    assert line["margin_cny"] == pytest.approx(margin / 100 * CALL["notional"])
    assert line["greeks"] == fair["greeks"] and line["solved"] == {}
    assert line["margin"] == {"structure": "vanilla", "max_tenor_days": 31, "tenor_days": 30}


def test_the_client_reply_shows_the_quoted_premium_never_the_fair_one(policy):
    line = quote_request(CALL, policy, valuation_date=VD)
    draft = draft_quote({}, [line], "Q1")
    quoted, fair = f"{line['price_pct']:.2f}%", f"{line['fair_price_pct']:.2f}%"
    assert quoted != fair and f"期权费 {quoted}" in draft and fair not in draft
    assert f"{abs(line['pv']) / 1e4:,.2f} 万元" in draft and f"{abs(line['fair_pv']) / 1e4:,.2f}" not in draft


def test_a_solved_coupon_is_solved_again_lower_by_the_margin_exactly(policy):
    fair = price_request(SNOWBALL, valuation_date=VD)
    line = quote_request(SNOWBALL, policy, valuation_date=VD)
    margin = policy.lookup("snowball", 365).margin_pct
    fair_coupon, coupon = fair["solved"]["coupon_pct"], line["solved"]["coupon_pct"]
    assert line["fair_solved"] == fair["solved"] and coupon < fair_coupon and line["margin_pct"] == margin > 0
    # the quoted terms are worth exactly the margin less to the client, on the same engine and market
    assert _reprice(line) == pytest.approx(-margin, abs=1e-6)
    assert line["quoted_value_pct"] == pytest.approx(-margin, abs=1e-6) and line["product"]["coupon_pct"] == coupon
    # which is the margin in coupon points through the annuity (the price is linear in the coupon)
    annuity = _reprice(line, coupon_pct=fair_coupon + 1.0) - _reprice(line, coupon_pct=fair_coupon)
    assert fair_coupon - coupon == pytest.approx(margin / annuity, rel=1e-6)
    # the client still pays no premium (option form): price_pct is what the client pays
    assert line["price_pct"] == line["fair_price_pct"] == pytest.approx(0.0, abs=1e-9)
    assert line["greeks"] != fair["greeks"]  # the Greeks are those of the product at the quoted coupon


def test_the_client_reply_shows_the_quoted_coupon_never_the_fair_one(policy):
    line = quote_request(SNOWBALL, policy, valuation_date=VD)
    draft = draft_quote({}, [line], "Q1")
    assert f"年化票息 {line['solved']['coupon_pct']:.2f}%" in draft
    assert f"{line['fair_solved']['coupon_pct']:.2f}" not in _numbers(draft)


def test_a_participation_solved_to_a_budget_goes_down_by_the_margin(policy):
    req = {"underlying": "000905.SH", "structure": "sharkfin", "option_type": "call", "tenor": "3M", "strike_pct": 100,
           "barrier_pct": 110}
    fair = price_request(req, valuation_date=VD, solve_for="participation_pct", target_price_pct=1.0)
    line = policy.apply(fair)
    margin = policy.lookup("sharkfin", 92).margin_pct
    assert fair["target_price_pct"] == 1.0 and line["price_pct"] == pytest.approx(1.0)  # the premium paid
    assert line["solved"]["participation_pct"] < line["fair_solved"]["participation_pct"]
    assert _reprice(line) == pytest.approx(1.0 - margin, abs=1e-6)


def test_an_error_line_passes_unchanged_and_a_quote_is_not_marked_up_twice(policy):
    bad = price_request({"underlying": "999999.XX", "tenor": "1M"}, valuation_date=VD)
    assert policy.apply(bad) is bad and "price_pct" not in bad
    line = quote_request(CALL, policy, valuation_date=VD)
    assert policy.apply(line) is line


def test_no_covering_margin_means_no_quote_with_the_reason(policy):
    policy.change([{"structure": "*", "max_tenor_days": 31, "margin_pct": 0.5}], "admin1", replace=True)
    line = quote_request(SNOWBALL, policy, valuation_date=VD)
    assert "未配置报价点差" in line["error"] and "price_pct" not in line and "solved" not in line
    assert line["fair_solved"]["coupon_pct"] > 0  # the trader still sees the fair value
    assert "暂无法报价" in draft_quote({}, [line], "Q1")


def test_an_admin_change_applies_to_the_next_quote(policy):
    before = quote_request(CALL, policy, valuation_date=VD)
    policy.change([{"structure": "vanilla", "max_tenor_days": 31, "margin_pct": 0.75}], "admin1")
    after = quote_request(CALL, policy, valuation_date=VD)
    assert before["margin_pct"] != 0.75 and after["margin_pct"] == 0.75
    assert after["price_pct"] == pytest.approx(after["fair_price_pct"] + 0.75)


def test_the_desk_drafts_the_quoted_numbers_with_fair_and_margin_on_the_item(desk_core):
    """`wiring.build_desk`'s default `price` is the desk's quote: the review item carries fair, margin and quote."""
    desk_core.inbound(InboundMessage(channel="sim", chat_id="demo", sender_id="c1", sender_name="c1",
                                     text="中证500 1个月 平值看涨 500万", platform_msg_id="m-margin"))
    desk_core.runner.drain()
    [item] = desk_core.reviews.list("pending")
    [line] = item["lines"]
    margin = desk_core.margins.lookup("vanilla", line["margin"]["tenor_days"]).margin_pct
    assert line["margin_pct"] == margin > 0 and line["price_pct"] == pytest.approx(line["fair_price_pct"] + margin)
    assert f"期权费 {line['price_pct']:.2f}%" in item["draft_reply"]
    assert f"{line['fair_price_pct']:.2f}" not in _numbers(item["draft_reply"])
