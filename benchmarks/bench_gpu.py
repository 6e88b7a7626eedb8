"""GPU throughput: Monte Carlo at 10^7 paths and a 2,000-trade book on CuPy, the CPU reference in the same run.

One script for a machine with a CUDA GPU (minutes: each part is sized to run well under 5 minutes on one
GPU); on a machine without one it says "no GPU" and runs reduced sizes on NumPy, so the script itself is
tested everywhere (tests/unit/pricing_engine/test_bench_gpu.py).

* Monte Carlo: the daily barrier and the snowball of `bench_mc.py` (same products), price only, antithetic,
  float32 and float64: the vectorised kernel (`mc_core.run_batch`) on CuPy (pseudo-random normals from
  ``cupy.random``, the path blocks and the payoff as array operations on the device) against the fused
  numba kernel on every CPU core (`mc_fused`), in path-steps per second. A fused GPU kernel (numba.cuda or a
  CuPy RawKernel with Philox and Box-Muller) is not written yet: the row says so.
* Book: `book.bench` (Greeks and the 41 x 5 spot x vol grid for every trade) on the ``cupy`` backend against
  ``numpy``, wall seconds.

    .venv/bin/python benchmarks/bench_gpu.py [--paths 10000000] [--cpu-paths 1000000] [--trades 2000]
                                             [--book-paths 2000] [--reduced]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

REDUCED = {"paths": 40_000, "cpu_paths": 40_000, "trades": 24, "book_paths": 500}


def mc_row(product: str, xp, kernel: str, paths: int, dtype: str, chunk_elems: int) -> dict:
    """One Monte Carlo measurement: a warm-up on a small size (compile, allocations), then the timed run."""
    from bench_mc import STEPS, VAL, VOL, R, Q, _snowball_schedule, ours  # the same products as bench_mc

    from otcdesk.pricing_engine import mc_blocks, mc_core
    from otcdesk.pricing_engine.engines import EngineOptions

    if kernel == "fused":
        ours(product, "fused", 1_000, dtype)
        p, e, s, ps, _ = ours(product, "fused", paths, dtype)
        return {"price": p, "stderr": e, "seconds": s, "path_steps": ps}
    from bench_mc import H, K, S0, T
    from otcdesk.pricing_engine.blocks import KnockOut, Leg, ResolvedSchedule
    import datetime as dt

    if product == "barrier":
        grid = np.arange(1, STEPS + 1) * (T / STEPS)
        rs = ResolvedSchedule(structure="barrier", valuation_date=VAL, start_date=VAL,
                              maturity_date=VAL + dt.timedelta(365), T=T, spot_x=1.0, initial_price=S0,
                              legs=(Leg("call", K / S0, 1.0),),
                              knock_outs=(KnockOut("up", "discrete", tuple(grid), (H / S0,) * STEPS, (0.0,) * STEPS),))
    else:
        rs, grid = _snowball_schedule(), None
    shape = mc_blocks.shape_of(rs)
    rows = [mc_core.Row(0, rs.spot_x, VOL, R, Q)]
    out = {}
    for n in (min(paths, 20_000), paths):  # warm-up, then the measurement
        cfg = EngineOptions(paths=n, seed=42, dtype=dtype, antithetic=True, greeks=False, chunk_elems=chunk_elems)
        terms = [mc_blocks.to_terms(rs, cfg)]
        steps = len(mc_core.batch_grid(terms) if grid is None else grid)
        _sync(xp)
        t0 = time.perf_counter()
        price, err, _ = mc_core.run_batch(xp, terms, rows, mc_blocks.make_kernel(shape), cfg, grid=grid)
        _sync(xp)
        out = {"price": float(price[0]), "stderr": float(err[0]), "seconds": time.perf_counter() - t0,
               "path_steps": 2 * ((n + 1) // 2) * steps}
    return out


def _sync(xp) -> None:
    if xp is not np:
        xp.cuda.Device().synchronize()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paths", type=int, default=10_000_000, help="GPU Monte Carlo paths")
    ap.add_argument("--cpu-paths", type=int, default=1_000_000, help="CPU (fused kernel) reference paths")
    ap.add_argument("--trades", type=int, default=2000)
    ap.add_argument("--book-paths", type=int, default=2000)
    ap.add_argument("--reduced", action="store_true", help="the reduced sizes used without a GPU")
    args = ap.parse_args(argv)

    from otcdesk.pricing_engine import book
    from otcdesk.pricing_engine.backend import cupy_status, get_xp

    gpu, why = cupy_status()
    if not gpu or args.reduced:
        for k, v in REDUCED.items():
            setattr(args, k, min(getattr(args, k), v))
    if gpu:
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(0)
        print(f"GPU: {props['name'].decode()}, {props['totalGlobalMem'] / 2**30:.0f} GiB; CuPy {cupy.__version__}"
              + (" (reduced sizes)" if args.reduced else ""))
        xp, label = get_xp("cupy"), "cupy"
    else:
        print(f"no GPU ({why}): reduced sizes, the array-API code path on NumPy in place of CuPy")
        xp, label = np, "numpy (no GPU)"
    print(f"CPU: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")

    chunk = 200_000_000 if gpu else 8_000_000
    rows = []
    for product in ("barrier", "snowball"):
        for dtype in ("float32", "float64"):
            g = mc_row(product, xp, "vectorised", args.paths, dtype, chunk)
            c = mc_row(product, np, "fused", args.cpu_paths, dtype, chunk)
            rows.append((product, dtype, f"vectorised on {label}", args.paths, g))
            rows.append((product, dtype, "fused numba on the CPU (reference)", args.cpu_paths, c))
            rows.append((product, dtype, "fused GPU kernel (numba.cuda / RawKernel)", 0, None))
    print(f"\n{'product':9s} {'dtype':8s} {'engine':42s} {'paths':>10s} {'price':>8s} {'stderr':>8s} "
          f"{'seconds':>8s} {'M path-steps/s':>15s}")
    for product, dtype, name, n, r in rows:
        if r is None:
            print(f"{product:9s} {dtype:8s} {name:42s} {'-':>10s} {'not written yet':>44s}")
            continue
        print(f"{product:9s} {dtype:8s} {name:42s} {n:10d} {r['price']:8.5f} {r['stderr']:8.5f} {r['seconds']:8.3f} "
              f"{r['path_steps'] / r['seconds'] / 1e6:15.1f}")
    for i in range(0, len(rows), 3):
        g, c = rows[i][4], rows[i + 1][4]
        ratio = (g["path_steps"] / g["seconds"]) / (c["path_steps"] / c["seconds"])
        agree = abs(g["price"] - c["price"]) <= 3 * np.hypot(g["stderr"], c["stderr"])
        print(f"  {rows[i][0]} {rows[i][1]}: {label} / CPU fused = {ratio:.2f}x; prices within 3 stderr: {agree}")

    print(f"\nbook revaluation: {args.trades} trades, Greeks and the 41 x 5 grid, {args.book_paths} MC paths")
    book.bench(min(args.trades, 8), backend="cupy" if gpu else "numpy", mc_options={"paths": 200})  # warm-up
    res = {}
    for backend in (("cupy", "numpy") if gpu else ("numpy",)):
        t0 = time.perf_counter()
        doc = book.bench(args.trades, backend=backend, mc_options={"paths": args.book_paths})
        res[backend] = (time.perf_counter() - t0, doc)
        print(f"  {backend:6s} wall {res[backend][0]:8.2f} s  greeks CPU {doc['greeks_s']:7.2f} s  "
              f"grid CPU {doc['scenario_s']:7.2f} s  book PV {doc['book_pv']:14.2f}")
    if gpu:
        print(f"  cupy vs numpy: {res['numpy'][0] / res['cupy'][0]:.2f}x faster wall time")
    else:
        print("  no GPU: the CuPy row is absent; the NumPy row is the CPU reference at the reduced size")


if __name__ == "__main__":
    main()
