"""`app.quoting.price_request`: a parsed QuoteRequest priced on the stored snapshot, the coupon rule left to
`pricing_engine.api.solve_field`."""
from __future__ import annotations

import datetime as dt

import pytest

from otcdesk.app.quoting import price_request

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
