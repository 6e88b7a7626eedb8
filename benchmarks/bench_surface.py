"""Vol surfaces: snowball fair coupon flat vs skew per pool index, SVI fit time, local-vol FD / MC times, and the
consistency figures (vanillas on the local vol vs the surface's implied vols; QuantLib's Andreasen–Huge local vol
with its FD engine) side by side in the same run.

Surfaces are the checked-in SIMULATED demo ones (`app/data/vol_surfaces.json`); flat = the snapshot's vol (the
1Y ATM level of the surface). Snowball: 12M, KO 103% monthly after a 3-month lock-up, KI 75% daily, option form.
Run:  .venv/bin/python benchmarks/bench_surface.py
"""
from __future__ import annotations

import time

from scipy.optimize import brentq

from otcdesk.app.market import load_snapshot
from otcdesk.app.trading.vol_surfaces import VolSurfaceStore
from otcdesk.pricing_engine import surface as surface_mod
from otcdesk.pricing_engine.analytic_vanilla import bs_price
from otcdesk.pricing_engine.api import price
from otcdesk.pricing_engine.surface import VolSurface

VD = "2026-11-20"
SNOWBALL = {"structure": "snowball", "tenor": "12M", "ko_pct": 103, "ki_pct": 75, "lockup_months": 3}
NO_GREEKS = {"greeks": False}


