"""`pricing_engine.api.price`: the CONTRACTS.md document, QuoteRequest input, side, solvers, refusals."""
from __future__ import annotations

import dataclasses

import pytest

from otcdesk.pricing_engine.api import price
from otcdesk.pricing_engine.engines import EngineOptions, select_engine
from otcdesk.pricing_engine.errors import (NoSolutionError, PricingError, UnsupportedMarketError,
                                           UnsupportedProductError)
from otcdesk.pricing_engine.products import BUILTIN_SPECS, product_from_dict

VD = "2026-11-20"
MK = {"spot": 4000.0, "vol": 0.2, "rate": 0.02, "div": 0.0}


def _p(product, **kw):
    return price({"product": product, "market": kw.pop("market", MK), "valuation_date": kw.pop("vd", VD), **kw})


def test_quote_request_from_parser_prices_with_contract_fields():
    qr = {"underlying": "000300.SH", "underlying_name": "沪深300", "structure": "vanilla", "option_type": "put",
          "tenor": "2W", "strike_pct": 100, "notional": 10_000_000, "side": "client_buys", "quote": "price",
          "missing": [], "assumed": ["strike_pct"]}
    d = _p(qr)
    for k in ("price", "price_pct", "pv", "stderr", "greeks", "engine", "solved", "diagnostics"):
        assert k in d
    assert d["engine"] == "analytic" and d["stderr"] is None
    assert d["price_pct"] == pytest.approx(100 * d["price"])
    assert d["pv"] == pytest.approx(d["price"] * 10_000_000)
    assert set(d["greeks"]) == {"delta", "gamma", "vega", "theta", "rho"}
    assert -0.6 < d["greeks"]["delta"] < -0.4 and d["greeks"]["theta"] < 0
    assert {"paths", "steps", "elapsed_s"} <= set(d["diagnostics"])
    # tenor counted from the valuation date, rolled to a trading day; initial price = spot
    assert d["product"]["initial_price"] == 4000.0 and d["product"]["start_date"] == VD
    sells = _p({**qr, "side": "client_sells"})
    assert sells["price"] == pytest.approx(-d["price"])
    assert sells["greeks"]["delta"] == pytest.approx(-d["greeks"]["delta"])


def test_round_trip_serialisation_every_structure():
    samples = {
        "vanilla": {"option_type": "call", "strike_pct": 105, "participation_pct": 80},
        "spread": {"option_type": "call", "strike_pct": 100, "upper_strike_pct": 110},
        "digital": {"option_type": "put", "strike_pct": 95, "payout_pct": 10},
        "barrier": {"option_type": "call", "strike_pct": 100, "barrier_pct": 120, "barrier_type": "up_out",
                    "rebate_pct": 1},
        "sharkfin": {"option_type": "call", "barrier_pct": 115, "rebate_pct": 2, "barrier_monitoring": "daily"},
        "double_sharkfin": {"barrier_pct": 110, "lower_barrier_pct": 90, "rebate_pct": 1},
        "asian": {"option_type": "call", "averaging": "arithmetic", "fixings": "monthly"},
        "snowball": {"ko_pct": 103, "ki_pct": 75, "coupon_pct": 15, "ko_stepdown_pct": 0.5, "loss_cap_pct": 30},
        "phoenix": {"ko_pct": 100, "ki_pct": 70, "coupon_barrier_pct": 75, "coupon_pct": 10, "memory": True},
        "airbag": {"ki_pct": 80, "participation_pct": 70},
    }
    assert set(samples) == set(BUILTIN_SPECS)
    for structure, fields in samples.items():
        d = {"structure": structure, "tenor": "6M", "notional": 1e6, **fields}
        spec = product_from_dict(d)
        again = product_from_dict(spec.to_dict())
        assert again == spec and again.to_dict() == spec.to_dict()
        for k, v in fields.items():
            assert spec.to_dict()[k] == v
        with pytest.raises(dataclasses.FrozenInstanceError):
            spec.tenor = "1M"  # frozen


