"""Structure templates the tests write themselves: structures that exist nowhere in the code."""
from __future__ import annotations

import copy


def capped_snowball(structure: str = "capped_loss_snowball", names=("限亏雪球", "封底雪球")) -> dict:
    """限亏雪球: a snowball whose knocked-in loss is floored at floor_pct (a put spread once knocked in)."""
    return copy.deepcopy({
        "structure": structure,
        "description": "限亏雪球：月度敲出、每日敲入，敲入后亏损以 floor_pct 封底。",
        "names": list(names),
        "params": {
            "ko_pct": {"default": 103, "min": 80, "max": 130},
            "ki_pct": {"default": 75, "min": 40, "max": 100},
            "coupon_pct": {"default": 10, "min": 0, "max": 60},
            "floor_pct": {"default": 70, "min": 0, "max": 100},
            "lockup_months": {"default": 3, "type": "int", "min": 0, "max": 12},
        },
        "constraints": [{"less": ["ki_pct", "ko_pct"]}, {"less": ["floor_pct", "ki_pct"]}],
        "blocks": [
            {"block": "knock_out", "direction": "up", "level_pct": "$ko_pct", "observation": "monthly",
             "lockup_months": "$lockup_months", "rebate_pct": "$coupon_pct", "rebate_accrues": True,
             "rebate_at": "hit"},
            {"block": "knock_in", "direction": "down", "level_pct": "$ki_pct", "observation": "daily"},
            {"block": "payoff", "state": "not_knocked_in",
             "legs": [{"kind": "accrued_cash", "weight_pct": "$coupon_pct"}]},
            {"block": "payoff", "state": "knocked_in",
             "legs": [{"kind": "put", "strike_pct": 100, "weight": -1},
                      {"kind": "put", "strike_pct": "$floor_pct", "weight": 1}]},
        ],
    })
