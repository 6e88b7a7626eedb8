"""FD snowball speed: ms per price (12M classic, 800 spot nodes, daily steps) and implied coupon time,
side by side with QuantLib's FdBlackScholesBarrierEngine on the same grid (800 spot nodes × our number of
time steps) in the same process.

Targets (issue 15): the snowball solve at most QuantLib's barrier time; the implied coupon at most 60 ms.
Ours and QuantLib's runs alternate, so both see the same machine load; medians and bests of each are printed, wall
clock and (in brackets) CPU time of this process, which a shared machine inflates less.

Run:  .venv/bin/python benchmarks/bench_fd_snowball.py [--repeat 20]
"""
from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time

from otcdesk.pricing_engine import fd_solver
from otcdesk.pricing_engine.api import price
from otcdesk.pricing_engine.engines import EngineOptions
from otcdesk.pricing_engine.fd_engine import FDEngine
from otcdesk.pricing_engine.models import GBMModel
from otcdesk.pricing_engine.products import product_from_dict

VD = dt.date(2026, 11, 20)
SNOWBALL = {"structure": "snowball", "start_date": VD.isoformat(), "tenor": "12M", "ko_pct": 103, "ki_pct": 75,
            "lockup_months": 3, "coupon_pct": 15, "initial_price": 100.0}
MODEL = GBMModel(spot=100.0, vol=0.22, rate=0.025, div=0.0)
COUPON_TARGET_MS = 60.0


CPU: dict = {}  # fn -> (median, best) CPU seconds of the last _time


def _time(fns, repeat):
    """Median and best wall seconds of each of `fns`, run in turn `repeat` times after one warm-up each
    (CPU seconds in `CPU`)."""
    for fn in fns:
        fn()  # warm-up (calendar, factorisation caches)
    ts = [[] for _ in fns]
    cs = [[] for _ in fns]
    for _ in range(repeat):
        for fn, acc, cacc in zip(fns, ts, cs):
            c, t = time.process_time(), time.perf_counter()
            fn()
            acc.append(time.perf_counter() - t)
            cacc.append(time.process_time() - c)
    for fn, cacc in zip(fns, cs):
        CPU[fn] = (statistics.median(cacc), min(cacc))
    return [(statistics.median(acc), min(acc)) for acc in ts]


def _cpu(fn) -> str:
    med, best = CPU[fn]
    return f"[cpu {1e3 * med:.2f} median, {1e3 * best:.2f} best]"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--grid", type=int, default=800)
    args = ap.parse_args()

    spec = product_from_dict(SNOWBALL)
    res = spec.resolve(VD, MODEL)
    opts = EngineOptions(grid_points=args.grid, greeks=False)
    eng = FDEngine()
    sol = fd_solver.solve(res, MODEL, args.grid)
    doc = {"product": {k: v for k, v in SNOWBALL.items() if k != "coupon_pct"},
           "market": {"spot": 100.0, "vol": 0.22, "rate": 0.025, "div": 0.0}, "valuation_date": VD.isoformat(),
           "engine": "fd", "solve_for": "coupon_pct", "target_price_pct": 0.0,
           "engine_options": {"greeks": False, "grid_points": args.grid}}
    fair = price(doc)["solved"]["coupon_pct"]
    solve = lambda: fd_solver.solve(res, MODEL, args.grid)  # noqa: E731
    coupon = lambda: price(doc)  # noqa: E731

    try:
        import QuantLib as ql
    except ImportError:
        ql = None
    if ql is None:
        (med, best), (med_s, best_s) = _time([solve, coupon], args.repeat)
    else:
        today = ql.Date(VD.day, VD.month, VD.year)
        ql.Settings.instance().evaluationDate = today
        dc = ql.Actual365Fixed()
        proc = ql.BlackScholesMertonProcess(
            ql.QuoteHandle(ql.SimpleQuote(100.0)), ql.YieldTermStructureHandle(ql.FlatForward(today, 0.0, dc)),
            ql.YieldTermStructureHandle(ql.FlatForward(today, 0.025, dc)),
            ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), 0.22, dc)))
        mat = ql.Date(res.maturity_date.day, res.maturity_date.month, res.maturity_date.year)
        opt = ql.BarrierOption(ql.Barrier.DownIn, 75.0, 0.0, ql.PlainVanillaPayoff(ql.Option.Put, 100.0),
                               ql.EuropeanExercise(mat))
        t_steps = sol.steps

        def ql_fd():
            opt.setPricingEngine(ql.FdBlackScholesBarrierEngine(proc, t_steps, args.grid, 0))
            return opt.NPV()

        (med, best), (qmed, qbest), (med_s, best_s) = _time([solve, ql_fd, coupon], args.repeat)
    med_r, _ = _time([lambda: eng.price(spec, MODEL, VD, opts)], args.repeat)[0]
    med_g, _ = _time([lambda: eng.price(spec, MODEL, VD, EngineOptions(grid_points=args.grid))],
                     max(3, args.repeat // 4))[0]

    print(f"otcdesk FD snowball (12M classic, KO 103% monthly after 3M, KI 75% daily, {sol.nodes} spot nodes, "
          f"{sol.steps} daily steps, scheme {fd_solver.SCHEME}, 2 coupled states)")
    print(f"  solve only            : {1e3 * med:8.2f} ms median ({1e3 * best:.2f} best) {_cpu(solve)}   "
          f"price {sol.price:.6f}")
    print(f"  engine.price, no Greeks: {1e3 * med_r:8.2f} ms")
    print(f"  engine.price + Greeks : {1e3 * med_g:8.2f} ms (delta/gamma from grid, vega/rho/theta re-solves)")
    print(f"  implied coupon (api)  : {1e3 * med_s:8.2f} ms median ({1e3 * best_s:.2f} best) {_cpu(coupon)}   "
          f"fair coupon {fair:.4f}%   (target <= {COUPON_TARGET_MS:.0f} ms)")
    if ql is None:
        print("QuantLib not installed: no reference")
        return
    barrier = product_from_dict({"structure": "barrier", "option_type": "put", "strike_pct": 100, "barrier_pct": 75,
                                 "barrier_type": "down_in", "start_date": VD.isoformat(), "tenor": "12M",
                                 "initial_price": 100.0})
    bres = barrier.resolve(VD, MODEL)
    omed, _ = _time([lambda: fd_solver.solve(bres, MODEL, args.grid, t_steps)], args.repeat)[0]
    ours = fd_solver.solve(bres, MODEL, args.grid, t_steps).price
    print(f"QuantLib {ql.__version__} FdBlackScholesBarrierEngine (down-and-in put, 12M, {args.grid} x {t_steps}), "
          f"runs alternating with ours")
    print(f"  QuantLib              : {1e3 * qmed:8.2f} ms median ({1e3 * qbest:.2f} best) {_cpu(ql_fd)}   "
          f"price {ql_fd() / 100:.6f}")
    print(f"  otcdesk FD same option: {1e3 * omed:8.2f} ms median                    price {ours:.6f}")
    (cmed, cbest), (qcmed, qcbest) = CPU[solve], CPU[ql_fd]
    print(f"  ratio snowball / QuantLib barrier: {med / qmed:.2f}x median, {best / qbest:.2f}x best, "
          f"cpu {cmed / qcmed:.2f}x median "
          f"(target <= 1; the snowball solves 2 coupled states plus {len(res.ki_times)} knock-in and "
          f"{len(res.ko_times)} knock-out projections)")


if __name__ == "__main__":
    main()
