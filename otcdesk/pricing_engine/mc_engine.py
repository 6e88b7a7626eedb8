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

On a vol surface the paths follow the surface's Dupire local vol (`mc_core.run_batch` with one σ(x, t) per row:
Euler in log x on a grid of at most 1/``steps_per_year``); every scenario row builds its own paths from the same
increments (vega: parallel shift of the implied surface; theta: the surface read one day on). The Asian
geometric control variate is a GBM identity and is not used there.

Kernels: on the NumPy backend every pass without a scenario grid runs on the fused numba kernel (`mc_fused`:
paths, events and statistics in one compiled loop, all cores, ziggurat normals on per-block streams), with
every Greek row on full paths from the same normals; the vectorised kernel (`mc_core`, `mc_blocks`) is the
reference and runs what the fused one does not (Sobol points, CuPy, scenario grids on compressed-path
ladders, or ``mc_kernel="numpy"``). ``diagnostics.kernel`` says which ran and ``kernel_note`` why not fused.

Heston (`market.heston`, a `heston.HestonModel`): each such contract is priced by `heston.price_mc` (QE paths
of the variance and log spot, `paths` plain paths, the same block kernel), one contract at a time. Greeks are not
computed there: `greeks` is empty and `diagnostics.greeks_note` says why (the api prints `greeks: null`);
``sobol`` and ``mc_kernel="fused"`` are refused, and the paths are not antithetic (``diagnostics.antithetic``).

Configuration: `engines.EngineOptions` (``paths``, ``steps_per_year``, ``seed``, ``dtype``,
``antithetic``, ``sobol``, ``backend``, ``mc_kernel``, ``greeks``, ``replicates``, ``chunk_elems`` and the bumps);
the scenario rows are `mc_core.GREEK_SCENARIOS`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from otcdesk.pricing_engine import heston, mc_blocks, mc_core, mc_fused, mc_paths
from otcdesk.pricing_engine.backend import backend_name, get_xp
from otcdesk.pricing_engine.engines import (SURFACE_INPUTS, EngineOptions, refuse_unusable_inputs, register_engine,
                                            surface_time)
from otcdesk.pricing_engine.errors import PricingError
from otcdesk.pricing_engine.greeks import freeze
from otcdesk.pricing_engine.models import GBMModel
from otcdesk.pricing_engine.results import PricingResult

HESTON_GREEKS_NOTE = ("Greeks are not computed under Heston (a bump-and-revalue pass per Greek would cost 9 more "
                      "Heston Monte Carlo runs); price with market.vol or market.vol_surface for Greeks")


@dataclass
class BatchResult:
    """Per contract: base price, stderr, Greeks and (optionally) scenario values (n_spot, n_vol)."""

    price: float
    stderr: float
    greeks: dict
    scenarios: np.ndarray | None
    diagnostics: dict


def _row_local_vol(model: GBMModel, row: mc_core.Row, rs, valuation_date):
    """σ(x, t) of one scenario row on `model`'s surface: its vol bump as a parallel shift, its date shift as later
    surface time, x relative to the contract's initial price."""
    m = model.bumped(vol=row.sigma) if row.sigma != model.vol else model
    surf, s0 = m.surface, rs.initial_price
    off = surface_time(model, valuation_date) + row.shift
    return lambda x, t: surf.local_vol(x * s0, t + off)


def fused_unusable(xp, cfg: EngineOptions, scenarios: bool = False) -> str | None:
    """Why this pass runs on the vectorised NumPy/CuPy kernel instead of the fused one (None: fused).

    ``engine_options.mc_kernel``: ``auto`` takes the fused kernel when it can and says why not otherwise;
    ``fused`` refuses a request it cannot serve (and compiles on first use); ``numpy`` always takes the reference
    kernel."""
    if cfg.mc_kernel == "numpy":
        return "engine_options.mc_kernel is numpy"
    why = ("a scenario grid shares its paths with the base price on the compressed-path ladder of the vectorised "
           "kernel" if scenarios else mc_fused.unsupported(xp, cfg))
    if why is None and cfg.mc_kernel == "auto" and not mc_fused.ready(cfg.dtype):
        # a quote never waits for numba's compile (minutes on a loaded 2-core machine): the service warms the
        # kernel in the background at start, and until then the reference kernel prices
        why = "the fused kernel is not compiled in this process yet (the service compiles it in the background)"
    if why and cfg.mc_kernel == "fused":
        raise PricingError(f"the fused Monte Carlo kernel cannot price this: {why}", {"field": "engine_options.mc_kernel"})
    return why


