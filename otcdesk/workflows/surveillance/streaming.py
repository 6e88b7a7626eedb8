"""Spoofing detection per event (流式): the batch rule of `spoofing`, decided as each event arrives.

`SpoofingMonitor(control, thresholds, rules)` takes order events and trades in time order (`on_order`,
`on_trade`) and returns, per event, the alerts that event completes. The size baseline cannot come from a day
not yet over, so the monitor takes per-instrument thresholds from outside (an earlier period's
`spoofing.size_thresholds`); given the same thresholds and all events, it qualifies exactly the orders the batch
detector does.

A cancel decides a large, fast-cancelled order at once when an opposite-side fill of its account or control
group came since one window before the order; otherwise the order waits `window_after_s` for a late fill (fills
arriving then qualify it). Memory is bounded by the live orders plus fills of the last `max_lifetime_s +
window_before_s`.
"""
from __future__ import annotations

import heapq
from collections import deque

from otcdesk.workflows.surveillance.control import ControlResult
from otcdesk.workflows.surveillance.model import Order, Trade
from otcdesk.workflows.surveillance.spoofing import OPPOSITE, SpoofingRules


class SpoofingMonitor:
    def __init__(self, control: ControlResult, thresholds: dict[str, tuple[float, float]],
                 rules: SpoofingRules = SpoofingRules()):
        self.control = control
        self.thresholds = thresholds
        self.rules = rules
        self.max_life = int(rules.max_lifetime_s * 1000)
        self.before = int(rules.window_before_s * 1000)
        self.after = int(rules.window_after_s * 1000)
        self.live: dict[str, list] = {}  # order_id -> [account, instrument, side, qty, ts, filled]
        self.recent: dict[tuple, deque] = {}  # (unit, instrument, side) -> deque of fill times
        self.waiting: dict[tuple, list] = {}  # (unit, instrument, side wanted) -> [(deadline, order_id, account)]
        self.deadlines: list = []  # heap of (deadline, key) to expire waiting orders
        self.qualified: dict[tuple[str, str], list[str]] = {}  # (account, instrument) -> order ids

    def _fill(self, unit, instrument: str, side: str, ts: int) -> list[dict]:
        key = (unit, instrument, side)
        times = self.recent.setdefault(key, deque())
        times.append(ts)
        horizon = ts - self.max_life - self.before
        while times and times[0] < horizon:
            times.popleft()
        out = []
        waiting = self.waiting.get(key)
        if waiting:  # every order still waiting here is within its window: this fill qualifies it
            for deadline, oid, account, inst in waiting:
                if ts <= deadline:
                    out += self._qualify(oid, account, inst, ts)
            self.waiting[key] = []
        return out

    def _qualify(self, order_id: str, account: str, instrument: str, ts: int) -> list[dict]:
        hits = self.qualified.setdefault((account, instrument), [])
        hits.append(order_id)
        if len(hits) >= self.rules.min_orders:
            return [{"type": "spoofing", "account": account, "instrument": instrument, "order_ids": list(hits),
                     "ts": ts}]
        return []

    def _expire(self, now: int) -> None:
        while self.deadlines and self.deadlines[0][0] < now:
            deadline, key = heapq.heappop(self.deadlines)
            rows = self.waiting.get(key)
            if rows:
                self.waiting[key] = [r for r in rows if r[0] >= now]

    def on_order(self, o: Order) -> list[dict]:
        self._expire(o.ts)
        if o.event == "new":
            if o.order_id not in self.live:
                self.live[o.order_id] = [o.account_id, o.instrument, o.side, o.qty, o.ts, 0.0]
            return []
        rec = self.live.get(o.order_id)
        if o.event == "fill":
            if rec is not None:
                rec[5] += o.qty or 0.0
            account = o.account_id or (rec[0] if rec else "")
            instrument = o.instrument or (rec[1] if rec else "")
            side = o.side or (rec[2] if rec else "")
            if side not in OPPOSITE:
                return []
            return self._fill(self.control.unit(account), instrument, side, o.ts)
        # cancel
        if rec is None:
            return []
        del self.live[o.order_id]
        account, instrument, side, qty, t_new, filled = rec
        th = self.thresholds.get(instrument)
        if (not qty or th is None or qty < th[0] or not 0 <= o.ts - t_new <= self.max_life
                or filled > self.rules.max_fill_ratio * qty or side not in OPPOSITE):
            return []
        key = (self.control.unit(account), instrument, OPPOSITE[side])
        times = self.recent.get(key)
        if times and times[-1] >= t_new - self.before:
            return self._qualify(o.order_id, account, instrument, o.ts)
        deadline = o.ts + self.after
        self.waiting.setdefault(key, []).append((deadline, o.order_id, account, instrument))
        heapq.heappush(self.deadlines, (deadline, key))
        return []

    def on_trade(self, t: Trade) -> list[dict]:
        self._expire(t.ts)
        out = []
        for account, side in ((t.buy_account, "B"), (t.sell_account, "S")):
            if account:
                out += self._fill(self.control.unit(account), t.instrument, side, t.ts)
        return out


def replay(orders: list[Order], trades: list[Trade], monitor: SpoofingMonitor) -> list[dict]:
    """Feed a day's events to `monitor` in time order (trades after order events of the same millisecond)."""
    out = []
    i = j = 0
    while i < len(orders) or j < len(trades):
        if j >= len(trades) or (i < len(orders) and orders[i].ts <= trades[j].ts):
            out += monitor.on_order(orders[i])
            i += 1
        else:
            out += monitor.on_trade(trades[j])
            j += 1
    return out
