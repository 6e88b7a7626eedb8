"""The `mc` engine against QuantLib, computed in the test run: within 3 standard errors.

The tolerance is 3 x sqrt(se_mc^2 + se_ref^2), se_ref = 0 for QuantLib's closed forms and its
own error estimate for QuantLib's Monte Carlo.
"""
from __future__ import annotations

import datetime as dt
import math

import pytest

ql = pytest.importorskip("QuantLib")

from otcdesk.pricing_engine.engines import EngineOptions  # noqa: E402
from otcdesk.pricing_engine.mc_engine import MCEngine  # noqa: E402
from otcdesk.pricing_engine.models import MarketSpec  # noqa: E402
from otcdesk.pricing_engine.products import product_from_dict  # noqa: E402

VAL = dt.date(2026, 11, 20)
MAT = dt.date(2027, 5, 20)  # a trading day: no roll
SPOT, R, Q, VOL = 100.0, 0.03, 0.01, 0.25
MODEL = MarketSpec(spot=SPOT, vol=VOL, rate=R, div=Q).to_model()
ENGINE = MCEngine()


def _qd(d: dt.date):
    return ql.Date(d.day, d.month, d.year)


def _process():
    today = _qd(VAL)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    return ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(SPOT)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, Q, dc)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, R, dc)),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), VOL, dc)))


def _mc(product: dict, paths=100_000, seed=11, greeks=False, **opts):
    p = product_from_dict(dict(product, maturity_date=MAT.isoformat(), start_date=VAL.isoformat()))
    return ENGINE.price(p, MODEL, VAL, EngineOptions(paths=paths, seed=seed, greeks=greeks, **opts))


def _within(res, ref, ref_se=0.0, k=3.0):
    tol = k * math.hypot(res.stderr, ref_se)
    assert abs(res.price - ref) <= tol, f"mc {res.price:.6f} vs ref {ref:.6f}: |diff| > {tol:.6f}"
    assert res.stderr > 0


def _ql_vanilla(kind, strike, payoff=None):
    t = ql.Option.Call if kind == "call" else ql.Option.Put
    opt = ql.VanillaOption(payoff or ql.PlainVanillaPayoff(t, strike), ql.EuropeanExercise(_qd(MAT)))
    opt.setPricingEngine(ql.AnalyticEuropeanEngine(_process()))
    return opt