def _t(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    snap = load_snapshot()
    store = VolSurfaceStore()
    rate = snap["rate"]
    print("snowball fair coupon (12M, KO 103, KI 75, lock-up 3M), FD: flat vol vs the skewed demo surface (SIMULATED)")
    print(f"{'underlying':<12}{'flat vol':>9}{'σ(100%)':>9}{'σ(75%)':>9}{'flat cpn':>10}{'skew cpn':>10}{'diff':>8}"
          f"{'fit s':>8}{'fd s':>7}")
    for code in store.codes():
        u = snap["underlyings"][code]
        grid = store.contract_for(code, VD)
        mk = {"spot": u["spot"], "rate": rate, "div": u["div"]}
        surface_mod._fit_cached.cache_clear()
        _, fit_s = _t(lambda: VolSurface.from_contract(grid, VD, u["spot"], rate, u["div"]))
        flat = price({"product": SNOWBALL, "market": {**mk, "vol": u["vol"]}, "valuation_date": VD, "engine": "fd",
                      "solve_for": "coupon_pct", "engine_options": NO_GREEKS})
        skew, fd_s = _t(lambda: price({"product": SNOWBALL, "market": {**mk, "vol_surface": grid}, "valuation_date": VD,
                                       "engine": "fd", "solve_for": "coupon_pct", "engine_options": NO_GREEKS}))
        fc, sc = flat["solved"]["coupon_pct"], skew["solved"]["coupon_pct"]
        v = skew["vol_used"]
        print(f"{code:<12}{u['vol']:>9.4f}{v['vol_at_strike']:>9.4f}{v['vol_at_knock_in']:>9.4f}{fc:>9.2f}%{sc:>9.2f}%"
              f"{sc - fc:>+7.2f}{fit_s:>8.3f}{fd_s:>7.2f}")

    code = "000905.SH"
    u = snap["underlyings"][code]
    S, q = 100.0, u["div"]
    grid = store.contract_for(code, VD)
    surf = VolSurface.from_contract(grid, VD, S, rate, q)
    mk = {"spot": S, "rate": rate, "div": q, "vol_surface": grid}
    print(f"\nconsistency on {code}'s surface (spot 100): implied vol of vanillas repriced on the local vol "
          "minus the surface's, in vol points")
    import QuantLib as ql
    today = ql.Date(20, 11, 2026)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    spot = ql.QuoteHandle(ql.SimpleQuote(S))
    rts = ql.YieldTermStructureHandle(ql.FlatForward(today, rate, dc))
    qts = ql.YieldTermStructureHandle(ql.FlatForward(today, q, dc))
    cal = ql.CalibrationSet()
    for e in grid["expiries"][:7]:
        d = ql.Date(e, "%Y-%m-%d")
        for K in range(60, 145, 10):
            kind = ql.Option.Call if K >= 100 else ql.Option.Put
            cal.push_back(ql.CalibrationPair(ql.VanillaOption(ql.PlainVanillaPayoff(kind, K), ql.EuropeanExercise(d)),
                                             ql.SimpleQuote(surf.implied_vol(K, dc.yearFraction(today, d)))))
    t0 = time.perf_counter()
    ah = ql.AndreasenHugeVolatilityInterpl(cal, spot, rts, qts)
    proc = ql.GeneralizedBlackScholesProcess(spot, qts, rts,
                                             ql.BlackVolTermStructureHandle(ql.AndreasenHugeVolatilityAdapter(ah)),
                                             ql.LocalVolTermStructureHandle(ql.AndreasenHugeLocalVolAdapter(ah)))
    ql_engine = ql.FdBlackScholesVanillaEngine(proc, 200, 400, 0, ql.FdmSchemeDesc.Douglas(), True)
    opt0 = ql.VanillaOption(ql.PlainVanillaPayoff(ql.Option.Call, 100), ql.EuropeanExercise(today + 91))
    opt0.setPricingEngine(ql_engine)
    opt0.NPV()  # the calibration runs lazily, on first use
    ah_s = time.perf_counter() - t0
    print(f"{'expiry':<12}{'strike':>7}{'σ surface':>10}{'FD-LV':>8}{'MC-LV':>8}{'±3se':>7}{'QL AH':>8}"
          f"{'fd ms':>7}{'mc ms':>7}{'QL ms':>7}")
    worst = {"fd": 0.0, "mc": 0.0, "ql": 0.0}
    for exp in (grid["expiries"][2], grid["expiries"][3], grid["expiries"][5]):
        # the engines roll a maturity on a holiday to the next trading day: price every engine at the rolled date
        T = price({"product": {"structure": "vanilla", "option_type": "call", "maturity_date": exp}, "market": mk,
                   "valuation_date": VD, "engine": "analytic", "engine_options": NO_GREEKS})["vol_used"]["expiry_years"]
        exp = (today + round(T * 365)).ISO()
        for K in (80, 90, 100, 110, 120):
            kind = "put" if K < 100 else "call"
            prod = {"structure": "vanilla", "option_type": kind, "strike_pct": K, "maturity_date": exp}

            def iv(p):
                return brentq(lambda s: bs_price(kind, 1.0, K / 100, T, rate, q, s) - p, 1e-3, 2.0, xtol=1e-12)
            fd, fd_s = _t(lambda: price({"product": prod, "market": mk, "valuation_date": VD, "engine": "fd",
                                         "engine_options": NO_GREEKS}))
            mc, mc_s = _t(lambda: price({"product": prod, "market": mk, "valuation_date": VD, "engine": "mc",
                                         "engine_options": {"greeks": False, "paths": 50000}}))
            opt = ql.VanillaOption(ql.PlainVanillaPayoff(ql.Option.Put if kind == "put" else ql.Option.Call, K),
                                   ql.EuropeanExercise(ql.Date(exp, "%Y-%m-%d")))
            opt.setPricingEngine(ql_engine)
            qp, ql_s = _t(lambda: opt.NPV() / S)
            ref = surf.implied_vol(K, T)
            d_fd, d_mc, d_ql = iv(fd["price"]) - ref, iv(mc["price"]) - ref, iv(qp) - ref
            vega = (bs_price(kind, 1.0, K / 100, T, rate, q, ref + 1e-4) - bs_price(kind, 1.0, K / 100, T, rate, q, ref)) / 1e-4
            worst = {"fd": max(worst["fd"], abs(d_fd)), "mc": max(worst["mc"], abs(d_mc)), "ql": max(worst["ql"], abs(d_ql))}
            print(f"{exp:<12}{K:>6}%{100 * ref:>9.2f}%{100 * d_fd:>+8.3f}{100 * d_mc:>+8.3f}"
                  f"{300 * mc['stderr'] / vega:>7.3f}{100 * d_ql:>+8.3f}{1e3 * fd_s:>7.0f}{1e3 * mc_s:>7.0f}"
                  f"{1e3 * ql_s:>7.0f}")
    print(f"worst |error| in vol points: FD on local vol {100 * worst['fd']:.3f}, MC {100 * worst['mc']:.3f} "
          f"(noise), QuantLib Andreasen-Huge + FD {100 * worst['ql']:.3f}; QuantLib calibration {ah_s:.2f} s")

    sb = {"product": SNOWBALL, "market": mk, "valuation_date": VD}
    fd, fd_s = _t(lambda: price({**sb, "engine": "fd", "product": {**SNOWBALL, "coupon_pct": 15},
                                 "engine_options": NO_GREEKS}))
    mc, mc_s = _t(lambda: price({**sb, "engine": "mc", "product": {**SNOWBALL, "coupon_pct": 15},
                                 "engine_options": {"greeks": False, "paths": 50000}}))
    print(f"\nsnowball (coupon 15%) on the local vol: FD {fd['price_pct']:.3f}% in {fd_s * 1e3:.0f} ms; "
          f"MC {mc['price_pct']:.3f}% ± {mc['stderr'] * 100:.3f}% (50k paths, daily Euler) in {mc_s:.2f} s; "
          f"|FD − MC| = {abs(fd['price'] - mc['price']) / mc['stderr']:.2f} standard errors")


if __name__ == "__main__":
    main()
