"""`fd` engine: Crank–Nicolson (fd_solver) for every structure except path averages.

Delta and gamma come from the grid of the base solve, and the spot ladder (diagnostics.ladder) is
read off the same grid. Vega and rho are central bump-and-revalue, theta re-solves one calendar day
later (same spot). On a vol surface the PDE runs on the surface's Dupire local vol (`surface.VolSurface.local_vol`,
sticky strike; vega is a parallel shift of the implied surface). engine_options: grid_points (spot nodes, default 800), time_steps (None → steps
of one calendar day plus every observation date), ladder (x levels, default 0.80..1.20 of spot).
"""
from __future__ import annotations

import time
from dataclasses import replace

from otcdesk.pricing_engine import fd_solver
from otcdesk.pricing_engine.engines import (SURFACE_INPUTS, EngineOptions, refuse_unusable_inputs, register_engine,
                                            surface_time)
from otcdesk.pricing_engine.greeks import bump_greeks, freeze
from otcdesk.pricing_engine.products import AsianSpec
from otcdesk.pricing_engine.results import PricingResult
from otcdesk.pricing_engine.schedule import to_date

DEFAULT_LADDER = (0.8, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15, 1.2)


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
        res = product.resolve(valuation_date, model)
        lv = None
        surf = model.surface
        if surf is not None:
            off, s0 = surface_time(model, valuation_date), res.initial_price
            lv = lambda x, t: surf.local_vol(x * s0, t + off)  # noqa: E731
        return fd_solver.solve(res, model, options.grid_points, options.time_steps, lv)

    def price(self, product, model, valuation_date, options: EngineOptions | None = None) -> PricingResult:
        options = options or EngineOptions()
        refuse_unusable_inputs(f"the {self.name} engine", self.market_inputs, model)
        t0 = time.perf_counter()
        vd = to_date(valuation_date, "valuation_date")
        product = freeze(product, model, vd)
        sol = self.solve(product, model, vd, options)
        price = sol.price
        diag = {"paths": None, "steps": sol.steps, "grid_points": sol.nodes, "method": f"{fd_solver.SCHEME}+rannacher",
                "vol_model": "local_vol" if model.surface is not None else "flat"}
        greeks = {}
        if options.greeks:
            delta, gamma = sol.delta_gamma()
            quick = replace(options, greeks=False)
            value = lambda p, m, v: self.solve(p, m, v, quick).price  # noqa: E731
            greeks = {"delta": delta, "gamma": gamma}
            greeks.update(bump_greeks(value, product, model, vd, price, skip=("delta", "gamma")))
        ladder_x = options.ladder or tuple(sol.spot_x * k for k in DEFAULT_LADDER)
        s0 = product.initial_price
        diag["ladder"] = [{"x": x, "spot": x * s0, "price": v} for x, v in zip(ladder_x, sol.ladder(ladder_x))]
        diag["elapsed_s"] = time.perf_counter() - t0
        return PricingResult(price, None, greeks, self.name, diag)


ENGINE = register_engine(FDEngine())
