"""Crank–Nicolson on a log-spot grid for any `ResolvedSchedule` (see blocks.py).

PDE in z = ln x (x = S / initial_price), backward in time:
    V_t + ½σ² V_zz + (r − q − ½σ²) V_z − r V = 0
- Uniform z grid of ~`grid_points` nodes over ±5σ√T around spot (wider for short terms).
  A continuous knock-out barrier is a grid end with a Dirichlet value (its rebate); discretely
  observed levels (knock-in, first knock-out level, digital strikes, coupon barrier) sit half-way
  between two nodes, so the projection of a step function is exact in the cell-average sense.
- Time grid: every observation time, and steps of at most min(1/365, T/100) (or T / time_steps).
- Crank–Nicolson (as TR-BDF2: a trapezoidal stage plus a BDF2 stage, second order and L-stable, so the
  daily knock-in projections do not ring), with Rannacher start-up (two implicit half steps) after maturity and after each
  knock-out / coupon observation, where the solution is discontinuous.
- Knock-in: two coupled value columns, not-knocked-in and knocked-in, solved together (one LAPACK
  tridiagonal factorisation, several right-hand sides); at a knock-in observation the not-knocked-in
  column takes the knocked-in value where x <= level. Phoenix memory coupons add one column per
  number of unpaid coupons. A continuously monitored knock-in (barrier options) is priced by in–out
  parity: V = V(knocked-in payoff) + V(KO at the barrier of [payoff − knocked-in payoff]).
- Far boundaries: Dirichlet values extrapolated linearly (in z) from the previous time level.

- Local volatility (`local_vol(x, t)`, from a vol surface): the coefficients vary by node and by step, taken at
  each step's mid time; the same schemes with one factorisation per step (`_LVStepper`). The grid's width
  uses the model's reference vol.

`solve(res, model, grid_points, time_steps, local_vol=None)` returns an `FDSolution` with the grid, the value
columns at the valuation date, price, grid delta/gamma (in x) and an interpolator for a spot ladder.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.linalg import lapack

from otcdesk.pricing_engine.blocks import KnockOut, Leg, ResolvedSchedule, legs_payoff
from otcdesk.pricing_engine.errors import PricingError, UnsupportedProductError

_EPS = 1e-12


@dataclass
class FDSolution:
    z: np.ndarray  # log-spot nodes (relative)
    values: np.ndarray  # value at t=0 on the nodes for the starting state
    spot_x: float
    steps: int
    nodes: int

    def _interp(self, arr: np.ndarray, z0: float) -> float:
        z = self.z
        i = int(np.clip(np.searchsorted(z, z0) - 2, 0, len(z) - 4))
        zz, vv = z[i:i + 4], arr[i:i + 4]
        out = 0.0
        for j in range(4):  # cubic Lagrange
            w = 1.0
            for k in range(4):
                if k != j:
                    w *= (z0 - zz[k]) / (zz[j] - zz[k])
            out += w * vv[j]
        return float(out)

    def value_at(self, x: float) -> float:
        z0 = math.log(x)
        if z0 < self.z[0] - _EPS or z0 > self.z[-1] + _EPS:
            raise PricingError(f"spot level {x:.4f} is outside the FD grid")
        return self._interp(self.values, z0)

    @property
    def price(self) -> float:
        return self.value_at(self.spot_x)

    def delta_gamma(self, x: float | None = None) -> tuple[float, float]:
        """dV/dx and d2V/dx2 from the grid (central differences in z, then chain rule)."""
        x = self.spot_x if x is None else x
        z, v = self.z, self.values
        dz = z[1] - z[0]
        vz = np.gradient(v, dz)
        vzz = np.empty_like(v)
        vzz[1:-1] = (v[2:] - 2 * v[1:-1] + v[:-2]) / (dz * dz)
        vzz[0], vzz[-1] = vzz[1], vzz[-2]
        z0 = math.log(x)
        a, b = self._interp(vz, z0), self._interp(vzz, z0)
        return a / x, (b - a) / (x * x)

    def ladder(self, xs) -> list[float | None]:
        """Values at relative spots `xs` read off the grid; None outside it (e.g. beyond a continuous barrier)."""
        return [self.value_at(x) if x > 0 and self.z[0] - _EPS <= math.log(x) <= self.z[-1] + _EPS else None
                for x in xs]


# ----------------------------------------------------------------------------------------------
def _grid(res: ResolvedSchedule, sigma: float, n: int) -> np.ndarray:
    z0 = math.log(res.spot_x)
    sd = sigma * math.sqrt(max(res.T, 1e-6))
    half = max(5.5 * sd, 0.08)
    lo_t, hi_t = z0 - half, z0 + half
    up_fixed = dn_fixed = None
    for ko in res.knock_outs:
        if ko.monitoring == "continuous":
            lz = math.log(ko.level)
            if ko.direction == "up":
                up_fixed = lz if up_fixed is None else min(up_fixed, lz)
            else:
                dn_fixed = lz if dn_fixed is None else max(dn_fixed, lz)
    if up_fixed is not None:
        hi_t = up_fixed
    if dn_fixed is not None:
        lo_t = dn_fixed
    if up_fixed is not None and dn_fixed is not None:
        return np.linspace(dn_fixed, up_fixed, n)
    # anchors to put half-way between nodes
    anchors: list[float] = []
    if res.knock_in is not None and res.knock_in.monitoring != "continuous":
        anchors.append(res.knock_in.level)
    for ko in res.knock_outs:
        if ko.monitoring == "discrete" and ko.levels:
            anchors.append(ko.levels[0])
    for leg in list(res.legs) + list(res.legs_ki or ()):
        if leg.kind.startswith("digital"):
            anchors.append(leg.strike)
    if res.coupons is not None and res.coupons.barriers:
        anchors.append(res.coupons.barriers[0])
    za = []
    for a in anchors:
        if a > 0:
            la = math.log(a)
            if lo_t + 1e-9 < la < hi_t - 1e-9 and all(abs(la - b) > 1e-9 for b in za):
                za.append(la)
    dx_t = (hi_t - lo_t) / (n - 1)
    fixed = up_fixed if up_fixed is not None else dn_fixed
    if fixed is not None:
        dx = dx_t
        if za:
            a = za[0]
            m = max(0, round(abs(fixed - a) / dx_t - 0.5))
            dx = abs(fixed - a) / (m + 0.5)
        count = int(math.ceil((hi_t - lo_t) / dx - 1e-9)) + 1
        if up_fixed is not None:
            return up_fixed - dx * np.arange(count)[::-1]
        return dn_fixed + dx * np.arange(count)
    dx = dx_t
    if len(za) >= 2:
        a1, a2 = sorted(za[:2])
        k = max(1, round((a2 - a1) / dx_t))
        dx = (a2 - a1) / k
    if za:
        a1 = min(za[:2])
        base = a1 - 0.5 * dx
        lo = base - dx * math.ceil((base - lo_t) / dx - 1e-9)
    else:
        lo = lo_t
    count = int(math.ceil((hi_t - lo) / dx - 1e-9)) + 1
    return lo + dx * np.arange(count)


def _time_grid(res: ResolvedSchedule, time_steps: int | None) -> np.ndarray:
    T = res.T
    events = res.event_times()
    dt_max = min(1.0 / 365.0, T / 100.0) if not time_steps else T / time_steps  # >= 100 steps for short terms
    pts = [0.0]
    for t in events:
        if t <= pts[-1] + 1e-12:
            continue
        gap = t - pts[-1]
        k = max(1, int(math.ceil(gap / dt_max - 1e-9)))
        pts.extend(pts[-1] + gap * (np.arange(1, k + 1) / k))
        pts[-1] = t
    if pts[-1] < T - 1e-12:
        pts.append(T)
    return np.asarray(pts)


def _cell_avg_payoff(legs, z: np.ndarray, dz: float) -> np.ndarray:
    """Payoff averaged over each cell [z−dz/2, z+dz/2] (smooths kinks/jumps at maturity)."""
    offs = np.linspace(-0.5, 0.5, 9)[1:-1] * dz
    acc = np.zeros_like(z)
    for o in offs:
        acc += legs_payoff(legs, np.exp(z + o))
    return acc / len(offs)


class _Stepper:
    """Factorised (I − θΔL) per (Δ, θ), with Dirichlet first/last rows."""

    def __init__(self, n: int, dz: float, sigma: float, r: float, q: float):
        a = 0.5 * sigma * sigma / (dz * dz)
        mu = (r - q - 0.5 * sigma * sigma) / (2 * dz)
        self.lo, self.di, self.up = a - mu, -2 * a - r, a + mu
        self.n = n
        self._cache: dict[tuple[float, float], tuple] = {}

    def factor(self, d: float, theta: float):
        key = (int(d * 1e13 + 0.5), theta)  # equal steps share one factorisation
        f = self._cache.get(key)
        if f is None:
            n, c = self.n, theta * d
            dl = np.full(n - 1, -c * self.lo)
            dd = np.full(n, 1.0 - c * self.di)
            du = np.full(n - 1, -c * self.up)
            dd[0] = dd[-1] = 1.0
            du[0] = 0.0
            dl[-1] = 0.0
            dl_, d_, du_, du2, ipiv, info = lapack.dgttrf(dl, dd, du)
            if info != 0:
                raise PricingError("FD matrix is singular")
            f = (dl_, d_, du_, du2, ipiv)
            self._cache[key] = f
        return f

    def step_trbdf2(self, V: np.ndarray, d: float, bc_lo, bc_hi, bcm_lo, bcm_hi) -> np.ndarray:
        """TR-BDF2 (L-stable, second order): trapezoidal to γd, then BDF2 to d."""
        g = 2.0 - math.sqrt(2.0)
        U = self.step_cn(V, g * d, bcm_lo, bcm_hi)
        W = (U.T - (1 - g) ** 2 * V.T) * (1.0 / (g * (2 - g)))  # (ncol, n), C-contiguous
        W[:, 0], W[:, -1] = bc_lo, bc_hi
        dl, dd, du, du2, ipiv = self.factor((1 - g) / (2 - g) * d, 1.0)
        x, info = lapack.dgttrs(dl, dd, du, du2, ipiv, W.T, overwrite_b=1)
        return x

    def step(self, V: np.ndarray, d: float, theta: float, bc_lo: np.ndarray, bc_hi: np.ndarray) -> np.ndarray:
        """One θ-step. V is (n, ncol) column-major; work on its transpose so stencils are contiguous."""
        c = (1.0 - theta) * d
        Vt = V.T
        W = Vt.copy()  # (ncol, n) C-contiguous == (n, ncol) Fortran for LAPACK
        if c:
            W[:, 1:-1] += (c * self.lo) * Vt[:, :-2] + (c * self.di) * Vt[:, 1:-1] + (c * self.up) * Vt[:, 2:]
        W[:, 0] = bc_lo
        W[:, -1] = bc_hi
        dl, dd, du, du2, ipiv = self.factor(d, theta)
        x, info = lapack.dgttrs(dl, dd, du, du2, ipiv, W.T, overwrite_b=1)
        return x

    def step_cn(self, V: np.ndarray, d: float, bc_lo, bc_hi) -> np.ndarray:
        """Crank–Nicolson without the explicit stencil: with A = I − (d/2)L, (I + (d/2)L) = 2I − A, so
        U = A⁻¹(2I − A)V = 2A⁻¹V − V; the boundary rows of A are identity rows, and feeding
        (bc + V)/2 there makes U take the boundary value bc."""
        W = V.T.copy()
        W[:, 0] = 0.5 * (bc_lo + W[:, 0])
        W[:, -1] = 0.5 * (bc_hi + W[:, -1])
        dl, dd, du, du2, ipiv = self.factor(d, 0.5)
        x, info = lapack.dgttrs(dl, dd, du, du2, ipiv, W.T, overwrite_b=1)
        x *= 2.0
        x -= V
        return x


class _LVStepper(_Stepper):
    """`_Stepper` with node-dependent coefficients from σ(x, t), reset for each time step (`at`)."""

    def __init__(self, n: int, dz: float, x: np.ndarray, local_vol, r: float, q: float):
        self.n, self.dz, self.x_in, self.lv, self.r, self.q = n, dz, x[1:-1], local_vol, r, q
        self._cache = {}
        self._t = None

    def at(self, t: float) -> None:
        if t == self._t:
            return
        self._t = t
        sig = np.asarray(self.lv(self.x_in, t), dtype=float)
        a = 0.5 * sig * sig / (self.dz * self.dz)
        mu = (self.r - self.q - 0.5 * sig * sig) / (2 * self.dz)
        self.lo, self.di, self.up = a - mu, -2 * a - self.r, a + mu  # interior rows (n − 2,)
        self._cache = {}

    def factor(self, d: float, theta: float):
        key = (int(d * 1e13 + 0.5), theta)
        f = self._cache.get(key)
        if f is None:
            n, c = self.n, theta * d
            dl = np.zeros(n - 1)
            dd = np.ones(n)
            du = np.zeros(n - 1)
            dl[:-1] = -c * self.lo
            dd[1:-1] = 1.0 - c * self.di
            du[1:] = -c * self.up
            dl_, d_, du_, du2, ipiv, info = lapack.dgttrf(dl, dd, du)
            if info != 0:
                raise PricingError("FD matrix is singular")
            f = (dl_, d_, du_, du2, ipiv)
            self._cache[key] = f
        return f


SCHEME = "trbdf2"  # "cn" | "trbdf2" | "implicit": TR-BDF2 damps the daily knock-in jumps that CN rings on


def solve(res: ResolvedSchedule, model, grid_points: int = 800, time_steps: int | None = None,
          local_vol=None) -> FDSolution:
    """Value of `res` on the grid at the valuation date (see module docstring)."""
    ki = res.knock_in
    if ki is not None and ki.monitoring == "continuous" and not res.knocked_in:
        if res.knock_outs or res.coupons is not None:
            raise UnsupportedProductError("FD: a continuous knock-in together with knock-outs is not supported")
        # in–out parity: payoff_ki everywhere, plus (payoff − payoff_ki) knocked out at the barrier
        legs_ki = tuple(res.legs_ki or ())
        neg = tuple(Leg(leg.kind, leg.strike, -leg.weight) for leg in legs_ki)
        plain = _replace(res, legs=legs_ki, legs_ki=None, knock_in=None)
        ko = KnockOut(ki.direction, "continuous", (), (ki.level,), (0.0,), "hit")
        outpart = _replace(res, legs=tuple(res.legs) + neg, legs_ki=None, knock_in=None, knock_outs=(ko,))
        s1 = _solve(plain, model, grid_points, time_steps, local_vol)
        s2 = _solve(outpart, model, grid_points, time_steps, local_vol)
        # common grid: interpolate s1 onto s2's nodes (s2 is truncated at the barrier)
        v1 = np.array([s1._interp(s1.values, zz) for zz in s2.z])
        return FDSolution(s2.z, v1 + s2.values, res.spot_x, s1.steps + s2.steps, len(s2.z))
    return _solve(res, model, grid_points, time_steps, local_vol)


def _replace(res, **kw):
    from dataclasses import replace
    return replace(res, **kw)


def _solve(res: ResolvedSchedule, model, grid_points: int, time_steps: int | None, local_vol=None) -> FDSolution:
    if res.fixing_times or res.averaging:
        raise UnsupportedProductError("FD does not price Asian (path-average) payoffs")
    sigma, r, q = model.vol, model.rate, model.div
    T = res.T
    z = _grid(res, sigma, grid_points)
    n = len(z)
    dz = z[1] - z[0]
    x = np.exp(z)
    tgrid = _time_grid(res, time_steps)
    stepper = _Stepper(n, dz, sigma, r, q) if local_vol is None else _LVStepper(n, dz, x, local_vol, r, q)

    # ---- states -------------------------------------------------------------------------
    ki = res.knock_in
    two_states = ki is not None and ki.monitoring == "discrete" and not res.knocked_in
    strip = res.coupons
    mem = strip is not None and strip.memory
    n_mem = (res.unpaid_coupons + len(strip.times) + 1) if mem else 1
    n_ki = 2 if two_states else 1
    ncol = n_ki * n_mem

    def col(k, u):
        return k * n_mem + u

    # ---- terminal values ----------------------------------------------------------------
    pay_nki = _cell_avg_payoff(res.legs, z, dz)
    pay_ki = _cell_avg_payoff(res.legs_ki, z, dz) if res.legs_ki is not None else pay_nki
    if ki is not None and ki.monitoring == "maturity" and not res.knocked_in:
        hit = (x <= ki.level) if ki.direction == "down" else (x >= ki.level)
        pay_nki = np.where(hit, pay_ki, pay_nki)
    V = np.empty((n, ncol), order="F")
    for k in range(n_ki):
        base = pay_ki if (res.knocked_in or k == 1) else pay_nki
        for u in range(n_mem):
            V[:, col(k, u)] = base

    # ---- event lookup ------------------------------------------------------------------
    def idx_map(times):  # keys rounded exactly as the time grid's (np.round), so lookups cannot miss
        return {k: i for i, k in enumerate(np.round(np.asarray(times, dtype=float), 10).tolist())}

    ko_maps = [(ko, idx_map(ko.times)) for ko in res.knock_outs if ko.monitoring == "discrete"]
    ki_map = idx_map(ki.times) if two_states else {}
    cp_map = idx_map(strip.times) if strip is not None else {}
    cont_kos = [ko for ko in res.knock_outs if ko.monitoring == "continuous"]
    ko_keys = set().union(*[set(m) for _, m in ko_maps]) if ko_maps else set()
    ki_hit = ((x <= ki.level) if ki.direction == "down" else (x >= ki.level)) if two_states else None
    past_amounts = tuple(getattr(strip, "past_amounts", ()) or ()) if strip is not None else ()

    def cont_bc(t: float, direction: str) -> float | None:
        for ko in cont_kos:
            if ko.direction == direction:
                rb = ko.rebate
                return rb * math.exp(-r * (T - t)) if ko.rebate_at == "maturity" else rb
        return None

    def apply_events(V: np.ndarray, t: float, key: float) -> tuple[np.ndarray, bool]:
        jump = False
        # forward order at one date: coupon, knock-out, knock-in. Backward: build V_pre from V_post.
        post = V
        # knock-in (only affects the not-knocked-in column)
        if two_states and key in ki_map:
            post = post.copy(order="F")
            for u in range(n_mem):
                post[ki_hit, col(0, u)] = post[ki_hit, col(1, u)]
        if key not in ko_keys and key not in cp_map:
            return post, False
        ko_mask = np.zeros(n, dtype=bool)
        ko_val = np.zeros(n)
        for ko, m in ko_maps:
            if key in m:
                i = m[key]
                lvl, rb = ko.levels[i], (ko.rebates[i] if ko.rebates else 0.0)
                if ko.rebate_at == "maturity":
                    rb *= math.exp(-r * (T - t))
                hit = (x >= lvl) if ko.direction == "up" else (x <= lvl)
                ko_val = np.where(hit & ~ko_mask, rb, ko_val)
                ko_mask |= hit
                jump = True
        if ko_mask.any() or (key in cp_map):
            pre = np.where(ko_mask[:, None], ko_val[:, None], post)
        else:
            pre = post
        if strip is not None and key in cp_map:
            jump = True
            i = cp_map[key]
            amounts_all = list(past_amounts) + list(strip.amounts)
            i_all = len(past_amounts) + i
            paid = x >= strip.barriers[i]
            newV = np.empty_like(pre)
            for k in range(n_ki):
                for u in range(n_mem):
                    if mem:
                        lo_i = max(0, i_all - u)
                        amt = sum(amounts_all[lo_i:i_all + 1]) if i_all - u >= 0 else sum(amounts_all[:i_all + 1])
                        cont_paid = np.where(ko_mask, ko_val, post[:, col(k, 0)])
                        cont_miss = np.where(ko_mask, ko_val, post[:, col(k, min(u + 1, n_mem - 1))])
                    else:
                        amt = strip.amounts[i]
                        cont_paid = cont_miss = pre[:, col(k, u)]
                    newV[:, col(k, u)] = np.where(paid, amt + cont_paid, cont_miss)
            pre = newV
        return pre, jump

    tkeys = np.round(tgrid, 10).tolist()
    V, jump = apply_events(V, T, tkeys[-1])
    rannacher = 2  # after the payoff
    steps = 0
    for j in range(len(tgrid) - 1, 0, -1):
        t1, t0 = tgrid[j], tgrid[j - 1]
        d = t1 - t0
        if local_vol is not None:
            stepper.at(0.5 * (t0 + t1))
        lo_b = cont_bc(t0, "down")
        hi_b = cont_bc(t0, "up")
        bl = np.full(ncol, lo_b) if lo_b is not None else 2 * V[1] - V[2]
        bh = np.full(ncol, hi_b) if hi_b is not None else 2 * V[-2] - V[-3]
        if rannacher:
            tm = t0 + 0.5 * d
            blm = np.full(ncol, cont_bc(tm, "down")) if lo_b is not None else bl
            bhm = np.full(ncol, cont_bc(tm, "up")) if hi_b is not None else bh
            V = stepper.step(V, 0.5 * d, 1.0, blm, bhm)
            V = stepper.step(V, 0.5 * d, 1.0, bl, bh)
            rannacher -= 1
        elif SCHEME == "trbdf2":
            tm = t1 - (2.0 - math.sqrt(2.0)) * d
            blm = np.full(ncol, cont_bc(tm, "down")) if lo_b is not None else bl
            bhm = np.full(ncol, cont_bc(tm, "up")) if hi_b is not None else bh
            V = stepper.step_trbdf2(V, d, bl, bh, blm, bhm)
        elif SCHEME == "implicit":
            V = stepper.step(V, d, 1.0, bl, bh)
        else:
            V = stepper.step(V, d, 0.5, bl, bh)
        steps += 1
        if t0 > 1e-12:
            V, jump = apply_events(V, t0, tkeys[j - 1])
            if jump:
                rannacher = max(rannacher, 1)
    start_col = col(1 if (two_states and res.knocked_in) else 0, min(res.unpaid_coupons, n_mem - 1) if mem else 0)
    return FDSolution(z, V[:, start_col].copy(), res.spot_x, steps, n)
