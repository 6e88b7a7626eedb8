"""Option quotes → fitted surfaces in the market-data store → the desk's quote path and review card."""
from __future__ import annotations

import datetime as dt
import math

import pytest

from otcdesk.agents.quote_card import describe_vol_used
from otcdesk.app.market import market_for
from otcdesk.app.quoting import price_request
from otcdesk.app.trading.market_data import FeedError
from otcdesk.app.trading.vol_surfaces import OptionQuotesCsv, VolSurfaceStore, fit_quotes
from otcdesk.pricing_engine.analytic_vanilla import bs_price

DAY = dt.date(2026, 11, 20)
SPOT, RATE, DIV = 3950.0, 0.018, 0.025


def _true_vol(k_pct, T):
    k = math.log(k_pct / 100)
    return 0.18 - 0.25 * k * (T / 0.25) ** -0.3 + 0.3 * k * k


def _csv(bad: str = "") -> str:
    rows = ["date,underlying,expiry,strike,type,price,iv,spot,rate,div,source"]
    for exp in ("2026-12-18", "2027-03-19", "2027-06-18"):
        T = (dt.date.fromisoformat(exp) - DAY).days / 365
        for k_pct in (80, 85, 90, 95, 100, 105, 110, 115, 120):
            K = SPOT * k_pct / 100
            v = _true_vol(k_pct, T)
            for kind in ("call", "put"):  # both sides: the loader keeps the out-of-the-money one
                p = SPOT * bs_price(kind, 1.0, k_pct / 100, T, RATE, DIV, v)
                rows.append(f"2026-11-20,000300.SH,{exp},{K:.2f},{kind},{p:.6f},,{SPOT},{RATE},{DIV},CFFEX IO (test)")
    rows.append("2026-11-20,510300.SH,2027-03-25,4.2,认购,,0.185,4.0,0.018,0.02,SSE ETF")
    return "\n".join(rows + ([bad] if bad else [])) + "\n"


def test_option_quotes_are_fitted_and_stored_then_priced_on(tmp_path):
    with pytest.raises(FeedError) as ei:  # too few strikes for the ETF: refused, nothing stored
        fit_quotes(OptionQuotesCsv(text=_csv(), today=DAY).quotes(), {})
    assert any("510300.SH" in e["error"] and "three strikes" in e["error"] for e in ei.value.errors)
    text = _csv().replace("2026-11-20,510300.SH,2027-03-25,4.2,认购,,0.185,4.0,0.018,0.02,SSE ETF\n", "")
    docs = fit_quotes(OptionQuotesCsv(text=text, today=DAY).quotes(), {})
    doc = docs["000300.SH"]
    assert doc["arbitrage"] == {"butterfly": [], "calendar": []} and doc["quotes"] == 54
    # the stored grid reproduces the quotes' implied vols (prices → vols → SVI → grid)
    i = doc["strikes_pct"].index(90)
    T = (dt.date(2027, 3, 19) - DAY).days / 365
    assert doc["vols"][1][i] == pytest.approx(_true_vol(90, T), abs=1e-3)
    store = VolSurfaceStore(tmp_path)
    store.put("000300.SH", doc)
    grid = store.contract_for("000300.SH", "2026-12-20")  # the December expiry has gone
    assert grid["expiries"] == ["2027-03-19", "2027-06-18"] and "CFFEX" in grid["name"]
    assert VolSurfaceStore(None).contract_for("000300.SH", DAY.isoformat())["name"].startswith("demo:")


def test_a_bad_quote_row_is_refused_with_its_line():
    bad = "2026-11-20,000300.SH,2026-12-18,3900,put,9999,,3950,0.018,0.025,x"
    with pytest.raises(FeedError) as ei:
        fit_quotes(OptionQuotesCsv(text=_csv(bad), today=DAY).quotes(), {})
    assert any(e["line"] and "no-arbitrage range" in e["error"] for e in ei.value.errors)
    with pytest.raises(FeedError) as ei:
        OptionQuotesCsv(text="underlying,expiry,strike,type,premium\n", today=DAY).quotes()
    assert "premium" in ei.value.errors[0]["error"]


def test_the_desk_quote_path_uses_the_stored_surface_and_the_card_says_which_vol():
    snap = {"as_of": "2026-11-20", "source": "SIMULATED", "rate": RATE, "underlyings": {
        "000905.SH": {"name": "中证500", "spot": 6050.0, "vol": 0.22, "div": 0.015,
                      "vol_surface": VolSurfaceStore().stored("000905.SH")}}}
    req = {"underlying": "000905.SH", "structure": "snowball", "tenor": "12M", "ko_pct": 103, "ki_pct": 75,
           "quote": "coupon", "notional": 10_000_000}
    line = price_request(req, snapshot=snap, valuation_date=DAY, greeks=False)
    assert "error" not in line, line.get("error")
    used = line["vol_used"]
    assert used["vol_model"] == "local_vol" and "SIMULATED" in used["surface"]
    assert used["vol_at_knock_in"] > used["vol_at_strike"] + 0.03  # the knock-in put sits down the skew
    note = describe_vol_used(line)
    assert line["vol_note"] == note and used["surface"] in note and "敲入 75%" in note and "局部波动率" in note
    flat_snap = {**snap, "underlyings": {"000905.SH": {k: v for k, v in snap["underlyings"]["000905.SH"].items()
                                                       if k != "vol_surface"}}}
    flat = price_request(req, snapshot=flat_snap, valuation_date=DAY, greeks=False)
    assert flat["vol_used"]["vol_model"] == "flat" and "无曲面" in flat["vol_note"]
    assert abs(flat["solved"]["coupon_pct"] - line["solved"]["coupon_pct"]) > 0.5
    # the risk book reads the same snapshot flat: market_for without with_surface carries no surface
    assert "vol_surface" not in market_for("000905.SH", snap)
