"""Spoofing (幌骗 / 虚假申报): large orders cancelled within seconds while the same hands trade the other side.

An order is a *spoof candidate* when it is large for its instrument (its size at or above the instrument's
`large_quantile` of new-order sizes and at least `min_median_multiple` × the median), was cancelled within
`max_lifetime_s` of its placing, and had filled at most `max_fill_ratio` of itself. It *qualifies* when its
account, or another account of its actual-control group, was filled on the opposite side of the same instrument
between `window_before_s` before the order was placed and `window_after_s` after it was cancelled (a fill event
in the order stream or a trade in the trade file). An account with `min_orders` or more qualifying orders in one
instrument is alerted, with every qualifying order, its size, lifetime and the opposite fills as evidence.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Iterable

from otcdesk.workflows.surveillance.control import ControlResult
from otcdesk.workflows.surveillance.model import Order, Trade, format_ts

OPPOSITE = {"B": "S", "S": "B"}


@dataclass(frozen=True)
class SpoofingRules:
    """Thresholds of the spoofing detector (defaults in brackets; see the module docstring for their use).

    - `large_quantile` (0.95) and `min_median_multiple` (4.0): "large" is at or above both the instrument's 95th
      percentile of new-order sizes and 4 × its median, so an instrument whose sizes barely vary does not call its
      top 5 % large;
    - `min_new_orders` (30): an instrument with fewer new orders has no size baseline and is not checked;
    - `max_lifetime_s` (5.0): cancelled within five seconds of placing;
    - `max_fill_ratio` (0.1): a large order that mostly filled was a real order;
    - `window_before_s` (1.0), `window_after_s` (2.0): opposite-side fills count from one second before the order
      to two seconds after its cancel (the fill a spoof sets up often lands as the spoof is pulled);
    - `min_orders` (2): one large fast cancel beside a fill is chance for an active account; spoofing is a
      pattern, so an account needs two qualifying orders in the instrument.

    Score of an alert: each qualifying order i gets p_i = 0.3 + 0.3·size_i + 0.3·speed_i with
    size_i = min(1, qty/threshold − 1) (1 at twice the threshold) and speed_i = 1 − lifetime/max_lifetime; the
    alert's score is 1 − Π(1 − p_i), in [0, 1] (rounded to 4 places): it rises with repetition, size and
    speed. It ranks alerts; it is not a probability.
    """

    large_quantile: float = 0.95
    min_median_multiple: float = 4.0
    min_new_orders: int = 30
    max_lifetime_s: float = 5.0
    max_fill_ratio: float = 0.1
    window_before_s: float = 1.0
    window_after_s: float = 2.0
    min_orders: int = 2


def size_thresholds(new_sizes: dict[str, list[float]], rules: SpoofingRules) -> dict[str, tuple[float, float]]:
    """instrument → (large threshold, median) of its new-order sizes, for instruments with a baseline."""
    out = {}
    for instrument, sizes in new_sizes.items():
        n = len(sizes)
        if n < rules.min_new_orders:
            continue
        sizes.sort()
        median = sizes[n // 2] if n % 2 else (sizes[n // 2 - 1] + sizes[n // 2]) / 2
        q = sizes[min(n - 1, max(0, math.ceil(rules.large_quantile * n) - 1))]
        out[instrument] = (max(q, rules.min_median_multiple * median), median)
    return out


def detect_spoofing(orders: Iterable[Order], trades: Iterable[Trade], control: ControlResult,
                    rules: SpoofingRules = SpoofingRules()) -> list[dict]:
    new: dict[str, Order] = {}
    cancelled: dict[str, int] = {}
    filled: dict[str, float] = {}
    fills: list[Order] = []
    for o in orders:
        ev = o.event
        if ev == "new":
            if o.order_id not in new:  # a repeated `new` keeps the first
                new[o.order_id] = o
        elif ev == "cancel":
            prev = cancelled.get(o.order_id)
            if prev is None or o.ts < prev:
                cancelled[o.order_id] = o.ts
        else:
            fills.append(o)
            filled[o.order_id] = filled.get(o.order_id, 0.0) + (o.qty or 0.0)

    sizes: dict[str, list[float]] = {}
    for o in new.values():
        if o.qty:
            sizes.setdefault(o.instrument, []).append(o.qty)
    thresholds = size_thresholds(sizes, rules)

    max_life = int(rules.max_lifetime_s * 1000)
    candidates = []
    for oid, t_cancel in cancelled.items():
        o = new.get(oid)
        if o is None or not o.qty:
            continue
        lifetime = t_cancel - o.ts
        if not 0 <= lifetime <= max_life:
            continue
        th = thresholds.get(o.instrument)
        if th is None or o.qty < th[0] or filled.get(oid, 0.0) > rules.max_fill_ratio * o.qty:
            continue
        candidates.append((o, t_cancel))
    if not candidates:
        return []

    # Index only the fills of the accounts that matter: the candidates' own and their control groups'.
    wanted = {m for o, _ in candidates for m in control.members(o.account_id)}
    fill_index: dict[tuple[str, str, str], list[tuple[int, Order]]] = {}
    for f in fills:
        base = new.get(f.order_id)
        account = f.account_id or (base.account_id if base else "")
        if account not in wanted:
            continue
        instrument = f.instrument or (base.instrument if base else "")
        side = f.side or (base.side if base else "")
        if side in OPPOSITE:
            fill_index.setdefault((account, instrument, side), []).append((f.ts, f))
    trade_index: dict[tuple[str, str, str], list[tuple[int, Trade]]] = {}
    for t in trades:
        for account, side in ((t.buy_account, "B"), (t.sell_account, "S")):
            if account in wanted:
                trade_index.setdefault((account, t.instrument, side), []).append((t.ts, t))
    for index in (fill_index, trade_index):
        for rows in index.values():
            rows.sort(key=lambda r: (r[0], getattr(r[1], "order_id", "") or getattr(r[1], "trade_id", "")))

    before, after = int(rules.window_before_s * 1000), int(rules.window_after_s * 1000)
    qualifying: dict[tuple[str, str], list[dict]] = {}
    for o, t_cancel in candidates:
        lo, hi = o.ts - before, t_cancel + after
        opp = OPPOSITE[o.side]
        opp_fills, opp_trades = [], []
        for member in control.members(o.account_id):
            for index, out in ((fill_index, opp_fills), (trade_index, opp_trades)):
                rows = index.get((member, o.instrument, opp))
                if rows:
                    i = bisect.bisect_left(rows, lo, key=lambda r: r[0])
                    while i < len(rows) and rows[i][0] <= hi:
                        out.append(rows[i][1])
                        i += 1
        if not opp_fills and not opp_trades:
            continue
        threshold, median = thresholds[o.instrument]
        lifetime = t_cancel - o.ts
        size_term = min(1.0, o.qty / threshold - 1.0)
        speed_term = 1.0 - lifetime / max_life if max_life else 1.0
        qualifying.setdefault((o.account_id, o.instrument), []).append({
            "order_id": o.order_id,
            "side": o.side,
            "qty": o.qty,
            "price": o.price,
            "placed": format_ts(o.ts),
            "cancelled": format_ts(t_cancel),
            "lifetime_ms": lifetime,
            "filled_qty": filled.get(o.order_id, 0.0),
            "size_vs_median": round(o.qty / median, 2) if median else None,
            "opposite_fills": [{"order_id": f.order_id, "account_id": f.account_id or new[f.order_id].account_id,
                                "ts": format_ts(f.ts), "qty": f.qty, "price": f.price}
                               for f in sorted(opp_fills, key=lambda f: (f.ts, f.order_id))],
            "opposite_trades": [{"trade_id": t.trade_id, "ts": format_ts(t.ts), "qty": t.qty, "price": t.price,
                                 "buy_account": t.buy_account, "sell_account": t.sell_account}
                                for t in sorted(opp_trades, key=lambda t: (t.ts, t.trade_id))],
            "_p": 0.3 + 0.3 * size_term + 0.3 * speed_term,
            "_ts": o.ts,
        })

    alerts = []
    for (account, instrument), rows in qualifying.items():
        if len(rows) < rules.min_orders:
            continue
        rows.sort(key=lambda r: (r["_ts"], r["order_id"]))
        miss = 1.0
        for r in rows:
            miss *= 1.0 - r.pop("_p")
            r.pop("_ts")
        threshold, median = thresholds[instrument]
        accounts = {account}
        opp_orders, trade_ids = [], []
        for r in rows:
            for f in r["opposite_fills"]:
                accounts.add(f["account_id"])
                opp_orders.append(f["order_id"])
            for t in r["opposite_trades"]:
                accounts.add(t["buy_account"] if r["side"] == "S" else t["sell_account"])
                trade_ids.append(t["trade_id"])
        group = control.groups[control.group_of[account]] if account in control.group_of else None
        alerts.append({
            "type": "spoofing",
            "accounts": sorted(accounts),
            "order_ids": [r["order_id"] for r in rows] + sorted(set(opp_orders) - {r["order_id"] for r in rows}),
            "trade_ids": sorted(set(trade_ids)),
            "score": round(1.0 - miss, 4),
            "evidence": {
                "account": account,
                "instrument": instrument,
                "large_threshold_qty": threshold,
                "median_qty": median,
                "max_lifetime_ms": max_life,
                "orders": rows,
                "control_group": list(group.accounts) if group else None,
            },
        })
    return alerts
