"""`fd` engine: Crank–Nicolson (fd_solver) for every structure except path averages.

Delta and gamma come from the grid of the base solve, and the spot ladder (diagnostics.ladder) is
read off the same grid. Vega and rho are central bump-and-revalue, theta re-solves one calendar day
later (same spot). On a vol surface the PDE runs on the surface's Dupire local vol (`surface.VolSurface.local_vol`,
sticky strike; vega is a parallel shift of the implied surface). engine_options: grid_points (spot nodes, default 800), time_steps (None → steps
of one calendar day plus every observation date), ladder (x levels, default 0.80..1.20 of spot).

`linear_in` serves solvers (a fair coupon or participation): the FD map from payoff amounts (leg weights, knock-out
rebates, coupon amounts) to grid values is linear, so when the resolved schedule depends on the solved field only
through those amounts, affinely (checked on a third value), the values at two values of the field (one pass with
both sets of columns, `fd_solver.solve_many`) give the value at every value of the field.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import replace

from otcdesk.pricing_engine import fd_solver
from otcdesk.pricing_engine.engines import (SURFACE_INPUTS, EngineOptions, refuse_unusable_inputs, register_engine,
                                            surface_time)
from otcdesk.pricing_engine.errors import PricingError
from otcdesk.pricing_engine.greeks import bump_greeks, freeze
from otcdesk.pricing_engine.products import AsianSpec
from otcdesk.pricing_engine.results import PricingResult
from otcdesk.pricing_engine.schedule import to_date

DEFAULT_LADDER = (0.8, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15, 1.2)
AMOUNT_FIELDS = frozenset({"weight", "rebates", "amounts", "past_amounts"})  # of Leg, KnockOut, CouponStrip


class FDEngine:
    """Finite-difference engine over building blocks (registered as ``fd``)."""

    name = "fd"
    market_inputs = SURFACE_INPUTS
    surface_use = "local_vol"

    def supports(self, product) -> bool:
        if isinstance(product, AsianSpec):
            return False
        fn = getattr(product, "fd_supported", None)
        return bool(fn()) if fn is not None else hasattr(product, "resolve")

    def solve(self, product, model, valuation_date, options: EngineOptions) -> fd_solver.FDSolution:
        return self._solve_resolved(product.resolve(valuation_date, model), model, valuation_date, options)

    def _local_vol(self, res, model, valuation_date):
        """σ(x, t) for the solver (x relative to the initial price, t from the valuation date), None for flat vol."""
        surf = model.surface
        if surf is None:
            return None
        off, s0 = surface_time(model, valuation_date), res.initial_price
        return lambda x, t: surf.local_vol(x * s0, t + off)

    def _solve_resolved(self, res, model, valuation_date, options: EngineOptions) -> fd_solver.FDSolution:
        return fd_solver.solve(res, model, options.grid_points, options.time_steps,
                               self._local_vol(res, model, valuation_date))

    def price(self, product, model, valuation_date, options: EngineOptions | None = None) -> PricingResult:
        options = options or EngineOptions()
        refuse_unusable_inputs(f"the {self.name} engine", self.market_inputs, model)
        t0 = time.perf_counter()
        vd = to_date(valuation_date, "valuation_date")
        product = freeze(product, model, vd)
        sol = self.solve(product, model, vd, options)
        greeks = {}
        if options.greeks:
            delta, gamma = sol.delta_gamma()
            quick = replace(options, greeks=False)
            value = lambda p, m, v: self.solve(p, m, v, quick).price  # noqa: E731
            greeks = {"delta": delta, "gamma": gamma}
            greeks.update(bump_greeks(value, product, model, vd, sol.price, skip=("delta", "gamma")))
        return self._result(sol, product, model, options, greeks, t0)

    def _result(self, sol: fd_solver.FDSolution, product, model, options: EngineOptions, greeks: dict,
                t0: float) -> PricingResult:
        diag = {"paths": None, "steps": sol.steps, "grid_points": sol.nodes, "method": f"{fd_solver.SCHEME}+rannacher",
                "vol_model": "local_vol" if model.surface is not None else "flat"}
        ladder_x = options.ladder or tuple(sol.spot_x * k for k in DEFAULT_LADDER)
        s0 = product.initial_price
        diag["ladder"] = [{"x": x, "spot": x * s0, "price": v} for x, v in zip(ladder_x, sol.ladder(ladder_x))]
        diag["elapsed_s"] = time.perf_counter() - t0
        return PricingResult(sol.price, None, greeks, self.name, diag)

    def linear_in(self, field: str, product, model, valuation_date, options: EngineOptions, lo: float, hi: float):
        """`at(v) -> (product with field = v, PricingResult without Greeks)` from two solves (at lo and hi), or None
        when the price is not affine in `field` for this product (then solve for it the general way)."""
        if options.greeks or lo == hi:
            return None
        refuse_unusable_inputs(f"the {self.name} engine", self.market_inputs, model)
        vd = to_date(valuation_date, "valuation_date")
        product = freeze(product, model, vd)
        try:
            res = [product.replace(**{field: v}).resolve(vd, model) for v in (lo, hi, 2 * hi - lo)]
        except PricingError:  # e.g. a value outside what the product allows: the general way says why
            return None
        if not _affine(*res, 2.0):
            return None
        t0 = time.perf_counter()
        sa, sb = fd_solver.solve_many(res[:2], model, options.grid_points, options.time_steps,
                                      self._local_vol(res[0], model, vd))  # one pass, two sets of columns
        elapsed = time.perf_counter() - t0

        def at(v: float):
            w = (v - lo) / (hi - lo)
            sol = dataclasses.replace(sa, values=sa.values + w * (sb.values - sa.values))
            p = product.replace(**{field: v})
            r = self._result(sol, p, model, options, {}, time.perf_counter() - elapsed)
            r.diagnostics["linear_in"] = field
            return p, r
        return at


def _affine(a, b, c, w: float, amount: bool = False) -> bool:
    """c = a + w·(b − a) in every amount (AMOUNT_FIELDS), and a == b == c everywhere else (levels, times, ...)."""
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return (type(a) is type(b) is type(c)
                and all(_affine(getattr(a, f.name), getattr(b, f.name), getattr(c, f.name), w, f.name in AMOUNT_FIELDS)
                        for f in dataclasses.fields(a)))
    if isinstance(a, (tuple, list)):
        return (isinstance(b, type(a)) and isinstance(c, type(a)) and len(a) == len(b) == len(c)
                and all(_affine(x, y, z, w, amount) for x, y, z in zip(a, b, c)))
    if amount and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b, c)):
        return abs(a + w * (b - a) - c) <= 1e-12 * max(1.0, abs(a), abs(b), abs(c))
    try:
        return bool(a == b == c)
    except ValueError:  # arrays
        return False


ENGINE = register_engine(FDEngine())
