"""Book revaluation: N trades with Greeks and a spot x vol scenario grid, in batches.

Trades are grouped by structure and engine, then cut into batches (one Ray task each when a
Ray address is given, else in-process):

* European payoffs (vanilla, spread, digital, at-maturity sharkfins/barriers): the Black-Scholes
  closed forms of `analytic_vanilla`, vectorised over the Greek scenarios and the grid;
* everything path-dependent (daily sharkfins, snowballs, phoenixes, ...): the `mc` engine,
  batched over the trades of one block shape, Greeks by bump-and-revalue with common random
  numbers, and the spot ladder on compressed paths (`mc_core.run_ladder`: a spot shift moves
  a whole log path, so knock-in / maturity-rebate knock-out blocks need only the path extreme).

Greeks come from the scenario rows of `mc_core.GREEK_SCENARIOS` for both. Monte Carlo runs with
`BOOK_MC_OPTIONS` (2000 float32 paths: the MC error dwarfs float32 rounding) unless `mc_options` says
otherwise. Scenario grid (default 41 x 5): relative spot shifts -20%..+20% in 1% steps, absolute vol
shifts -5, -2.5, 0, +2.5, +5 vol points. Values are per unit notional before the side sign;
`BookResult.scenario_pnl` is the book's PV change (CNY, side applied) per grid point, and each
`TradeRisk.scenario` that trade's PV change per unit notional (side applied), so a caller can split
the grid by underlying.
"""
from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from otcdesk.pricing_engine import mc_blocks, mc_core
from otcdesk.pricing_engine.analytic_vanilla import is_european, value_european
from otcdesk.pricing_engine.backend import backend_name, get_xp
from otcdesk.pricing_engine.engines import EngineOptions, refuse_unusable_inputs
from otcdesk.pricing_engine.greeks import freeze
from otcdesk.pricing_engine.mc_engine import price_group
from otcdesk.pricing_engine.models import FLAT_INPUTS, MarketSpec
from otcdesk.pricing_engine.products import ProductSpec, product_from_dict
from otcdesk.pricing_engine.schedule import add_months, get_calendar

SPOT_SHIFTS = tuple(np.round(np.linspace(-0.20, 0.20, 41), 4))
VOL_SHIFTS = (-0.05, -0.025, 0.0, 0.025, 0.05)
BOOK_MC_OPTIONS = {"paths": 2000, "dtype": "float32", "seed": 11}


@dataclass(frozen=True)
class Trade:
    """A live trade: id, product spec (with start date and initial price), notional (CNY)."""

    trade_id: str
    product: ProductSpec

    @property
    def notional(self) -> float:
        return float(self.product.notional or 1.0)

    @property
    def sign(self) -> float:
        return -1.0 if self.product.side == "client_sells" else 1.0


@dataclass
class TradeRisk:
    trade_id: str
    structure: str
    engine: str
    price: float  # per unit notional, side applied
    stderr: float | None
    pv: float
    greeks: dict  # per unit notional, side applied, CONTRACTS.md units
    scenario: np.ndarray | None = None  # (n_spot, n_vol) PV change per unit notional, side applied


@dataclass
class BookResult:
    trades: list[TradeRisk]
    spot_shifts: tuple[float, ...]
    vol_shifts: tuple[float, ...]
    scenario_pnl: np.ndarray  # (n_spot, n_vol) book PV change in CNY
    timings: dict = field(default_factory=dict)
    groups: list = field(default_factory=list)

    @property
    def pv(self) -> float:
        return float(sum(t.pv for t in self.trades))


# --------------------------------------------------------------------------- sample book

UNDERLYINGS = {  # code: (spot, vol, div)
    "000300.SH": (3900.0, 0.18, 0.02),
    "000905.SH": (5800.0, 0.22, 0.015),
    "000852.SH": (6200.0, 0.25, 0.01),
    "600519.SH": (1500.0, 0.24, 0.015),
    "300750.SZ": (250.0, 0.35, 0.005),
    "AU.SHF": (560.0, 0.15, 0.0),
}


