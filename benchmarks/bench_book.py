"""Book revaluation: batched `pricing_engine.book` vs pricing trade by trade, same run.

    .venv/bin/python benchmarks/bench_book.py [--trades 2000] [--sample 40] [--paths 2000]

Batched: the seeded sample book (vanillas, spreads, sharkfins, snowballs), all Greeks and the
41 x 5 spot x vol grid, grouped by structure and engine (closed forms vectorised, MC batched
with compressed-path ladders). Reference: the same trades priced one at a time through
`api.price_product` with the `auto` engine (analytic, else FD with its own Greeks), timed on a
random sample and scaled to the book size; the reference figure has Greeks only, no grid
(a grid would cost 205 more revaluations per trade, or 5 FD ladders).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import time

import numpy as np


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trades", type=int, default=2000)
    ap.add_argument("--sample", type=int, default=40)
    ap.add_argument("--paths", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)

    from otcdesk.pricing_engine import book
    from otcdesk.pricing_engine.api import price_product
    from otcdesk.pricing_engine.engines import EngineOptions

    vd = dt.date(2026, 11, 20)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    doc = book.bench(args.trades, mc_options={"paths": args.paths}, workers=args.workers)
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    print("batched book (otcdesk risk bench):", json.dumps(doc, ensure_ascii=False))
    print(f"  wall {wall:.2f} s, process CPU {cpu:.2f} s on {os.cpu_count()} cores "
          f"(load average {os.getloadavg()[0]:.1f}: the cores are shared)")

    trades, markets = book.sample_book(args.trades, seed=7, valuation_date=vd)
    rng = np.random.default_rng(0)
    pick = rng.choice(len(trades), size=min(args.sample, len(trades)), replace=False)
    opts = EngineOptions(grid_points=400, greeks=True)
    per = {}
    t1 = time.perf_counter()
    for i in pick:
        t = trades[i]
        ts = time.perf_counter()
        res = price_product(t.product, markets[t.product.underlying], vd, "auto", opts)
        per.setdefault((t.product.structure, res.engine), []).append(time.perf_counter() - ts)
    ref = time.perf_counter() - t1
    scaled = ref / len(pick) * args.trades
    print(f"trade-by-trade reference (auto engine, Greeks only, no grid): {len(pick)} trades in {ref:.2f} s "
          f"-> {scaled:.1f} s for {args.trades} trades")
    for (s, e), v in sorted(per.items()):
        print(f"  {s:10s} {e:9s} {len(v):3d} trades, {1e3 * np.mean(v):8.1f} ms per trade")
    print(f"batched with Greeks and the {doc['scenario_points']}-point grid: {doc['elapsed_s']:.2f} s "
          f"({scaled / doc['elapsed_s']:.1f}x faster than the reference without the grid)")


if __name__ == "__main__":
    main()
