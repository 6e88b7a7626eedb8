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

Under local volatility (`run_batch(..., local_vols=...)`, one σ(x, t) per row) paths are not affine in ``W``:
each row is stepped in log x by Euler on a fine grid (the batch grid plus steps of at most
1 / ``steps_per_year``), with σ read from a per-step table over log x (linear interpolation), from the same
Brownian increments as every other row (common random numbers), and kept on the batch grid.

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

from otcdesk.pricing_engine import mc_paths
from otcdesk.pricing_engine.engines import EngineOptions

DAY = 1.0 / 365.0


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
    sparse: Mapping[str, object] = field(default_factory=dict)  # mask name -> (R, J) grid columns

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


def grid_index(grid: np.ndarray, times) -> np.ndarray:
    """Columns of ``times`` on ``grid``, both rounded to 1e-10 years as `batch_grid` does; a time off the grid
    is an error (a caller's unrounded grid once shifted half the daily dates by a column, losing 80 of 252)."""
    g = np.round(np.asarray(grid, dtype=np.float64), 10)
    t = np.round(np.asarray(times, dtype=np.float64), 10)
    idx = np.searchsorted(g, t)
    if np.any(idx >= len(g)) or np.any(g[np.minimum(idx, len(g) - 1)] != t):
        raise ValueError("an MC event time is not on the batch grid")
    return idx


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
                idx = grid_index(grid, t.times)
                a[i, idx] = np.asarray(t.series[k], dtype=np.float64)
        ser[k] = a
    mat = grid_index(grid, [t.maturity for t in terms])
    return s, ser, mat


def sparse_columns(ser_np: Mapping[str, np.ndarray], ci: np.ndarray, mat_np: np.ndarray,
                   max_frac: float = 0.25) -> dict[str, np.ndarray]:
    """Grid columns (R, J) of each sparse observation mask (padded with the row's maturity).

    Kernels test a sparse mask's block (e.g. monthly knock-outs) only on those columns,
    instead of on every daily step of the grid.
    """
    out = {}
    for k, a in ser_np.items():
        if not k.endswith("_m"):
            continue
        on = a[ci] > 0.5
        cnt = on.sum(axis=1)
        J = int(cnt.max()) if cnt.size else 0
        if J == 0 or J > max_frac * a.shape[1]:
            continue
        idx = np.empty((len(ci), J), dtype=np.int64)
        for r in range(len(ci)):
            cols = np.nonzero(on[r])[0]
            idx[r, :len(cols)] = cols
            idx[r, len(cols):] = cols[-1] if len(cols) else mat_np[ci[r]]
        out[k] = idx
    return out


def _row_arrays(rows: Sequence[Row], grid: np.ndarray):
    """Per-row arrays of a batch: (contract index, x0, sigma, rate, div, drift of log x, times (R, n) from
    each row's valuation date, first-increment shortening a_r of the theta rows)."""
    ci = np.array([r.contract for r in rows])
    x0 = np.array([r.x0 for r in rows])
    sig = np.array([r.sigma for r in rows])
    rate = np.array([r.rate for r in rows])
    div = np.array([r.div for r in rows])
    shift = np.array([r.shift for r in rows])
    mu = rate - div - 0.5 * sig**2
    # A row shifted past the first grid time (an observation today) sees that observation at
    # t' = 0 (today's spot); later increments keep their own lengths.
    t_rows = np.maximum(grid[None, :] - shift[:, None], 0.0)  # (R, n)
    a_rows = np.sqrt(t_rows[:, 0] / grid[0]) - 1.0
    return ci, x0, sig, rate, div, mu, t_rows, a_rows


def _on_device(xp: ModuleType, dtype):
    """Host array -> contiguous array of ``dtype`` on the backend."""
    return lambda a: xp.asarray(np.ascontiguousarray(a).astype(dtype))


LV_LOGX = np.linspace(-3.0, 3.0, 601)  # log x nodes of the per-step local-vol tables


def fine_grid(grid: np.ndarray, steps_per_year: int) -> tuple[np.ndarray, np.ndarray]:
    """(fine, idx): the batch grid refined to steps of at most 1/steps_per_year, and where each batch time sits."""
    dt_max = 1.0 / steps_per_year
    pts = [0.0]
    for t in grid:
        gap = t - pts[-1]
        k = max(1, int(math.ceil(gap / dt_max - 1e-9)))
        pts.extend((pts[-1] + gap * np.arange(1, k + 1) / k).tolist())
        pts[-1] = float(t)
    fine = np.asarray(pts[1:])
    return fine, np.searchsorted(fine, grid)


