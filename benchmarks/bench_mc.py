"""Monte Carlo path-steps per second on path-dependent products: otcdesk `mc` vs QuantLib, same run.

Products (S=100, vol 20%, r 3%, q 0, price only):

* a daily-monitored barrier: 1y up-and-out call, strike 100, barrier 120, no rebate, checked on
  252 equally spaced dates t_k = k T / 252, k = 1..252 (maturity included, not t = 0), T = 1 from
  Actual/365 Fixed (365 days). Our schedule takes QuantLib's own ``TimeGrid(T, 252)``, so both see the
  same dates. Reference: QuantLib ``MCBarrierEngine`` (pseudorandom, 252 steps, ``isBiased=True``),
  plain and antithetic, on the same path count as ours. ``isBiased`` must be set: its default
  (False) is QuantLib's ``BarrierPathPricer``, which adds the Brownian-bridge crossing probability
  between steps, i.e. prices the *continuously* monitored barrier (0.01155 here, not the daily
  0.01301); ``brownianBridge`` is only the path construction order. Printed beside them: QuantLib's
  ``AnalyticBarrierEngine`` on the Broadie-Glasserman-Kou shifted barrier H exp(0.5826 sigma sqrt(dt))
  (a published approximation for discrete monitoring, about +5e-5 here; not in the 3-stderr check);
* a snowball (雪球): 12 months, monthly knock-out at 103% (coupon 15% p.a. accrued, paid at the
  hit), daily knock-in at 75% on the XSHG trading days (243 steps), put at 100% after a knock-in.
  QuantLib has no snowball engine; the reference is QuantLib's ``GaussianPathGenerator`` on the
  same time grid with the payoff evaluated on each path in NumPy (its rate is also shown beside
  ``MCBarrierEngine``'s, the all-C++ one, for a conservative ratio).

Ours: the fused numba kernel (`mc_fused`, all cores) and the vectorised NumPy kernel (`mc_core`),
float32 and float64, antithetic (the engine's default; a pair counts as two paths, as QuantLib's
antithetic samples do). The JIT compile (or disk-cache load) happens in a warm-up outside the timing
and is reported; ``--jit-cold`` measures a cold compile in a subprocess with an empty cache folder.
The machine may be shared: ``--repeat N`` runs the whole table N times and prints the best and the
median ratio to QuantLib (its rate measured in the same round).

    .venv/bin/python benchmarks/bench_mc.py [--barrier-paths 200000] [--paths 1000000] [--numpy-paths 200000]
                                            [--ql-paths 20000] [--repeat 3] [--jit-cold]

The barrier rows (QuantLib and ours) all use ``--barrier-paths`` paths of 252 steps (an antithetic
pair is two paths: QuantLib antithetic gets half as many samples); the snowball rows keep
``--paths`` (fused), ``--numpy-paths`` and ``--ql-paths`` / 2 (QuantLib).
"""
from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import statistics
import subprocess
import sys
import time

import numpy as np

S0, K, H, VOL, R, Q, T, STEPS = 100.0, 100.0, 120.0, 0.20, 0.03, 0.0, 1.0, 252
VAL = dt.date(2026, 1, 5)
SNOWBALL = {"structure": "snowball", "ko_pct": 103, "ki_pct": 75, "coupon_pct": 15, "tenor": "12M",
            "start_date": VAL.isoformat(), "initial_price": S0}


def _ql_process():
    import QuantLib as ql

    today = ql.Date(VAL.day, VAL.month, VAL.year)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    proc = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(S0)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, Q, dc)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, R, dc)),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), VOL, dc)))
    return ql, today, proc


def _ql_barrier_option(ql, today, barrier: float):
    return ql.BarrierOption(ql.Barrier.UpOut, barrier, 0.0, ql.PlainVanillaPayoff(ql.Option.Call, K),
                            ql.EuropeanExercise(today + 365))


def barrier_times() -> np.ndarray:
    """The monitoring times: QuantLib's ``TimeGrid(T, STEPS)`` without t = 0, T from Actual/365 Fixed."""
    ql, today, proc = _ql_process()
    t_mat = proc.riskFreeRate().timeFromReference(today + 365)  # what MCBarrierEngine uses: the rate curve's day count
    assert abs(t_mat - T) < 1e-12, t_mat
    return np.asarray(list(ql.TimeGrid(t_mat, STEPS)))[1:]


def ql_barrier(paths: int, antithetic: bool) -> tuple[float, float, float, int]:
    """(price, stderr, seconds, path-steps) of QuantLib's MCBarrierEngine on the daily up-and-out call.

    ``isBiased=True``: the barrier is checked on the 252 simulated dates only (discrete monitoring).
    ``paths`` counts paths: with antithetic variates QuantLib draws ``paths // 2`` pairs.
    """
    ql, today, proc = _ql_process()
    opt = _ql_barrier_option(ql, today, H)
    samples = paths // 2 if antithetic else paths
    opt.setPricingEngine(ql.MCBarrierEngine(proc, "pseudorandom", timeSteps=STEPS, brownianBridge=False,
                                            antitheticVariate=antithetic, requiredSamples=samples, isBiased=True,
                                            seed=42))
    t0 = time.perf_counter()
    npv = opt.NPV()
    sec = time.perf_counter() - t0
    return npv / S0, opt.errorEstimate() / S0, sec, samples * (2 if antithetic else 1) * STEPS