def sample_book(n: int, seed: int = 7, valuation_date: dt.date = dt.date(2026, 11, 20), rate: float = 0.02
                ) -> tuple[list[Trade], dict[str, MarketSpec]]:
    """A seeded book of ``n`` live trades: ~35% vanillas, 20% spreads, 20% sharkfins, 25% snowballs."""
    rng = np.random.default_rng(seed)
    markets = {u: MarketSpec(spot=s, vol=v, rate=rate, div=q) for u, (s, v, q) in UNDERLYINGS.items()}
    cal = get_calendar("XSHG")
    codes = list(UNDERLYINGS)
    trades = []
    kinds = rng.choice(["vanilla", "spread", "sharkfin", "snowball"], size=n, p=[0.35, 0.20, 0.20, 0.25])
    for i, kind in enumerate(kinds):
        u = codes[rng.integers(len(codes))]
        spot = markets[u].spot
        months = int(rng.choice([1, 2, 3, 6, 9, 12] if kind != "snowball" else [12, 18, 24]))
        age_months = int(rng.integers(0, min(months, 12)))
        start = cal.roll_forward(add_months(valuation_date, -age_months) - dt.timedelta(days=int(rng.integers(0, 20))))
        if start > valuation_date:
            start = valuation_date
        mat = cal.roll_forward(add_months(start, months))
        if mat <= valuation_date + dt.timedelta(days=7):
            start, mat = valuation_date, cal.roll_forward(add_months(valuation_date, months))
        s0 = float(np.round(spot * math.exp(rng.normal(0.0, 0.04 * math.sqrt(1 + age_months))), 2))
        x = spot / s0
        base = dict(structure=kind, underlying=u, start_date=start.isoformat(), maturity_date=mat.isoformat(),
                    initial_price=s0, notional=float(rng.choice([5e6, 1e7, 2e7, 5e7])),
                    side="client_buys" if rng.random() < 0.8 else "client_sells")
        opt = "call" if rng.random() < 0.6 else "put"
        if kind == "vanilla":
            d = dict(base, option_type=opt, strike_pct=float(rng.choice([90, 95, 100, 103, 105, 110])))
        elif kind == "spread":
            k1 = float(rng.choice([95, 100, 105]))
            d = dict(base, option_type=opt, strike_pct=k1, upper_strike_pct=k1 + float(rng.choice([5, 10, 15])))
        elif kind == "sharkfin":
            mon = "daily" if rng.random() < 0.5 else "maturity"
            if opt == "call":
                h = max(float(rng.choice([110, 115, 120])), math.ceil(100 * x * 1.03))
            else:
                h = min(float(rng.choice([80, 85, 90])), math.floor(100 * x * 0.97))
            d = dict(base, option_type=opt, strike_pct=100.0, barrier_pct=float(h), rebate_pct=float(rng.choice([0, 1, 2])),
                     participation_pct=float(rng.choice([50, 80, 100])), barrier_monitoring=mon)
        else:
            ki = float(rng.choice([70, 75, 80]))
            d = dict(base, ko_pct=float(rng.choice([100, 103])), ki_pct=ki, coupon_pct=float(rng.choice([12, 15, 18, 20])),
                     lockup_months=3, knocked_in=bool(100 * x <= ki or rng.random() < 0.05))
            if rng.random() < 0.2:
                d["ko_stepdown_pct"] = 0.5
        trades.append(Trade(f"T{i:05d}", product_from_dict(d)))
    return trades, markets


# --------------------------------------------------------------------------- batches

def _analytic_batch(resolved, models, spot_shifts, vol_shifts, cfg: EngineOptions):
    """Closed-form values, Greeks (the first `GREEK_SCENARIOS` rows at once) and scenario grid per contract."""
    out = []
    ss = np.asarray(spot_shifts)[:, None]
    vs = np.asarray(vol_shifts)[None, :]
    t_greeks = t_scen = 0.0
    for rs, m in zip(resolved, models):
        t0 = time.thread_time()
        x, T, q, s = rs.spot_x, rs.T, m.div, m.vol
        bumps = mc_core.greek_bumps(cfg, s, gamma=False)
        v = value_european(rs, np.array([x * (1 + b.x) for b in bumps]),
                           np.array([max(T - b.shift, 1e-8) for b in bumps]),
                           np.array([m.rate + b.rate for b in bumps]), q, np.array([s + b.vol for b in bumps]))
        g = mc_core.greeks_from(v, x, s, cfg)
        t1 = time.thread_time()
        scen = (value_european(rs, x * (1 + ss), T, m.rate, q, np.maximum(s + vs, mc_core.MIN_VOL))
                if spot_shifts is not None else None)
        t2 = time.thread_time()
        t_greeks += t1 - t0
        t_scen += t2 - t1
        out.append((float(v[0]), None, g, scen))
    return out, t_greeks, t_scen