def _full_path_rows(resolved, models, cfg: EngineOptions, greeks: bool, local: bool, ctrl: bool, valuation_date):
    """Every contract's Greek scenario rows, each row's local vol on a surface (no control variate there: it is a
    GBM identity); returns (rows, local vols or None, ctrl)."""
    rows = []
    for c, (rs, m) in enumerate(zip(resolved, models)):
        rows += mc_core.greek_rows(c, rs.spot_x, m.vol, m.rate, m.div, cfg, greeks)
    if not local:
        return rows, None, ctrl
    return rows, [_row_local_vol(models[r.contract], r, resolved[r.contract], valuation_date) for r in rows], False


def price_group(xp, resolved: Sequence, models: Sequence[GBMModel], cfg: EngineOptions, greeks: bool = True,
                spot_shifts: Sequence[float] | None = None, vol_shifts: Sequence[float] | None = None,
                fast_ladder: bool = True, valuation_date=None) -> tuple[list[BatchResult], float, float]:
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
    C = len(resolved)
    t0 = time.thread_time()
    diag: dict = {}
    local = any(m.surface is not None for m in models)
    if local and (spot_shifts is not None or vol_shifts is not None):
        raise PricingError("MC scenario grids on a vol surface are not implemented", {"field": "market.vol_surface"})
    if local and not all(m.surface is not None for m in models):
        raise PricingError("an MC batch prices all on surfaces or all flat", {"field": "market.vol_surface"})
    why_not_fused = fused_unusable(xp, cfg, spot_shifts is not None or vol_shifts is not None)
    if why_not_fused is None:  # one compiled pass, every scenario row on full paths from the same normals
        rows, lvs, ctrl = _full_path_rows(resolved, models, cfg, greeks, local, ctrl, valuation_date)
        price, err, diag = mc_fused.run_batch(terms, rows, shape, cfg,
                                              mc_blocks.make_control_means(shape) if ctrl else None, 1 if ctrl else 0,
                                              local_vols=lvs)
        nb = len(rows) // C
        gvals = [price[nb * c: nb * c + nb] for c in range(C)]
        gerr = [err[nb * c] for c in range(C)]
    elif shape.continuous or ctrl or local:  # full paths for every row (controls need the whole path too)
        rows, lvs, ctrl = _full_path_rows(resolved, models, cfg, greeks, local, ctrl, valuation_date)
        price, err, diag = mc_core.run_batch(xp, terms, rows, kernel, cfg,
                                             mc_blocks.make_control_means(shape) if ctrl else None, 1 if ctrl else 0,
                                             local_vols=lvs)
        nb = len(rows) // C
        gvals = [price[nb * c: nb * c + nb] for c in range(C)]
        gerr = [err[nb * c] for c in range(C)]
    else:  # spot bumps are shifts of the base row's paths; the other scenarios are rows of their own
        ext = mc_blocks.extreme_blocks(shape, terms)
        rows, shifts, slots, base_rows = [], [], [], []  # slots: the scenario values each row gives
        for c, (rs, m) in enumerate(zip(resolved, models)):
            bumps = mc_core.greek_bumps(cfg, m.vol) if greeks else (mc_core.Bump(),)
            spot = [i for i, b in enumerate(bumps) if b.vol == b.rate == b.shift == 0.0]
            base_rows.append(len(rows))
            rows.append(mc_core.Row(c, rs.spot_x, m.vol, m.rate, m.div))
            shifts.append(tuple(bumps[i].x for i in spot))
            slots.append(spot)
            for i, b in enumerate(bumps):
                if i not in spot:
                    rows.append(b.row(c, rs.spot_x, m.vol, m.rate, m.div))
                    shifts.append((0.0,))
                    slots.append([i])
        vals, errs = mc_core.run_ladder(xp, terms, rows, shifts, kernel, cfg, ext)
        gvals = [np.empty(len(mc_core.GREEK_SCENARIOS) if greeks else 1) for _ in range(C)]
        for row, slot, v in zip(rows, slots, vals):
            gvals[row.contract][slot] = v
        gerr = [errs[i][0] for i in base_rows]
        diag = {"rows": len(rows), "contracts": C, "compressed_paths": True}
    t1 = time.thread_time()
    scen = None
    if spot_shifts is not None and vol_shifts is not None:
        vrows = [mc_core.Row(c, rs.spot_x, max(m.vol + dv, mc_core.MIN_VOL), m.rate, m.div)
                 for c, (rs, m) in enumerate(zip(resolved, models)) for dv in vol_shifts]
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
    base_diag = mc_paths.describe(xp, cfg, len(grid))
    base_diag.update({k: v for k, v in diag.items() if k in ("rows", "contracts", "compressed_paths", "steps", "threads",
                                                             "jit_cache", "compiled_now", "kernel_s")})
    base_diag["vol_model"] = "local_vol" if local else "flat"
    base_diag["kernel"] = "numpy" if why_not_fused else "fused"
    if why_not_fused:
        base_diag["kernel_note"] = why_not_fused
    out = []
    for c, (rs, m) in enumerate(zip(resolved, models)):
        g = mc_core.greeks_from(gvals[c], rs.spot_x, m.vol, cfg) if greeks else {}
        out.append(BatchResult(float(gvals[c][0]), float(gerr[c]), g, None if scen is None else scen[c],
                               dict(base_diag, group_contracts=C)))
    return out, t1 - t0, t2 - t1


