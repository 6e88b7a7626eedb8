"""Analytic and FD engines against QuantLib, computed in the test run (1e-4 of notional)."""
from __future__ import annotations

import datetime as dt

import pytest

ql = pytest.importorskip("QuantLib")

from otcdesk.pricing_engine.api import price  # noqa: E402

VAL = dt.date(2026, 11, 20)
MAT = dt.date(2027, 5, 20)  # a trading day, so no roll
SPOT, R, Q, VOL = 100.0, 0.03, 0.01, 0.25


def _ql_process(spot=SPOT, r=R, q=Q, vol=VOL):
    today = ql.Date(VAL.day, VAL.month, VAL.year)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    cal = ql.NullCalendar()
    proc = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(spot)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, q, dc)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, r, dc)),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, cal, vol, dc)))
    return proc


def _ql_date(d: dt.date):
    return ql.Date(d.day, d.month, d.year)


def _ours(product: dict, engine: str, **opts) -> dict:
    product = {"maturity_date": MAT.isoformat(), **product}
    return price({"product": product, "market": {"spot": SPOT, "vol": VOL, "rate": R, "div": Q},
                  "valuation_date": VAL.isoformat(), "engine": engine, "engine_options": {"greeks": False, **opts}})


@pytest.mark.parametrize("option_type", ["call", "put"])
@pytest.mark.parametrize("strike", [80.0, 100.0, 115.0])
@pytest.mark.parametrize("engine", ["analytic", "fd"])
def test_vanilla_vs_quantlib(option_type, strike, engine):
    opt = ql.VanillaOption(ql.PlainVanillaPayoff(ql.Option.Call if option_type == "call" else ql.Option.Put, strike),
                           ql.EuropeanExercise(_ql_date(MAT)))
    opt.setPricingEngine(ql.AnalyticEuropeanEngine(_ql_process()))
    ref = opt.NPV() / SPOT
    got = _ours({"structure": "vanilla", "option_type": option_type, "strike_pct": strike}, engine)
    assert got["engine"] == engine
    assert got["price"] == pytest.approx(ref, abs=1e-4)


@pytest.mark.parametrize("option_type", ["call", "put"])
@pytest.mark.parametrize("strike", [90.0, 105.0])
@pytest.mark.parametrize("engine", ["analytic", "fd"])
def test_digital_vs_quantlib(option_type, strike, engine):
    payoff = ql.CashOrNothingPayoff(ql.Option.Call if option_type == "call" else ql.Option.Put, strike, 1.0)
    opt = ql.VanillaOption(payoff, ql.EuropeanExercise(_ql_date(MAT)))
    opt.setPricingEngine(ql.AnalyticEuropeanEngine(_ql_process()))
    ref = opt.NPV()  # payout 1 per unit of notional
    got = _ours({"structure": "digital", "option_type": option_type, "strike_pct": strike, "payout_pct": 100}, engine)
    assert got["price"] == pytest.approx(ref, abs=1e-4)


def test_vanilla_greeks_vs_quantlib():
    opt = ql.VanillaOption(ql.PlainVanillaPayoff(ql.Option.Call, 105.0), ql.EuropeanExercise(_ql_date(MAT)))
    opt.setPricingEngine(ql.AnalyticEuropeanEngine(_ql_process()))
    for engine in ("analytic", "fd"):
        got = price({"product": {"structure": "vanilla", "option_type": "call", "strike_pct": 105,
                                 "maturity_date": MAT.isoformat()},
                     "market": {"spot": SPOT, "vol": VOL, "rate": R, "div": Q}, "valuation_date": VAL.isoformat(),
                     "engine": engine})
        g = got["greeks"]
        # CONTRACTS units: delta per unit x (= S/S0), gamma per x^2, vega per vol point, rho per 1%
        assert g["delta"] == pytest.approx(opt.delta(), abs=2e-4)
        assert g["gamma"] == pytest.approx(opt.gamma() * SPOT, rel=2e-3)
        assert g["vega"] == pytest.approx(opt.vega() / SPOT * 0.01, rel=1e-3)
        assert g["rho"] == pytest.approx(opt.rho() / SPOT * 0.01, rel=1e-3)
        assert g["theta"] == pytest.approx(opt.thetaPerDay() / SPOT, rel=0.03)


