"""`SurveillanceService`: the surveillance detectors (`workflows.surveillance.surveil`) over the desk's data, cached,
filtered for one account or one alert type (compliance only, through the console and the assistant).

The source is a folder with the contract's `orders.csv`, `trades.csv` and `accounts.csv` (`OTCDESK_SURVEILLANCE_DIR`,
the exchange-side or broker data compliance watches), or, when that is unset, the desk's own tables
(`app.surveillance_source.load_from_desk`). A folder's result is kept until one of its files changes; the desk's
tables are read again after `max_age_s`.

`run(user)` persists what the detectors find (`surveillance_alert`, one row per alert id: `alert_id`) for
compliance to triage (`triage`, the `workflows.surveillance.triage` machine); `list`, `detail` and
`control_groups` read the persisted alerts. `result()`/`alerts()` stay the detectors' own output (the assistant).
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy.engine import Engine

from otcdesk.app.pii import mask_pii
from otcdesk.app.repositories import transaction
from otcdesk.workflows.surveillance.triage import TriageError, allowed, fire

log = logging.getLogger(__name__)
FILES = ("orders.csv", "trades.csv", "accounts.csv")
TYPES = ("control_group", "wash_trade", "spoofing")
MAX_TRADE_ROWS = 200  # a wash-trade alert's trades kept in its evidence (for its timeline)


def alert_id(alert: dict) -> str:
    """A stable id: "SA" + 20 hex digits of SHA-256 over the type, sorted accounts, sorted order and trade ids."""
    key = json.dumps([alert["type"], sorted(alert["accounts"]), sorted(alert["order_ids"]),
                      sorted(alert["trade_ids"])], separators=(",", ":"))
    return "SA" + hashlib.sha256(key.encode()).hexdigest()[:20].upper()


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value).isoformat()


class SurveillanceError(RuntimeError):
    """The source could not be read (a missing or malformed file); the message says which."""


class SurveillanceService:
    def __init__(self, engine: Engine, folder: Path | None = None, max_age_s: float = 60.0):
        self.engine, self.folder, self.max_age_s = engine, folder, max_age_s
        self._lock = threading.Lock()
        self._cache: tuple[object, float, dict] | None = None  # (source key, monotonic time, result)
        self._run_lock = threading.Lock()

    def _key(self):
        if self.folder is None:
            return "desk"
        try:
            return tuple((f, (self.folder / f).stat().st_mtime_ns, (self.folder / f).stat().st_size) for f in FILES)
        except OSError as exc:
            raise SurveillanceError(f"surveillance folder {self.folder}: {exc.strerror}: {exc.filename}") from exc

    def result(self, fresh: bool = False) -> dict:
        """{"alerts", "control_groups", "as_of", "source"} of the detectors over the current source (cached;
        `fresh`: the desk's tables read again whatever their age)."""
        with self._lock:
            key = self._key()
            if not fresh and self._cache and self._cache[0] == key and (
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
        _attach_wash_trades(result["alerts"], trades)
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

    # ---- persisted alerts and their triage ------------------------------------------------------------------
    def run(self, user: str) -> dict:
        """Run the detectors and store their alerts: new ones open, known ones refreshed with their triage state
        kept. Audited (`surveillance.run`, counts only). Raises SurveillanceError when the source is unreadable."""
        with self._run_lock:
            result = self.result(fresh=True)
            found = {alert_id(a): a for a in result["alerts"]}
            by_type = {t: sum(a["type"] == t for a in found.values()) for t in TYPES}
            at = datetime.now(timezone.utc)
            with transaction(self.engine) as tx:
                new, seen = tx.surveillance.upsert(found, at)
                summary = {"found": len(found), "new": len(new), "seen_again": len(seen), "by_type": by_type,
                           "total": tx.surveillance.count(), "as_of": result["as_of"],
                           "source": {k: v for k, v in result["source"].items() if k != "path"}}
                tx.audit.record(user, "surveillance.run", "surveillance", summary)
        log.info("surveillance run by %s: %d found, %d new", user, len(found), len(new))
        return summary

    def list(self, *, type: str | None = None, status: str | None = None, account: str | None = None,
             limit: int = 200) -> dict:
        """{"alerts" (newest, then highest score first; evidence left out), "total" (matching the filters),
        "counts" (type → status → n, all alerts), "last_run"}."""
        with transaction(self.engine) as tx:
            rows = tx.surveillance.list(type=type, status=status, account=account, limit=limit)
            total = tx.surveillance.count(type=type, status=status, account=account)
            return {"alerts": [_summary(a) for a in rows], "total": total, "counts": tx.surveillance.counts(),
                    "last_run": _iso(tx.surveillance.last_seen())}

    def detail(self, alert_id: str) -> dict:
        """The alert with its evidence, its timeline, the triage steps (from the audit log) and the actions its
        state allows; TriageError(not_found)."""
        with transaction(self.engine) as tx:
            a = tx.surveillance.get(alert_id)
            if a is None:
                raise TriageError("not_found", f"no alert {alert_id}")
            steps = [{"at": _iso(e.ts), "by": e.actor, "action": e.detail.get("action"),
                      "from": e.detail.get("from"), "to": e.detail.get("to"), "note": e.detail.get("note")}
                     for e in tx.audit.entries(subject=f"surveillance_alert:{alert_id}", action="surveillance.triage")]
            return _full(a, steps)

    def triage(self, alert_id: str, action: str, note: str | None, version: object, user: str) -> dict:
        """Move the alert by `action` if it is still at `version`; audited with who and why (the note with ID
        numbers, mobiles and bank accounts masked; the alert keeps it whole). TriageError:
        not_found, invalid (unknown action, missing note, bad version), conflict (state, or changed meanwhile)."""
        if isinstance(version, bool) or not isinstance(version, int):
            raise TriageError("invalid", "version must be the alert's version (an integer) as last read")
        if note is not None and not isinstance(note, str):
            raise TriageError("invalid", "note must be a string")
        note = note.strip() if note else None
        with transaction(self.engine) as tx:
            a = tx.surveillance.get(alert_id)
            if a is None:
                raise TriageError("not_found", f"no alert {alert_id}")
            if a.version != version:
                raise TriageError("conflict", f"alert {alert_id} changed since it was read (version {a.version}, "
                                              f"not {version}): read it again")
            source = a.status
            dest = fire(source, action, note)
            if not tx.surveillance.move(a, dest, user, note, version):
                raise TriageError("conflict", f"alert {alert_id} changed meanwhile: read it again")
            tx.audit.record(user, "surveillance.triage", f"surveillance_alert:{alert_id}",
                            {"action": action, "from": source, "to": dest, "note": mask_pii(note), "type": a.type,
                             "version": a.version})
        return self.detail(alert_id)

    def control_groups(self) -> dict:
        """The persisted control-group alerts, strongest first: accounts, masked links, status."""
        with transaction(self.engine) as tx:
            rows = tx.surveillance.list(type="control_group", limit=10_000)
        rows.sort(key=lambda a: (-a.score, a.accounts))
        return {"groups": [{"id": a.id, "accounts": a.accounts, "score": a.score, "status": a.status,
                            "links": (a.evidence or {}).get("links") or [],
                            "weak_links": (a.evidence or {}).get("weak_links") or [],
                            "last_seen_at": _iso(a.last_seen_at)} for a in rows]}


def _summary(a) -> dict:
    ev = a.evidence or {}
    return {"id": a.id, "type": a.type, "accounts": a.accounts, "score": a.score, "status": a.status,
            "instrument": ev.get("instrument"), "account": ev.get("account"), "orders": len(a.order_ids or []),
            "trades": len(a.trade_ids or []), "first_seen_at": _iso(a.first_seen_at),
            "last_seen_at": _iso(a.last_seen_at), "updated_by": a.updated_by, "updated_at": _iso(a.updated_at),
            "version": a.version}


def _full(a, steps: list[dict]) -> dict:
    doc = {**_summary(a), "order_ids": a.order_ids, "trade_ids": a.trade_ids, "evidence": a.evidence,
           "note": a.note, "allowed": allowed(a.status), "steps": steps}
    doc["timeline"] = timeline({"type": a.type, "accounts": a.accounts, "evidence": a.evidence})
    return doc


def _attach_wash_trades(alerts: list[dict], trades: list) -> None:
    """Give each wash-trade alert its trades (time, price, size, both sides; the first MAX_TRADE_ROWS) as
    evidence, so its timeline can be drawn after the source is gone."""
    from otcdesk.workflows.surveillance.model import format_ts

    wanted = {tid for a in alerts if a["type"] == "wash_trade" for tid in a["trade_ids"][:MAX_TRADE_ROWS]}
    if not wanted:
        return
    by_id = {t.trade_id: t for t in trades if t.trade_id in wanted}
    for a in alerts:
        if a["type"] == "wash_trade":
            a["evidence"]["trade_rows"] = [
                {"trade_id": t.trade_id, "ts": format_ts(t.ts), "price": t.price, "qty": t.qty,
                 "buy_account": t.buy_account, "sell_account": t.sell_account}
                for t in (by_id.get(tid) for tid in a["trade_ids"][:MAX_TRADE_ROWS]) if t is not None]


def timeline(alert: dict) -> list[dict]:
    """An alert's events in time order, for the console: a spoofing alert's large orders (placed, cancelled) and
    the opposite-side fills; a wash trade's trades (a fill for each side; its first and last trade when the
    evidence holds no trades)."""
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
    elif alert.get("type") == "wash_trade" and ev.get("trade_rows"):
        for t in ev["trade_rows"]:
            for side, account in (("B", t["buy_account"]), ("S", t["sell_account"])):
                rows.append({"ts": t["ts"], "event": "fill", "order_id": t["trade_id"], "account": account,
                             "side": side, "qty": t["qty"], "price": t["price"]})
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
