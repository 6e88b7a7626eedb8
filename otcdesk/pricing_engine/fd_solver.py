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
- Knock-in: two coupled value columns, not-knocked-in and knocked-in, stepped together (one factorisation,
  one solve with several right-hand sides); at a knock-in observation the not-knocked-in
  column takes the knocked-in value where x <= level (one slice copy). Phoenix memory coupons add one column per
  number of unpaid coupons. A continuously monitored knock-in (barrier options) is priced by in–out
  parity: V = V(knocked-in payoff) + V(KO at the barrier of [payoff − knocked-in payoff]).
- Far boundaries: Dirichlet values extrapolated linearly (in z) from the previous time level.
- Linear algebra (`_Operator`): with a diagonal D (D[i+1]/D[i] = √(lower[i+1]/upper[i])) the matrices
  I − cL become symmetric positive definite, so each is factorised once (LDLᵀ, LAPACK dpttrf) and solved by dpttrs,
  whose recurrences have no division; the steps run on D⁻¹V, and boundary rows are penalty rows, so a step is a few
  whole-array operations and two LAPACK calls. Flat vol: one operator, one factorisation per distinct step size (the
  12-month daily snowball needs two: the day, and the Rannacher half day). When D does not exist (drift beating
  diffusion on a coarse grid) LU (dgttrf/dgttrs).

- Local volatility (`local_vol(x, t)`, from a vol surface): the coefficients vary by node and by step, taken at
  each step's mid time; the same schemes with a new operator per step (its D, and one factorisation per distinct
  step size within the step: one for TR-BDF2, one for the Rannacher half steps). Evaluating σ(x, t) dominates that
  cost. The grid's width uses the model's reference vol.

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

    def _interp(self, arr: np.ndarray, z0):
        """Cubic Lagrange interpolation of `arr` (values on the nodes) at z0 (a float or an array)."""
        z = self.z
        zq = np.asarray(z0, dtype=float)
        i = np.clip(np.searchsorted(z, zq) - 2, 0, len(z) - 4)
        zz = z[i[..., None] + np.arange(4)]
        vv = arr[i[..., None] + np.arange(4)]
        out = 0.0
        for j in range(4):
            w = 1.0
            for k in range(4):
                if k != j:
                    w = w * (zq - zz[..., k]) / (zz[..., j] - zz[..., k])
            out = out + w * vv[..., j]
        return float(out) if np.ndim(out) == 0 else out

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
    """0, every event time, and equal steps of at most dt_max between consecutive events (vectorised)."""
    T = res.T
    dt_max = min(1.0 / 365.0, T / 100.0) if not time_steps else T / time_steps  # >= 100 steps for short terms
    kept, last = [], 0.0
    for t in res.event_times().tolist():
        if t > last + 1e-12:
            kept.append(t)
            last = t
    if not kept:
        return np.array([0.0, T]) if T > 1e-12 else np.array([0.0])
    ends = np.asarray(kept)
    starts = np.concatenate(([0.0], ends[:-1]))
    gaps = ends - starts
    k = np.maximum(1, np.ceil(gaps / dt_max - 1e-9)).astype(np.int64)
    last_idx = np.cumsum(k) - 1
    which = np.repeat(np.arange(len(k)), k)
    j = np.arange(1, len(which) + 1) - (last_idx - k + 1)[which]
    pts = starts[which] + gaps[which] * (j / k[which])
    pts[last_idx] = ends
    tail = [T] if kept[-1] < T - 1e-12 else []
    return np.concatenate(([0.0], pts, tail))


def _cell_avg_payoff(legs, z: np.ndarray, dz: float) -> np.ndarray:
    """Payoff averaged over each cell [z−dz/2, z+dz/2] (smooths kinks/jumps at maturity)."""
    offs = np.linspace(-0.5, 0.5, 9)[1:-1] * dz
    acc = np.zeros_like(z)
    for o in offs:
        acc += legs_payoff(legs, np.exp(z + o))
    return acc / len(offs)