def test_auto_engine_choice():
    assert _p({"structure": "vanilla", "option_type": "call", "tenor": "1M"})["engine"] == "analytic"
    assert _p({"structure": "barrier", "option_type": "call", "barrier_pct": 110, "barrier_type": "up_out",
               "tenor": "1M"})["engine"] == "analytic"
    assert _p({"structure": "snowball", "ko_pct": 103, "ki_pct": 75, "coupon_pct": 10, "tenor": "6M"},
              engine_options={"greeks": False})["engine"] == "fd"
    assert _p({"structure": "double_sharkfin", "barrier_pct": 110, "lower_barrier_pct": 90,
               "barrier_monitoring": "daily", "tenor": "3M"}, engine_options={"greeks": False})["engine"] == "fd"
    arith = product_from_dict({"structure": "asian", "option_type": "call", "tenor": "3M"})
    eng = select_engine(arith, "auto")
    assert eng.name == "mc"  # no analytic or FD engine prices an arithmetic average
    with pytest.raises(UnsupportedProductError):
        select_engine(arith, "fd")


def test_solvers_round_trip():
    van = {"structure": "vanilla", "option_type": "call", "tenor": "6M", "strike_pct": 100}
    d = _p(van, solve_for="vol", target_price_pct=7.0)
    assert d["price_pct"] == pytest.approx(7.0, abs=1e-8)
    assert _p(van, market={**MK, "vol": d["solved"]["vol"]})["price_pct"] == pytest.approx(7.0, abs=1e-8)
    d = _p(van, solve_for="strike_pct", target_price_pct=3.0)
    assert d["solved"]["strike_pct"] > 100 and d["price_pct"] == pytest.approx(3.0, abs=1e-8)
    shark = {"structure": "sharkfin", "option_type": "call", "barrier_pct": 120, "rebate_pct": 1, "tenor": "6M"}
    d = _p(shark, solve_for="participation_pct", target_price_pct=2.0)
    assert d["price_pct"] == pytest.approx(2.0, abs=1e-8)
    assert _p({**shark, "participation_pct": d["solved"]["participation_pct"]})["price_pct"] == pytest.approx(2.0, abs=1e-8)
    with pytest.raises(NoSolutionError, match="no vol"):
        _p(van, solve_for="vol", target_price_pct=150.0)
    with pytest.raises(PricingError, match="solve_for"):
        _p(van, solve_for="colour")


BAD = [
    ({"structure": "vanilla", "option_type": "call", "tenor": "1M"}, {**MK, "vol": -0.2}, "negative"),
    ({"structure": "vanilla", "option_type": "call", "tenor": "1M"}, {**MK, "vol": 0.0}, "positive"),
    ({"structure": "vanilla", "option_type": "call", "tenor": "1M"}, {**MK, "spot": -1}, "spot"),
    ({"structure": "barrier", "option_type": "call", "barrier_pct": 95, "barrier_type": "up_out", "tenor": "1M"},
     MK, "wrong side"),
    ({"structure": "barrier", "option_type": "put", "barrier_pct": 105, "barrier_type": "down_in", "tenor": "1M"},
     MK, "wrong side"),
    ({"structure": "sharkfin", "option_type": "call", "barrier_pct": 95, "barrier_monitoring": "daily",
      "strike_pct": 90, "tenor": "1M"}, MK, "wrong side"),
    ({"structure": "vanilla", "option_type": "call", "maturity_date": "2026-10-01"}, MK, "not after the valuation"),
    ({"structure": "snowball", "ko_pct": 100, "ki_pct": 105, "coupon_pct": 10, "tenor": "12M"}, MK,
     "below the knock-out"),
    ({"structure": "snowball", "ko_pct": 103, "ki_pct": 75, "tenor": "12M"}, MK, "coupon_pct"),
    ({"structure": "vanilla", "tenor": "1M"}, MK, "option_type"),
    ({"structure": "vanilla", "option_type": "straddle", "tenor": "1M"}, MK, "call or put"),
    ({"structure": "vanilla", "option_type": "call"}, MK, "maturity_date or a tenor"),
    ({"structure": "vanilla", "option_type": "call", "tenor": "1M", "notional": -5}, MK, "notional"),
    ({"structure": "vanilla", "option_type": "call", "tenor": "1M", "side": "both"}, MK, "side"),
    ({"structure": "vanilla", "option_type": "call", "tenor": "1M", "strike_pct": "abc"}, MK, "strike_pct"),
    ({"structure": "rainbow", "tenor": "1M"}, MK, "unknown structure"),
    ({"structure": "spread", "option_type": "call", "strike_pct": 100, "upper_strike_pct": 100, "tenor": "1M"},
     MK, "two different"),
    ({"structure": "double_sharkfin", "barrier_pct": 95, "lower_barrier_pct": 90, "tenor": "1M"}, MK,
     "lower_barrier_pct < strike_pct"),
    ({"structure": "ki_put", "ki_pct": 120, "tenor": "1M"}, MK, "below"),
]


