"""Writes otcdesk/app/data/vol_surfaces.json: SIMULATED skewed surfaces for the pool indices (not market data).

Shape per index with 1Y ATM vol v (the snapshot's vol), tenor T (years) and k = ln(K/S):
    atm(T)  = v (1 − 0.08 e^{−T/0.5})                   upward-sloping term structure
    σ(k, T) = atm(T) + s(T) k + c(T) k²,  s(T) = −0.30 (T/0.25)^{−0.35},  c(T) = 0.25 (T/0.25)^{−0.30}
so the 90% strike is about 3 vol points above ATM at 3M and 2 at 1Y (put skew, flattening with maturity).
Each surface is checked to fit (SVI) free of calendar arbitrage before it is written.
Run: python scripts/make_demo_vol_surfaces.py
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from otcdesk.pricing_engine.surface import VolSurface

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = ROOT / "otcdesk" / "app" / "data" / "market_snapshot.json"
OUT = ROOT / "otcdesk" / "app" / "data" / "vol_surfaces.json"
POOL = ("000300.SH", "000905.SH", "000852.SH", "000016.SH", "399006.SZ", "000688.SH", "399001.SZ", "932000.CSI",
        "000510.SH")
TENORS = (("1M", 1 / 12), ("2M", 2 / 12), ("3M", 0.25), ("6M", 0.5), ("9M", 0.75), ("12M", 1.0), ("18M", 1.5),
          ("24M", 2.0))
STRIKES = (60, 70, 80, 85, 90, 95, 100, 105, 110, 115, 120, 130, 140)


def vol(v: float, k: float, T: float) -> float:
    atm = v * (1 - 0.08 * math.exp(-T / 0.5))
    s = -0.30 * (T / 0.25) ** -0.35
    c = 0.25 * (T / 0.25) ** -0.30
    return max(atm + s * k + c * k * k, 0.3 * v)


def main() -> None:
    snap = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    out = {"source": "SIMULATED demo vol surfaces (not market data)", "as_of": snap["as_of"],
           "method": __doc__.strip().splitlines()[2:5], "underlyings": {}}
    for code in POOL:
        u = snap["underlyings"][code]
        rows = [[round(vol(u["vol"], math.log(K / 100), T), 4) for K in STRIKES] for _, T in TENORS]
        doc = {"tenors": [t for t, _ in TENORS], "strikes_pct": list(STRIKES), "vols": rows,
               "name_surface": f"demo:{code} (SIMULATED)"}
        grid = {"expiries": [f"{2026 + (m := int(round(T * 12)) + 10) // 12}-{(m % 12) + 1:02d}-20" for _, T in TENORS],
                "strikes_pct": list(STRIKES), "vols": rows}
        s = VolSurface.from_contract(grid, snap["as_of"], u["spot"], snap["rate"], u["div"])
        arb = s.arbitrage()
        assert not arb["calendar"], (code, arb["calendar"][:3])
        print(code, u["name"], "fit max error (vol pts)", round(100 * max(s.fit_errors), 3),
              "butterfly", len(arb["butterfly"]), "90%/100% 3M", rows[2][4], rows[2][6], "1Y", rows[5][4], rows[5][6])
        out["underlyings"][code] = {"name": u["name"], **doc}
    OUT.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