class _Factor:
    """(I − cL) factorised once, in the unknowns D⁻¹V of its `_Operator` (V̂ below).

    Symmetric case (`sym`): D⁻¹(I − cL)D is symmetric positive definite, so LAPACK's dpttrf/dpttrs (LDLᵀ: no
    pivoting, no division in the solve's recurrences) is used. Its boundary rows become penalty rows
    P·v̂₀ + s·v̂₁ = P·value (s the symmetric partner of row 1's coupling to node 0, P = 1e16 × the largest diagonal),
    so v̂₀ = value to 1e-16 relative while row 1 keeps its exact coupling. Otherwise (LU, dgttrf/dgttrs, D = 1) the
    boundary rows are identity rows. Either way a boundary value b enters as the right-hand side `pb`·b.
    `M`/`Mt` map the six edge values V̂[:, (0, 1, 2, n−3, n−2, n−1)] to what a TR-BDF2 / θ step puts on the
    boundary rows (linear extrapolation, or nothing on a Dirichlet side, whose value is added)."""

    __slots__ = ("sym", "pb", "solve", "M")

    def __init__(self, op: "_Operator", c: float):
        n = op.n
        dd = np.ones(n)
        dd[1:-1] = 1.0 - c * op.di
        self.sym = False
        if op.sym:
            P = 1e16 * float(np.abs(dd).max())
            dd[0] = dd[-1] = P
            e = np.empty(n - 1)
            e[1:-1] = -c * op.off
            e[0] = -c * op.lo[0] * op.D[0] / op.D[1]
            e[-1] = -c * op.up[-1] * op.D[-1] / op.D[-2]
            d_, e_, info = _pttrf(dd, e)
            if info == 0:
                self.sym, self.pb = True, P
                self.solve = lambda R: _pttrs(d_, e_, R.T, overwrite_b=1)
            dd[0] = dd[-1] = 1.0
        if not self.sym:
            if op.sym:
                raise PricingError("FD matrix is not positive definite")
            dl = np.zeros(n - 1)
            du = np.zeros(n - 1)
            dl[:-1] = -c * op.lo
            du[1:] = -c * op.up
            dl_, d_, du_, du2, ipiv, info = lapack.dgttrf(dl, dd, du)
            if info != 0:
                raise PricingError("FD matrix is singular")
            self.pb = 1.0
            self.solve = lambda R: lapack.dgttrs(dl_, d_, du_, du2, ipiv, R.T, overwrite_b=1)
        # TR-BDF2: [trapezoidal stage's rows 0, n−1 (α·(bc + v)/2, see step_trbdf2), BDF2 stage's rows 0, n−1]
        M = np.empty((6, 4))
        M[:, 2], M[:, 3] = op.wl, op.wh
        M[:, 0] = M[:, 2] + _U0
        M[:, 1] = M[:, 3] + _U5
        M[:, :2] *= 0.5 * _ALPHA
        M *= self.pb
        self.M = M


_pttrf, _pttrs = lapack.dpttrf, lapack.dpttrs
_U0, _U5 = np.eye(6)[0], np.eye(6)[5]


def _edge(n: int) -> np.ndarray:
    return np.array([0, 1, 2, n - 3, n - 2, n - 1])
_G = 2.0 - math.sqrt(2.0)  # TR-BDF2's γ
_ALPHA = 2.0 / (_G * (2.0 - _G))
_BETA = -(1.0 + (1.0 - _G) ** 2) / (_G * (2.0 - _G))