def _local_vol_logx(xp, w, rows, local_vols, fine, idx, dtype):
    """(R, n, m) log x on the batch grid by Euler steps of log x under each row's local vol, from W on `fine`."""
    R, m = len(rows), w.shape[1]
    wf = _host(xp, w).astype(np.float64)
    dW = np.diff(np.concatenate([np.zeros((1, m)), wf]), axis=0)  # (nf, m)
    dt = np.diff(np.concatenate([[0.0], fine]))
    out = np.empty((R, len(idx), m))
    keep = np.full(len(fine), -1)
    keep[idx] = np.arange(len(idx))
    for r, row in enumerate(rows):
        tf = np.maximum(fine - row.shift, 0.0)  # a theta row starts a day later on the same increments
        dtr = np.diff(np.concatenate([[0.0], tf]))
        scale = np.sqrt(np.divide(dtr, dt, out=np.zeros_like(dt), where=dt > 0))
        t_prev = np.concatenate([[0.0], tf[:-1]])
        lv = local_vols[r]
        cur = np.full(m, math.log(row.x0))
        drift = row.rate - row.div
        for k in range(len(fine)):
            if dtr[k] > 0:
                table = np.asarray(lv(np.exp(LV_LOGX), t_prev[k]), dtype=float)
                sig = np.interp(cur, LV_LOGX, table)
                cur = cur + (drift - 0.5 * sig * sig) * dtr[k] + sig * (scale[k] * dW[k])
            if keep[k] >= 0:
                out[r, keep[k]] = cur
    return xp.asarray(out.astype(dtype))


def _host(xp, a):
    return a if xp is np else a.get()