@pytest.mark.parametrize("product,market,reason", BAD)
def test_bad_input_is_refused_with_a_reason(product, market, reason):
    with pytest.raises(PricingError, match=reason) as ei:
        _p(product, market=market)
    assert isinstance(ei.value, ValueError) and str(ei.value)


def test_refusals_outside_the_product():
    van = {"structure": "vanilla", "option_type": "call", "tenor": "1M"}
    with pytest.raises(PricingError, match="market is missing"):
        price({"product": van, "valuation_date": VD})
    with pytest.raises(PricingError, match="product is missing"):
        price({"market": MK, "valuation_date": VD})
    with pytest.raises(PricingError, match="engine must be"):
        _p(van, engine="quantum")
    with pytest.raises(UnsupportedProductError, match="analytic engine does not support"):
        _p({"structure": "snowball", "ko_pct": 103, "ki_pct": 75, "coupon_pct": 10, "tenor": "6M"}, engine="analytic")
    with pytest.raises(UnsupportedProductError):
        _p({"structure": "asian", "option_type": "call", "tenor": "1M"}, engine="fd")
    with pytest.raises(PricingError, match="valuation_date"):
        _p(van, vd="20/11/2026")
    with pytest.raises(PricingError, match="grid_points"):
        _p(van, engine="fd", engine_options={"grid_points": 3})
    with pytest.raises(PricingError, match="has no field"):
        _p(van, solve_for="coupon_pct")


def test_engine_options_are_reported():
    d = _p({"structure": "vanilla", "option_type": "call", "tenor": "3M"}, engine="fd",
           engine_options={"grid_points": 400, "time_steps": 100, "greeks": False})
    assert d["engine"] == "fd" and d["diagnostics"]["steps"] >= 100
    assert 390 <= d["diagnostics"]["grid_points"] <= 420
    assert EngineOptions.from_dict({"paths": 1000, "foo": 1}).extra == {"foo": 1}


def test_template_declared_at_run_time_needs_no_code():
    from otcdesk.pricing_engine.templates import register_template
    register_template({
        "structure": "bonus_digital_test",
        "params": {"strike_pct": {"default": 100}, "payout_pct": {"default": 5}},
        "blocks": [{"block": "payoff", "state": "any",
                    "legs": [{"kind": "digital_call", "strike_pct": "$strike_pct", "weight_pct": "$payout_pct"}]}],
    })
    d = _p({"structure": "bonus_digital_test", "tenor": "6M", "payout_pct": 10})
    ref = _p({"structure": "digital", "option_type": "call", "tenor": "6M", "payout_pct": 10})
    assert d["engine"] == "analytic" and d["price"] == pytest.approx(ref["price"], abs=1e-12)
    with pytest.raises(PricingError, match="unknown block"):
        register_template({"structure": "evil", "params": {}, "blocks": [{"block": "__import__('os')"}]})
    with pytest.raises(PricingError, match="undeclared"):
        register_template({"structure": "evil2", "params": {},
                           "blocks": [{"block": "knock_in", "level_pct": "$os.system", "direction": "down"}]})


def test_quote_request_asking_for_a_coupon_is_solved():
    qr = {"underlying": "000905.SH", "structure": "snowball", "tenor": "12M", "ko_pct": 103, "ki_pct": 75,
          "quote": "coupon", "notional": 10_000_000}
    d = _p(qr, engine_options={"greeks": False})
    assert "coupon_pct" in d["solved"] and abs(d["price"]) < 1e-10
    assert d["product"]["coupon_pct"] == pytest.approx(d["solved"]["coupon_pct"])


def test_structures_lists_builtins_and_templates():
    from otcdesk.pricing_engine.registry import structures
    s = structures()
    assert set(BUILTIN_SPECS) <= set(s)
    assert {"ki_put", "one_touch", "stepdown_snowball"} <= set(s)
    assert all(isinstance(v, str) and v for v in s.values())


