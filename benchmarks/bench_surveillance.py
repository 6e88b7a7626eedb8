"""Surveillance: precision and recall per alert type, and throughput on a million order events.

    .venv/bin/python benchmarks/bench_surveillance.py [--seed 424242] [--accounts 20000] [--orders 1000000]
                                                      [--slice 60000] [--no-csv]

The set is `workflows.surveillance.generate` with a seed used neither in development (seed 7) nor in the tests
(seeds 20261129, 31, 5, 6): its figures are first-sight. Throughput counts order events plus trades per second
of `surveil()` (in memory, after parsing), with the time per detector; the CSV round trip (write, then the
contract's reader) is timed apart, and so is the per-event spoofing monitor (`streaming`) replaying the day.

References, in the same process:
- a naive pairwise spoofing check (every order against every fill and trade of its instrument, O(n²) per
  instrument) on the first `--slice` order events and the trades of that period, with `min_orders` = 1 so that
  every qualifying order is compared: its alerts must equal ours on the slice, and its speed is the baseline
  the indexed detector is measured against;
- pandas (when installed): the wash-trade check as a vectorised merge and groupby over all the trades.
"""
from __future__ import annotations

import argparse
import dataclasses
import gc
import math
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from otcdesk.workflows.surveillance.control import control_groups  # noqa: E402
from otcdesk.workflows.surveillance.detect import SurveillanceRules, surveil  # noqa: E402
from otcdesk.workflows.surveillance.evaluate import evaluate  # noqa: E402
from otcdesk.workflows.surveillance.generate import GenSpec, generate  # noqa: E402
from otcdesk.workflows.surveillance.io import (read_accounts, read_orders, read_trades, write_accounts,  # noqa: E402
                                               write_orders, write_trades)
from otcdesk.workflows.surveillance.spoofing import OPPOSITE, detect_spoofing  # noqa: E402

DEV_SEEDS = {7}  # the rules were tuned on these; any other seed is first sight


