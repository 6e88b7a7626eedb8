"""Scoring a `surveil()` result against a generated set's `truth` (see `generate`).

Per alert type, at the level of cases (what an analyst would open):
- `control_group`: a detected group is right when it equals an injected group exactly;
- `wash_trade`: an alert is right when its instrument is the case's and its accounts lie within the case's;
- `spoofing`: an alert is right when its account (`evidence.account`) and instrument are the case's.
Precision = right alerts / alerts; recall = cases found by at least one right alert / cases. Beside them, at the
level of events: wash trades flagged (trade ids) and spoof orders flagged (the alerts' large orders), against the
injected ones. `near_misses_fired` counts near-miss cases that an alert touched (it should be 0).
"""
from __future__ import annotations


def _pr(right: int, alerts: int, found: int, cases: int) -> dict:
    return {"precision": round(right / alerts, 4) if alerts else 1.0,
            "recall": round(found / cases, 4) if cases else 1.0, "alerts": alerts, "right": right, "cases": cases, "found": found}


def _events(flagged: set, injected: set) -> dict:
    hit = len(flagged & injected)
    return {"precision": round(hit / len(flagged), 4) if flagged else 1.0,
            "recall": round(hit / len(injected), 4) if injected else 1.0,
            "flagged": len(flagged), "injected": len(injected)}


def evaluate(result: dict, truth: dict) -> dict:
    by_type: dict[str, list[dict]] = {"control_group": [], "wash_trade": [], "spoofing": []}
    for alert in result["alerts"]:
        by_type[alert["type"]].append(alert)

    true_groups = {tuple(sorted(g)) for g in truth["control_groups"]}
    found_groups = {tuple(sorted(a["accounts"])) for a in by_type["control_group"]}
    out = {"control_group": _pr(len(found_groups & true_groups), len(by_type["control_group"]),
                                len(found_groups & true_groups), len(true_groups))}

    cases = truth["wash"]
    right, found = 0, set()
    for alert in by_type["wash_trade"]:
        hits = [i for i, c in enumerate(cases) if c["instrument"] == alert["evidence"]["instrument"]
                and set(alert["accounts"]) <= set(c["accounts"])]
        right += bool(hits)
        found.update(hits)
    out["wash_trade"] = _pr(right, len(by_type["wash_trade"]), len(found), len(cases))
    out["wash_trade"]["trades"] = _events({t for a in by_type["wash_trade"] for t in a["trade_ids"]},
                                          {t for c in cases for t in c["trade_ids"]})

    cases = truth["spoofing"]
    right, found = 0, set()
    for alert in by_type["spoofing"]:
        ev = alert["evidence"]
        hits = [i for i, c in enumerate(cases) if c["account"] == ev["account"] and c["instrument"] == ev["instrument"]]
        right += bool(hits)
        found.update(hits)
    out["spoofing"] = _pr(right, len(by_type["spoofing"]), len(found), len(cases))
    out["spoofing"]["orders"] = _events({o["order_id"] for a in by_type["spoofing"] for o in a["evidence"]["orders"]},
                                        {o for c in cases for o in c["order_ids"]})

    fired = []
    for case in truth["near_misses"]:
        ids = set(case["order_ids"]) | set(case["trade_ids"])
        accounts = set(case["accounts"])
        for alert in by_type["wash_trade"] + by_type["spoofing"]:
            if ids & (set(alert["order_ids"]) | set(alert["trade_ids"])) or (
                    accounts & set(alert["accounts"]) and alert["evidence"].get("instrument") == case["instrument"]):
                fired.append({"kind": case["kind"], "accounts": case["accounts"], "alert": alert["type"]})
                break
    out["near_misses"] = {"cases": len(truth["near_misses"]), "fired": len(fired), "which": fired}
    return out
