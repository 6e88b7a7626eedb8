"""RiskService: the desk's risk book (风险账本) from the trade store, its snapshots, limits and pre-trade checks.

`refresh()` loads every live trade (`TradeRepository.live`), revalues them together with
`pricing_engine.book.revalue_book` (batched; Ray when a Ray address is given) on the latest market snapshot,
with all Greeks and the spot x vol scenario grid, and stores the `Book` of CONTRACTS.md Part 2 as a
`RiskSnapshotRow` (snapshots are only added: the table is the history). `fold_in(trade_id)` revalues one newly
booked trade and stores latest + that trade, so a booking shows in the book at once whatever the refresh period.
`RiskScheduler` runs `refresh` every `OTCDESK_RISK_REFRESH_S` on APScheduler's background thread.

Units, all from the DESK's side (the opposite of the clients'; the pricing engine's figures are the client's):
a trade of notional N (CNY) holds N / S0 units of underlying, S0 its initial price, and the engine's Greeks are
per unit of notional against x = S / S0 (CONTRACTS `price`). So, with s = -1 for the desk,

- `pv_cny`    = s * price * N
- `delta_cny` = s * delta * N * x * 1%          desk PV change for a +1% move of the underlying
- `gamma_cny` = s * gamma * N * x^2 * (1%)^2    change of delta_cny for a further +1% move: the second-order
                term, so a move of m % changes the PV by about delta_cny * m + gamma_cny * m^2 / 2
- `vega_cny`  = s * vega * N                    per +1 vol point (the engine's vega is per 0.01 of vol)
- `theta_cny` = s * theta * N                   per calendar day (value tomorrow minus value today)

The scenario grid `pnl_cny[i][j]` is the desk's PV change when every underlying moves by `spot_shifts_pct[i]` %
and every vol by `vol_shifts[j]` vol points (absolute); each `by_underlying` entry carries its own grid
(`scenario_pnl_cny`, that underlying alone moving) and `ladders` the PV-vs-spot line of each underlying (the
grid's zero-vol-shift column plus its PV).

Trades the engine cannot value (an underlying missing from the market snapshot, a maturity on or before the
valuation date that the lifecycle has not closed yet, a product the engine refuses) are left out of the
figures and listed in `unvalued` with the reason; `live_trades` counts the trades in the figures.

Concurrency: one refresh at a time per process (a lock; the scheduled job skips a run while one is going, a
manual refresh waits for it). Storing is a short critical section of its own: a refresh stores after checking
the trade store again and folding in any trade booked while it ran, and `fold_in` adds to whatever is latest
at that moment, so neither drops the other's trades. Across processes (several servers on one PostgreSQL) the
scheduled job should be elected by a PostgreSQL advisory lock (`pg_try_advisory_lock`) — not done yet: run one
scheduler per database.
"""
from __future__ import annotations

import csv
import datetime as dt
import logging
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor as FoldExecutor
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np
from sqlalchemy.engine import Engine

from otcdesk.app.market import load_snapshot
from otcdesk.app.models import utcnow
from otcdesk.app.repositories import transaction
from otcdesk.app.repositories.risk import DEFAULT_UNDERLYING, MEASURES

log = logging.getLogger(__name__)
LIMITS_CSV = Path(__file__).resolve().parent.parent / "data" / "risk_limits.csv"
EXPOSURE_KEYS = ("pv_cny", "delta_cny", "gamma_cny", "vega_cny", "theta_cny")
PCT = 0.01
REFERENCE_NOTIONAL = 10_000_000.0  # the pre-trade check of a quote with no notional is shown per 1000万
MEASURE_WORDS = {"delta_cny": "delta", "vega_cny": "vega"}


# --------------------------------------------------------------------------- limits (vocabulary as data)

def read_limits_csv(path: str | Path = LIMITS_CSV) -> list[tuple[str, str, float]]:
    """(underlying, measure, limit) rows of a limits file (`underlying,measure,limit[,note]`; "*": default)."""
    rows = []
    with open(path, encoding="utf-8", newline="") as f:
        for rec in csv.DictReader(f):
            measure = rec["measure"].strip()
            if measure not in MEASURES:
                raise ValueError(f"{path}: measure {measure!r} is not one of {', '.join(MEASURES)}")
            limit = float(rec["limit"])
            if not limit > 0:
                raise ValueError(f"{path}: limit of {rec['underlying']} {measure} must be positive")
            rows.append((rec["underlying"].strip(), measure, limit))
    return rows


