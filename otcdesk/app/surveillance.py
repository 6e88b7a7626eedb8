"""`SurveillanceService`: the surveillance detectors (`workflows.surveillance.surveil`) over the desk's data, cached,
filtered for one account or one alert type (compliance only, through the console and the assistant).

The source is a folder with the contract's `orders.csv`, `trades.csv` and `accounts.csv` (`OTCDESK_SURVEILLANCE_DIR`,
the exchange-side or broker data compliance watches), or, when that is unset, the desk's own tables
(`app.surveillance_source.load_from_desk`). A folder's result is kept until one of its files changes; the desk's
tables are read again after `max_age_s`.
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)
FILES = ("orders.csv", "trades.csv", "accounts.csv")


class SurveillanceError(RuntimeError):
    """The source could not be read (a missing or malformed file); the message says which."""


class SurveillanceService:
    def __init__(self, engine: Engine, folder: Path | None = None, max_age_s: float = 60.0):
        self.engine, self.folder, self.max_age_s = engine, folder, max_age_s
        self._lock = threading.Lock()
        self._cache: tuple[object, float, dict] | None = None  # (source key, monotonic time, result)

    def _key(self):
        if self.folder is None:
            return "desk"
        try:
            return tuple((f, (self.folder / f).stat().st_mtime_ns, (self.folder / f).stat().st_size) for f in FILES)
        except OSError as exc:
            raise SurveillanceError(f"surveillance folder {self.folder}: {exc.strerror}: {exc.filename}") from exc

    def result(self) -> dict:
        """{"alerts", "control_groups", "as_of", "source"} of the detectors over the current source (cached)."""
        with self._lock:
            key = self._key()
            if self._cache and self._cache[0] == key and (
                    self.folder is not None or time.monotonic() - self._cache[1] < self.max_age_s):
                return self._cache[2]
            result = self._compute()
            self._cache = (key, time.monotonic(), result)
            return result

    def _compute(self) -> dict:
        from otcdesk.workflows.surveillance import InputError, read_accounts, read_orders, read_trades, surveil

        t0 = time.perf_counter()
        if self.folder is not None:
            try:
                orders, trades, accounts = (read_orders(self.folder / "orders.csv"),
                                            read_trades(self.folder / "trades.csv"),
                                            read_accounts(self.folder / "accounts.csv"))
            except InputError as exc:
                raise SurveillanceError(f"surveillance input: {exc}") from exc
            source = {"kind": "folder", "path": str(self.folder)}
        else:
            from otcdesk.app.surveillance_source import load_from_desk

            orders, trades, accounts, counts = load_from_desk(self.engine)
            source = {"kind": "desk", **counts}
        result = surveil(orders, trades, accounts)
        result["as_of"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        result["source"] = {**source, "orders": len(orders), "trades": len(trades), "accounts": len(accounts),
                            "elapsed_s": round(time.perf_counter() - t0, 3)}
        log.info("surveillance: %d alerts over %s", len(result["alerts"]), source["kind"])
        return result

    def alerts(self, account: str | None = None, type: str | None = None, limit: int = 10) -> dict:
        """{"alerts" (at most `limit`, strongest first within the result's order), "total", "as_of", "source"}."""
        result = self.result()
        chosen = [a for a in result["alerts"] if (type is None or a["type"] == type)
                  and (account is None or account in a["accounts"])]
        return {"alerts": chosen[:limit], "total": len(chosen), "as_of": result["as_of"], "source": result["source"],
                "control_groups": len(result["control_groups"])}


def timeline(alert: dict) -> list[dict]:
    """An alert's events in time order, for the console: a spoofing alert's large orders (placed, cancelled) and
    the opposite-side fills; a wash trade's first and last trade."""
    ev = alert.get("evidence") or {}
    rows: list[dict] = []
    if alert.get("type") == "spoofing":
        for o in ev.get("orders") or []:
            rows.append({"ts": o["placed"], "event": "new", "order_id": o["order_id"], "account": ev.get("account"),
                         "side": o["side"], "qty": o["qty"], "price": o["price"]})
            rows.append({"ts": o["cancelled"], "event": "cancel", "order_id": o["order_id"],
                         "account": ev.get("account"), "side": o["side"], "qty": o["qty"], "price": o["price"],
                         "lifetime_ms": o.get("lifetime_ms")})
            for f in o.get("opposite_fills") or []:
                rows.append({"ts": f["ts"], "event": "fill", "order_id": f["order_id"], "account": f["account_id"],
                             "side": "S" if o["side"] == "B" else "B", "qty": f["qty"], "price": f["price"]})
    elif alert.get("type") == "wash_trade":
        for key in ("first", "last"):
            if ev.get(key):
                rows.append({"ts": ev[key], "event": f"{key} trade", "order_id": None,
                             "account": ",".join(alert.get("accounts") or []), "side": None, "qty": None,
                             "price": None})
    seen, out = set(), []
    for r in sorted(rows, key=lambda r: (r["ts"], r["order_id"] or "")):
        key = (r["ts"], r["event"], r["order_id"], r["account"])
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out
