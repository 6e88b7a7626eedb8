"""Market snapshot: the checked-in, clearly SIMULATED demo snapshot (a feed adapter would write the same shape)."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

SNAPSHOT_PATH = Path(__file__).with_name("data") / "market_snapshot.json"


@lru_cache(maxsize=1)
def load_snapshot(path: str = str(SNAPSHOT_PATH)) -> dict:
    """The whole snapshot document: `as_of`, `source`, `rate`, `underlyings{code: {name, spot, vol, div}}`."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def market_for(underlying: str, snapshot: dict | None = None, *, with_surface: bool = False,
               valuation_date=None) -> dict | None:
    """The `market` object of CONTRACTS.md (`spot`, `vol`, `rate`, `div`) for one underlying, or None if not in the snapshot.

    `snapshot` is the checked-in document or `MarketDataService.latest()` (whose underlyings carry their own
    `rate`, `as_of` and `source`, preferred to the document's, and their stored vol surface). With `with_surface`,
    the underlying's stored surface becomes `vol_surface` (the contract grid at `valuation_date`, default the
    market's `as_of`; see `trading.vol_surfaces`), when it has one with an expiry after that date."""
    snap = snapshot or load_snapshot()
    row = snap["underlyings"].get(underlying)
    if row is None:
        return None
    out = {"spot": row["spot"], "vol": row["vol"], "rate": row.get("rate", snap["rate"]), "div": row.get("div", 0.0),
           "as_of": row.get("as_of", snap["as_of"]), "source": row.get("source", snap["source"])}
    if with_surface and row.get("vol_surface"):
        from otcdesk.app.trading.vol_surfaces import contract_grid
        grid = contract_grid(row["vol_surface"], valuation_date or str(out["as_of"])[:10])
        if grid is not None:
            out["vol_surface"] = grid
    return out