def price_resolved(xp, resolved: Sequence, models: Sequence[GBMModel], cfg: EngineOptions,
                   greeks: bool = True, valuation_date=None) -> list[BatchResult]:
    """Price resolved schedules, one `price_group` pass per block shape."""
    groups: dict[mc_blocks.Shape, list[int]] = {}
    for i, rs in enumerate(resolved):
        groups.setdefault(mc_blocks.shape_of(rs), []).append(i)
    out: list[BatchResult | None] = [None] * len(resolved)
    for idx in groups.values():
        res, _, _ = price_group(xp, [resolved[i] for i in idx], [models[i] for i in idx], cfg, greeks,
                                valuation_date=valuation_date)
        for i, r in zip(idx, res):
            out[i] = r
    return out  # type: ignore[return-value]


class MCEngine:
    """Monte Carlo engine over building blocks (registered as ``mc``): every product that resolves."""

    name = "mc"
    market_inputs = SURFACE_INPUTS | {"heston"}
    surface_use = "local_vol"

    def supports(self, product) -> bool:
        return hasattr(product, "resolve")

    def price(self, product, model, valuation_date, options: EngineOptions | None = None) -> PricingResult:
        return self.price_many([product], [model], valuation_date, options)[0]

    def price_many(self, products: Sequence, models: Sequence, valuation_date,
                   options: EngineOptions | Mapping | None = None) -> list[PricingResult]:
        """Price many products (each with its model) together; see `price_resolved`."""
        t0 = time.perf_counter()
        if options is None or isinstance(options, Mapping):
            options = EngineOptions.from_dict(options)
        for m in models:
            refuse_unusable_inputs(f"the {self.name} engine", self.market_inputs, m)
        xp = get_xp(options.backend)
        products = [freeze(p, m, valuation_date) for p, m in zip(products, models)]
        resolved = [p.resolve(valuation_date, m) for p, m in zip(products, models)]
        for rs in resolved:
            if not rs.T > 0:
                raise PricingError("maturity is not after the valuation date", {"field": "maturity_date"})
        hes = [i for i, m in enumerate(models) if isinstance(m, heston.HestonModel)]
        out: list[PricingResult | None] = [None] * len(models)
        for i in hes:
            out[i] = _price_heston(xp, products[i], models[i], valuation_date, options)
        rest = [i for i in range(len(models)) if out[i] is None]
        if rest:
            res = price_resolved(xp, [resolved[i] for i in rest], [models[i] for i in rest], options,
                                 bool(options.greeks), valuation_date)
            elapsed = time.perf_counter() - t0
            for i, r in zip(rest, res):
                out[i] = PricingResult(price=r.price, stderr=r.stderr, greeks=r.greeks, engine="mc",
                                       diagnostics=dict(r.diagnostics, elapsed_s=elapsed, backend=backend_name(xp)))
        return out  # type: ignore[return-value]


def _price_heston(xp, product, model: heston.HestonModel, valuation_date, options: EngineOptions) -> PricingResult:
    """One contract under Heston (`heston.price_mc`, QE), refusing the options it cannot honour."""
    if options.sobol:
        raise PricingError("Heston Monte Carlo draws pseudo-random paths: engine_options.sobol is not supported",
                           {"field": "engine_options.sobol", "value": True})
    if options.mc_kernel == "fused":
        raise PricingError("the fused Monte Carlo kernel cannot price this: it has no Heston paths "
                           "(the vectorised kernel prices Heston)", {"field": "engine_options.mc_kernel"})
    r = heston.price_mc(product, model, valuation_date, options, "qe", xp)
    diag = dict(r.diagnostics, kernel="numpy", antithetic=False, sobol=False, dtype="float64",
                backend=backend_name(xp))
    if options.greeks:
        diag["greeks_note"] = HESTON_GREEKS_NOTE
    return PricingResult(price=r.price, stderr=r.stderr, greeks={}, engine="mc", diagnostics=diag)


ENGINE = register_engine(MCEngine())