def limit_for(table: Mapping[tuple[str, str], float], underlying: str, measure: str) -> float | None:
    """The underlying's own limit, else the "*" row's, else None."""
    return table.get((underlying, measure), table.get((DEFAULT_UNDERLYING, measure)))


# --------------------------------------------------------------------------- conversions

def markets_from_snapshot(snapshot: Mapping) -> dict:
    """{underlying: MarketSpec} of a market snapshot document (`app.market.load_snapshot`'s shape)."""
    from otcdesk.pricing_engine.models import MarketSpec

    rate = float(snapshot.get("rate", 0.0))
    out = {}
    for code, row in (snapshot.get("underlyings") or {}).items():
        try:
            out[code] = MarketSpec(spot=float(row["spot"]), vol=float(row["vol"]),
                                   rate=float(row.get("rate", rate)), div=float(row.get("div", 0.0)))
        except Exception as exc:  # a bad row leaves that underlying's trades unvalued, with the reason
            log.warning("market snapshot row %s unusable: %s", code, exc)
    return out


def desk_exposure(greeks: Mapping[str, float], pv_client: float, notional: float, x: float) -> dict:
    """The desk's Exposure of one trade from the engine's client-side figures (module docstring)."""
    return {"pv_cny": -pv_client,
            "delta_cny": -greeks["delta"] * notional * x * PCT,
            "gamma_cny": -greeks["gamma"] * notional * x * x * PCT * PCT,
            "vega_cny": -greeks["vega"] * notional,
            "theta_cny": -greeks["theta"] * notional}


def _zero() -> dict:
    return {k: 0.0 for k in EXPOSURE_KEYS}


def _r(v: float, nd: int = 2) -> float:
    return round(float(v), nd)


@dataclass
class _Position:
    """One underlying's sums while a book is assembled: Exposure, trade count, scenario grid (desk CNY)."""

    exposure: dict = field(default_factory=_zero)
    trades: int = 0
    grid: np.ndarray | None = None

    def add(self, exposure: Mapping[str, float], grid: np.ndarray | None, trades: int = 1) -> None:
        for k in EXPOSURE_KEYS:
            self.exposure[k] += float(exposure[k])
        self.trades += trades
        if grid is not None:
            self.grid = np.array(grid, dtype=float) if self.grid is None else self.grid + grid


@dataclass
class _Valued:
    """Trades revalued in one run: per-trade rows (desk side) and their scenario grids."""

    rows: list[dict] = field(default_factory=list)
    grids: list[np.ndarray] = field(default_factory=list)
    unvalued: list[dict] = field(default_factory=list)
    timings: dict = field(default_factory=dict)

    def extend(self, other: "_Valued") -> None:
        self.rows += other.rows
        self.grids += other.grids
        self.unvalued += other.unvalued


class RiskError(Exception):
    """A risk operation that cannot be done (e.g. fold in a trade that is not live)."""


# --------------------------------------------------------------------------- the service