BARRIER_CASES = [
    ("down_out", "call", 100.0, 90.0), ("down_out", "call", 85.0, 90.0),
    ("down_in", "call", 100.0, 90.0), ("down_in", "call", 85.0, 90.0),
    ("up_out", "call", 100.0, 115.0), ("up_out", "call", 120.0, 115.0),
    ("up_in", "call", 100.0, 115.0), ("up_in", "call", 120.0, 115.0),
    ("down_out", "put", 100.0, 90.0), ("down_out", "put", 85.0, 90.0),
    ("down_in", "put", 100.0, 90.0), ("down_in", "put", 85.0, 90.0),
    ("up_out", "put", 100.0, 115.0), ("up_out", "put", 120.0, 115.0),
    ("up_in", "put", 100.0, 115.0), ("up_in", "put", 120.0, 115.0),
]
_QL_BT = {"down_out": "DownOut", "down_in": "DownIn", "up_out": "UpOut", "up_in": "UpIn"}


def _ql_barrier(btype, option_type, strike, barrier, rebate, engine_factory):
    opt = ql.BarrierOption(getattr(ql.Barrier, _QL_BT[btype]), barrier, rebate,
                           ql.PlainVanillaPayoff(ql.Option.Call if option_type == "call" else ql.Option.Put, strike),
                           ql.EuropeanExercise(_ql_date(MAT)))
    opt.setPricingEngine(engine_factory(_ql_process()))
    return opt.NPV() / SPOT


@pytest.mark.parametrize("btype,option_type,strike,barrier", BARRIER_CASES)
def test_continuous_barrier_all_types_vs_quantlib(btype, option_type, strike, barrier):
    rebate = 3.0
    ref = _ql_barrier(btype, option_type, strike, barrier, rebate, ql.AnalyticBarrierEngine)
    got = _ours({"structure": "barrier", "option_type": option_type, "strike_pct": strike, "barrier_pct": barrier,
                 "barrier_type": btype, "rebate_pct": rebate, "barrier_monitoring": "continuous"}, "analytic")
    assert got["price"] == pytest.approx(ref, abs=1e-6)


@pytest.mark.parametrize("btype,option_type,strike,barrier", [c for c in BARRIER_CASES if c[2] == 100.0])
def test_fd_barrier_vs_quantlib_fd(btype, option_type, strike, barrier):
    rebate = 2.0
    ref_fd = _ql_barrier(btype, option_type, strike, barrier, rebate,
                         lambda p: ql.FdBlackScholesBarrierEngine(p, 400, 800, 0))
    ref_an = _ql_barrier(btype, option_type, strike, barrier, rebate, ql.AnalyticBarrierEngine)
    got = _ours({"structure": "barrier", "option_type": option_type, "strike_pct": strike, "barrier_pct": barrier,
                 "barrier_type": btype, "rebate_pct": rebate, "barrier_monitoring": "continuous"}, "fd")
    assert got["engine"] == "fd"
    assert got["price"] == pytest.approx(ref_fd, abs=2e-4)
    assert got["price"] == pytest.approx(ref_an, abs=2e-4)


def test_discrete_geometric_asian_vs_quantlib():
    from otcdesk.pricing_engine.schedule import get_calendar
    cal = get_calendar("XSHG")
    start = VAL
    fixings = [d for d in cal.trading_days(start, MAT)]
    for option_type in ("call", "put"):
        ql_type = ql.Option.Call if option_type == "call" else ql.Option.Put
        opt = ql.DiscreteAveragingAsianOption(ql.Average.Geometric, 1.0, 0, [_ql_date(d) for d in fixings],
                                              ql.PlainVanillaPayoff(ql_type, 102.0), ql.EuropeanExercise(_ql_date(MAT)))
        opt.setPricingEngine(ql.AnalyticDiscreteGeometricAveragePriceAsianEngine(_ql_process()))
        ref = opt.NPV() / SPOT
        got = _ours({"structure": "asian", "option_type": option_type, "strike_pct": 102, "averaging": "geometric",
                     "fixings": "daily"}, "analytic")
        assert got["price"] == pytest.approx(ref, abs=1e-6)


