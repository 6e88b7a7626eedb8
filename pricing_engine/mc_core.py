"""Batched Monte Carlo harness shared by the ``mc_*`` payoff engines.

A *batch* is a list of `MCTerms` of one structure (each already resolved to plain floats:
times in years from the valuation date, levels as fractions of the initial price) and a
list of market *rows*. Every row is one contract under one market scenario (base, bumped
spot / vol / rate, one day later, or a point of a spot x vol grid). All rows share the
same Brownian blocks from `mc_paths`, so Greeks and scenarios use common random numbers
and the whole batch is priced in one pass over the paths, vectorised over rows::

    log x[r, k, p] = log x0_r + (rate_r - div_r - sigma_r^2/2) t'_rk + sigma_r W'_r(t_k)

with ``t'_rk = t_k - shift_r`` for the one-day-later (theta) rows, whose Brownian motion
reuses the same normals with the first increment shortened (``W'_r = W + a_r W(t_1)``).

Units follow CONTRACTS.md: prices per unit of notional (one unit of underlying at the
initial price), Greeks against ``x = spot / initial_price``: delta, gamma, vega per vol
point, theta per calendar day, rho per 1% of rate.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import Callable, Mapping, Sequence

import numpy as np

from pricing_engine import mc_paths
from pricing_engine.backend import backend_name

DAY = 1.0 / 365.0


@dataclass(frozen=True)
class MCConfig:
    """Engine options (CONTRACTS.md ``engine_options``) plus MC-specific knobs."""

    paths: int = 100_000
    steps_per_year: int = 252
    seed: int = 7
    dtype: str = "float32"
    antithetic: bool = True
    sobol: bool = False
    replicates: int = 16
    chunk_elems: int = 8_000_000  # rows * steps * paths held at once
    spot_bump: float = 0.01  # relative bump of x for delta / gamma
    vol_bump: float = 0.01
    rate_bump: float = 0.001

    @classmethod
    def from_options(cls, options: Mapping | None) -> "MCConfig":
        """Build from an ``engine_options`` mapping; unknown keys are ignored."""
        o = dict(options or {})
        kw = {}
        for name, typ in (("paths", int), ("steps_per_year", int), ("seed", int), ("dtype", str),
                          ("antithetic", bool), ("sobol", bool), ("replicates", int), ("chunk_elems", int),
                          ("spot_bump", float), ("vol_bump", float), ("rate_bump", float)):
            if o.get(name) is not None:
                kw[name] = typ(o[name])
        return cls(**kw)

    def path_config(self, paths: int | None = None) -> mc_paths.PathConfig:
        return mc_paths.PathConfig(paths=int(paths or self.paths), seed=self.seed, dtype=self.dtype,
                                   antithetic=self.antithetic, sobol=self.sobol, replicates=self.replicates,
                                   chunk_elems=self.chunk_elems)


@dataclass
class MCTerms:
    """One contract resolved for Monte Carlo.

    times  -- event times in years after the valuation date this contract needs on the grid
              (observations, fixings, maturity; a daily grid for daily monitoring)
    scalars -- per-contract numbers (strike, levels, coupon, flags as 0/1 ...)
    series -- per-time numbers aligned with ``times`` (masks as 0/1, levels, amounts);
              on the batch grid, times the contract does not list get ``fills[name]``
    maturity -- payment / expiry time (years) of the final cash flow; must be in ``times``
    """

    structure: str
    times: np.ndarray
    maturity: float
    scalars: dict[str, float] = field(default_factory=dict)
    series: dict[str, np.ndarray] = field(default_factory=dict)
    fills: dict[str, float] = field(default_factory=dict)
    # per-time amounts that depend on the valuation date only through t (discounting) are
    # computed in the kernels; anything depending on the dates themselves is resolved here.


@dataclass(frozen=True)
class Row:
    """One market scenario for one contract of the batch."""

    contract: int
    x0: float
    sigma: float
    rate: float
    div: float
    shift: float = 0.0  # years the valuation date moves forward (theta rows)


@dataclass
class Block:
    """What a kernel sees for one block of paths (all arrays on ``xp``)."""

    xp: ModuleType
    logx: object  # (R, n, m) log of x = S / initial price
    t: object  # (R, n) times from the (shifted) valuation date
    dt: object  # (R, n) step lengths
    df: object  # (R, n) discount factors exp(-rate t)
    s: Mapping[str, object]  # scalars per row, shape (R, 1)
    ser: Mapping[str, object]  # series per row, shape (R, n, 1)
    mat_idx: object  # (R,) grid index of the maturity
    df_mat: object  # (R, 1)
    sigma: object  # (R, 1)
    rate: object  # (R, 1)
    div: object  # (R, 1)
    x0: object  # (R, 1)
    m: int

    def at(self, arr, idx):
        """arr[r, idx[r], :] for (R, n, m) arr and (R,) idx."""
        xp = self.xp
        return xp.take_along_axis(arr, idx.reshape(-1, 1, 1), axis=1)[:, 0, :]


Kernel = Callable[[Block], tuple]
"""kernel(block) -> (y (R, m) discounted payoff per path, controls (R, K, m) or None)."""

ControlMeans = Callable[[Sequence[MCTerms], Sequence[Row], np.ndarray], np.ndarray]
"""control_means(terms, rows, grid) -> (R, K) exact means of the controls."""


def batch_grid(terms: Sequence[MCTerms]) -> np.ndarray:
    """Union of all contracts' times (rounded to 1e-10 years to merge equal dates)."""
    allt = np.concatenate([np.asarray(t.times, dtype=np.float64) for t in terms])
    grid = np.unique(np.round(allt, 10))
    if grid.size == 0 or grid[0] <= 0:
        raise ValueError("every MC event time must be after the valuation date")
    return grid


