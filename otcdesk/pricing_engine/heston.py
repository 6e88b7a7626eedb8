"""Heston stochastic volatility for Monte Carlo, where it fits (a second model beside GBM / local vol).

    dS/S = (r − q) dt + √v dW₁,   dv = κ(θ − v) dt + ξ√v dW₂,   d⟨W₁, W₂⟩ = ρ dt.

Paths (`heston_logx`): Andersen's quadratic-exponential scheme for v (moment matched, ψ_c = 1.5, never negative) with
his ln S step given the variance path (γ₁ = γ₂ = ½), or full-truncation Euler (`scheme="euler"`). Vectorised over
paths (`xp`: NumPy or CuPy), a loop over steps of at most 1 / steps_per_year merged with the contract's event times.

Payoffs (`price_mc`): the Monte Carlo block kernel (`mc_blocks.make_kernel`) on the simulated log x, so every structure
the GBM Monte Carlo prices (vanillas, barriers, sharkfins, snowballs, phoenixes, ...) is priced the same way under
Heston. Limits: a continuously monitored level gets the kernel's Broadie–Glasserman–Kou shift with the expected
average vol over the contract's life (the kernel's shift is per contract, not per path; a small bias that the
daily-or-finer grid keeps small); an arithmetic Asian is priced without the geometric control variate (its mean is a
GBM formula); Greeks are not computed.

From `otcdesk price`: `market.heston = {v0, kappa, theta, xi, rho}` (an addition to the contract, validated by
`models.heston_params`) makes `MarketSpec.to_model` return a `HestonModel`; its `inputs()` name `heston`, which only
the mc engine declares (`mc_engine.MCEngine` then calls `price_mc` with the QE scheme); analytic and fd refuse it
with the reason (`engines.refuse_unusable_inputs`), and `auto` picks mc.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from otcdesk.pricing_engine import mc_blocks, mc_core
from otcdesk.pricing_engine.engines import EngineOptions
from otcdesk.pricing_engine.errors import PricingError
from otcdesk.pricing_engine.greeks import freeze
from otcdesk.pricing_engine.models import GBMModel
from otcdesk.pricing_engine.results import PricingResult
from otcdesk.pricing_engine.schedule import to_date

PSI_C = 1.5  # QE switching level
SCHEMES = ("qe", "euler")


@dataclass(frozen=True)
class HestonModel:
    """Heston parameters: spot, rate, div (continuous), v0 (initial variance), kappa (mean reversion), theta
    (long-run variance), xi (vol of variance), rho (spot–variance correlation)."""

    spot: float
    v0: float
    kappa: float
    theta: float
    xi: float
    rho: float
    rate: float = 0.0
    div: float = 0.0

    def __post_init__(self):
        for name in ("spot", "v0", "kappa", "theta", "xi"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise PricingError(f"heston {name} must be a positive number", {"field": name, "value": v})
        if not -1.0 < self.rho < 1.0:
            raise PricingError("heston rho must lie strictly between -1 and 1", {"field": "rho", "value": self.rho})

    vol_surface = None  # the model interface engines read (`engines.refuse_unusable_inputs`): never a surface

    def inputs(self) -> frozenset[str]:
        """The market inputs this model carries (no flat `vol`: see `models.MarketSpec`)."""
        return frozenset({"spot", "rate", "div", "heston"})

    @property
    def surface(self):
        return None

    @property
    def vol(self) -> float:
        """Today's instantaneous vol √v0."""
        return math.sqrt(self.v0)

    def params(self) -> dict:
        return {"v0": self.v0, "kappa": self.kappa, "theta": self.theta, "xi": self.xi, "rho": self.rho}

    def feller(self) -> dict:
        """The Feller condition 2κθ ≥ ξ² (the variance never reaches 0 when it holds); reported, not required."""
        lhs, rhs = 2.0 * self.kappa * self.theta, self.xi * self.xi
        return {"satisfied": lhs >= rhs, "two_kappa_theta": lhs, "xi_squared": rhs}

    def gbm(self) -> GBMModel:
        """The GBM with vol √v0 (what dates and levels are resolved against: spot, rate, div)."""
        return GBMModel(self.spot, math.sqrt(self.v0), self.rate, self.div)

    def mean_vol(self, T: float) -> float:
        """√(expected average variance over [0, T])."""
        k = self.kappa * max(T, 1e-12)
        avg = self.theta + (self.v0 - self.theta) * (-math.expm1(-k) / k)
        return math.sqrt(max(avg, 0.0))