def test_sharkfin_european_decomposition():
    """At-maturity sharkfin = call spread − digital at the barrier + rebate digital (QuantLib pieces)."""
    proc = _ql_process()
    ex = ql.EuropeanExercise(_ql_date(MAT))

    def npv(payoff):
        o = ql.VanillaOption(payoff, ex)
        o.setPricingEngine(ql.AnalyticEuropeanEngine(proc))
        return o.NPV()

    k, h, reb, part = 100.0, 120.0, 3.0, 0.8
    ref = (part * (npv(ql.PlainVanillaPayoff(ql.Option.Call, k)) - npv(ql.PlainVanillaPayoff(ql.Option.Call, h))
                   - (h - k) * npv(ql.CashOrNothingPayoff(ql.Option.Call, h, 1.0)))
           + reb * npv(ql.CashOrNothingPayoff(ql.Option.Call, h, 1.0))) / SPOT
    for engine in ("analytic", "fd"):
        got = _ours({"structure": "sharkfin", "option_type": "call", "strike_pct": k, "barrier_pct": h,
                     "rebate_pct": reb, "participation_pct": 80}, engine)
        assert got["price"] == pytest.approx(ref, abs=1e-4 if engine == "fd" else 1e-9)


def test_fd_double_sharkfin_continuous_vs_quantlib_double_barrier():
    """Continuous double knock-out (both grid ends Dirichlet) vs QuantLib's Ikeda–Kunitomo engine."""
    proc = _ql_process()
    ref = 0.0
    for t, k in ((ql.Option.Call, 105.0), (ql.Option.Put, 95.0)):
        o = ql.DoubleBarrierOption(ql.DoubleBarrier.KnockOut, 80.0, 125.0, 0.0, ql.PlainVanillaPayoff(t, k),
                                   ql.EuropeanExercise(_ql_date(MAT)))
        o.setPricingEngine(ql.AnalyticDoubleBarrierEngine(proc))
        ref += o.NPV() / SPOT
    got = _ours({"structure": "double_sharkfin", "strike_pct": 95, "upper_strike_pct": 105, "barrier_pct": 125,
                 "lower_barrier_pct": 80, "barrier_monitoring": "continuous"}, "auto")
    assert got["engine"] == "fd"
    assert got["price"] == pytest.approx(ref, abs=1e-4)


@pytest.mark.parametrize("tenor", ["1W", "2W", "1M"])
def test_fd_short_dated_digital_and_vanilla_match_closed_form(tenor):
    """Short terms get at least 100 time steps, so the digital's jump is resolved too."""
    for prod in ({"structure": "digital", "option_type": "call", "strike_pct": 102},
                 {"structure": "vanilla", "option_type": "put", "strike_pct": 98}):
        docs = {e: price({"product": {**prod, "tenor": tenor}, "market": {"spot": SPOT, "vol": VOL, "rate": R, "div": Q},
                          "valuation_date": VAL.isoformat(), "engine": e, "engine_options": {"greeks": False}})
                for e in ("analytic", "fd")}
        assert docs["fd"]["price"] == pytest.approx(docs["analytic"]["price"], abs=1e-4)


def test_mid_life_geometric_asian_vs_quantlib():
    """Monthly fixings from 2026-06-01; five already fixed (levels), the rest to come."""
    import math

    from otcdesk.pricing_engine.schedule import get_calendar, monthly_observation_dates
    cal = get_calendar("XSHG")
    start = dt.date(2026, 6, 1)
    mat = cal.roll_forward(dt.date(2027, 6, 1))
    dates = monthly_observation_dates(start, mat, 1, cal)
    past_dates = [d for d in dates if d <= VAL]
    future = [d for d in dates if d > VAL]
    past = [100.0, 101.0, 99.0, 102.0, 103.0][:len(past_dates)]
    opt = ql.DiscreteAveragingAsianOption(ql.Average.Geometric, math.prod(past), len(past),
                                          [_ql_date(d) for d in future], ql.PlainVanillaPayoff(ql.Option.Call, 100.0),
                                          ql.EuropeanExercise(_ql_date(mat)))
    opt.setPricingEngine(ql.AnalyticDiscreteGeometricAveragePriceAsianEngine(_ql_process()))
    got = price({"product": {"structure": "asian", "option_type": "call", "averaging": "geometric",
                             "fixings": "monthly", "start_date": start.isoformat(), "maturity_date": mat.isoformat(),
                             "initial_price": 100.0, "past_fixings": past},
                 "market": {"spot": SPOT, "vol": VOL, "rate": R, "div": Q}, "valuation_date": VAL.isoformat(),
                 "engine_options": {"greeks": False}})
    assert got["engine"] == "analytic"
    assert got["price"] == pytest.approx(opt.NPV() / SPOT, abs=1e-6)
