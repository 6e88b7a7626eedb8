"""`surveil(orders, trades, accounts)`: every detector over one input, as the contract's JSON document.

```
{"alerts": [{"type", "accounts", "order_ids", "trade_ids", "score", "evidence"}],
 "control_groups": [[account_id, ...], ...],
 "weak_links": [{"key", "value", "accounts"}]}
```

`weak_links` (an extra field) lists every address or IP shared by two or more accounts, masked: evidence for an
analyst, never an alert by itself.

`type` is `control_group`, `wash_trade` or `spoofing`. Alerts come in that order of type, then by falling score,
then by their accounts and ids, so one input always gives the same document. Lists of ids inside an alert are
sorted (spoofing lists its large orders first, then the opposite-side orders). `score` is in [0, 1] and ranks
alerts of one type by strength of evidence (see `ControlGroup`, `WashRules`, `SpoofingRules`): it is not a
probability and scores of different types are not comparable. Evidence never carries a raw identifier: shared
ID numbers, mobiles and bank accounts appear masked.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterable

from otcdesk.workflows.surveillance.control import ControlRules, control_groups
from otcdesk.workflows.surveillance.model import Account, Order, Trade
from otcdesk.workflows.surveillance.spoofing import SpoofingRules, detect_spoofing
from otcdesk.workflows.surveillance.wash import WashRules, detect_wash

TYPE_ORDER = {"control_group": 0, "wash_trade": 1, "spoofing": 2}


@dataclass(frozen=True)
class SurveillanceRules:
    control: ControlRules = field(default_factory=ControlRules)
    wash: WashRules = field(default_factory=WashRules)
    spoofing: SpoofingRules = field(default_factory=SpoofingRules)


def _sort_key(alert: dict):
    return (TYPE_ORDER[alert["type"]], -alert["score"], alert["accounts"], alert["order_ids"], alert["trade_ids"],
            str(alert["evidence"].get("instrument", "")))


def surveil(orders: Iterable[Order], trades: Iterable[Trade], accounts: Iterable[Account],
            rules: SurveillanceRules = SurveillanceRules(), *, timings: dict | None = None) -> dict:
    """Run the three detectors. `timings`, when given, receives seconds per stage (control, wash, spoofing)."""
    orders = orders if isinstance(orders, list) else list(orders)
    trades = trades if isinstance(trades, list) else list(trades)
    t0 = time.perf_counter()
    control = control_groups(accounts, rules.control)
    t1 = time.perf_counter()
    wash = detect_wash(trades, control, rules.wash)
    t2 = time.perf_counter()
    spoof = detect_spoofing(orders, trades, control, rules.spoofing)
    t3 = time.perf_counter()
    if timings is not None:
        timings.update({"control": t1 - t0, "wash": t2 - t1, "spoofing": t3 - t2})

    alerts = []
    for group in control.groups:
        inner = {a: True for a in group.accounts}
        alerts.append({
            "type": "control_group",
            "accounts": list(group.accounts),
            "order_ids": [],
            "trade_ids": [],
            "score": group.score,
            "evidence": {
                "links": [link.as_dict() for link in group.links],
                "weak_links": [link.as_dict() for link in group.weak_links],
                "weakly_linked_outside": sorted({a for w in group.weak_links for a in w.accounts
                                                           if a not in inner}),
            },
        })
    alerts.extend(wash)
    alerts.extend(spoof)
    alerts.sort(key=_sort_key)
    return {"alerts": alerts, "control_groups": [list(g.accounts) for g in control.groups],
            "weak_links": [link.as_dict() for link in control.weak_links]}