def _mc_batch(xp, resolved, models, spot_shifts, vol_shifts, cfg: EngineOptions, fast_ladder: bool = True):
    """MC Greeks and scenario grid of one batch of contracts of the same block shape."""
    res, tg, ts = price_group(xp, resolved, models, cfg, True, spot_shifts, vol_shifts, fast_ladder)
    return [(r.price, r.stderr, r.greeks, r.scenarios) for r in res], tg, ts


def revalue_batch(payload: dict) -> dict:
    """Revalue one batch (all trades of one structure and engine); picklable for Ray."""
    trades: list[Trade] = payload["trades"]
    markets: Mapping[str, MarketSpec] = payload["markets"]
    vd = payload["valuation_date"]
    cfg: EngineOptions = payload["cfg"]
    engine = payload["engine"]
    spot_shifts, vol_shifts = payload["spot_shifts"], payload["vol_shifts"]
    models = [markets[t.product.underlying].to_model() for t in trades]
    resolved = [t.product.resolve(vd, m) for t, m in zip(trades, models)]
    if engine == "analytic":
        res, tg, ts = _analytic_batch(resolved, models, spot_shifts, vol_shifts, cfg)
    else:
        res, tg, ts = _mc_batch(get_xp(payload["backend"]), resolved, models, spot_shifts, vol_shifts, cfg)
    return {"results": res, "greeks_s": tg, "scenario_s": ts, "engine": engine,
            "ids": [t.trade_id for t in trades]}


def engine_for(trade: Trade, vd, markets) -> tuple[str, tuple]:
    """("analytic" | "mc", batch key): closed forms for payoffs on the final price only, else Monte Carlo."""
    m = markets[trade.product.underlying].to_model()
    rs = trade.product.resolve(vd, m)
    if is_european(rs):
        return "analytic", (trade.product.structure,)
    return "mc", (trade.product.structure, mc_blocks.shape_of(rs))


