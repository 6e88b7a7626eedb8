"""``mc`` engine: Monte Carlo for every structure, batched over contracts and scenarios.

The engine resolves each product into building blocks (`blocks.ResolvedSchedule`), groups
contracts of the same block shape, and prices a whole group in one pass over shared
Brownian paths (`mc_paths`, `mc_core`, kernel in `mc_blocks`). Greeks are bump-and-revalue
with common random numbers (the bumped scenarios are extra rows of the same pass):

* delta, gamma: central differences in x = spot / initial_price, bump ``spot_bump`` x;
* vega: central difference of +-``vol_bump`` in vol, reported per vol point (0.01);
* rho: central difference of +-``rate_bump`` in the rate, per 1% (0.01) of rate;
* theta: value one calendar day later minus value now (same normals, first time step
  shortened by a day; an observation falling on that day is taken at today's spot).

``engine_options`` understood here (CONTRACTS.md plus MC knobs): ``paths``,
``steps_per_year`` (grid for continuous monitoring), ``seed``, ``dtype`` (float32 |
float64), ``antithetic``, ``sobol``, ``backend`` (numpy | cupy), ``greeks``, and in
``extra``: ``replicates``, ``chunk_elems``, ``spot_bump``, ``vol_bump``, ``rate_bump``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from pricing_engine import mc_blocks, mc_core
from pricing_engine.backend import backend_name, get_xp
from pricing_engine.engines import EngineOptions, register_engine
from pricing_engine.errors import PricingError
from pricing_engine.greeks import freeze
from pricing_engine.results import PricingResult

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
              if k in ("replicates", "chunk_elems", "spot_bump", "vol_bump", "rate_bump")})
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


def price_resolved(xp, resolved: Sequence, markets: Sequence[MarketRow], cfg: mc_core.MCConfig, greeks: bool = True,
                   spot_shifts: Sequence[float] | None = None,
                   vol_shifts: Sequence[float] | None = None) -> list[BatchResult]:
    """Price resolved schedules, one pass per block shape.

    ``spot_shifts`` (relative, e.g. -0.2..0.2) x ``vol_shifts`` (absolute) add a scenario grid
    of values per contract, with the same paths as the base value.
    """
    groups: dict[mc_blocks.Shape, list[int]] = {}
    for i, rs in enumerate(resolved):
        groups.setdefault(mc_blocks.shape_of(rs), []).append(i)
    out: list[BatchResult | None] = [None] * len(resolved)
    for shape, idx in groups.items():
        terms = [mc_blocks.to_terms(resolved[i], cfg) for i in idx]
        rows: list[mc_core.Row] = []
        spans = []
        for c, i in enumerate(idx):
            mk, x0 = markets[i], resolved[i].spot_x
            start = len(rows)
            rows += mc_core.greek_rows(c, x0, mk.vol, mk.rate, mk.div, cfg, greeks)
            g_end = len(rows)
            if spot_shifts is not None and vol_shifts is not None:
                for ds in spot_shifts:
                    for dv in vol_shifts:
                        rows.append(mc_core.Row(c, x0 * (1 + ds), max(mk.vol + dv, 1e-4), mk.rate, mk.div))
            spans.append((start, g_end, len(rows)))
        ctrl = mc_blocks.uses_control(shape)
        price, stderr, diag = mc_core.run_batch(
            xp, terms, rows, mc_blocks.make_kernel(shape), cfg,
            mc_blocks.make_control_means(shape) if ctrl else None, 1 if ctrl else 0)
        for c, i in enumerate(idx):
            s, g, e = spans[c]
            mk = markets[i]
            gr = mc_core.greeks_from(price[s:g], resolved[i].spot_x, mk.vol, cfg) if greeks else {}
            scen = None
            if e > g:
                scen = price[g:e].reshape(len(spot_shifts), len(vol_shifts))
            out[i] = BatchResult(float(price[s]), float(stderr[s]), gr, scen,
                                 dict(diag, group_contracts=len(idx)))
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