@pytest.mark.parametrize("kind,strike", [("call", 100.0), ("put", 95.0), ("call", 120.0)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_vanilla_matches_quantlib(kind, strike, dtype):
    res = _mc({"structure": "vanilla", "option_type": kind, "strike_pct": strike}, dtype=dtype)
    _within(res, _ql_vanilla(kind, strike).NPV() / SPOT)
    assert res.engine == "mc" and res.diagnostics["paths"] == 100_000


@pytest.mark.parametrize("kind", ["call", "put"])
def test_digital_matches_quantlib(kind):
    t = ql.Option.Call if kind == "call" else ql.Option.Put
    ref = _ql_vanilla(kind, 105.0, ql.CashOrNothingPayoff(t, 105.0, 1.0)).NPV()
    _within(_mc({"structure": "digital", "option_type": kind, "strike_pct": 105, "payout_pct": 100}), ref)


def test_spread_matches_quantlib():
    ref = (_ql_vanilla("call", 95.0).NPV() - _ql_vanilla("call", 110.0).NPV()) / SPOT
    _within(_mc({"structure": "spread", "option_type": "call", "strike_pct": 95, "upper_strike_pct": 110}), ref)


def _ql_geometric_asian(rs):
    fix = [VAL + dt.timedelta(days=round(t * 365)) for t in rs.fixing_times]
    opt = ql.DiscreteAveragingAsianOption(ql.Average.Geometric, 1.0, 0, [_qd(d) for d in fix],
                                          ql.PlainVanillaPayoff(ql.Option.Call, 100.0), ql.EuropeanExercise(_qd(MAT)))
    opt.setPricingEngine(ql.AnalyticDiscreteGeometricAveragePriceAsianEngine(_process()))
    return opt.NPV() / SPOT


@pytest.mark.parametrize("sobol", [False, True])
def test_geometric_asian_matches_quantlib_analytic(sobol):
    """Daily fixings: 120-odd dimensions; with Sobol the Brownian bridge orders them."""
    p = product_from_dict({"structure": "asian", "option_type": "call", "strike_pct": 100, "averaging": "geometric",
                           "fixings": "daily", "maturity_date": MAT.isoformat(), "start_date": VAL.isoformat()})
    rs = p.resolve(VAL, MODEL)
    res = ENGINE.price(p, MODEL, VAL, EngineOptions(paths=32_768 if sobol else 100_000, seed=5, greeks=False,
                                                    sobol=sobol, dtype="float64"))
    _within(res, _ql_geometric_asian(rs))
    assert res.diagnostics["sobol"] is sobol and res.diagnostics["steps"] == len(rs.fixing_times)


def test_put_call_parity_and_digital_parity():
    call = _mc({"structure": "vanilla", "option_type": "call", "strike_pct": 100})
    put = _mc({"structure": "vanilla", "option_type": "put", "strike_pct": 100})
    T = (MAT - VAL).days / 365
    fwd = math.exp(-Q * T) - math.exp(-R * T)
    assert abs(call.price - put.price - fwd) <= 3 * math.hypot(call.stderr, put.stderr)
    dc = _mc({"structure": "digital", "option_type": "call", "strike_pct": 100})
    dp = _mc({"structure": "digital", "option_type": "put", "strike_pct": 100})
    assert abs(dc.price + dp.price - math.exp(-R * T)) <= 3 * math.hypot(dc.stderr, dp.stderr)


def test_vanilla_greeks_match_quantlib_in_contract_units():
    res = _mc({"structure": "vanilla", "option_type": "call", "strike_pct": 100}, paths=200_000, greeks=True,
              dtype="float64")
    opt = _ql_vanilla("call", 100.0)
    g = res.greeks
    assert g["delta"] == pytest.approx(opt.delta(), abs=0.01)
    assert g["gamma"] == pytest.approx(opt.gamma() * SPOT, rel=0.1)
    assert g["vega"] == pytest.approx(opt.vega() / 100 / SPOT, rel=0.05)
    assert g["rho"] == pytest.approx(opt.rho() / 100 / SPOT, rel=0.05)
    assert g["theta"] == pytest.approx(opt.thetaPerDay() / SPOT, abs=2e-5)


BARRIERS = {"up_out": ql.Barrier.UpOut, "up_in": ql.Barrier.UpIn, "down_out": ql.Barrier.DownOut,
            "down_in": ql.Barrier.DownIn}


@pytest.mark.parametrize("btype", list(BARRIERS))
@pytest.mark.parametrize("kind", ["call", "put"])
def test_continuous_barriers_match_quantlib_with_bgk_correction(btype, kind):
    h = 120.0 if btype.startswith("up") else 85.0
    rebate = 1.0  # 1% of notional
    t = ql.Option.Call if kind == "call" else ql.Option.Put
    opt = ql.BarrierOption(BARRIERS[btype], h, rebate, ql.PlainVanillaPayoff(t, 100.0), ql.EuropeanExercise(_qd(MAT)))
    opt.setPricingEngine(ql.AnalyticBarrierEngine(_process()))
    res = _mc({"structure": "barrier", "option_type": kind, "strike_pct": 100, "barrier_pct": h, "barrier_type": btype,
               "rebate_pct": rebate, "barrier_monitoring": "continuous"}, paths=60_000)
    _within(res, opt.NPV() / SPOT)
    assert res.diagnostics["steps"] >= 120  # a 252-per-year grid for continuous monitoring


@pytest.mark.parametrize("direction,h", [("up", 115.0), ("down", 88.0)])
def test_in_out_parity_daily_monitoring(direction, h):
    """Same paths: knock-in + knock-out = vanilla exactly, path by path (no rebate)."""
    prods = [{"structure": "barrier", "option_type": "call", "strike_pct": 100, "barrier_pct": h,
              "barrier_type": f"{direction}_{io}", "barrier_monitoring": "daily"} for io in ("in", "out")]
    prods.append({"structure": "vanilla", "option_type": "call", "strike_pct": 100})
    opts = EngineOptions(paths=20_000, seed=3, greeks=False, dtype="float64")
    specs = [product_from_dict(dict(p, maturity_date=MAT.isoformat(), start_date=VAL.isoformat())) for p in prods]
    # a daily grid for the vanilla too, so all three see the same paths: price them as one batch
    ki, ko, van = ENGINE.price_many(specs, [MODEL] * 3, VAL, opts)
    ref = _ql_vanilla("call", 100.0).NPV() / SPOT
    assert abs(ki.price + ko.price - ref) <= 3 * math.hypot(ki.stderr, ko.stderr)
    _within(van, ref)


def test_arithmetic_asian_control_variate_matches_quantlib_mc():
    p = product_from_dict({"structure": "asian", "option_type": "call", "strike_pct": 100, "fixings": "monthly",
                           "maturity_date": MAT.isoformat(), "start_date": VAL.isoformat()})
    rs = p.resolve(VAL, MODEL)
    fix = [VAL + dt.timedelta(days=round(t * 365)) for t in rs.fixing_times]
    opt = ql.DiscreteAveragingAsianOption(ql.Average.Arithmetic, 0.0, 0, [_qd(d) for d in fix],
                                          ql.PlainVanillaPayoff(ql.Option.Call, 100.0), ql.EuropeanExercise(_qd(MAT)))
    opt.setPricingEngine(ql.MCDiscreteArithmeticAPEngine(_process(), "pseudorandom", requiredSamples=20_000,
                                                         controlVariate=True, seed=42))
    res = ENGINE.price(p, MODEL, VAL, EngineOptions(paths=20_000, seed=5, greeks=False))
    _within(res, opt.NPV() / SPOT, opt.errorEstimate() / SPOT)
    plain_sd = 0.1 / math.sqrt(20_000)  # a plain estimator's error is ~ payoff sd / sqrt(n), sd ~ 0.1 here
    assert res.stderr < plain_sd / 10, "the geometric control variate should cut the error by >10x"
