"""Heston through the price contract (`market.heston`, an addition): `otcdesk price` with engine mc agrees with
QuantLib's AnalyticHestonEngine on a European call within 3 standard errors; analytic and fd refuse it with the
reason (auto picks mc); malformed parameters, Heston with a vol surface or a flat vol, and what the Heston Monte
Carlo cannot honour (solve_for vol, Sobol points, the fused kernel) are refused with the field; the book refuses it."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from otcdesk.pricing_engine.api import price
from otcdesk.pricing_engine.engines import EngineOptions, refuse_unusable_inputs
from otcdesk.pricing_engine.errors import PricingError, UnsupportedMarketError
from otcdesk.pricing_engine.heston import HestonModel, price_mc
from otcdesk.pricing_engine.mc_engine import ENGINE as MC
from otcdesk.pricing_engine.models import FLAT_INPUTS, MarketSpec
from otcdesk.pricing_engine.products import product_from_dict

from test_core_cli_price import _run  # the console script, as a subprocess

ql = pytest.importorskip("QuantLib")

VD = dt.date(2026, 11, 20)
HESTON = {"v0": 0.04, "kappa": 1.5, "theta": 0.05, "xi": 0.6, "rho": -0.7}  # Feller fails: 2κθ = 0.15 < ξ² = 0.36
MARKET = {"spot": 100.0, "rate": 0.025, "div": 0.01, "heston": HESTON}
CALL = {"structure": "vanilla", "option_type": "call", "strike_pct": 100, "tenor": "12M", "notional": 1_000_000}
GRID = {"expiries": ["2027-02-19", "2027-05-21", "2027-11-20"], "strikes_pct": [80, 90, 100, 110, 120],
        "vols": [[0.27, 0.245, 0.22, 0.20, 0.185]] * 3}


def _ql_call(maturity: dt.date) -> float:
    today = ql.Date(VD.day, VD.month, VD.year)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    proc = ql.HestonProcess(ql.YieldTermStructureHandle(ql.FlatForward(today, MARKET["rate"], dc)),
                            ql.YieldTermStructureHandle(ql.FlatForward(today, MARKET["div"], dc)),
                            ql.QuoteHandle(ql.SimpleQuote(100.0)), *(HESTON[k] for k in ("v0", "kappa", "theta",
                                                                                          "xi", "rho")))
    opt = ql.VanillaOption(ql.PlainVanillaPayoff(ql.Option.Call, 100.0),
                           ql.EuropeanExercise(ql.Date(maturity.day, maturity.month, maturity.year)))
    opt.setPricingEngine(ql.AnalyticHestonEngine(ql.HestonModel(proc)))
    return opt.NPV() / 100.0


def _req(**kw) -> dict:
    return {"product": CALL, "market": MARKET, "valuation_date": VD.isoformat(), **kw}


def test_cli_mc_european_call_vs_quantlib_analytic_heston(tmp_path):
    req = _req(engine="mc", engine_options={"paths": 200_000, "steps_per_year": 52, "seed": 11})
    rc, out, err = _run(["price", json.dumps(req)], tmp_path)
    assert rc == 0, err
    d = json.loads(out)
    mat = product_from_dict({**CALL, "start_date": VD.isoformat()}).resolve(VD, MarketSpec.from_dict(MARKET).to_model())
    ref = _ql_call(mat.maturity_date)
    assert d["engine"] == "mc" and 0 < d["stderr"] < 5e-4
    assert abs(d["price"] - ref) < 3 * d["stderr"], (d["price"], ref, d["stderr"])
    assert d["pv"] == pytest.approx(d["price"] * 1_000_000)
    diag = d["diagnostics"]
    assert diag["vol_model"] == "heston" and diag["scheme"] == "qe" and diag["paths"] == 200_000
    assert diag["feller"] == {"satisfied": False, "two_kappa_theta": pytest.approx(0.15),
                              "xi_squared": pytest.approx(0.36)}
    assert d["greeks"] is None and "not computed under Heston" in diag["greeks_note"]
    assert d["vol_used"]["vol_model"] == "heston" and d["vol_used"]["heston"] == HESTON
    assert d["market"]["heston"] == HESTON and "vol" not in d["market"]  # echoed as given
    # a flat vol of √v0 is a different price: the Heston parameters were used, not a flat vol
    flat = price({**req, "market": {"spot": 100.0, "rate": 0.025, "div": 0.01, "vol": 0.2}, "engine": "analytic"})
    assert abs(flat["price"] - d["price"]) > 5 * d["stderr"]


def test_cli_analytic_and_fd_refuse_heston_auto_picks_mc(tmp_path):
    barrier = {"structure": "barrier", "option_type": "call", "strike_pct": 100, "barrier_pct": 85,
               "barrier_type": "down_out", "tenor": "6M"}
    snowball = {"structure": "snowball", "tenor": "12M", "ko_pct": 103, "ki_pct": 75, "coupon_pct": 15}
    lines = [_req(engine="analytic"), _req(engine="fd"), {**_req(engine="analytic"), "product": barrier},
             {**_req(engine="fd"), "product": snowball},
             _req(engine="auto", engine_options={"paths": 2000, "steps_per_year": 12})]
    rc, out, err = _run(["price", "--jsonl"], tmp_path, stdin="\n".join(json.dumps(x) for x in lines) + "\n")
    assert rc == 0, err
    docs = [json.loads(x) for x in out.splitlines() if x.strip()]
    assert len(docs) == 5
    for d, eng in zip(docs[:4], ("analytic", "fd", "analytic", "fd")):
        assert d["error"].startswith(f"the {eng} engine cannot use market.heston: "), d
        assert "Monte Carlo only" in d["error"] and d["detail"]["field"] == "market.heston"
    assert docs[4]["engine"] == "mc" and docs[4]["diagnostics"]["vol_model"] == "heston"


@pytest.mark.parametrize("heston,field,words", [
    ({**HESTON, "rho": 1.0}, "market.heston.rho", "strictly between -1 and 1"),
    ({**HESTON, "rho": -1.5}, "market.heston.rho", "strictly between -1 and 1"),
    ({**HESTON, "v0": 0.0}, "market.heston.v0", "positive"),
    ({**HESTON, "kappa": -1.0}, "market.heston.kappa", "positive"),
    ({**HESTON, "theta": 0.0}, "market.heston.theta", "positive"),
    ({**HESTON, "xi": -0.3}, "market.heston.xi", "positive"),
    ({k: v for k, v in HESTON.items() if k != "xi"}, "market.heston.xi", "missing"),
    ({**HESTON, "sigma": 0.2}, "market.heston.sigma", "not a Heston parameter"),
    ({**HESTON, "v0": "fast"}, "market.heston.v0", "finite number"),
    ({**HESTON, "kappa": True}, "market.heston.kappa", "finite number"),
    ({**HESTON, "v0": 4.0, "theta": 9.0}, "market.heston.v0/theta", "variances"),
    ([0.04, 1.5, 0.05, 0.6, -0.7], "market.heston", "must be an object"),
])
def test_malformed_heston_is_refused_with_the_field(heston, field, words):
    with pytest.raises(PricingError) as ei:
        price(_req(engine="mc", market={**MARKET, "heston": heston}))
    assert ei.value.detail["field"] == field and words in ei.value.message, ei.value.message


def test_heston_with_a_vol_surface_or_a_flat_vol_is_refused(tmp_path):
    both = _req(engine="mc", market={**MARKET, "vol_surface": GRID})
    rc, out, _ = _run(["price", json.dumps(both)], tmp_path)
    d = json.loads(out)
    assert rc == 2 and "market.heston and market.vol_surface are alternatives" in d["error"]
    assert d["detail"] == {"field": "market.heston", "with": "market.vol_surface"}
    with pytest.raises(PricingError) as ei:
        price(_req(engine="mc", market={**MARKET, "vol": 0.2}))
    assert ei.value.detail == {"field": "market.heston", "with": "market.vol"}
    with pytest.raises(PricingError):  # built directly, not from a document, the same rule
        MarketSpec(spot=100.0, vol=None, vol_surface=GRID, heston=HESTON)


def test_what_heston_mc_cannot_honour_is_refused():
    with pytest.raises(PricingError) as ei:
        price(_req(engine="mc", solve_for="vol", target_price_pct=8.0))
    assert ei.value.detail["field"] == "solve_for" and "market.heston" in ei.value.message
    for opts, field in (({"sobol": True}, "engine_options.sobol"),
                        ({"mc_kernel": "fused"}, "engine_options.mc_kernel")):
        with pytest.raises(PricingError) as ei:
            price(_req(engine="mc", engine_options={"paths": 1000, **opts}))
        assert ei.value.detail["field"] == field
    with pytest.raises(UnsupportedMarketError) as ei:  # book revaluation: flat vols only
        refuse_unusable_inputs("book revaluation", FLAT_INPUTS, MarketSpec.from_dict(MARKET).to_model())
    assert ei.value.detail["field"] == "market.heston"


def test_mc_engine_prices_a_mixed_batch_each_on_its_own_model():
    """price_many with a flat and a Heston model: the Heston one is heston.price_mc's price, the flat one the
    GBM Monte Carlo's, and Feller is reported satisfied when 2κθ ≥ ξ²."""
    spec = product_from_dict({**CALL, "start_date": VD.isoformat(), "initial_price": 100.0})
    h = HestonModel(spot=100.0, v0=0.04, kappa=2.0, theta=0.04, xi=0.3, rho=-0.5, rate=0.025, div=0.01)
    gbm = MarketSpec.from_dict({"spot": 100.0, "vol": 0.2, "rate": 0.025, "div": 0.01}).to_model(VD)
    opts = EngineOptions(paths=4000, steps_per_year=12, seed=3, greeks=False, mc_kernel="numpy")
    flat_r, hes_r = MC.price_many([spec, spec], [gbm, h], VD, opts)
    assert hes_r.price == price_mc(spec, h, VD, opts).price and hes_r.diagnostics["vol_model"] == "heston"
    assert hes_r.diagnostics["feller"]["satisfied"] is True
    assert flat_r.price == MC.price(spec, gbm, VD, opts).price and flat_r.diagnostics["vol_model"] == "flat"
    assert flat_r.price != hes_r.price