def run_batch(xp: ModuleType, terms: Sequence[MCTerms], rows: Sequence[Row], kernel: Kernel, cfg: EngineOptions,
              control_means: ControlMeans | None = None, n_controls: int = 0,
              grid: np.ndarray | None = None, local_vols: Sequence | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Price every row; returns (price (R,), stderr (R,), diagnostics). `local_vols`: one σ(x, t) per row
    (x = S / initial price, t in years from the row's valuation date) for local-vol paths, else GBM."""
    t0 = time.perf_counter()
    grid = batch_grid(terms) if grid is None else grid
    n = len(grid)
    s_np, ser_np, mat_np = _stack_params(terms, grid)
    R = len(rows)
    dtype = np.dtype(cfg.dtype)
    ci, x0, sig, rate, div, mu, t_rows, a_rows = _row_arrays(rows, grid)
    dt_rows = np.diff(np.concatenate([np.zeros((R, 1)), t_rows], axis=1), axis=1)
    dev = _on_device(xp, dtype)
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
        sparse={k: xp.asarray(v) for k, v in sparse_columns(ser_np, ci, mat_np).items()},
    )
    acc = mc_paths.Accumulator(R, n_controls)
    fine, fidx = fine_grid(grid, cfg.steps_per_year) if local_vols is not None else (grid, None)
    for chunk in mc_paths.brownian_chunks(xp, fine, cfg, expansion=max(1, R) * (4 if local_vols else 1)):
        if local_vols is not None:
            logx = _local_vol_logx(xp, chunk.w, rows, local_vols, fine, fidx, dtype)
        elif chunk.half is not None:  # antithetic: log x = base + sigma W and base - sigma W
            hw = chunk.half
            h = hw.shape[1]
            logx = xp.empty((R, n, 2 * h), dtype=dtype)
            xp.multiply(sig_d, hw[None, :, :], out=logx[:, :, :h])
            xp.negative(logx[:, :, :h], out=logx[:, :, h:])
            logx += base
            if np.any(a_rows != 0.0):
                logx[:, :, :h] += a_d[:, :, None] * hw[None, 0:1, :]
                logx[:, :, h:] -= a_d[:, :, None] * hw[None, 0:1, :]
        else:
            w = chunk.w  # (n, m)
            logx = sig_d * w[None, :, :]
            logx += base
            if np.any(a_rows != 0.0):
                logx += a_d[:, :, None] * w[None, 0:1, :]
        blk = Block(logx=logx, m=chunk.m, **blk_kw)
        y, ctrl = kernel(blk)
        acc.add(xp, chunk, y, ctrl)
        del logx, blk, y, ctrl
    cm = None
    if n_controls:
        cm = control_means(terms, rows, grid)
    price, stderr = acc.result(cm)
    diag = mc_paths.describe(xp, cfg, len(fine))
    diag.update(rows=R, contracts=len(terms), elapsed_s=time.perf_counter() - t0)
    return price, stderr, diag


# --------------------------------------------------------------------------- Greeks

GREEK_SCENARIOS = ("base", "x_up", "x_dn", "v_up", "v_dn", "r_up", "r_dn", "theta", "xg_up", "xg_dn")
"""The bump-and-revalue scenarios of one contract, in the order of its rows and of their values: base,
spot +-``spot_bump`` (delta), vol +-``vol_bump`` (vega), rate +-``rate_bump`` (rho), one day later
(theta), spot +-``gamma_bump`` (gamma). Closed forms stop after ``theta`` (gamma from the delta bumps)."""
MIN_VOL = 1e-4  # a vol bumped down stops here


@dataclass(frozen=True)
class Bump:
    """One scenario: relative spot bump, absolute vol and rate changes, years the valuation date moves on."""

    x: float = 0.0
    vol: float = 0.0
    rate: float = 0.0
    shift: float = 0.0

    def row(self, contract: int, x0: float, sigma: float, rate: float, div: float) -> Row:
        return Row(contract, x0 * (1 + self.x), sigma + self.vol, rate + self.rate, div, self.shift)


def greek_bumps(cfg: EngineOptions, sigma: float, gamma: bool = True) -> tuple[Bump, ...]:
    """The bumps of `GREEK_SCENARIOS`, in that order (without the two gamma ones unless ``gamma``)."""
    h, hg, dv, dr = cfg.spot_bump, cfg.gamma_bump, cfg.vol_bump, cfg.rate_bump
    by_name = {"base": Bump(), "x_up": Bump(x=h), "x_dn": Bump(x=-h), "v_up": Bump(vol=dv),
               "v_dn": Bump(vol=-min(dv, sigma - MIN_VOL)), "r_up": Bump(rate=dr), "r_dn": Bump(rate=-dr),
               "theta": Bump(shift=DAY), "xg_up": Bump(x=hg), "xg_dn": Bump(x=-hg)}
    names = GREEK_SCENARIOS if gamma else GREEK_SCENARIOS[:GREEK_SCENARIOS.index("theta") + 1]
    return tuple(by_name[n] for n in names)


def greek_rows(contract: int, x0: float, sigma: float, rate: float, div: float, cfg: EngineOptions,
               greeks: bool = True) -> list[Row]:
    """Rows for one contract: base and, with ``greeks``, every scenario of `GREEK_SCENARIOS`."""
    if not greeks:
        return [Row(contract, x0, sigma, rate, div)]
    return [b.row(contract, x0, sigma, rate, div) for b in greek_bumps(cfg, sigma)]


def greeks_from(values: Sequence[float], x0: float, sigma: float, cfg: EngineOptions) -> dict:
    """CONTRACTS.md Greeks from the values of the `GREEK_SCENARIOS` rows (all 10, or the first 8)."""
    v = {name: float(val) for name, val in zip(GREEK_SCENARIOS, values)}
    b = dict(zip(GREEK_SCENARIOS, greek_bumps(cfg, sigma, gamma="xg_up" in v)))
    up, dn = ("xg_up", "xg_dn") if "xg_up" in v else ("x_up", "x_dn")
    hg = x0 * b[up].x
    return {
        "delta": (v["x_up"] - v["x_dn"]) / (x0 * (b["x_up"].x - b["x_dn"].x)),
        "gamma": (v[up] - 2 * v["base"] + v[dn]) / (hg * hg),
        "vega": (v["v_up"] - v["v_dn"]) / (b["v_up"].vol - b["v_dn"].vol) * 0.01,
        "theta": v["theta"] - v["base"],
        "rho": (v["r_up"] - v["r_dn"]) / (b["r_up"].rate - b["r_dn"].rate) * 0.01,
    }


# --------------------------------------------------------------------------- spot ladders

def ladder_plan(terms: Sequence[MCTerms], grid: np.ndarray, extreme_blocks: Mapping[str, str]):
    """Per-contract column plan for spot ladders on compressed paths.

    A spot scenario shifts every log x of a path by the same constant, so a block that only
    asks *whether* a level was crossed (a knock-in, a knock-out with a constant level whose
    rebate is paid at maturity) needs only the path's extreme over its observation mask.
    ``extreme_blocks`` maps such a mask series (e.g. ``ki_m``) to ``"min"`` or ``"max"``.
    Kept columns are the other event columns (their masks) and the maturity.
    Returns (keep_idx (C, J) with padding, pad (C, J) bool, extremes list).
    """
    C = len(terms)
    s_np, ser_np, mat_np = _stack_params(terms, grid)
    masks = [k for k in ser_np if k.endswith("_m") and k not in extreme_blocks]
    keep = []
    for c in range(C):
        cols = set([int(mat_np[c])])
        for k in masks:
            cols.update(np.nonzero(ser_np[k][c] > 0.5)[0].tolist())
        keep.append(sorted(cols))
    J = max(len(k) for k in keep)
    idx = np.zeros((C, J), dtype=np.int64)
    pad = np.ones((C, J), dtype=bool)
    for c, cols in enumerate(keep):
        idx[c, :len(cols)] = cols
        idx[c, len(cols):] = mat_np[c]
        pad[c, :len(cols)] = False
    return idx, pad, ser_np, s_np, mat_np


def run_ladder(xp: ModuleType, terms: Sequence[MCTerms], rows: Sequence[Row], spot_shifts: Sequence[Sequence[float]],
               kernel: Kernel, cfg: EngineOptions, extreme_blocks: Mapping[str, str],
               grid: np.ndarray | None = None, fast=None) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Values of every row under its relative spot shifts: lists of (S_r,) prices and stderrs.

    A spot shift moves a whole log path by a constant, so paths are built once per row
    (one vol / rate / date scenario) and compressed (see `ladder_plan`); each spot shift
    then costs only the kernel on the few remaining columns. ``spot_shifts[r]`` lists the
    shifts of row r (e.g. the 41 ladder points for base-vol rows, just 0 for a vega row).
    ``fast`` is an optional all-shifts kernel (`mc_blocks.make_ladder_kernel`), used when
    every row has the same sorted shifts.
    """
    grid = batch_grid(terms) if grid is None else grid
    n = len(grid)
    idx_c, pad_c, ser_np, s_np, mat_np = ladder_plan(terms, grid, extreme_blocks)
    R = len(rows)
    ext = list(extreme_blocks.items())
    J = idx_c.shape[1]
    Jt = J + len(ext)
    dtype = np.dtype(cfg.dtype)
    dev = _on_device(xp, dtype)
    ci, x0, sig, rate, div, mu, t_rows, a_rows = _row_arrays(rows, grid)
    idx_r, pad_r = idx_c[ci], pad_c[ci]  # (R, J)
    t_k = np.take_along_axis(t_rows, idx_r, axis=1)
    t_cols = np.concatenate([t_k, np.repeat(t_k[:, -1:], len(ext), axis=1)], axis=1)
    ser_c = {}
    for k, a in ser_np.items():
        g = np.take_along_axis(a[ci], idx_r, axis=1)
        if k.endswith("_m"):
            g = np.where(pad_r, 0.0, g)
            if k in extreme_blocks:
                g[:] = 0.0
        extra = np.zeros((R, len(ext)))
        for e, (mk, _) in enumerate(ext):
            base = mk[:-2]
            if k == mk:
                extra[:, e] = 1.0
            elif k.startswith(base + "_") and not k.endswith("_m"):
                first = np.argmax(ser_np[mk][ci] > 0.5, axis=1)  # constant level / rebate of the block
                extra[:, e] = a[ci][np.arange(R), first]
            elif k.endswith("_m"):
                extra[:, e] = 0.0
            else:
                extra[:, e] = g[:, -1]
        ser_c[k] = np.concatenate([g, extra], axis=1)
    mat_pos = np.array([int(np.nonzero(idx_r[r] == mat_np[ci[r]])[0][0]) for r in range(R)])
    # kernel rows: (row, its spot shifts), flattened
    counts = np.array([len(s) for s in spot_shifts])
    owner = np.repeat(np.arange(R), counts)
    sh = np.concatenate([np.asarray(s, dtype=np.float64) for s in spot_shifts])
    K = len(owner)
    sparse = {}
    for e, (mk, _) in enumerate(ext):  # blocks reduced to their extreme column: test that column only
        sparse[mk] = np.full((K, 1), J + e, dtype=np.int64)
    blk_kw = dict(
        xp=xp,
        t=dev(t_cols[owner]),
        dt=dev(np.diff(np.concatenate([np.zeros((R, 1)), t_cols], axis=1), axis=1)[owner]),
        df=dev(np.exp(-rate[:, None] * t_cols)[owner]),
        s={k: dev(v[ci][owner][:, None]) for k, v in s_np.items()},
        ser={k: dev(v[owner][:, :, None]) for k, v in ser_c.items()},
        mat_idx=xp.asarray(mat_pos[owner]),
        df_mat=dev(np.exp(-rate * t_cols[np.arange(R), mat_pos])[owner][:, None]),
        sigma=dev(sig[owner][:, None]),
        rate=dev(rate[owner][:, None]),
        div=dev(div[owner][:, None]),
        x0=dev((x0[owner] * (1 + sh))[:, None]),
        sparse={k: xp.asarray(v) for k, v in sparse.items()},
    )
    base = dev(np.log(x0)[:, None] + mu[:, None] * t_rows)  # (R, n)
    ext_cols = []  # per extreme block: (R, n) mask and, when the mask is one run of columns, its bounds
    for mk, how in ext:
        mask = ser_np[mk][ci] > 0.5
        runs = []
        for r in range(R):
            on = np.nonzero(mask[r])[0]
            runs.append((int(on[0]), int(on[-1]) + 1) if on.size and on[-1] - on[0] + 1 == on.size else None)
        ext_cols.append((xp.asarray(mask), runs, how))
    n_r = mat_np[ci] + 1  # a row's path is needed only up to its maturity
    owner_d = xp.asarray(owner)
    shifts_d = dev(np.log1p(sh)[:, None, None])
    acc = mc_paths.Accumulator(K)
    expansion = max(1, int(math.ceil(3 * K * Jt / n)))
    same = all(tuple(x) == tuple(spot_shifts[0]) for x in spot_shifts) and list(spot_shifts[0]) == sorted(spot_shifts[0])
    if fast is not None and same:
        fp = {"ser": {k: dev(v) for k, v in ser_c.items()}, "s": {k: dev(v[ci][:, None]) for k, v in s_np.items()},
              "df": dev(np.exp(-rate[:, None] * t_cols)),
              "df_mat": dev(np.exp(-rate * t_cols[np.arange(R), mat_pos])[:, None]),
              "mat_pos": xp.asarray(mat_pos), "ext_col": {mk: J + e for e, (mk, _) in enumerate(ext)}}
        c_fast = dev(np.log1p(np.asarray(spot_shifts[0], dtype=np.float64)))
        expansion = max(1, int(math.ceil(8 * K / n)))
    else:
        fast = None
    sig_h, a_h = [dtype.type(v) for v in sig], [dtype.type(v) for v in sig * a_rows]
    idx_rows = [xp.asarray(idx_r[r]) for r in range(R)]
    for chunk in mc_paths.brownian_chunks(xp, grid, cfg, expansion=expansion):
        hw = chunk.half
        w = chunk.w if hw is None else None
        m = chunk.m
        Lc = xp.empty((R, Jt, m), dtype=dtype)
        buf = xp.empty((n, m), dtype=dtype)
        for r in range(R):  # row by row: the (n, m) block of one row stays in cache
            k = int(n_r[r])
            Lr = buf[:k]
            if hw is not None:  # antithetic halves: sigma W and -sigma W
                h = hw.shape[1]
                xp.multiply(hw[:k], sig_h[r], out=Lr[:, :h])
                if a_h[r] != 0:
                    Lr[:, :h] += a_h[r] * hw[0]
                xp.negative(Lr[:, :h], out=Lr[:, h:])
            else:
                xp.multiply(w[:k], sig_h[r], out=Lr)
                if a_h[r] != 0:
                    Lr += a_h[r] * w[0]
            Lr += base[r, :k, None]
            Lc[r, :J] = Lr[idx_rows[r]]
            for e, (mask, runs, how) in enumerate(ext_cols):
                run = runs[r]
                if run is not None:
                    seg = Lr[run[0]:min(run[1], k)]
                    Lc[r, J + e] = seg.min(axis=0) if how == "min" else seg.max(axis=0)
                else:
                    mr = mask[r, :k, None]
                    Lc[r, J + e] = (xp.where(mr, Lr, np.inf).min(axis=0) if how == "min"
                                    else xp.where(mr, Lr, -np.inf).max(axis=0))
        if fast is not None:
            y = fast(xp, Lc, c_fast, fp).reshape(K, m)
            acc.add(xp, chunk, y, None)
            del Lc, buf
            continue
        Ls = xp.take(Lc, owner_d, axis=0)
        Ls += shifts_d
        y, _ = kernel(Block(logx=Ls, m=m, **blk_kw))
        acc.add(xp, chunk, y, None)
        del Ls, Lc, buf
    price, err = acc.result()
    bounds = np.concatenate([[0], np.cumsum(counts)])
    return ([price[bounds[r]:bounds[r + 1]] for r in range(R)], [err[bounds[r]:bounds[r + 1]] for r in range(R)])