def test_output_is_strict_json_even_with_a_barrier_ladder():
    import json
    d = _p({"structure": "barrier", "option_type": "call", "barrier_pct": 110, "barrier_type": "up_out",
            "tenor": "6M", "side": "client_sells"}, engine="fd", engine_options={"greeks": False})
    text = json.dumps(d, allow_nan=False, ensure_ascii=False)
    ladder = json.loads(text)["diagnostics"]["ladder"]
    assert ladder[-1]["price"] is None and ladder[4]["price"] == pytest.approx(d["price"])


SURFACE = {"expiries": ["2027-02-19", "2027-05-21"], "strikes_pct": [90, 100, 110],
           "vols": [[0.24, 0.22, 0.21], [0.235, 0.215, 0.205]]}


@pytest.mark.parametrize("engine", ["auto", "analytic", "fd", "mc"])
def test_a_vol_surface_replaces_the_flat_vol_in_every_engine(engine):
    """CONTRACTS: `vol_surface` replaces `vol`; the engine says which vol model it used, and a vanilla at a node
    recovers the node's vol whichever engine prices it."""
    from otcdesk.pricing_engine.analytic_vanilla import bs_price
    van = {"structure": "vanilla", "option_type": "call", "strike_pct": 100, "maturity_date": "2027-02-19"}
    d = _p(van, market={**MK, "vol_surface": SURFACE}, engine=engine, engine_options={"paths": 40000, "greeks": False})
    flat = _p(van, engine=engine, engine_options={"paths": 40000, "greeks": False})
    expected = {"auto": "smile", "analytic": "smile", "fd": "local_vol", "mc": "local_vol"}[engine]
    assert d["diagnostics"]["vol_model"] == expected and flat["diagnostics"]["vol_model"] == "flat"
    T = (91 / 365)
    node = bs_price("call", 1.0, 1.0, T, 0.02, 0.0, 0.22)
    tol = 3 * d["stderr"] if d["stderr"] else 2e-4
    assert d["price"] == pytest.approx(node, abs=tol)
    assert d["price"] != pytest.approx(flat["price"], abs=1e-3)  # the flat 20% is not what priced it
    assert d["vol_used"]["surface"] and d["vol_used"]["vol_at_strike"] == pytest.approx(0.22, abs=5e-4)
    with pytest.raises(PricingError, match="solve_for vol"):  # a flat vol cannot be solved on a surface
        _p(van, market={**MK, "vol_surface": SURFACE}, engine=engine, solve_for="vol", target_price_pct=4.0)


def test_engines_called_directly_refuse_a_surface_not_fitted_against_a_date():
    from otcdesk.pricing_engine.models import MarketSpec

    model = MarketSpec.from_dict({**MK, "vol_surface": SURFACE}).to_model()
    van = product_from_dict({"structure": "vanilla", "option_type": "call", "tenor": "3M"})
    for kind in ("analytic", "fd", "mc"):
        with pytest.raises(UnsupportedMarketError, match=f"the {kind} engine cannot use market.vol_surface before"):
            select_engine(van, kind).price(van, model, VD, EngineOptions(paths=1000))


def test_market_keys_are_inputs_or_informational_anything_else_is_refused():
    van = {"structure": "vanilla", "option_type": "call", "tenor": "3M"}
    d = _p(van, market={**MK, "as_of": VD, "source": "SIMULATED demo"}, vd=None)
    assert d["market"]["as_of"] == VD and d["market"]["source"] == "SIMULATED demo" and d["valuation_date"] == VD
    assert d["price"] == _p(van)["price"]
    for key, value in (("borrow", 0.01), ("dividends", [{"date": "2027-01-05", "amount": 1.0}]), ("volatility", 0.3)):
        with pytest.raises(PricingError, match=f"market.{key} is not a market input") as ei:
            _p(van, market={**MK, key: value})
        assert ei.value.detail["field"] == f"market.{key}"
    on_surface = _p(van, market={"spot": 4000.0, "rate": 0.02, "vol_surface": SURFACE})  # vol is then optional
    assert on_surface["vol_used"]["surface"] and "vol" not in on_surface["market"]
    with pytest.raises(PricingError, match="market.vol is missing"):
        _p(van, market={"spot": 4000.0, "rate": 0.02})