def bgk_barrier(steps: int = STEPS) -> float:
    """QuantLib's AnalyticBarrierEngine on the Broadie-Glasserman-Kou barrier for ``steps`` equal monitoring steps:
    H moved away from spot by exp(0.5826 sigma sqrt(T / steps)). An approximation whose error is O(1 / steps)."""
    ql, today, proc = _ql_process()
    opt = _ql_barrier_option(ql, today, H * math.exp(0.5826 * VOL * math.sqrt(T / steps)))
    opt.setPricingEngine(ql.AnalyticBarrierEngine(proc))
    return opt.NPV() / S0


def _snowball_schedule():
    from otcdesk.pricing_engine.models import MarketSpec
    from otcdesk.pricing_engine.products import product_from_dict

    model = MarketSpec(spot=S0, vol=VOL, rate=R, div=Q).to_model()
    return product_from_dict(SNOWBALL).resolve(VAL, model)


def ql_snowball(paths: int) -> tuple[float, float, float, int]:
    """QuantLib's GaussianPathGenerator on the snowball's grid, the payoff in NumPy on the generated paths."""
    ql, _, proc = _ql_process()
    rs = _snowball_schedule()
    ko, ki = rs.knock_outs[0], rs.knock_in
    times = np.unique(np.round(np.concatenate([ko.times, ki.times, [rs.T]]), 10))
    n = len(times)
    rsg = ql.GaussianRandomSequenceGenerator(ql.UniformRandomSequenceGenerator(n, ql.UniformRandomGenerator(42)))
    gen = ql.GaussianPathGenerator(proc, ql.TimeGrid(list(times)), rsg, False)
    t0 = time.perf_counter()
    x = np.empty((paths, n))
    for i in range(paths):
        path = gen.next().value()
        x[i] = [path[j] for j in range(1, n + 1)]
    x /= rs.initial_price
    ko_idx = np.searchsorted(times, np.round(ko.times, 10))
    ki_idx = np.searchsorted(times, np.round(ki.times, 10))
    hit = x[:, ko_idx] >= np.asarray(ko.levels)
    first = np.where(hit.any(axis=1), hit.argmax(axis=1), -1)
    ko_val = np.where(first >= 0, np.asarray(ko.rebates)[first] * np.exp(-R * np.asarray(ko.times)[first]), 0.0)
    knocked_in = (x[:, ki_idx] <= ki.level).any(axis=1)
    xT = x[:, -1]
    final = np.where(knocked_in, sum(leg.payoff(xT) for leg in rs.legs_ki), sum(leg.payoff(xT) for leg in rs.legs))
    y = np.where(first >= 0, ko_val, final * np.exp(-R * rs.T))
    sec = time.perf_counter() - t0
    return float(y.mean()), float(y.std() / np.sqrt(paths)), sec, paths * n