def revalue_book(trades: Sequence[Trade], markets: Mapping[str, MarketSpec], valuation_date, *,
                 backend: str = "numpy", mc_options: Mapping | None = None,
                 spot_shifts: Sequence[float] | None = SPOT_SHIFTS, vol_shifts: Sequence[float] | None = VOL_SHIFTS,
                 batch_size: int = 64, ray_address: str | None = None, workers: int = 2) -> BookResult:
    """Revalue ``trades`` with Greeks and the scenario grid.

    With ``ray_address`` every batch is one Ray task (``ray.init(address=...)`` unless Ray is
    already initialised in this process); otherwise batches run in-process on ``workers``
    threads (NumPy releases the GIL inside its array operations). ``timings`` reports
    ``greeks_s`` / ``scenario_s`` as CPU seconds of each part summed over batches (the
    worker's thread time, so shared or contended cores do not inflate them), and
    ``elapsed_s`` as wall time.
    """
    t_start = time.perf_counter()
    vd = valuation_date if isinstance(valuation_date, dt.date) else dt.date.fromisoformat(str(valuation_date))
    cfg = EngineOptions.from_dict({**BOOK_MC_OPTIONS, **(mc_options or {})})
    get_xp(backend)  # fail fast on an unusable backend
    for underlying in {t.product.underlying for t in trades}:
        refuse_unusable_inputs("book revaluation", FLAT_INPUTS, markets[underlying].to_model())
    frozen = [Trade(t.trade_id, freeze(t.product, markets[t.product.underlying].to_model(), vd)) for t in trades]
    groups: dict[tuple, list[Trade]] = {}
    for t in frozen:
        eng, key = engine_for(t, vd, markets)
        groups.setdefault((eng, key), []).append(t)
    payloads = []
    for (eng, key), ts in groups.items():
        ts = sorted(ts, key=lambda t: (t.product.maturity_date or dt.date.max))  # similar grids per batch
        for i in range(0, len(ts), batch_size):
            batch = ts[i:i + batch_size]
            payloads.append({"trades": batch, "markets": {t.product.underlying: markets[t.product.underlying]
                                                          for t in batch},
                             "valuation_date": vd, "cfg": cfg, "engine": eng, "backend": backend,
                             "spot_shifts": None if spot_shifts is None else tuple(spot_shifts),
                             "vol_shifts": None if vol_shifts is None else tuple(vol_shifts)})
    t_plan = time.perf_counter() - t_start
    if ray_address:
        import ray  # noqa: PLC0415

        if not ray.is_initialized():
            ray.init(address=ray_address, include_dashboard=False, log_to_driver=False)
        task = ray.remote(revalue_batch)
        outs = ray.get([task.remote(p) for p in payloads])
    elif workers > 1 and len(payloads) > 1:
        from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

        # the big MC batches first, so the two workers finish together
        order_p = sorted(range(len(payloads)), key=lambda i: payloads[i]["engine"] != "mc")
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futs = {i: pool.submit(revalue_batch, payloads[i]) for i in order_p}
            outs = [futs[i].result() for i in range(len(payloads))]
    else:
        outs = [revalue_batch(p) for p in payloads]
    by_id = {t.trade_id: t for t in frozen}
    risks = []
    n_s = len(spot_shifts) if spot_shifts is not None else 0
    n_v = len(vol_shifts) if vol_shifts is not None else 0
    pnl = np.zeros((n_s, n_v))
    tg = ts = 0.0
    group_info = {}
    for out in outs:
        tg += out["greeks_s"]
        ts += out["scenario_s"]
        for tid, (p, e, g, scen) in zip(out["ids"], out["results"]):
            t = by_id[tid]
            sgn, notional = t.sign, t.notional
            change = None if scen is None else sgn * (np.asarray(scen) - p)
            risks.append(TradeRisk(tid, t.product.structure, out["engine"], sgn * p, e, sgn * p * notional,
                                   {k: sgn * v for k, v in g.items()}, change))
            if change is not None:
                pnl += notional * change
            key = (t.product.structure, out["engine"])
            group_info[key] = group_info.get(key, 0) + 1
    order = {t.trade_id: i for i, t in enumerate(frozen)}
    risks.sort(key=lambda r: order[r.trade_id])
    timings = {"elapsed_s": time.perf_counter() - t_start, "greeks_s": tg, "scenario_s": ts, "plan_s": t_plan,
               "batches": len(payloads), "ray": bool(ray_address), "workers": 1 if ray_address else workers}
    return BookResult(risks, tuple(spot_shifts or ()), tuple(vol_shifts or ()), pnl, timings,
                      [{"structure": s, "engine": e, "trades": n} for (s, e), n in sorted(group_info.items())])


def bench(n_trades: int, backend: str = "numpy", ray_address: str | None = None, seed: int = 7,
          mc_options: Mapping | None = None, workers: int = 2) -> dict:
    """The `otcdesk risk bench` document for a sample book of ``n_trades``."""
    t0 = time.perf_counter()
    trades, markets = sample_book(n_trades, seed)
    t_build = time.perf_counter() - t0
    res = revalue_book(trades, markets, dt.date(2026, 11, 20), backend=backend, mc_options=mc_options,
                       ray_address=ray_address, workers=workers)
    xp = get_xp(backend)
    return {
        "trades": n_trades,
        "backend": backend_name(xp),
        "elapsed_s": round(time.perf_counter() - t0, 3),
        "greeks_s": round(res.timings["greeks_s"], 3),
        "scenario_s": round(res.timings["scenario_s"], 3),
        "scenario_points": len(res.spot_shifts) * len(res.vol_shifts),
        "build_s": round(t_build, 3),
        "plan_s": round(res.timings["plan_s"], 3),
        "batches": res.timings["batches"],
        "ray": res.timings["ray"],
        "workers": res.timings["workers"],
        "timing_note": "greeks_s / scenario_s: CPU seconds of each part, summed over batches and workers; "
                       "elapsed_s: wall time of the whole run (book build, grouping, both parts)",
        "book_pv": round(res.pv, 2),
        "book_delta_cny": round(sum(r.greeks["delta"] * by.notional for r, by in zip(res.trades, trades)), 2),
        "groups": res.groups,
        "mc_paths": int({**BOOK_MC_OPTIONS, **(mc_options or {})}["paths"]),
    }