class RiskService:
    """Revalues the live book, stores its snapshots, checks limits; see the module docstring.

    `market_snapshot()` returns the market document (`as_of`, `source`, `rate`, `underlyings{code: {spot, vol,
    div}}`); `limits` (a CSV file, `read_limits_csv`) seeds the `risk_limit` rows the table lacks at first use.
    `backend`, `ray_address`, `workers`, `mc_options` go to `revalue_book`; with `worker_process` a whole-book
    refresh runs in a `RevaluationWorker` (a process at `worker_nice`), a fold-in always in the caller's thread.
    """

    def __init__(self, engine: Engine, events, clock, market_snapshot: Callable[[], dict] = load_snapshot,
                 limits: str | Path = LIMITS_CSV, *, backend: str = "numpy", ray_address: str | None = None,
                 workers: int = 2, mc_options: Mapping | None = None, worker_process: bool = False,
                 worker_nice: int = 10, metrics=None):
        self.engine = engine
        self.metrics = metrics  # app.metrics.Metrics: the revaluation's duration
        self.events = events
        self.clock = clock
        self.market_snapshot = market_snapshot
        self.limits_csv = Path(limits)
        self.backend = backend
        self.ray_address = ray_address
        self.workers = workers
        self.mc_options = dict(mc_options or {})
        self._refresh_lock = threading.Lock()  # one revaluation of the whole book at a time
        self._store_lock = threading.Lock()  # read latest + store a snapshot, atomically within this process
        self._limits_seeded = False
        self._cache: tuple[int, dict] | None = None  # (snapshot id, book) for pre-trade checks
        self._scheduler = None
        self._folder: FoldExecutor | None = None  # fold_in_soon's single thread, made on first use
        self._fold_lock = threading.Lock()
        self._refresh_queued = False
        self._worker = RevaluationWorker(worker_nice) if worker_process else None

    # ---- reading ---------------------------------------------------------------------------------
    def latest(self) -> dict | None:
        """The `Book` of the latest snapshot, or None before the first."""
        with transaction(self.engine) as tx:
            latest_id = tx.risk.latest_id()
            if latest_id is None:
                return None
            if self._cache and self._cache[0] == latest_id:
                return self._cache[1]
            book = tx.risk.latest_book()
        self._cache = (book["snapshot_id"], book)
        return book

    def history(self, limit: int = 100) -> list[dict]:
        with transaction(self.engine) as tx:
            return tx.risk.history(limit)

    def trade_risk(self, trade_id: str) -> dict | None:
        """The trade's row (desk-side PV and Greeks) in the latest snapshot, or None when it is not in it."""
        with transaction(self.engine) as tx:
            row = tx.risk.latest()
        if row is None:
            return None
        return next((t for t in row.trades if t.get("trade_id") == trade_id), None)

    def limits(self) -> list[dict]:
        """The configured limits: `[{"underlying", "measure", "limit", "updated_by", "updated_at"}]`."""
        self._ensure_limits()
        with transaction(self.engine) as tx:
            return [{"underlying": r.underlying, "measure": r.measure, "limit": r.limit, "updated_by": r.updated_by,
                     "updated_at": r.updated_at.isoformat()} for r in tx.risk.limits()]

    @staticmethod
    def summary(book: Mapping) -> dict:
        """The snapshot summary of CONTRACTS Part 2 (plus `kind`, `unvalued_trades`, `breaches`)."""
        return {"snapshot_id": book.get("snapshot_id"), "as_of": book.get("as_of"),
                "live_trades": book.get("live_trades", 0), "elapsed_s": book.get("elapsed_s"),
                "scenario_points": book.get("scenario_points", 0), "kind": book.get("kind"),
                "valuation_date": book.get("valuation_date"),
                "unvalued_trades": len(book.get("unvalued") or []),
                "breaches": sum(1 for lim in book.get("limits") or [] if lim.get("breached"))}

    # ---- refresh ---------------------------------------------------------------------------------
    def refresh(self, actor: str = "scheduler", *, wait: bool = True) -> dict | None:
        """Revalue every live trade now and store the snapshot (audited); returns its summary. With
        `wait=False` (the scheduled job) returns None at once when a refresh is already running."""
        if not self._refresh_lock.acquire(blocking=wait):
            log.info("risk refresh skipped: one is running")
            return None
        try:
            return self._refresh(actor)
        finally:
            self._refresh_lock.release()

    def scheduled_refresh(self) -> dict | None:
        """The scheduler's job: a refresh unless one is running; errors are logged, never raised."""
        try:
            summary = self.refresh("scheduler", wait=False)
        except Exception:
            log.exception("scheduled risk refresh failed")
            return None
        if summary:
            log.info("risk refresh: %s", summary)
        return summary

    def _refresh(self, actor: str) -> dict:
        t0 = time.perf_counter()
        vd = self.clock.today()
        with transaction(self.engine) as tx:
            rows = tx.trades.live()
        t_load = time.perf_counter() - t0
        snap = self.market_snapshot()
        markets = markets_from_snapshot(snap)
        valued = self._value(rows, markets, vd, isolated=True)
        with self._store_lock:
            with transaction(self.engine) as tx:
                # trades booked (and maybe folded in) while this run revalued: add them now, so none drops out
                seen = {r["trade_id"] for r in valued.rows} | {u["trade_id"] for u in valued.unvalued}
                late = [r for r in tx.trades.live() if r.id not in seen]
                if late:
                    valued.extend(self._value(late, markets, vd))
                positions = self._positions(valued)
                book = self._render(positions, valued, tx, kind="refresh", vd=vd, snap=snap, markets=markets,
                                    elapsed_s=time.perf_counter() - t0,
                                    extra={"timings": {"load_s": _r(t_load, 3), **valued.timings},
                                           "late_trades": [r.id for r in late]})
                summary = self._store(tx, book, valued.rows, actor, "risk.refreshed")
        self._observe("refresh", time.perf_counter() - t0)
        return self._published(summary)

    # ---- fold in one booked trade ----------------------------------------------------------------
    def fold_in(self, trade_id: str, actor: str = "booking") -> dict:
        """Revalue the live trade `trade_id` alone and store latest + that trade (a refresh when there is no
        snapshot yet); returns the new snapshot's summary, or the latest's when the trade is in it already.
        Raises RiskError when the trade does not exist or is not live."""
        t0 = time.perf_counter()
        with transaction(self.engine) as tx:
            row = tx.trades.get(trade_id)
            has_snapshot = tx.risk.latest_id() is not None
        if row is None:
            raise RiskError(f"no trade {trade_id}")
        if row.status != "live":
            raise RiskError(f"trade {trade_id} is {row.status}, not live: only live trades are in the book")
        if not has_snapshot:
            return self.refresh(actor)
        vd = self.clock.today()
        snap = self.market_snapshot()
        markets = markets_from_snapshot(snap)
        valued = self._value([row], markets, vd)
        with self._store_lock:
            with transaction(self.engine) as tx:
                latest = tx.risk.latest()
                if any(t.get("trade_id") == trade_id for t in latest.trades) or \
                        any(u.get("trade_id") == trade_id for u in latest.book.get("unvalued") or []):
                    return self.summary(latest.book)
                positions = self._positions_of_book(latest.book)
                new = self._positions(valued)
                for u, pos in new.items():
                    positions.setdefault(u, _Position()).add(pos.exposure, pos.grid, pos.trades)
                all_valued = _Valued(rows=[*latest.trades, *valued.rows],
                                     unvalued=[*(latest.book.get("unvalued") or []), *valued.unvalued])
                book = self._render(positions, all_valued, tx, kind="fold_in", vd=vd, snap=snap, markets=markets,
                                    elapsed_s=time.perf_counter() - t0,
                                    extra={"base_snapshot_id": latest.id,
                                           "folded_trades": [*(latest.book.get("folded_trades") or []), trade_id],
                                           "base_valuation_date": latest.book.get("valuation_date")})
                summary = self._store(tx, book, all_valued.rows, actor, "risk.folded_in", {"trade_id": trade_id})
        self._observe("fold_in", time.perf_counter() - t0)
        return self._published(summary)

    def _observe(self, kind: str, elapsed_s: float) -> None:
        if self.metrics is not None:
            self.metrics.risk_refresh.labels(kind=kind).observe(elapsed_s)

    # ---- pre-trade check -------------------------------------------------------------------------
    def pretrade(self, line: Mapping) -> dict | None:
        """How a priced quote line would move the desk's limited measures on its underlying.

        `line` is the desk graph's priced line: `request` (the QuoteRequest: underlying, side, notional if any)
        and the `price` result (`greeks` per unit notional from the client's side, `product`, `market`).
        Returns `{"underlying", "notional", "notional_assumed", "snapshot_id", "breached", "text", "checks":
        [{"underlying", "measure", "before", "after", "limit", "breached", "text"} per measure]}`, or None for
        a line that has no price (an error line) or no underlying. Without a notional the check is shown per
        1000万 of notional (`notional_assumed`). `before` is the latest snapshot's figure (0 before any).
        """
        greeks = line.get("greeks") if isinstance(line, Mapping) else None
        if not greeks or line.get("error"):
            return None
        req = line.get("request") or {}
        product = line.get("product") or req
        underlying = req.get("underlying") or product.get("underlying")
        if not underlying:
            return None
        notional = req.get("notional") or product.get("notional")
        assumed = not notional
        notional = float(notional or REFERENCE_NOTIONAL)
        spot = (line.get("market") or {}).get("spot")
        s0 = product.get("initial_price")
        x = float(spot) / float(s0) if spot and s0 else 1.0
        change = desk_exposure({k: float(greeks.get(k, 0.0)) for k in ("delta", "gamma", "vega", "theta")},
                               float(line.get("price") or 0.0) * notional, notional, x)
        book = self.latest()
        current = next((e for e in (book or {}).get("by_underlying", []) if e["underlying"] == underlying), None)
        self._ensure_limits()
        with transaction(self.engine) as tx:
            table = tx.risk.limit_table()
        checks = []
        for measure in MEASURES:
            before = float(current[measure]) if current else 0.0
            after = before + change[measure]
            limit = limit_for(table, underlying, measure)
            breached = limit is not None and abs(after) > limit
            word = MEASURE_WORDS[measure]
            text = (f"this trade moves desk {word} on {underlying} from {_money(before)} to {_money(after)}; "
                    + (f"limit {_money(limit)}" if limit is not None else "no limit set")
                    + (" — LIMIT BREACHED" if breached else ""))
            if assumed:
                text = f"per {_money(notional)} notional (none given): {text}"
            checks.append({"underlying": underlying, "measure": measure, "before": _r(before), "after": _r(after),
                           "change": _r(change[measure]), "limit": limit, "breached": breached, "text": text})
        return {"underlying": underlying, "notional": notional, "notional_assumed": assumed,
                "snapshot_id": (book or {}).get("snapshot_id"), "breached": any(c["breached"] for c in checks),
                "text": "; ".join(c["text"] for c in checks), "checks": checks}

    def fold_in_soon(self, trade_id: str, actor: str = "booking") -> None:
        """`fold_in` on the risk book's own thread, so booking never waits for a revaluation (a first refresh
        of a whole book takes a while); a failure is logged, and the next refresh picks the trade up anyway."""
        with self._fold_lock:
            if self._folder is None:
                self._folder = FoldExecutor(max_workers=1, thread_name_prefix="risk-fold-in")
            self._folder.submit(self._fold_logged, trade_id, actor)

    def _fold_logged(self, trade_id: str, actor: str) -> None:
        try:
            self.fold_in(trade_id, actor)
        except Exception:
            log.exception("fold-in of %s failed; the next refresh revalues it", trade_id)

    def refresh_soon(self, actor: str = "book-change") -> None:
        """A full refresh on the risk book's own thread, after a trade left the book or changed (a knock-out, a
        maturity, a knock-in, an unwind): a fold-in only adds, so without it the book would show the old trade
        until the next scheduled refresh. Coalesced: while one waits to start, another request adds nothing (the
        waiting one sees every change made before it starts). Nothing runs before the book's first snapshot."""
        with self._fold_lock:
            if self._refresh_queued:
                return
            self._refresh_queued = True
            if self._folder is None:
                self._folder = FoldExecutor(max_workers=1, thread_name_prefix="risk-fold-in")
            self._folder.submit(self._refresh_logged, actor)

    def _refresh_logged(self, actor: str) -> None:
        with self._fold_lock:
            self._refresh_queued = False
        try:
            with transaction(self.engine) as tx:
                if tx.risk.latest_id() is None:
                    return
            self.refresh(actor)
        except Exception:
            log.exception("refresh after a book change failed; the next scheduled refresh revalues the book")

    # ---- scheduler -------------------------------------------------------------------------------
    def start(self, period_s: float) -> "RiskScheduler":
        """Start the periodic refresh (idempotent); `stop()` ends it."""
        if self._scheduler is None:
            self._scheduler = RiskScheduler(self, period_s)
            self._scheduler.start()
        return self._scheduler

    def stop_schedule(self, wait: bool = True) -> None:
        """Stop the periodic refresh only (another instance leads now, `app.leader`); `start` resumes it."""
        if self._scheduler is not None:
            self._scheduler.stop(wait)
            self._scheduler = None

    def stop(self, wait: bool = True) -> None:
        """Stop the scheduler (a refresh in progress finishes first with `wait`) and the worker process."""
        self.stop_schedule(wait)
        with self._fold_lock:
            folder, self._folder = self._folder, None
        if folder is not None:
            folder.shutdown(wait=wait)
        if self._worker is not None:
            self._worker.close()

    # ---- internals -------------------------------------------------------------------------------
    def _ensure_limits(self) -> None:
        if not self._limits_seeded:
            with transaction(self.engine) as tx:
                self._ensure_limits_in(tx)
            self._limits_seeded = True

    def _value(self, rows: Iterable, markets: Mapping, vd: dt.date, *, isolated: bool = False) -> _Valued:
        """Revalue trade rows together (in the worker process when `isolated` and one is configured); those the
        engine cannot value go to `unvalued` with the reason."""
        out = _Valued()
        trades, meta = [], {}
        for row in rows:
            reason, trade = self._trade_of(row, markets, vd)
            if reason:
                out.unvalued.append({"trade_id": row.id, "underlying": row.underlying, "reason": reason})
                continue
            trades.append(trade)
            meta[row.id] = row
        if not trades:
            return out
        kw = dict(backend=self.backend, mc_options=self.mc_options or None, ray_address=self.ray_address,
                  workers=self.workers)
        in_worker = isolated and self._worker is not None and not self.ray_address
        if in_worker:
            result, bad = self._worker.revalue(trades, markets, vd, kw)
        else:
            result, bad = revalue_tolerant(trades, markets, vd, kw)
        out.unvalued += [{"trade_id": tid, "underlying": meta[tid].underlying, "reason": r} for tid, r in bad.items()]
        if result is None:
            return out
        trades = [t for t in trades if t.trade_id not in bad]
        by_id = {t.trade_id: t for t in trades}
        rt = result.timings
        out.timings = {"revalue_s": _r(rt["elapsed_s"], 3), "greeks_cpu_s": _r(rt["greeks_s"], 3),
                       "scenario_cpu_s": _r(rt["scenario_s"], 3), "batches": rt["batches"], "ray": rt["ray"],
                       "workers": rt["workers"], "worker_process": in_worker}
        for tr in result.trades:
            t = by_id[tr.trade_id]
            row = meta[tr.trade_id]
            m = markets[t.product.underlying]
            s0 = float(t.product.initial_price or m.spot)
            x = m.spot / s0
            notional = t.notional
            exp = desk_exposure(tr.greeks, tr.pv, notional, x)
            out.rows.append({"trade_id": tr.trade_id, "underlying": t.product.underlying, "structure": tr.structure,
                             "side": t.product.side, "notional": notional, "engine": tr.engine,
                             "initial_price": s0, "spot_x": _r(x, 6),
                             "initial_price_pending": bool(row.initial_price_pending),
                             **{k: _r(v) for k, v in exp.items()},
                             "stderr_cny": None if tr.stderr is None else _r(tr.stderr * notional)})
            out.grids.append(None if tr.scenario is None else -notional * np.asarray(tr.scenario, dtype=float))
        return out

    @staticmethod
    def _trade_of(row, markets: Mapping, vd: dt.date):
        """(reason it cannot be valued, None) or (None, pricing_engine Trade) for a trade row."""
        from otcdesk.pricing_engine.book import Trade
        from otcdesk.pricing_engine.errors import PricingError
        from otcdesk.pricing_engine.products import product_from_dict

        d = dict(row.product or {})
        d.setdefault("underlying", row.underlying)
        d.setdefault("structure", row.structure)
        d["notional"] = row.notional  # what is live now (a partial unwind reduces it)
        if d["underlying"] not in markets:
            return f"no market data for {d['underlying']}", None
        try:
            product = product_from_dict(d)
            product.dates(vd)  # a maturity on or before the valuation date: the lifecycle has not closed it yet
        except PricingError as exc:
            return str(exc), None
        return None, Trade(row.id, product)

    def _positions(self, valued: _Valued) -> dict[str, _Position]:
        positions: dict[str, _Position] = {}
        for row, grid in zip(valued.rows, valued.grids):
            positions.setdefault(row["underlying"], _Position()).add(row, grid)
        return positions

    @staticmethod
    def _positions_of_book(book: Mapping) -> dict[str, _Position]:
        out = {}
        for e in book.get("by_underlying") or []:
            grid = e.get("scenario_pnl_cny")
            out[e["underlying"]] = _Position({k: float(e[k]) for k in EXPOSURE_KEYS}, int(e["trades"]),
                                             None if grid is None else np.asarray(grid, dtype=float))
        return out

    def _shift_axes(self) -> tuple[list[float], list[float]]:
        from otcdesk.pricing_engine.book import SPOT_SHIFTS, VOL_SHIFTS

        return [_r(100 * s, 4) for s in SPOT_SHIFTS], [_r(100 * v, 4) for v in VOL_SHIFTS]

    def _render(self, positions: Mapping[str, _Position], valued: _Valued, tx, *, kind: str, vd: dt.date,
                snap: Mapping, markets: Mapping, elapsed_s: float, extra: Mapping) -> dict:
        """The `Book` document (without its snapshot id, which storing assigns)."""
        spot_pct, vol_pts = self._shift_axes()
        shape = (len(spot_pct), len(vol_pts))
        j0 = vol_pts.index(0.0)
        self._ensure_limits_in(tx)
        table = tx.risk.limit_table()
        totals, total_grid = _zero(), np.zeros(shape)
        by_underlying, ladders, limits = [], [], []
        for u in sorted(positions):
            pos = positions[u]
            grid = pos.grid if pos.grid is not None else np.zeros(shape)
            for k in EXPOSURE_KEYS:
                totals[k] += pos.exposure[k]
            total_grid += grid
            m = markets.get(u)
            entry = {"underlying": u, "trades": pos.trades, **{k: _r(v) for k, v in pos.exposure.items()},
                     "spot": None if m is None else m.spot, "vol": None if m is None else m.vol,
                     "scenario_pnl_cny": [[_r(v) for v in r] for r in grid]}
            by_underlying.append(entry)
            spots = [None if m is None else _r(m.spot * (1 + p / 100), 4) for p in spot_pct]
            ladders.append({"underlying": u, "spot": entry["spot"], "spot_shifts_pct": spot_pct, "spots": spots,
                            "pv_cny": [_r(pos.exposure["pv_cny"] + grid[i, j0]) for i in range(shape[0])]})
        for u in sorted(set(positions) | {k[0] for k in table if k[0] != DEFAULT_UNDERLYING}):
            exposure = positions[u].exposure if u in positions else _zero()
            for measure in MEASURES:
                lim = limit_for(table, u, measure)
                if lim is None:
                    continue
                value = exposure[measure]
                limits.append({"underlying": u, "measure": measure, "value": _r(value), "limit": lim,
                               "breached": abs(value) > lim, "utilisation": _r(abs(value) / lim, 4)})
        return {
            "snapshot_id": None, "as_of": self.clock.now().isoformat(), "kind": kind,
            "valuation_date": vd.isoformat(), "live_trades": len(valued.rows), "elapsed_s": _r(elapsed_s, 3),
            "scenario_points": shape[0] * shape[1],
            "market": {"as_of": snap.get("as_of"), "source": snap.get("source")},
            "totals": {k: _r(v) for k, v in totals.items()},
            "by_underlying": by_underlying,
            "scenario": {"spot_shifts_pct": spot_pct, "vol_shifts": vol_pts,
                         "pnl_cny": [[_r(v) for v in r] for r in total_grid]},
            "ladders": ladders, "limits": limits, "unvalued": valued.unvalued,
            "units": {"side": "desk", "delta_cny": "PV change for +1% of the underlying",
                      "gamma_cny": "change of delta_cny for a further +1%", "vega_cny": "per +1 vol point",
                      "theta_cny": "per calendar day", "vol_shifts": "absolute vol points",
                      "pnl_cny": "[spot shift][vol shift], desk PV change"},
            **extra,
        }

    def _ensure_limits_in(self, tx) -> None:
        """Seed missing limits inside the caller's unit of work (the first refresh of a fresh database)."""
        if self._limits_seeded:
            return
        added = tx.risk.seed_limits(read_limits_csv(self.limits_csv))
        if added:
            tx.audit.record("system", "risk.limits_seeded", "risk_limit",
                            {"source": Path(self.limits_csv).name,
                             "rows": [{"underlying": u, "measure": m, "limit": v} for u, m, v in added]})

    def _store(self, tx, book: dict, trade_rows: list, actor: str, action: str, detail: Mapping | None = None
               ) -> dict:
        row = tx.risk.add_snapshot(as_of=datetime_of(book["as_of"]), live_trades=book["live_trades"],
                                   elapsed_s=book["elapsed_s"], book=book, trades=trade_rows)
        summary = self.summary(row.book)
        tx.audit.record(actor, action, f"risk_snapshot:{row.id}", {**summary, **(detail or {})})
        self._cache = (row.id, row.book)
        return summary

    def _published(self, summary: dict) -> dict:
        """Tell the console (event kind `book`) once the snapshot is committed."""
        if self.events is not None:
            self.events.publish("book", summary)
        return summary