def ours(product: str, kernel: str, paths: int, dtype: str, seed: int = 42) -> tuple[float, float, float, int, dict]:
    """(price, stderr, seconds, path-steps, diagnostics) of our kernel on ``product`` (price only, one row)."""
    from otcdesk.pricing_engine import mc_blocks, mc_core, mc_fused
    from otcdesk.pricing_engine.blocks import KnockOut, Leg, ResolvedSchedule
    from otcdesk.pricing_engine.engines import EngineOptions

    cfg = EngineOptions(paths=paths, seed=seed, dtype=dtype, antithetic=True, greeks=False)
    if product == "barrier":
        grid = barrier_times()
        rs = ResolvedSchedule(structure="barrier", valuation_date=VAL, start_date=VAL,
                              maturity_date=VAL + dt.timedelta(365), T=T, spot_x=1.0, initial_price=S0,
                              legs=(Leg("call", K / S0, 1.0),),
                              knock_outs=(KnockOut("up", "discrete", tuple(grid), (H / S0,) * STEPS, (0.0,) * STEPS),))
    else:
        rs = _snowball_schedule()
        grid = None
    shape = mc_blocks.shape_of(rs)
    terms = [mc_blocks.to_terms(rs, cfg)]
    rows = [mc_core.Row(0, rs.spot_x, VOL, R, Q)]
    n = len(mc_core.batch_grid(terms) if grid is None else grid)
    t0 = time.perf_counter()
    if kernel == "fused":
        price, err, diag = mc_fused.run_batch(terms, rows, shape, cfg, grid=grid)
    else:
        price, err, diag = mc_core.run_batch(np, terms, rows, mc_blocks.make_kernel(shape), cfg, grid=grid)
    return float(price[0]), float(err[0]), time.perf_counter() - t0, 2 * ((paths + 1) // 2) * n, diag


def jit_cold() -> float:
    """Seconds for a cold compile of both dtypes, in a subprocess with an empty numba cache folder."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, NUMBA_CACHE_DIR=tmp)
        code = ("import time; t0 = time.perf_counter(); from otcdesk.pricing_engine import mc_fused; "
                "mc_fused.warm_up(); print(time.perf_counter() - t0)")
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        return float(out.stdout.strip().splitlines()[-1])


def one_round(args) -> list[tuple]:
    rows = []
    for anti in (False, True):
        p, e, s, ps = ql_barrier(args.barrier_paths, anti)
        rows.append(("barrier", f"QuantLib MCBarrierEngine{' antithetic' if anti else ''}", p, e, s, ps))
    p, e, s, ps = ql_snowball(args.ql_paths // 2)
    rows.append(("snowball", "QuantLib GaussianPathGenerator + NumPy payoff", p, e, s, ps))
    for product in ("barrier", "snowball"):
        sizes = (("fused", args.paths), ("numpy", args.numpy_paths)) if product == "snowball" else (
            ("fused", args.barrier_paths), ("numpy", args.barrier_paths))
        for kernel, paths in sizes:
            for dtype in ("float32", "float64"):
                p, e, s, ps, _ = ours(product, kernel, paths, dtype)
                rows.append((product, f"otcdesk mc {kernel} {dtype} antithetic", p, e, s, ps))
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--barrier-paths", type=int, default=200_000, help="paths of every barrier row, QuantLib's too")
    ap.add_argument("--paths", type=int, default=1_000_000, help="snowball: fused kernel paths")
    ap.add_argument("--numpy-paths", type=int, default=200_000, help="snowball: NumPy kernel paths")
    ap.add_argument("--ql-paths", type=int, default=20_000, help="QuantLib samples (the snowball takes half)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--jit-cold", action="store_true", help="also time a cold JIT compile (a subprocess)")
    args = ap.parse_args(argv)
    import numba

    from otcdesk.pricing_engine import mc_fused

    t0 = time.perf_counter()
    warm = mc_fused.warm_up()
    first = time.perf_counter() - t0
    print(f"fused kernel: first call (compile or disk-cache load, both dtypes, flat + local vol) {first:.2f} s "
          f"{warm}; numba {numba.__version__}, {numba.get_num_threads()} threads, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}")
    if args.jit_cold:
        print(f"fused kernel: cold compile of both dtypes with an empty cache: {jit_cold():.1f} s")
    bgk = bgk_barrier()
    ratios: dict[str, list[float]] = {}
    for rnd in range(args.repeat):
        rows = one_round(args)
        print(f"\nround {rnd + 1}/{args.repeat} (load average {os.getloadavg()[0]:.1f})")
        print(f"{'product':9s} {'engine':47s} {'price':>8s} {'stderr':>8s} {'seconds':>8s} {'M path-steps/s':>15s}")
        rate = {}
        for product, name, p, e, s, ps in rows:
            rate[(product, name)] = ps / s
            print(f"{product:9s} {name:47s} {p:8.5f} {e:8.5f} {s:8.3f} {ps / s / 1e6:15.1f}")
            if name == "QuantLib MCBarrierEngine antithetic":
                print(f"{product:9s} {'QuantLib AnalyticBarrierEngine, BGK barrier':47s} {bgk:8.5f} {'-':>8s}")
        ql_bar = max(rate[("barrier", "QuantLib MCBarrierEngine")], rate[("barrier", "QuantLib MCBarrierEngine antithetic")])
        ql_snow = rate[("snowball", "QuantLib GaussianPathGenerator + NumPy payoff")]
        for product, ref in (("barrier", ql_bar), ("snowball", ql_snow)):
            for kernel in ("fused", "numpy"):
                for dtype in ("float32", "float64"):
                    key = f"{product} {kernel} {dtype}"
                    ratios.setdefault(key, []).append(rate[(product, f"otcdesk mc {kernel} {dtype} antithetic")] / ref)
        for dtype in ("float32", "float64"):  # the snowball against the all-C++ barrier engine too
            ratios.setdefault(f"snowball fused {dtype} vs QL MCBarrierEngine", []).append(
                rate[("snowball", f"otcdesk mc fused {dtype} antithetic")] / ql_bar)
        ok = {}
        for product in ("barrier", "snowball"):
            ref = [r for r in rows if r[0] == product and r[1].startswith("QuantLib")]
            ok[product] = all(abs(r[2] - q[2]) <= 3 * np.hypot(r[3], q[3]) for r in rows if r[0] == product for q in ref)
        print(f"error check: every estimate within 3 combined stderr of each QuantLib one: {ok}")
        dev = max(abs(r[2] - bgk) for r in rows if r[0] == "barrier")
        print(f"barrier vs BGK analytic (an O(dt) approximation): largest |difference| {dev:.5f}")
    print(f"\nspeed-up over QuantLib in path-steps/s (QuantLib barrier: the better of plain and antithetic), "
          f"{args.repeat} round(s): best / median")
    for key, v in ratios.items():
        print(f"  {key:45s} {max(v):7.1f}x / {statistics.median(v):7.1f}x")


if __name__ == "__main__":
    main()