class _Operator:
    """Interior rows of L = ½σ²∂zz + (r − q − ½σ²)∂z − r on the grid (`lo`, `di`, `up`, one entry per interior node),
    with the factorisations of (I − cL) it has needed, one per distinct c (equal steps share one).

    Steps work on V̂ = D⁻¹V (the caller keeps its values so scaled): L is tridiagonal with lo[i+1]·up[i] > 0 (the
    usual case: diffusion dominates drift on the grid), and D with D[i+1]/D[i] = √(lo[i+1]/up[i]) makes D⁻¹LD
    symmetric (`sym`); D = 1 and LU when that fails. D[0] = D[1], D[n−1] = D[n−2].
    Boundaries: a Dirichlet side (`lo_fixed`/`hi_fixed`, a continuous barrier) takes the value given per step,
    otherwise the value extrapolated linearly from the previous time level (`wl`/`wh`: weights on the edge values)."""

    def __init__(self, n: int, lo, di, up, lo_fixed: bool = False, hi_fixed: bool = False):
        m = n - 2
        self.n = n
        self.lo, self.di, self.up = (a if np.ndim(a) else np.full(m, float(a)) for a in (lo, di, up))
        self.edge = _edge(n)
        self.D = self.Dinv = None
        self.sym = False
        self._f: dict[int, _Factor] = {}
        lo1, up0 = self.lo[1:], self.up[:-1]
        if self.lo.min() > 0 and self.up.min() > 0:
            logd = np.empty(m)
            logd[0] = 0.0
            np.cumsum(np.log(lo1 / up0), out=logd[1:])
            logd *= 0.5
            logd -= 0.5 * (logd.max() + logd.min())
            if np.abs(logd).max() < 300.0:
                D = np.empty(n)
                np.exp(logd, out=D[1:-1])
                D[0], D[-1] = D[1], D[-2]
                self.D, self.Dinv, self.sym = D, 1.0 / D, True
                self.off = np.sqrt(lo1 * up0)
        D = self.D if self.sym else np.ones(n)
        # boundary value = edge values (of V̂) · w (+ the Dirichlet value); in V: 2v₁ − v₂ at the low end
        self.wl = np.zeros(6) if lo_fixed else np.array([0.0, 2.0 * D[1], -D[2], 0.0, 0.0, 0.0]) / D[0]
        self.wh = np.zeros(6) if hi_fixed else np.array([0.0, 0.0, 0.0, -D[-3], 2.0 * D[-2], 0.0]) / D[-1]

    @classmethod
    def black_scholes(cls, n: int, dz: float, sigma, r: float, q: float, **sides) -> "_Operator":
        a = 0.5 * sigma * sigma / (dz * dz)
        mu = (r - q - 0.5 * sigma * sigma) / (2 * dz)
        return cls(n, a - mu, -2 * a - r, a + mu, **sides)

    def factor(self, c: float) -> _Factor:
        key = int(c * 1e13 + 0.5)  # equal steps share one factorisation
        f = self._f.get(key)
        if f is None:
            f = self._f[key] = _Factor(self, c)
        return f

    def scale(self, V: np.ndarray) -> np.ndarray:
        """V → V̂ = D⁻¹V (a new array)."""
        return V * self.Dinv if self.sym else V.copy()

    def unscale(self, W: np.ndarray) -> np.ndarray:
        """V̂ → V (a new array)."""
        return W * self.D if self.sym else W.copy()

    def boundary(self, W: np.ndarray, cl: float, ch: float) -> tuple[np.ndarray, np.ndarray]:
        """Boundary values of V̂ (one per column) for the next time level: Dirichlet values or extrapolation."""
        E = W.take(self.edge, axis=1)
        return np.dot(E, self.wl) + cl / self._d0(), np.dot(E, self.wh) + ch / self._dn()

    def _d0(self) -> float:
        return self.D[0] if self.sym else 1.0

    def _dn(self) -> float:
        return self.D[-1] if self.sym else 1.0

    # ---- steps on V̂, (ncol, n) C-contiguous (each state a contiguous row); they return a new array --------------
    def step(self, W: np.ndarray, d: float, theta: float, bl, bh) -> np.ndarray:
        """One θ-step of length d, boundary values bl/bh (of V̂, one per column) at the new time."""
        f = self.factor(theta * d)
        if theta < 1.0:
            ce = (1.0 - theta) * d
            V = self.unscale(W)
            R = V.copy()
            R[:, 1:-1] += (ce * self.lo) * V[:, :-2] + (ce * self.di) * V[:, 1:-1] + (ce * self.up) * V[:, 2:]
            if self.sym:
                R *= self.Dinv
        else:
            R = W.copy()
        R[:, 0] = f.pb * bl
        R[:, -1] = f.pb * bh
        f.solve(R)
        return R

    def step_trbdf2(self, W: np.ndarray, d: float, fixed: np.ndarray | None = None) -> np.ndarray:
        """TR-BDF2 (L-stable, second order): trapezoidal to γd, then BDF2 to d. γ = 2 − √2 makes both stages'
        matrices A = I − (γd/2)L: one factorisation. With Y = A⁻¹Ṽ the trapezoidal stage is U = 2Y − V (Ṽ: V with
        (bc_m + V)/2 on the boundary rows, so U takes the value bc_m there) and the BDF2 right-hand side
        (U − (1 − γ)²V)/(γ(2 − γ)) is αY + βV. `fixed`: Dirichlet values of V (ncol, 4): low and high side at the
        intermediate time, then at the new time (zeros on a side that is not Dirichlet); what the boundaries
        contribute is one small product with the edge values."""
        f = self.factor(_G * d * 0.5)
        C = np.dot(W.take(self.edge, axis=1), f.M)
        if fixed is not None:
            C += fixed * (f.pb * np.array([_ALPHA * 0.5 / self._d0(), _ALPHA * 0.5 / self._dn(),
                                           1.0 / self._d0(), 1.0 / self._dn()]))
        R = W * _ALPHA
        R[:, 0] = C[:, 0]
        R[:, -1] = C[:, 1]
        f.solve(R)
        R += W * _BETA
        R[:, 0] = C[:, 2]
        R[:, -1] = C[:, 3]
        f.solve(R)
        return R


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
        s1 = _solve((plain,), model, grid_points, time_steps, local_vol)[0]
        s2 = _solve((outpart,), model, grid_points, time_steps, local_vol)[0]
        # common grid: interpolate s1 onto s2's nodes (s2 is truncated at the barrier)
        v1 = s1._interp(s1.values, s2.z)
        return FDSolution(s2.z, v1 + s2.values, res.spot_x, s1.steps + s2.steps, len(s2.z))
    return _solve((res,), model, grid_points, time_steps, local_vol)[0]