def heston_logx(model: HestonModel, times: np.ndarray, n_paths: int, rng: np.random.Generator, x0: float = 1.0,
                scheme: str = "qe", xp=np):
    """log x = log(S / initial) on `times` (increasing, > 0), shape (len(times), n_paths); x0 = S(0) / initial.
    Every interval is one step: refine `times` first for a finer grid (`mc_core.fine_grid`)."""
    if scheme not in SCHEMES:
        raise PricingError(f"heston scheme must be one of {SCHEMES}", {"field": "scheme", "value": scheme})
    kappa, theta, xi, rho = model.kappa, model.theta, model.xi, model.rho
    mu = model.rate - model.div
    times = np.asarray(times, dtype=float)
    out = xp.empty((len(times), n_paths))
    v = xp.full(n_paths, float(model.v0))
    lx = xp.full(n_paths, math.log(x0))
    sr = math.sqrt(1.0 - rho * rho)
    prev = 0.0
    for k, t in enumerate(times):
        dt = float(t) - prev
        prev = float(t)
        z = xp.asarray(rng.standard_normal((2, n_paths)))
        if scheme == "euler":
            vp = xp.maximum(v, 0.0)
            sq = xp.sqrt(vp * dt)
            lx = lx + (mu - 0.5 * vp) * dt + sq * z[0]
            v = v + kappa * (theta - vp) * dt + xi * sq * (rho * z[0] + sr * z[1])
        else:
            e = math.exp(-kappa * dt)
            m = theta + (v - theta) * e
            s2 = v * (xi * xi * e * (1.0 - e) / kappa) + theta * xi * xi * (1.0 - e) ** 2 / (2.0 * kappa)
            psi = s2 / xp.maximum(m * m, 1e-300)
            quad = psi <= PSI_C
            ip = 2.0 / xp.where(quad, psi, PSI_C)
            b2 = ip - 1.0 + xp.sqrt(ip) * xp.sqrt(xp.maximum(ip - 1.0, 0.0))
            a = m / (1.0 + b2)
            v_quad = a * (xp.sqrt(b2) + z[1]) ** 2
            pe = (psi - 1.0) / (psi + 1.0)
            u = xp.asarray(rng.random(n_paths))
            beta = (1.0 - pe) / xp.maximum(m, 1e-300)
            v_exp = xp.where(u <= pe, 0.0, xp.log(xp.maximum(1.0 - pe, 1e-300) / xp.maximum(1.0 - u, 1e-300))
                             / beta)
            vn = xp.where(quad, v_quad, v_exp)
            k0 = -rho * kappa * theta / xi * dt
            k1 = 0.5 * dt * (kappa * rho / xi - 0.5) - rho / xi
            k2 = 0.5 * dt * (kappa * rho / xi - 0.5) + rho / xi
            k3 = 0.5 * dt * (1.0 - rho * rho)
            lx = lx + mu * dt + k0 + k1 * v + k2 * vn + xp.sqrt(k3 * (v + vn)) * z[0]
            v = vn
        out[k] = lx
    return out


def price_mc(product, model: HestonModel, valuation_date, options: EngineOptions | None = None,
             scheme: str = "qe", xp=np) -> PricingResult:
    """Monte Carlo price (and standard error) of `product` under `model`: `options.paths` paths (plain, no
    antithetics), steps of at most 1 / `options.steps_per_year`, seed `options.seed`."""
    options = options or EngineOptions()
    t0 = time.perf_counter()
    vd = to_date(valuation_date, "valuation_date")
    gbm = model.gbm()
    product = freeze(product, gbm, vd)
    rs = product.resolve(vd, gbm)
    terms = mc_blocks.to_terms(rs, options)
    kernel = mc_blocks.make_kernel(mc_blocks.shape_of(rs))
    grid = np.asarray(terms.times, dtype=float)
    fine, keep = mc_core.fine_grid(grid, options.steps_per_year)
    n = len(grid)
    r = model.rate
    dev = lambda a: xp.asarray(np.asarray(a, dtype=float))  # noqa: E731
    blk = {
        "xp": xp,
        "t": dev(grid[None, :]),
        "dt": dev(np.diff(np.concatenate(([0.0], grid)))[None, :]),
        "df": dev(np.exp(-r * grid)[None, :]),
        "s": {k: dev([[v]]) for k, v in terms.scalars.items()},
        "ser": {k: dev(np.asarray(v)[None, :, None]) for k, v in terms.series.items()},
        "mat_idx": xp.asarray([int(np.searchsorted(grid, round(terms.maturity, 10)))]),
        "df_mat": dev([[math.exp(-r * terms.maturity)]]),
        "sigma": dev([[model.mean_vol(terms.maturity)]]),
        "rate": dev([[r]]),
        "div": dev([[model.div]]),
        "x0": dev([[rs.spot_x]]),
    }
    rng = np.random.default_rng(options.seed)
    chunk = max(1000, int(options.chunk_elems // max(1, len(fine) + n)))
    s_y = s_yy = 0.0
    done = 0
    while done < options.paths:
        m = min(chunk, options.paths - done)
        lx = heston_logx(model, fine, m, rng, rs.spot_x, scheme, xp)[keep]  # (n, m) on the contract's grid
        y, _ = kernel(mc_core.Block(logx=lx[None, :, :], m=m, **blk))
        y = y[0].astype(xp.float64)
        s_y += float(y.sum())
        s_yy += float((y * y).sum())
        done += m
    mean = s_y / done
    stderr = math.sqrt(max(s_yy / done - mean * mean, 0.0) / done)
    diag = {"paths": done, "steps": len(fine), "model": "heston", "scheme": scheme, "vol_model": "heston",
            "heston": model.params(), "feller": model.feller(), "elapsed_s": time.perf_counter() - t0}
    return PricingResult(mean, stderr, {}, "mc", diag)
