"""Wash trades (对倒 / 自成交): trades whose buyer and seller are one account or one actual-control group.

One alert per (account or control group, instrument), over all its wash trades in the input.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from otcdesk.workflows.surveillance.control import ControlResult
from otcdesk.workflows.surveillance.model import Trade, format_ts


@dataclass(frozen=True)
class WashRules:
    """Scoring of wash-trade alerts.

    - `share_full` (0.05): the wash volume's share of the instrument's traded volume at which the share term is 1;
    - `repeat_base` (0.7): each wash trade multiplies the "innocent" remainder by this (see `score`);
    - `min_trades` (1): fewer wash trades than this raise no alert (by definition one is already a wash trade).

    `score` = 1 − repeat_base^n × (1 − min(1, share / share_full)): one small self-trade scores 0.3, five 0.83;
    any count at 5 % of the instrument's volume scores 1. It orders alerts by how much and how often; it is not a
    probability.
    """

    share_full: float = 0.05
    repeat_base: float = 0.7
    min_trades: int = 1


def detect_wash(trades: Iterable[Trade], control: ControlResult, rules: WashRules = WashRules()) -> list[dict]:
    volume: dict[str, float] = {}
    cases: dict[tuple[tuple, str], list[Trade]] = {}
    group_of = control.group_of
    for t in trades:
        qty = t.qty or 0.0
        volume[t.instrument] = volume.get(t.instrument, 0.0) + qty
        buyer, seller = t.buy_account, t.sell_account
        if not buyer or not seller:
            continue
        if buyer == seller:
            unit = control.unit(buyer)
        else:
            g = group_of.get(buyer)
            if g is None or g != group_of.get(seller):
                continue
            unit = ("group", g)
        cases.setdefault((unit, t.instrument), []).append(t)
    alerts = []
    for (unit, instrument), hits in cases.items():
        if len(hits) < rules.min_trades:
            continue
        hits.sort(key=lambda t: (t.ts, t.trade_id))
        wash_qty = sum(t.qty or 0.0 for t in hits)
        total = volume.get(instrument) or 0.0
        share = wash_qty / total if total else 0.0
        score = 1.0 - rules.repeat_base ** len(hits) * (1.0 - min(1.0, share / rules.share_full))
        accounts = sorted({a for t in hits for a in (t.buy_account, t.sell_account)})
        group = control.groups[unit[1]] if unit[0] == "group" else None
        alerts.append({
            "type": "wash_trade",
            "accounts": accounts,
            "order_ids": [],
            "trade_ids": [t.trade_id for t in hits],
            "score": round(score, 4),
            "evidence": {
                "instrument": instrument,
                "trades": len(hits),
                "self_trades": sum(t.buy_account == t.sell_account for t in hits),
                "wash_qty": wash_qty,
                "instrument_qty": total,
                "volume_share": round(share, 6),
                "first": format_ts(hits[0].ts),
                "last": format_ts(hits[-1].ts),
                "control_group": list(group.accounts) if group else None,
                "links": [link.as_dict() for link in group.links] if group else [],
            },
        })
    return alerts