def naive_spoofing(orders, trades, control, rules):
    """The definition, checked pair by pair: (account, instrument) → sorted spoof order ids, for ≥ min_orders."""
    new, cancel, filled = {}, {}, {}
    fills_by_inst, trades_by_inst, sizes = {}, {}, {}
    for o in orders:
        if o.event == "new":
            new.setdefault(o.order_id, o)
        elif o.event == "cancel":
            cancel[o.order_id] = min(cancel.get(o.order_id, o.ts), o.ts)
        else:
            filled[o.order_id] = filled.get(o.order_id, 0.0) + (o.qty or 0.0)
            fills_by_inst.setdefault(o.instrument, []).append(o)
    for o in new.values():
        if o.qty:
            sizes.setdefault(o.instrument, []).append(o.qty)
    for t in trades:
        trades_by_inst.setdefault(t.instrument, []).append(t)
    thresholds = {}
    for inst, q in sizes.items():
        if len(q) >= rules.min_new_orders:
            q = sorted(q)
            n = len(q)
            median = q[n // 2] if n % 2 else (q[n // 2 - 1] + q[n // 2]) / 2
            thresholds[inst] = max(q[min(n - 1, max(0, math.ceil(rules.large_quantile * n) - 1))],
                                   rules.min_median_multiple * median)
    hits = {}
    for oid, o in new.items():  # every order against every fill and trade of its instrument
        members = set(control.members(o.account_id))
        qualifies = False
        for f in fills_by_inst.get(o.instrument, ()):
            base = new.get(f.order_id)
            account = f.account_id or (base.account_id if base else "")
            side = f.side or (base.side if base else "")
            qualifies |= _pair(o, oid, cancel, filled, thresholds, rules, f.ts,
                               account in members and side == OPPOSITE.get(o.side))
        for t in trades_by_inst.get(o.instrument, ()):
            acc = t.sell_account if o.side == "B" else t.buy_account
            qualifies |= _pair(o, oid, cancel, filled, thresholds, rules, t.ts, acc in members)
        if qualifies:
            hits.setdefault((o.account_id, o.instrument), []).append(oid)
    return {k: sorted(v) for k, v in hits.items() if len(v) >= rules.min_orders}


def _pair(o, oid, cancel, filled, thresholds, rules, ts, same_hands) -> bool:
    t_c = cancel.get(oid)
    return (same_hands and t_c is not None and 0 <= t_c - o.ts <= rules.max_lifetime_s * 1000
            and o.qty is not None and o.instrument in thresholds and o.qty >= thresholds[o.instrument]
            and filled.get(oid, 0.0) <= rules.max_fill_ratio * o.qty
            and o.ts - rules.window_before_s * 1000 <= ts <= t_c + rules.window_after_s * 1000)


def pandas_wash(trades, control):
    import pandas as pd

    df = pd.DataFrame({"trade_id": [t.trade_id for t in trades], "instrument": [t.instrument for t in trades],
                       "qty": [t.qty or 0.0 for t in trades], "buyer": [t.buy_account for t in trades],
                       "seller": [t.sell_account for t in trades]})
    t0 = time.perf_counter()
    groups = pd.Series({a: f"G{g}" for a, g in control.group_of.items()}, dtype=object)
    gb = df["buyer"].map(groups).fillna(df["buyer"])
    gs = df["seller"].map(groups).fillna(df["seller"])
    wash = df[(gb == gs) & (df["buyer"] != "")].assign(unit=gb)
    cases = wash.groupby(["unit", "instrument"]).agg(trades=("trade_id", "count"), qty=("qty", "sum"))
    return time.perf_counter() - t0, len(cases)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=424242)
    ap.add_argument("--accounts", type=int, default=20_000)
    ap.add_argument("--orders", type=int, default=1_000_000)
    ap.add_argument("--slice", type=int, default=60_000)
    ap.add_argument("--no-csv", action="store_true")
    args = ap.parse_args()

    t = time.perf_counter()
    data = generate(GenSpec(seed=args.seed, accounts=args.accounts, orders=args.orders))
    gen_s = time.perf_counter() - t
    c = data.truth["counts"]
    label = "development, in-sample" if args.seed in DEV_SEEDS else "first sight"
    print(f"set: seed {args.seed} ({label}), {c['accounts']:,} accounts, {c['order_events']:,} order events "
          f"({c['orders']:,} orders), {c['trades']:,} trades; generated in {gen_s:.1f} s")
    print(f"injected: {len(data.truth['control_groups'])} control groups, {len(data.truth['wash'])} wash cases, "
          f"{len(data.truth['spoofing'])} spoofers, {len(data.truth['near_misses'])} near-misses")

    accounts = data.accounts()
    gc.collect()
    gc.freeze()  # the day's events are long-lived: keep the collector from re-walking them on every pass
    timings: dict = {}
    t = time.perf_counter()
    result = surveil(data.orders, data.trades, accounts, timings=timings)
    detect_s = time.perf_counter() - t
    events = c["order_events"] + c["trades"]
    print(f"\nsurveil(): {detect_s:.2f} s for {events:,} events = {events / detect_s:,.0f} events/s "
          f"({c['order_events'] / detect_s:,.0f} order events/s)")
    for stage, s in timings.items():
        print(f"  {stage:<9} {s:6.2f} s  {100 * s / detect_s:5.1f} %")

    # Streaming: the same spoofing rule decided per event, thresholds given up front (here: this day's own).
    from otcdesk.workflows.surveillance.spoofing import size_thresholds
    from otcdesk.workflows.surveillance.streaming import SpoofingMonitor, replay
    sizes: dict = {}
    for o in data.orders:
        if o.event == "new" and o.qty:
            sizes.setdefault(o.instrument, []).append(o.qty)
    control = control_groups(accounts)
    monitor = SpoofingMonitor(control, size_thresholds(sizes, SurveillanceRules().spoofing))
    t = time.perf_counter()
    streamed = replay(data.orders, data.trades, monitor)
    stream_s = time.perf_counter() - t
    batch_cases = {(a["evidence"]["account"], a["evidence"]["instrument"]) for a in result["alerts"]
                   if a["type"] == "spoofing"}
    stream_cases = {(e["account"], e["instrument"]) for e in streamed}
    print(f"streaming spoofing monitor: {stream_s:.2f} s = {events / stream_s:,.0f} events/s, "
          f"{1e6 * stream_s / events:.1f} µs per event on average; {len(streamed)} alert events; "
          f"same (account, instrument) as batch: {stream_cases == batch_cases}")

    scored = evaluate(result, data.truth)
    print(f"\nquality ({label}):")
    print(f"  {'type':<14}{'precision':>10}{'recall':>8}{'alerts':>8}{'cases':>7}   events")
    for kind, extra in (("control_group", None), ("wash_trade", "trades"), ("spoofing", "orders")):
        s = scored[kind]
        ev = f"   {extra}: precision {s[extra]['precision']:.3f} recall {s[extra]['recall']:.3f} " \
             f"({s[extra]['flagged']} flagged, {s[extra]['injected']} injected)" if extra else ""
        print(f"  {kind:<14}{s['precision']:>10.3f}{s['recall']:>8.3f}{s['alerts']:>8}{s['cases']:>7}{ev}")
    nm = scored["near_misses"]
    print(f"  near-misses fired: {nm['fired']} of {nm['cases']}" + (f" {nm['which']}" if nm["which"] else ""))

    if not args.no_csv:
        with tempfile.TemporaryDirectory() as tmp:
            paths = {k: Path(tmp) / f"{k}.csv" for k in ("orders", "trades", "accounts")}
            t = time.perf_counter()
            write_orders(paths["orders"], data.orders)
            write_trades(paths["trades"], data.trades)
            write_accounts(paths["accounts"], data.account_rows)
            write_s = time.perf_counter() - t
            t = time.perf_counter()
            orders2, trades2, accounts2 = (read_orders(paths["orders"]), read_trades(paths["trades"]),
                                           read_accounts(paths["accounts"]))
            read_s = time.perf_counter() - t
            size = sum(p.stat().st_size for p in paths.values()) / 2**20
        same = orders2 == data.orders and trades2 == data.trades
        print(f"\nCSV: {size:.0f} MiB written in {write_s:.1f} s; read and validated in {read_s:.1f} s = "
              f"{events / read_s:,.0f} events/s; round trip identical: {same}")
        print(f"end to end (read + surveil): {events / (read_s + detect_s):,.0f} events/s")
        del orders2, trades2, accounts2

    # Reference 1: the naive pairwise spoofing check on a slice, against the indexed detector on the same slice.
    rules = dataclasses.replace(SurveillanceRules().spoofing, min_orders=1)
    part = data.orders[:args.slice]
    end = part[-1].ts
    part_trades = [t for t in data.trades if t.ts <= end]
    t = time.perf_counter()
    ours = detect_spoofing(part, part_trades, control, rules)
    ours_s = time.perf_counter() - t
    t = time.perf_counter()
    ref = naive_spoofing(part, part_trades, control, rules)
    ref_s = time.perf_counter() - t
    ours_cases = {(a["evidence"]["account"], a["evidence"]["instrument"]):
                  sorted(o["order_id"] for o in a["evidence"]["orders"]) for a in ours}
    n_slice = len(part) + len(part_trades)
    print(f"\nreference, naive pairwise spoofing (O(n²) per instrument) on the first {len(part):,} order events "
          f"and {len(part_trades):,} trades, min_orders = 1 on both sides:")
    print(f"  naive   {ref_s:8.3f} s = {n_slice / ref_s:>12,.0f} events/s, {len(ref)} alerts")
    print(f"  indexed {ours_s:8.3f} s = {n_slice / ours_s:>12,.0f} events/s, {len(ours_cases)} alerts "
          f"(×{ref_s / ours_s:,.0f}); same alerts and orders: {ours_cases == ref}")

    # Reference 2: pandas for the wash-trade check over every trade.
    try:
        import pandas  # noqa: F401
    except ImportError:
        print("\nreference, pandas wash check: pandas not installed, skipped")
        return
    t = time.perf_counter()
    from otcdesk.workflows.surveillance.wash import detect_wash
    wash = detect_wash(data.trades, control)
    wash_s = time.perf_counter() - t
    pd_s, pd_cases = pandas_wash(data.trades, control)
    print(f"\nreference, pandas merge+groupby wash check over {len(data.trades):,} trades "
          f"(frame built beforehand, not timed):")
    print(f"  pandas  {pd_s:8.3f} s, {pd_cases} cases")
    print(f"  ours    {wash_s:8.3f} s, {len(wash)} cases (pure Python, one pass)")


if __name__ == "__main__":
    main()
