"""``mc`` engine: Monte Carlo for every structure, batched over contracts and scenarios.

The engine resolves each product into building blocks (`blocks.ResolvedSchedule`), groups
contracts of the same block shape, and prices a whole group in one pass over shared
Brownian paths (`mc_paths`, `mc_core`, kernel in `mc_blocks`). Greeks are bump-and-revalue
with common random numbers (the bumped scenarios are extra rows of the same pass):

* delta, gamma: central differences in x = spot / initial_price, bumps ``spot_bump`` (1%)
  for delta and ``gamma_bump`` (3%: knock-in/out jumps make a 1% second difference noisy);
* vega: central difference of +-``vol_bump`` in vol, reported per vol point (0.01);
* rho: central difference of +-``rate_bump`` in the rate, per 1% (0.01) of rate;
* theta: value one calendar day later minus value now (same normals, first time step
  shortened by a day; an observation falling on that day is taken at today's spot).

Structures are not separate code paths: each product resolves into blocks and one kernel
(`mc_blocks`) prices them all, so a template structure needs no new code:

* vanilla / spread / digital: terminal legs (call, put, digital_call, digital_put);
* barrier: legs + one knock-out (rebate at the hit) or a knock-in (rebate at expiry),
  monitored daily, at maturity, or continuously (BGK-corrected on a ``steps_per_year`` grid);
* sharkfin / double sharkfin: legs + one / two knock-outs with the rebate paid at maturity;
* asian: legs on the arithmetic (geometric control variate) or geometric average;
* snowball and variants (step-down, early-profit, dual coupon, parachute, OTM strike,
  loss cap, European knock-in, knocked-in state, mid-life): monthly knock-out paying the
  accrued coupon at the hit, daily or at-maturity knock-in switching to the put legs;
* phoenix: the same plus a coupon strip (with memory: missed coupons are paid later);
* airbag: participation call whose legs switch after a knock-in.

``engine_options`` understood here (CONTRACTS.md plus MC knobs): ``paths``,
``steps_per_year`` (grid for continuous monitoring), ``seed``, ``dtype`` (float32 |
float64), ``antithetic``, ``sobol``, ``backend`` (numpy | cupy), ``greeks``, and in
``extra``: ``replicates``, ``chunk_elems``, ``spot_bump``, ``gamma_bump``, ``vol_bump``, ``rate_bump``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from otcdesk.pricing_engine import mc_blocks, mc_core, mc_paths
from otcdesk.pricing_engine.backend import backend_name, get_xp
from otcdesk.pricing_engine.engines import EngineOptions, register_engine
from otcdesk.pricing_engine.errors import PricingError
from otcdesk.pricing_engine.greeks import freeze
from otcdesk.pricing_engine.results import PricingResult

SUPPORTED = ("vanilla", "spread", "digital", "barrier", "sharkfin", "double_sharkfin", "asian", "snowball",
             "phoenix", "airbag")


def config_from_options(options: EngineOptions | Mapping | None) -> mc_core.MCConfig:
    """MCConfig from `EngineOptions` (or a plain ``engine_options`` mapping)."""
    if options is None:
        return mc_core.MCConfig()
    if isinstance(options, Mapping):
        options = EngineOptions.from_dict(options)
    d = {"paths": options.paths, "steps_per_year": options.steps_per_year, "seed": options.seed,
         "dtype": options.dtype, "antithetic": options.antithetic, "sobol": options.sobol}
    d.update({k: v for k, v in dict(options.extra or {}).items()
              if k in ("replicates", "chunk_elems", "spot_bump", "gamma_bump", "vol_bump", "rate_bump")})
    return mc_core.MCConfig.from_options(d)


@dataclass(frozen=True)
class MarketRow:
    """Market of one contract: spot, vol, rate, div (the model's flat parameters)."""

    spot: float
    vol: float
    rate: float
    div: float


def _market(model) -> MarketRow:
    return MarketRow(float(model.spot), float(model.sigma()), float(model.rate), float(model.div))


@dataclass
class BatchResult:
    """Per contract: base price, stderr, Greeks and (optionally) scenario values (n_spot, n_vol)."""

    price: float
    stderr: float
    greeks: dict
    scenarios: np.ndarray | None
    diagnostics: dict


def price_group(xp, resolved: Sequence, markets: Sequence[MarketRow], cfg: mc_core.MCConfig, greeks: bool = True,
                spot_shifts: Sequence[float] | None = None, vol_shifts: Sequence[float] | None = None,
                fast_ladder: bool = True) -> tuple[list[BatchResult], float, float]:
    """Price contracts of one block shape: values, Greeks and an optional scenario grid.

    All passes use the same grid, seed and path count (common random numbers). Without
    continuous monitoring, spot bumps and spot scenarios are shifts of already-built paths
    (`mc_core.run_ladder`, exact: the same paths as a full revaluation); only the vol / rate /
    date scenarios build paths of their own. Returns (results, greeks CPU s, scenario CPU s).
    """
    shape = mc_blocks.shape_of(resolved[0])
    terms = [mc_blocks.to_terms(rs, cfg) for rs in resolved]
    kernel = mc_blocks.make_kernel(shape)
    ctrl = mc_blocks.uses_control(shape)
    h = cfg.spot_bump
    C = len(resolved)
    nb = mc_core.N_GREEK_ROWS if greeks else 1
    t0 = time.thread_time()
    diag: dict = {}
    if shape.continuous or ctrl:  # full paths for every row (controls need the whole path too)
        rows = []
        for c, (rs, mk) in enumerate(zip(resolved, markets)):
            rows += mc_core.greek_rows(c, rs.spot_x, mk.vol, mk.rate, mk.div, cfg, greeks)
        price, err, diag = mc_core.run_batch(xp, terms, rows, kernel, cfg,
                                             mc_blocks.make_control_means(shape) if ctrl else None, 1 if ctrl else 0)
        gvals = [price[nb * c: nb * c + nb] for c in range(C)]
        gerr = [err[nb * c] for c in range(C)]
    else:
        ext = mc_blocks.extreme_blocks(shape, terms)
        rows, shifts = [], []
        for c, (rs, mk) in enumerate(zip(resolved, markets)):
            x0, v, r, q = rs.spot_x, mk.vol, mk.rate, mk.div
            rows.append(mc_core.Row(c, x0, v, r, q))
            shifts.append((0.0, h, -h, cfg.gamma_bump, -cfg.gamma_bump) if greeks else (0.0,))
            if greeks:
                for rr in (mc_core.Row(c, x0, v + cfg.vol_bump, r, q),
                           mc_core.Row(c, x0, max(v - cfg.vol_bump, 1e-4), r, q),
                           mc_core.Row(c, x0, v, r + cfg.rate_bump, q), mc_core.Row(c, x0, v, r - cfg.rate_bump, q),
                           mc_core.Row(c, x0, v, r, q, shift=mc_core.DAY)):
                    rows.append(rr)
                    shifts.append((0.0,))
        vals, errs = mc_core.run_ladder(xp, terms, rows, shifts, kernel, cfg, ext)
        k = 6 if greeks else 1
        gvals = []
        for c in range(C):
            lad = vals[k * c]  # base row at shifts 0, +h, -h (, +hg, -hg)
            other = [vals[k * c + i][0] for i in range(1, k)]
            gvals.append(np.array([*lad[:3], *other, *lad[3:]]))
        gerr = [errs[k * c][0] for c in range(C)]
        diag = {"rows": len(rows), "contracts": C, "compressed_paths": True}
    t1 = time.thread_time()
    scen = None
    if spot_shifts is not None and vol_shifts is not None:
        vrows = [mc_core.Row(c, rs.spot_x, max(mk.vol + dv, 1e-4), mk.rate, mk.div)
                 for c, (rs, mk) in enumerate(zip(resolved, markets)) for dv in vol_shifts]
        if shape.continuous:
            full = [mc_core.Row(r.contract, r.x0 * (1 + ds), r.sigma, r.rate, r.div) for r in vrows for ds in spot_shifts]
            p, _, _ = mc_core.run_batch(xp, terms, full, kernel, cfg)
            lad = p.reshape(len(vrows), len(spot_shifts))
        else:
            ext = mc_blocks.extreme_blocks(shape, terms)
            vals, _ = mc_core.run_ladder(xp, terms, vrows, [tuple(spot_shifts)] * len(vrows), kernel, cfg, ext,
                                         fast=mc_blocks.make_ladder_kernel(shape, ext) if fast_ladder else None)
            lad = np.stack(vals)
        scen = lad.reshape(C, len(vol_shifts), len(spot_shifts)).transpose(0, 2, 1)
    t2 = time.thread_time()
    grid = mc_core.batch_grid(terms)
    base_diag = mc_paths.describe(xp, cfg.path_config(), len(grid))
    base_diag.update({k: v for k, v in diag.items() if k in ("rows", "contracts", "compressed_paths")})
    out = []
    for c, (rs, mk) in enumerate(zip(resolved, markets)):
        g = mc_core.greeks_from(gvals[c], rs.spot_x, mk.vol, cfg) if greeks else {}
        out.append(BatchResult(float(gvals[c][0]), float(gerr[c]), g, None if scen is None else scen[c],
                               dict(base_diag, group_contracts=C)))
    return out, t1 - t0, t2 - t1


def price_resolved(xp, resolved: Sequence, markets: Sequence[MarketRow], cfg: mc_core.MCConfig, greeks: bool = True,
                   spot_shifts: Sequence[float] | None = None,
                   vol_shifts: Sequence[float] | None = None) -> list[BatchResult]:
    """Price resolved schedules, one `price_group` pass per block shape.

    ``spot_shifts`` (relative, e.g. -0.2..0.2) x ``vol_shifts`` (absolute) add a scenario grid
    of values per contract, with the same paths as the base value.
    """
    groups: dict[mc_blocks.Shape, list[int]] = {}
    for i, rs in enumerate(resolved):
        groups.setdefault(mc_blocks.shape_of(rs), []).append(i)
    out: list[BatchResult | None] = [None] * len(resolved)
    for idx in groups.values():
        res, _, _ = price_group(xp, [resolved[i] for i in idx], [markets[i] for i in idx], cfg, greeks,
                                spot_shifts, vol_shifts)
        for i, r in zip(idx, res):
            out[i] = r
    return out  # type: ignore[return-value]


class MCEngine:
    """Monte Carlo engine over building blocks (registered as ``mc``)."""

    name = "mc"

    def supports(self, product) -> bool:
        return getattr(product, "structure", None) in SUPPORTED or hasattr(product, "resolve")

    def price(self, product, model, valuation_date, options: EngineOptions | None = None) -> PricingResult:
        results = self.price_many([product], [model], valuation_date, options)
        return results[0]

    def price_many(self, products: Sequence, models: Sequence, valuation_date, options: EngineOptions | None = None,
                   spot_shifts=None, vol_shifts=None) -> list[PricingResult]:
        """Price many products (each with its model) together; see `price_resolved`."""
        t0 = time.perf_counter()
        options = options if options is not None else EngineOptions()
        if isinstance(options, Mapping):
            options = EngineOptions.from_dict(options)
        cfg = config_from_options(options)
        xp = get_xp(options.backend)
        products = [freeze(p, m, valuation_date) for p, m in zip(products, models)]
        resolved = [p.resolve(valuation_date, m) for p, m in zip(products, models)]
        for rs in resolved:
            if not rs.T > 0:
                raise PricingError("maturity is not after the valuation date", {"field": "maturity_date"})
        res = price_resolved(xp, resolved, [_market(m) for m in models], cfg, bool(options.greeks),
                             spot_shifts, vol_shifts)
        elapsed = time.perf_counter() - t0
        out = []
        for r in res:
            diag = dict(r.diagnostics, elapsed_s=elapsed, backend=backend_name(xp))
            if r.scenarios is not None:
                diag["scenarios"] = r.scenarios.tolist()
            out.append(PricingResult(price=r.price, stderr=r.stderr, greeks=r.greeks, engine="mc", diagnostics=diag))
        return out


ENGINE = register_engine(MCEngine())