def datetime_of(iso: str) -> dt.datetime:
    return dt.datetime.fromisoformat(iso)


def _money(v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:,.0f} CNY"


# --------------------------------------------------------------------------- revaluation, here or in a worker

def revalue_tolerant(trades: list, markets: Mapping, vd: dt.date, kw: Mapping):
    """`revalue_book` of `trades`; a product the engine refuses does not stop the book: it is found (each trade
    priced alone, without the grid) and left out. Returns (BookResult or None when none is left, {trade_id:
    reason})."""
    from otcdesk.pricing_engine.book import revalue_book
    from otcdesk.pricing_engine.errors import PricingError

    try:
        return revalue_book(trades, markets, vd, **kw), {}
    except PricingError:
        pass
    bad = {}
    for t in trades:
        try:
            revalue_book([t], markets, vd, **{**kw, "spot_shifts": None, "vol_shifts": None})
        except PricingError as exc:
            bad[t.trade_id] = str(exc)
    rest = [t for t in trades if t.trade_id not in bad]
    return (revalue_book(rest, markets, vd, **kw) if rest else None), bad


def _worker_init(nice: int) -> None:
    if nice:
        os.nice(nice)


def _revalue_in_worker(trades, markets, vd, kw, templates):
    """In the worker process: declare the run-time templates the parent knows, then `revalue_tolerant`."""
    from otcdesk.pricing_engine.registry import get_structure, register_structure

    for entry in templates:
        if get_structure(entry.structure) is None:
            register_structure(entry)
    return revalue_tolerant(trades, markets, vd, kw)