def solve_many(group, model, grid_points: int = 800, time_steps: int | None = None,
               local_vol=None) -> list[FDSolution]:
    """`solve` for schedules that differ only in their amounts (leg weights, knock-out rebates, coupon amounts; the
    same grid, dates, levels and states), in one pass: their value columns side by side, one solve per step."""
    res = group[0]
    ki = res.knock_in
    if len(group) == 1 or (ki is not None and ki.monitoring == "continuous" and not res.knocked_in):
        return [solve(r, model, grid_points, time_steps, local_vol) for r in group]
    return _solve(tuple(group), model, grid_points, time_steps, local_vol)


def _replace(res, **kw):
    from dataclasses import replace
    return replace(res, **kw)


def _solve(group: tuple[ResolvedSchedule, ...], model, grid_points: int, time_steps: int | None,
           local_vol=None) -> list[FDSolution]:
    """One pass for `group` (schedules equal but for their amounts, see `solve_many`): its first member gives the
    grid, dates, levels and states; each member its own payoff, rebates and coupon amounts."""
    res, G = group[0], len(group)
    if res.fixing_times or res.averaging:
        raise UnsupportedProductError("FD does not price Asian (path-average) payoffs")
    sigma, r, q = model.vol, model.rate, model.div
    T = res.T
    z = _grid(res, sigma, grid_points)
    n = len(z)
    dz = z[1] - z[0]
    x = np.exp(z)
    tgrid = _time_grid(res, time_steps)
    cont_kos = [ko for ko in res.knock_outs if ko.monitoring == "continuous"]
    sides = {"lo_fixed": any(ko.direction == "down" for ko in cont_kos),
             "hi_fixed": any(ko.direction == "up" for ko in cont_kos)}
    if local_vol is None:  # time-homogeneous: one operator, one factorisation per distinct step size
        op = _Operator.black_scholes(n, dz, sigma, r, q, **sides)
    else:  # σ(x, t) at each step's mid time: an operator (and its factorisations) per step
        x_in, op = x[1:-1], None

    # ---- states -------------------------------------------------------------------------
    ki = res.knock_in
    two_states = ki is not None and ki.monitoring == "discrete" and not res.knocked_in
    strip = res.coupons
    mem = strip is not None and strip.memory
    n_mem = (res.unpaid_coupons + len(strip.times) + 1) if mem else 1
    n_ki = 2 if two_states else 1
    ncol_g = n_ki * n_mem  # columns of one member of the group
    ncol = G * ncol_g

    def col(k, u):
        return k * n_mem + u

    # ---- terminal values: V[col] is one state's values on the grid ----------------------------
    if ki is not None and ki.monitoring == "maturity" and not res.knocked_in:
        ki_mat_hit = (x <= ki.level) if ki.direction == "down" else (x >= ki.level)
    V = np.empty((G, n_ki, n_mem, n))
    for g, rg in enumerate(group):
        pay_nki = _cell_avg_payoff(rg.legs, z, dz)
        pay_ki = _cell_avg_payoff(rg.legs_ki, z, dz) if rg.legs_ki is not None else pay_nki
        if ki is not None and ki.monitoring == "maturity" and not res.knocked_in:
            pay_nki = np.where(ki_mat_hit, pay_ki, pay_nki)
        for k in range(n_ki):
            V[g, k] = pay_ki if (res.knocked_in or k == 1) else pay_nki
    V = V.reshape(ncol, n)

    # ---- event lookup ------------------------------------------------------------------
    def idx_map(times):  # keys rounded exactly as the time grid's (np.round), so lookups cannot miss
        return {k: i for i, k in enumerate(np.round(np.asarray(times, dtype=float), 10).tolist())}

    def as_slice(mask: np.ndarray):  # x is increasing: a level's mask is a prefix or a suffix of the grid
        k = int(mask.sum())
        if k == 0 or mask[:k].all():
            return slice(0, k)
        if mask[n - k:].all():
            return slice(n - k, n)
        return mask

    ko_maps = [(j, ko, idx_map(ko.times)) for j, ko in enumerate(res.knock_outs) if ko.monitoring == "discrete"]
    ki_map = idx_map(ki.times) if two_states else {}
    cp_map = idx_map(strip.times) if strip is not None else {}
    ko_keys = set().union(*[set(m) for _, _, m in ko_maps]) if ko_maps else set()
    ki_hit = as_slice((x <= ki.level) if ki.direction == "down" else (x >= ki.level)) if two_states else None

    def cont_bc(t: float, direction: str) -> np.ndarray:
        """The Dirichlet value on that side at t, per column (each member's own rebate)."""
        out = np.zeros(ncol)
        for j, ko in enumerate(res.knock_outs):
            if ko.monitoring == "continuous" and ko.direction == direction:
                df = math.exp(-r * (T - t)) if ko.rebate_at == "maturity" else 1.0
                out[:] = np.repeat([rg.knock_outs[j].rebate * df for rg in group], ncol_g)
                break
        return out

    def knock_in(V: np.ndarray, key: float) -> None:
        """The not-knocked-in columns take the knocked-in values where the level is hit (in place; the same on V
        and on V̂ = D⁻¹V, whose columns share one scaling)."""
        if two_states and key in ki_map:
            V4 = V.reshape(G, n_ki, n_mem, n)
            V4[:, 0, :, ki_hit] = V4[:, 1, :, ki_hit]

    def apply_events(V: np.ndarray, t: float, key: float) -> tuple[np.ndarray, bool]:
        """Knock-out and coupon observations at t, after `knock_in` (forward order at one date: coupon, knock-out,
        knock-in; backward: V_pre from V_post), member by member. V is this solve's own array."""
        if key not in ko_keys and key not in cp_map:
            return V, False
        parts = [member_events(V[g * ncol_g:(g + 1) * ncol_g], t, key, rg) for g, rg in enumerate(group)]
        return (parts[0][0] if G == 1 else np.concatenate([p[0] for p in parts])), parts[0][1]

    def member_events(V: np.ndarray, t: float, key: float, rg: ResolvedSchedule) -> tuple[np.ndarray, bool]:
        jump = False
        post = V
        ko_mask = np.zeros(n, dtype=bool)
        ko_val = np.zeros(n)
        hits = []
        cps = rg.coupons
        past_amounts = tuple(getattr(cps, "past_amounts", ()) or ()) if cps is not None else ()
        for j, ko, m in ko_maps:
            if key in m:
                i = m[key]
                rebates = rg.knock_outs[j].rebates
                lvl, rb = ko.levels[i], (rebates[i] if rebates else 0.0)
                if ko.rebate_at == "maturity":
                    rb *= math.exp(-r * (T - t))
                hit = (x >= lvl) if ko.direction == "up" else (x <= lvl)
                hits.append((hit, rb))
                ko_val = np.where(hit & ~ko_mask, rb, ko_val)
                ko_mask |= hit
                jump = True
        if strip is None or key not in cp_map:
            if len(hits) == 1:  # one knock-out level: its side of the grid takes the rebate
                V[:, as_slice(hits[0][0])] = hits[0][1]
                return V, jump
            return np.where(ko_mask[None, :], ko_val[None, :], V), jump
        pre = np.where(ko_mask[None, :], ko_val[None, :], post)
        jump = True
        i = cp_map[key]
        amounts_all = list(past_amounts) + list(cps.amounts)
        i_all = len(past_amounts) + i
        paid = x >= strip.barriers[i]
        newV = np.empty_like(pre)
        for k in range(n_ki):
            for u in range(n_mem):
                if mem:
                    lo_i = max(0, i_all - u)
                    amt = sum(amounts_all[lo_i:i_all + 1]) if i_all - u >= 0 else sum(amounts_all[:i_all + 1])
                    cont_paid = np.where(ko_mask, ko_val, post[col(k, 0)])
                    cont_miss = np.where(ko_mask, ko_val, post[col(k, min(u + 1, n_mem - 1))])
                else:
                    amt = cps.amounts[i]
                    cont_paid = cont_miss = pre[col(k, u)]
                newV[col(k, u)] = np.where(paid, amt + cont_paid, cont_miss)
        return newV, jump

    tkeys = np.round(tgrid, 10).tolist()
    knock_in(V, tkeys[-1])
    V, jump = apply_events(V, T, tkeys[-1])
    fixed = bool(cont_kos)
    rannacher = 2  # after the payoff
    steps = 0
    tl = tgrid.tolist()
    W = op.scale(V) if local_vol is None else None  # the steps' unknowns V̂ = D⁻¹V
    for j in range(len(tl) - 1, 0, -1):
        t1, t0 = tl[j], tl[j - 1]
        d = t1 - t0
        if local_vol is not None:  # new coefficients: V̂ moves to the new operator's scaling
            V = V if W is None else op.unscale(W)
            op = _Operator.black_scholes(n, dz, np.asarray(local_vol(x_in, 0.5 * (t0 + t1)), dtype=float), r, q,
                                         **sides)
            W = op.scale(V)
        cl = cont_bc(t0, "down") if fixed else 0.0  # Dirichlet values at t0 (arrays: one per column)
        ch = cont_bc(t0, "up") if fixed else 0.0
        if rannacher:
            bl, bh = op.boundary(W, cl, ch)
            blm, bhm = op.boundary(W, cont_bc(t0 + 0.5 * d, "down"), cont_bc(t0 + 0.5 * d, "up")) if fixed else (bl, bh)
            W = op.step(W, 0.5 * d, 1.0, blm, bhm)
            W = op.step(W, 0.5 * d, 1.0, bl, bh)
            rannacher -= 1
        elif SCHEME == "trbdf2":
            if fixed:
                tm = t1 - _G * d
                W = op.step_trbdf2(W, d, np.column_stack([cont_bc(tm, "down"), cont_bc(tm, "up"), cl, ch]))
            else:
                W = op.step_trbdf2(W, d)
        else:
            bl, bh = op.boundary(W, cl, ch)
            W = op.step(W, d, 1.0 if SCHEME == "implicit" else 0.5, bl, bh)
        steps += 1
        if t0 > 1e-12:
            key = tkeys[j - 1]
            knock_in(W, key)
            if key in ko_keys or key in cp_map:
                V, jump = apply_events(op.unscale(W), t0, key)
                W = op.scale(V)
                if jump:
                    rannacher = max(rannacher, 1)
    V = op.unscale(W) if W is not None else V
    start_col = col(1 if (two_states and res.knocked_in) else 0, min(res.unpaid_coupons, n_mem - 1) if mem else 0)
    return [FDSolution(z, V[g * ncol_g + start_col].copy(), res.spot_x, steps, n) for g in range(G)]