def _stack_params(terms: Sequence[MCTerms], grid: np.ndarray):
    names_s = sorted({k for t in terms for k in t.scalars})
    names_r = sorted({k for t in terms for k in t.series})
    s = {k: np.array([float(t.scalars.get(k, 0.0)) for t in terms]) for k in names_s}
    ser = {}
    for k in names_r:
        fill = next((t.fills[k] for t in terms if k in t.fills), 0.0)
        a = np.full((len(terms), len(grid)), fill, dtype=np.float64)
        for i, t in enumerate(terms):
            if k in t.series:
                idx = np.searchsorted(grid, np.round(np.asarray(t.times, dtype=np.float64), 10))
                a[i, idx] = np.asarray(t.series[k], dtype=np.float64)
        ser[k] = a
    mat = np.searchsorted(grid, np.round(np.array([t.maturity for t in terms]), 10))
    return s, ser, mat


def run_batch(xp: ModuleType, terms: Sequence[MCTerms], rows: Sequence[Row], kernel: Kernel, cfg: MCConfig,
              control_means: ControlMeans | None = None, n_controls: int = 0,
              grid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Price every row; returns (price (R,), stderr (R,), diagnostics)."""
    t0 = time.perf_counter()
    grid = batch_grid(terms) if grid is None else grid
    n = len(grid)
    s_np, ser_np, mat_np = _stack_params(terms, grid)
    ci = np.array([r.contract for r in rows])
    R = len(rows)
    dtype = np.dtype(cfg.dtype)
    x0 = np.array([r.x0 for r in rows])
    sig = np.array([r.sigma for r in rows])
    rate = np.array([r.rate for r in rows])
    div = np.array([r.div for r in rows])
    shift = np.array([r.shift for r in rows])
    if np.any(shift > grid[0] + 1e-9):
        raise ValueError("a time-shifted row moves past the first grid time")
    t_rows = np.maximum(grid[None, :] - shift[:, None], 0.0)  # (R, n)
    dt_rows = np.diff(np.concatenate([np.zeros((R, 1)), t_rows], axis=1), axis=1)
    a_rows = np.sqrt(t_rows[:, 0] / grid[0]) - 1.0  # first-increment shortening
    mu = rate - div - 0.5 * sig**2
    dev = lambda a: xp.asarray(np.ascontiguousarray(a).astype(dtype))  # noqa: E731
    base = dev((np.log(x0)[:, None] + mu[:, None] * t_rows)[:, :, None])  # (R, n, 1)
    sig_d = dev(sig[:, None, None])
    a_d = dev((sig * a_rows)[:, None])  # (R, 1)
    blk_kw = dict(
        xp=xp,
        t=dev(t_rows),
        dt=dev(dt_rows),
        df=dev(np.exp(-rate[:, None] * t_rows)),
        s={k: dev(v[ci][:, None]) for k, v in s_np.items()},
        ser={k: dev(v[ci][:, :, None]) for k, v in ser_np.items()},
        mat_idx=xp.asarray(mat_np[ci]),
        df_mat=dev(np.exp(-rate * t_rows[np.arange(R), mat_np[ci]])[:, None]),
        sigma=dev(sig[:, None]),
        rate=dev(rate[:, None]),
        div=dev(div[:, None]),
        x0=dev(x0[:, None]),
    )
    acc = mc_paths.Accumulator(R, n_controls)
    pcfg = cfg.path_config()
    for chunk in mc_paths.brownian_chunks(xp, grid, pcfg, expansion=max(1, R)):
        w = chunk.w  # (n, m)
        logx = sig_d * w[None, :, :]
        logx += base
        if np.any(a_rows != 0.0):
            logx += a_d[:, :, None] * w[None, 0:1, :]
        blk = Block(logx=logx, m=w.shape[1], **blk_kw)
        y, ctrl = kernel(blk)
        acc.add(xp, chunk, y, ctrl)
        del logx, blk, y, ctrl
    cm = None
    if n_controls:
        cm = control_means(terms, rows, grid)
    price, stderr = acc.result(cm)
    diag = mc_paths.describe(xp, pcfg, n)
    diag.update(rows=R, contracts=len(terms), elapsed_s=time.perf_counter() - t0)
    return price, stderr, diag


# --------------------------------------------------------------------------- Greeks

GREEK_SCENARIOS = ("base", "x_up", "x_dn", "v_up", "v_dn", "r_up", "r_dn", "theta")


def greek_rows(contract: int, x0: float, sigma: float, rate: float, div: float, cfg: MCConfig,
               greeks: bool = True, theta_ok: bool = True) -> list[Row]:
    """Rows for one contract: base and, with ``greeks``, the bump-and-revalue scenarios."""
    rows = [Row(contract, x0, sigma, rate, div)]
    if not greeks:
        return rows
    h, dv, dr = cfg.spot_bump, cfg.vol_bump, cfg.rate_bump
    rows += [
        Row(contract, x0 * (1 + h), sigma, rate, div),
        Row(contract, x0 * (1 - h), sigma, rate, div),
        Row(contract, x0, sigma + dv, rate, div),
        Row(contract, x0, max(sigma - dv, 1e-4), rate, div),
        Row(contract, x0, sigma, rate + dr, div),
        Row(contract, x0, sigma, rate - dr, div),
        Row(contract, x0, sigma, rate, div, shift=DAY if theta_ok else 0.0),
    ]
    return rows


def greeks_from(values: np.ndarray, x0: float, sigma: float, cfg: MCConfig, theta_ok: bool = True) -> dict:
    """CONTRACTS.md Greeks from the 8 scenario values of `greek_rows`."""
    v0, xu, xd, vu, vd, ru, rd, th = (float(v) for v in values)
    hx = cfg.spot_bump * x0
    dv_dn = min(cfg.vol_bump, sigma - 1e-4)
    return {
        "delta": (xu - xd) / (2 * hx),
        "gamma": (xu - 2 * v0 + xd) / (hx * hx),
        "vega": (vu - vd) / (cfg.vol_bump + dv_dn) * 0.01,
        "theta": (th - v0) if theta_ok else 0.0,
        "rho": (ru - rd) / (2 * cfg.rate_bump) * 0.01,
    }


def norm_cdf(xp: ModuleType, z):
    """Standard normal CDF on any backend (erf from math for NumPy-free scalars too)."""
    if xp is np:
        from scipy.special import ndtr  # noqa: PLC0415

        return ndtr(z)
    from cupyx.scipy.special import ndtr  # noqa: PLC0415

    return ndtr(z)


def describe_backend(xp: ModuleType) -> str:
    return backend_name(xp)


def bs_price(x, k, t, r, q, sig, call: bool) -> float:
    """Black-Scholes price of a unit-notional vanilla in x units (host helper for tests/controls)."""
    if t <= 0:
        return max(x - k, 0.0) if call else max(k - x, 0.0)
    from scipy.special import ndtr  # noqa: PLC0415

    sd = sig * math.sqrt(t)
    d1 = (math.log(x / k) + (r - q + 0.5 * sig * sig) * t) / sd
    d2 = d1 - sd
    if call:
        return x * math.exp(-q * t) * ndtr(d1) - k * math.exp(-r * t) * ndtr(d2)
    return k * math.exp(-r * t) * ndtr(-d2) - x * math.exp(-q * t) * ndtr(-d1)