class RevaluationWorker:
    """One long-lived worker process (spawned, at a lower CPU priority: `nice`) for the whole-book revaluation.

    The server's event loop shares the machine's cores with the revaluation: in a thread of the server process
    the revaluation competes with it at the same priority (and for the GIL); in this process the operating
    system serves the console first (benchmarks/bench_book_refresh.py shows the review queue's latency). The
    pricing engine is pure, so only trades and markets go over; the database work stays in the server. A worker
    that dies is replaced at the next run, and that run is done in-process."""

    def __init__(self, nice: int = 10):
        self.nice = nice
        self._pool = None
        self._lock = threading.Lock()

    def _executor(self):
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context

        if self._pool is None:
            self._pool = ProcessPoolExecutor(1, mp_context=get_context("spawn"), initializer=_worker_init,
                                             initargs=(self.nice,))
        return self._pool

    def revalue(self, trades: list, markets: Mapping, vd: dt.date, kw: Mapping):
        from concurrent.futures.process import BrokenProcessPool

        from otcdesk.pricing_engine.registry import get_structure

        templates = []
        for name in {t.product.structure for t in trades}:
            entry = get_structure(name)
            if entry is not None and not entry.builtin:
                templates.append(entry)
        with self._lock:
            try:
                return self._executor().submit(_revalue_in_worker, trades, markets, vd, dict(kw), templates).result()
            except BrokenProcessPool:
                log.exception("risk revaluation worker died; revaluing in-process this time")
                self._pool = None
        return revalue_tolerant(trades, markets, vd, kw)

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None


