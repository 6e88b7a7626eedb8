"""Monte Carlo path-steps per second: otcdesk `mc` vs QuantLib MCEuropeanEngine, same run.

Product: 1y ATM European call, S=100, vol 20%, r 3%, q 0, 252 time steps per path (the
paths are generated on all 252 steps by both engines; the payoff reads the last one).

    .venv/bin/python benchmarks/bench_mc.py [--paths 1000000] [--ql-paths 20000]

Prints one line per engine/configuration, the ratio to QuantLib, and the component
throughputs that bound ours (normal generation, the cumulative sum over time, the
affine map to log-spot), i.e. what limits it further.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

S0, K, VOL, R, Q, T, STEPS = 100.0, 100.0, 0.20, 0.03, 0.0, 1.0, 252


def quantlib_run(paths: int, antithetic: bool) -> tuple[float, float, float]:
    import QuantLib as ql

    today = ql.Date(5, 1, 2026)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    proc = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(S0)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, Q, dc)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, R, dc)),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), VOL, dc)))
    opt = ql.VanillaOption(ql.PlainVanillaPayoff(ql.Option.Call, K), ql.EuropeanExercise(today + 365))
    eng = ql.MCEuropeanEngine(proc, "pseudorandom", timeSteps=STEPS, requiredSamples=paths, seed=42,
                              antitheticVariate=antithetic)
    opt.setPricingEngine(eng)
    t0 = time.perf_counter()
    npv = opt.NPV()
    dt = time.perf_counter() - t0
    return npv / S0, opt.errorEstimate() / S0, dt


def ours_run(paths: int, dtype: str, antithetic: bool, seed: int = 42) -> tuple[float, float, float]:
    from otcdesk.pricing_engine import mc_blocks, mc_core
    from otcdesk.pricing_engine.blocks import Leg, ResolvedSchedule
    from otcdesk.pricing_engine.engines import EngineOptions
    import datetime as dt

    d = dt.date(2026, 1, 5)
    rs = ResolvedSchedule(structure="vanilla", valuation_date=d, start_date=d, maturity_date=d + dt.timedelta(365),
                          T=T, spot_x=1.0, initial_price=S0, legs=(Leg("call", K / S0, 1.0),))
    cfg = EngineOptions(paths=paths, seed=seed, dtype=dtype, antithetic=antithetic)
    shape = mc_blocks.shape_of(rs)
    terms = [mc_blocks.to_terms(rs, cfg)]
    grid = np.arange(1, STEPS + 1) * (T / STEPS)
    rows = [mc_core.Row(0, 1.0, VOL, R, Q)]
    t0 = time.perf_counter()
    price, err, _ = mc_core.run_batch(np, terms, rows, mc_blocks.make_kernel(shape), cfg, grid=grid)
    return float(price[0]), float(err[0]), time.perf_counter() - t0


def components(dtype: str = "float32") -> dict:
    """Throughput (elements/s) of the pieces of one path block (252 x 16384)."""
    from otcdesk.pricing_engine import mc_paths

    n, m = STEPS, 16384
    out = {}
    reps = 5
    t0 = time.perf_counter()
    for i in range(reps):
        z = mc_paths.normals(np, (n, m // 2), 1, i, dtype)
    out["normals (Box-Muller, per path-step with antithetic)"] = reps * n * m / (time.perf_counter() - t0)
    a = z.copy()
    t0 = time.perf_counter()
    for _ in range(reps):
        mc_paths.cumsum_time(np, a)
    out["cumulative sum over time (per element)"] = reps * a.size / (time.perf_counter() - t0)
    b = np.empty_like(a)
    t0 = time.perf_counter()
    for _ in range(reps):
        np.multiply(a, a.dtype.type(0.2), out=b)
        b += a.dtype.type(0.01)
    out["affine map to log-spot (per element)"] = reps * a.size / (time.perf_counter() - t0)
    bytes_per = np.dtype(dtype).itemsize
    t0 = time.perf_counter()
    for _ in range(reps):
        np.copyto(b, a)
    out["memory copy (elements/s; bandwidth bound)"] = reps * a.size / (time.perf_counter() - t0)
    out["_bytes_per_element"] = bytes_per
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paths", type=int, default=1_000_000)
    ap.add_argument("--ql-paths", type=int, default=20_000)
    args = ap.parse_args(argv)
    from otcdesk.pricing_engine.analytic_vanilla import bs_price

    bs = bs_price("call", 1.0, K / S0, T, R, Q, VOL)
    print(f"1y ATM call, {STEPS} steps; Black-Scholes {bs:.5f} (per unit notional)")
    print(f"{'engine':46s} {'paths':>9s} {'price':>8s} {'stderr':>8s} {'z':>6s} {'seconds':>8s} {'M path-steps/s':>15s}")
    rows = []
    for anti in (False, True):
        p, e, dt = quantlib_run(args.ql_paths, anti)
        # with antithetic variates each QuantLib sample is a path and its mirror: 2 paths
        rows.append((f"QuantLib MCEuropeanEngine{' antithetic' if anti else ''}", args.ql_paths * (2 if anti else 1),
                     p, e, dt))
    ours_run(20_000, "float32", True)  # warm-up (imports, first allocations)
    for dtype, anti in (("float32", True), ("float32", False), ("float64", False)):
        p, e, dt = ours_run(args.paths, dtype, anti)
        rows.append((f"otcdesk mc numpy {dtype}{' antithetic' if anti else ''}", args.paths, p, e, dt))
    rate = {}
    for name, n, p, e, dt in rows:
        rate[name] = n * STEPS / dt
        print(f"{name:46s} {n:9d} {p:8.5f} {e:8.5f} {(p - bs) / e:6.2f} {dt:8.3f} {rate[name] / 1e6:15.1f}")
    ql_plain = rate["QuantLib MCEuropeanEngine"]
    ql_anti = rate["QuantLib MCEuropeanEngine antithetic"]
    best = rate["otcdesk mc numpy float32 antithetic"]
    print(f"speed-up: float32 antithetic vs QuantLib antithetic {best / ql_anti:.1f}x, "
          f"vs QuantLib plain {best / ql_plain:.1f}x; "
          f"float32 plain vs QuantLib plain {rate['otcdesk mc numpy float32'] / ql_plain:.1f}x; "
          f"float64 plain vs QuantLib plain {rate['otcdesk mc numpy float64'] / ql_plain:.1f}x")
    comp = components()
    bpe = comp.pop("_bytes_per_element")
    for k, v in comp.items():
        print(f"  component: {k}: {v / 1e6:.0f} M/s")
    slow = min(comp, key=comp.get)
    print(f"limits: the slowest stage is {slow} at {comp[slow] / 1e6:.0f} M/s (Box-Muller: a log, a sqrt, a sin "
          "and a cos per pair of normals, on one core: NumPy ufuncs are single-threaded); the other passes "
          f"(cumulative sum, log-spot map, payoff) run near memory-copy speed ({comp['memory copy (elements/s; bandwidth bound)'] / 1e6:.0f} M/s, "
          f"{bpe} bytes per float32 path-step written and read a few times), i.e. memory bandwidth; "
          "beyond that: more cores (threads over path blocks) or a GPU via the same code on CuPy, or a fused "
          "compiled kernel that never stores the path.")
    print(f"error check: all estimates within 3 stderr of Black-Scholes: "
          f"{all(abs(p - bs) <= 3 * e for _, _, p, e, _ in rows)}")


if __name__ == "__main__":
    main()