# --------------------------------------------------------------------------- the scheduled job

class RiskScheduler:
    """APScheduler (3.x) `BackgroundScheduler`: `service.scheduled_refresh` every `period_s` on its own thread,
    so the server's event loop never runs the revaluation. One instance at a time (`max_instances=1`, missed runs
    coalesced); the first run is one period after the latest snapshot (soon after start when the book has live
    trades and no snapshot yet, or when the latest is older than a period)."""

    JOB_ID = "risk-refresh"

    def __init__(self, service: RiskService, period_s: float):
        if not period_s > 0:
            raise ValueError("the risk refresh period must be positive")
        self.service = service
        self.period_s = float(period_s)
        self._scheduler = None

    def first_run(self) -> dt.datetime:
        """When the first run is due, in wall-clock time (APScheduler's); the latest snapshot's age is measured
        on the service's clock, which is what stamped it (OTCDESK_NOW may set it apart from the wall clock)."""
        now = utcnow()
        with transaction(self.service.engine) as tx:
            latest = tx.risk.latest_book()
            live = tx.trades.count("live")
        if latest is not None:
            age = (self.service.clock.now() - datetime_of(latest["as_of"])).total_seconds()
            wait = self.period_s - age
        else:
            wait = 0.0 if live else self.period_s
        return now + dt.timedelta(seconds=max(1.0, wait))

    def start(self) -> None:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        sched = BackgroundScheduler(executors={"default": ThreadPoolExecutor(1)},
                                    job_defaults={"coalesce": True, "max_instances": 1,
                                                  "misfire_grace_time": max(1, int(self.period_s))},
                                    timezone=dt.timezone.utc)
        sched.add_job(self.service.scheduled_refresh, "interval", seconds=self.period_s, id=self.JOB_ID,
                      next_run_time=self.first_run())
        sched.start()
        self._scheduler = sched
        log.info("risk refresh scheduled every %.0f s", self.period_s)

    @property
    def next_run(self) -> dt.datetime | None:
        job = self._scheduler.get_job(self.JOB_ID) if self._scheduler else None
        return job.next_run_time if job else None

    def stop(self, wait: bool = True) -> None:
        """Stop scheduling; with `wait`, a refresh in progress finishes (and is stored) first."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=wait)
            self._scheduler = None


__all__ = ["RiskError", "RiskScheduler", "RiskService", "desk_exposure", "limit_for", "markets_from_snapshot",
           "read_limits_csv"]
