"""Monte Carlo payoff kernel over the building blocks of `pricing_engine.blocks`.

Every structure (vanilla, spread, digital, barrier, sharkfin, double sharkfin, asian,
snowball and its variants, phoenix, airbag, and any template made of the same blocks)
resolves to a `ResolvedSchedule`: terminal legs, knock-out blocks, an optional knock-in
block, a phoenix coupon strip, Asian fixings. This module turns a resolved schedule into
`mc_core.MCTerms` and evaluates all of them in one vectorised kernel, so contracts of one
*shape* (same block kinds, directions and monitoring; numbers free) are priced together.

Path conventions (see `blocks` for the payoff semantics):

* discrete observations are simulated exactly on their dates;
* ``continuous`` knock-out / knock-in is monitored on a grid of ``steps_per_year`` steps
  (merged with the contract's other event times) with the Broadie-Glasserman-Kou
  continuity correction: the barrier is moved towards the spot by
  ``exp(0.5826 sigma sqrt(dt))`` for each step ``dt``;
* events at one date: coupons, then knock-out, then knock-in; a knock-out rebate is paid
  at the hit date (``rebate_at="hit"``) or at maturity;
* arithmetic Asians use the geometric-average payoff, whose lognormal expectation is
  exact, as a control variate (coefficient fitted by regression on all paths).

Comparisons run in log space; ``exp`` is taken only where a payoff needs a level.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from otcdesk.pricing_engine.blocks import ResolvedSchedule
from otcdesk.pricing_engine.engines import EngineOptions
from otcdesk.pricing_engine.mc_core import MCTerms, Row

BGK_BETA = 0.5826  # -zeta(1/2) / sqrt(2 pi)
_LOG_INF = 1e30


@dataclass(frozen=True)
class Shape:
    """The non-numeric part of a resolved schedule: contracts with equal shapes batch together."""

    legs: tuple[str, ...]
    legs_ki: tuple[str, ...] | None
    kos: tuple[tuple[str, str, str], ...]  # (direction, monitoring, rebate_at)
    ki: tuple[str, str] | None  # (direction, monitoring)
    coupons: bool | None  # memory flag, None without a coupon strip
    averaging: str | None
    continuous: bool


def shape_of(rs: ResolvedSchedule) -> Shape:
    kos = tuple((ko.direction, ko.monitoring, ko.rebate_at) for ko in rs.knock_outs)
    ki = (rs.knock_in.direction, rs.knock_in.monitoring) if rs.knock_in is not None else None
    cont = any(k[1] == "continuous" for k in kos) or (ki is not None and ki[1] == "continuous")
    return Shape(
        legs=tuple(leg.kind for leg in rs.legs),
        legs_ki=None if rs.legs_ki is None else tuple(leg.kind for leg in rs.legs_ki),
        kos=kos,
        ki=ki,
        coupons=None if rs.coupons is None else bool(rs.coupons.memory),
        averaging=rs.averaging if rs.fixing_times or rs.past_fixings else None,
        continuous=cont,
    )


def _log(v: float) -> float:
    return math.log(v) if v > 0 else -_LOG_INF


def to_terms(rs: ResolvedSchedule, cfg: EngineOptions) -> MCTerms:
    """MCTerms of one resolved schedule (times after the valuation date only)."""
    T = float(rs.T)
    if not T > 0:
        raise ValueError("maturity must be after the valuation date")
    sh = shape_of(rs)
    times = [T]
    scalars: dict[str, float] = {"knocked_in": 1.0 if rs.knocked_in else 0.0}
    series: dict[str, np.ndarray] = {}
    fills: dict[str, float] = {}
    for i, leg in enumerate(rs.legs):
        scalars[f"L{i}_k"], scalars[f"L{i}_w"] = leg.strike, leg.weight
    for i, leg in enumerate(rs.legs_ki or ()):
        scalars[f"K{i}_k"], scalars[f"K{i}_w"] = leg.strike, leg.weight
    if sh.continuous:
        n = max(1, int(math.ceil(T * cfg.steps_per_year - 1e-9)))
        times.extend(np.linspace(T / n, T, n))
    keyed: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def add_series(name: str, ts, vals, fill: float):
        ts = np.asarray(ts, dtype=np.float64)
        keep = ts > 0
        keyed[name] = (ts[keep], np.asarray(vals, dtype=np.float64)[keep])
        fills[name] = fill
        times.extend(ts[keep])

    for j, ko in enumerate(rs.knock_outs):
        if ko.monitoring == "continuous":
            scalars[f"ko{j}_lvl"] = _log(ko.level)
            scalars[f"ko{j}_reb"] = ko.rebate
        else:
            ts = np.asarray(ko.times, dtype=np.float64)
            lv = np.broadcast_to(np.asarray(ko.levels, dtype=np.float64), ts.shape)
            rb = np.broadcast_to(np.asarray(ko.rebates if ko.rebates else (0.0,), dtype=np.float64), ts.shape)
            add_series(f"ko{j}_m", ts, np.ones_like(ts), 0.0)
            add_series(f"ko{j}_l", ts, [_log(v) for v in lv], _LOG_INF if ko.direction == "up" else -_LOG_INF)
            add_series(f"ko{j}_r", ts, rb, 0.0)
    if rs.knock_in is not None:
        scalars["ki_lvl"] = _log(rs.knock_in.level)
        if rs.knock_in.monitoring == "discrete":
            ts = np.asarray(rs.knock_in.times, dtype=np.float64)
            add_series("ki_m", ts, np.ones_like(ts), 0.0)
    if rs.coupons is not None:
        cp = rs.coupons
        ts = np.asarray(cp.times, dtype=np.float64)
        add_series("cp_m", ts, np.ones_like(ts), 0.0)
        add_series("cp_b", ts, [_log(v) for v in cp.barriers], _LOG_INF)
        add_series("cp_a", ts, cp.amounts, 0.0)
        u = int(rs.unpaid_coupons) if cp.memory else 0
        past = tuple(getattr(cp, "past_amounts", ()) or ())
        if u and past:  # the most recent `u` missed coupons are still owed
            scalars["unpaid"] = float(sum(past[-u:]))
        else:
            scalars["unpaid"] = u * (float(cp.amounts[0]) if len(cp.amounts) else 0.0)
    if sh.averaging:
        past = np.asarray(rs.past_fixings, dtype=np.float64)
        scalars["past_sum"] = float(past.sum())
        scalars["past_logsum"] = float(np.log(past).sum()) if past.size else 0.0
        scalars["n_fix"] = float(rs.n_fixings or (len(past) + len(rs.fixing_times)))
        ts = np.asarray(rs.fixing_times, dtype=np.float64)
        add_series("fx_m", ts, np.ones_like(ts), 0.0)
    grid = np.unique(np.round(np.asarray(times, dtype=np.float64), 10))
    grid = grid[grid > 0]
    # series on the contract's own grid (several blocks may share dates)
    for name, (ts, vals) in keyed.items():
        a = np.full(len(grid), fills[name])
        a[np.searchsorted(grid, np.round(ts, 10))] = vals
        series[name] = a
    return MCTerms(structure=rs.structure, times=grid, maturity=T, scalars=scalars, series=series, fills=fills)


def _legs(xp, kinds, prefix: str, s, u):
    out = None
    for i, kind in enumerate(kinds):
        k, w = s[f"{prefix}{i}_k"], s[f"{prefix}{i}_w"]
        if kind == "call":
            v = xp.maximum(u - k, 0)
        elif kind == "put":
            v = xp.maximum(k - u, 0)
        elif kind == "digital_call":
            v = (u > k).astype(u.dtype)
        elif kind == "digital_put":
            v = (u < k).astype(u.dtype)
        elif kind == "cash":
            v = xp.ones_like(u)
        elif kind == "asset":
            v = u
        else:
            raise ValueError(f"unknown leg kind {kind!r}")
        v = v * w
        out = v if out is None else out + v
    return xp.zeros_like(u) if out is None else out


def _first_hit(xp, hit, n: int):
    """First index along axis 1 where hit is true, n where never (hit: (R, n, m) bool)."""
    if hit.shape[1] <= 64:  # few columns: one masked write per column beats a strided argmax
        first = xp.full((hit.shape[0], hit.shape[2]), n, dtype=xp.int64)
        for j in range(hit.shape[1] - 1, -1, -1):
            first[hit[:, j, :]] = j
        return first
    anyhit = hit.any(axis=1)
    first = xp.argmax(hit, axis=1)
    return xp.where(anyhit, first, n)


def make_kernel(shape: Shape):
    """The vectorised kernel for contracts of ``shape`` (see `mc_core.Kernel`)."""

    def kernel(b):
        xp = b.xp
        L = b.logx
        R, n, m = L.shape
        dtype = L.dtype
        idx = xp.arange(n).reshape(1, n, 1)
        within = idx <= b.mat_idx.reshape(R, 1, 1)
        bgk = None
        if shape.continuous:
            bgk = (BGK_BETA * b.sigma[:, :, None]) * xp.sqrt(b.dt)[:, :, None]  # (R, n, 1)
        ko_time = xp.full((R, m), n, dtype=xp.int64)
        ko_val = xp.zeros((R, m), dtype=dtype)
        for j, (direction, mon, at) in enumerate(shape.kos):
            if mon == "continuous":
                lvl = b.s[f"ko{j}_lvl"][:, :, None]
                lvl = lvl - bgk if direction == "up" else lvl + bgk
                mask = within
            else:
                lvl = b.ser[f"ko{j}_l"]
                mask = b.ser[f"ko{j}_m"] > 0.5
            cols = b.sparse.get(f"ko{j}_m") if mon != "continuous" else None
            if cols is not None:  # test only the observation columns
                c3 = cols[:, :, None]
                Lg = xp.take_along_axis(L, xp.broadcast_to(c3, (R, c3.shape[1], m)), axis=1)
                lg = xp.take_along_axis(lvl, c3, axis=1)
                mg = xp.take_along_axis(mask, c3, axis=1)
                hit = (Lg >= lg) if direction == "up" else (Lg <= lg)
                hit &= mg
                fj = _first_hit(xp, hit, cols.shape[1])
                first = xp.where(fj < cols.shape[1],
                                 xp.take_along_axis(cols, xp.minimum(fj, cols.shape[1] - 1), axis=1), n)
                del hit, Lg
            else:
                hit = (L >= lvl) if direction == "up" else (L <= lvl)
                hit &= mask
                first = _first_hit(xp, hit, n)
                del hit
            fi = xp.minimum(first, n - 1)
            if mon == "continuous":
                reb = xp.broadcast_to(b.s[f"ko{j}_reb"], (R, m))
            else:
                reb = xp.take_along_axis(b.ser[f"ko{j}_r"][:, :, 0], fi, axis=1)
            disc = xp.take_along_axis(b.df, fi, axis=1) if at == "hit" else b.df_mat
            better = first < ko_time
            ko_time = xp.where(better, first, ko_time)
            ko_val = xp.where(better, (reb * disc).astype(dtype), ko_val)
        knocked_out = ko_time < n
        cash = xp.zeros((R, m), dtype=dtype)
        if shape.coupons is not None:
            cp_m = b.ser["cp_m"][:, :, 0]
            col = cp_m.any(axis=0)
            cp_idx = [int(k) for k in np.nonzero(col.get() if hasattr(col, "get") else col)[0]]
            unpaid = xp.broadcast_to(b.s["unpaid"], (R, m)).astype(dtype)
            for k in cp_idx:
                on = (cp_m[:, k:k + 1] > 0.5) & (k <= b.mat_idx.reshape(R, 1))
                pay = (L[:, k, :] >= b.ser["cp_b"][:, k, :]) & on & (ko_time >= k)
                a_k = b.ser["cp_a"][:, k, :]
                amount = unpaid + a_k if shape.coupons else a_k
                cash += xp.where(pay, amount * b.df[:, k:k + 1], 0)
                if shape.coupons:
                    unpaid = xp.where(pay, 0, xp.where(on, unpaid + a_k, unpaid))
        xT_log = b.at(L, b.mat_idx)
        if shape.averaging:
            fx = b.ser["fx_m"]
            if shape.averaging == "geometric":
                u = xp.exp((b.s["past_logsum"] + (L * fx).sum(axis=1)) / b.s["n_fix"])
            else:
                u = (b.s["past_sum"] + (xp.exp(L) * fx).sum(axis=1)) / b.s["n_fix"]
        else:
            u = xp.exp(xT_log)
        final = _legs(xp, shape.legs, "L", b.s, u)
        if shape.legs_ki is not None:
            ki = xp.broadcast_to(b.s["knocked_in"] > 0.5, (R, m))
            if shape.ki is not None:
                direction, mon = shape.ki
                lvl = b.s["ki_lvl"]
                if mon == "maturity":
                    hit_any = (xT_log <= lvl) if direction == "down" else (xT_log >= lvl)
                else:
                    if mon == "continuous":
                        l3 = lvl[:, :, None] + bgk if direction == "down" else lvl[:, :, None] - bgk
                        mask = within
                    else:
                        l3 = lvl[:, :, None]
                        mask = b.ser["ki_m"] > 0.5
                    cols = b.sparse.get("ki_m") if mon == "discrete" else None
                    if cols is not None:
                        c3 = cols[:, :, None]
                        Lg = xp.take_along_axis(L, xp.broadcast_to(c3, (R, c3.shape[1], m)), axis=1)
                        hit = (Lg <= l3) if direction == "down" else (Lg >= l3)
                        hit &= xp.take_along_axis(mask, c3, axis=1)
                    else:
                        hit = (L <= l3) if direction == "down" else (L >= l3)
                        hit &= mask
                    hit_any = hit.any(axis=1)
                    del hit
                ki = ki | hit_any
            final = xp.where(ki, _legs(xp, shape.legs_ki, "K", b.s, u), final)
        y = xp.where(knocked_out, ko_val, final * b.df_mat) + cash
        ctrl = None
        if shape.averaging == "arithmetic" and not shape.kos and shape.legs_ki is None:
            g = xp.exp((b.s["past_logsum"] + (L * b.ser["fx_m"]).sum(axis=1)) / b.s["n_fix"])
            ctrl = (_legs(xp, shape.legs, "L", b.s, g) * b.df_mat)[:, None, :]
        return y, ctrl

    return kernel


def uses_control(shape: Shape) -> bool:
    return shape.averaging == "arithmetic" and not shape.kos and shape.legs_ki is None


def _lognormal_leg_mean(kind: str, k: float, mean: float, var: float) -> float:
    """E[leg(G)] for log G ~ N(mean, var)."""
    from scipy.special import ndtr  # noqa: PLC0415

    sd = math.sqrt(max(var, 1e-300))
    fwd = math.exp(mean + 0.5 * var)
    if kind in ("call", "put", "digital_call", "digital_put"):
        if k <= 0:
            d1 = d2 = math.inf
        else:
            d2 = (mean - math.log(k)) / sd
            d1 = d2 + sd
    if kind == "call":
        return fwd * ndtr(d1) - k * ndtr(d2) if k > 0 else fwd - k
    if kind == "put":
        return k * ndtr(-d2) - fwd * ndtr(-d1) if k > 0 else 0.0
    if kind == "digital_call":
        return float(ndtr(d2)) if k > 0 else 1.0
    if kind == "digital_put":
        return float(ndtr(-d2)) if k > 0 else 0.0
    if kind == "cash":
        return 1.0
    if kind == "asset":
        return fwd
    raise ValueError(kind)


def make_control_means(shape: Shape):
    """Exact means of the geometric-average control for each row (see `mc_core.ControlMeans`)."""

    def control_means(terms: Sequence[MCTerms], rows: Sequence[Row], grid: np.ndarray) -> np.ndarray:
        out = np.zeros((len(rows), 1))
        for r, row in enumerate(rows):
            t = terms[row.contract]
            ts = np.asarray(t.times)[np.asarray(t.series["fx_m"]) > 0.5] - row.shift
            ts = np.maximum(ts, 0.0)
            s = t.scalars
            N = s["n_fix"]
            mu = row.rate - row.div - 0.5 * row.sigma**2
            mean = (s["past_logsum"] + len(ts) * math.log(row.x0) + mu * ts.sum()) / N
            var = row.sigma**2 * np.minimum.outer(ts, ts).sum() / N**2
            v = sum(_lognormal_leg_mean(kind, s[f"L{i}_k"], mean, var) * s[f"L{i}_w"]
                    for i, kind in enumerate(shape.legs))
            out[r, 0] = v * math.exp(-row.rate * max(t.maturity - row.shift, 0.0))
        return out

    return control_means


def extreme_blocks(shape: Shape, terms: Sequence[MCTerms]) -> dict[str, str]:
    """Mask series that spot ladders may replace by a path extreme (see `mc_core.ladder_plan`)."""
    out: dict[str, str] = {}
    if shape.ki is not None and shape.ki[1] == "discrete":
        out["ki_m"] = "min" if shape.ki[0] == "down" else "max"
    for j, (direction, mon, at) in enumerate(shape.kos):
        if mon != "discrete" or at != "maturity":
            continue
        const = True
        for t in terms:
            m = np.asarray(t.series[f"ko{j}_m"]) > 0.5
            for k in (f"ko{j}_l", f"ko{j}_r"):
                v = np.asarray(t.series[k])[m]
                if v.size and np.ptp(v) > 1e-12:
                    const = False
        if const:
            out[f"ko{j}_m"] = "max" if direction == "up" else "min"
    return out


def make_ladder_kernel(shape: Shape, extremes: Mapping[str, str]):
    """A faster kernel for spot ladders, or None when ``shape`` needs the generic one.

    Works on compressed paths (R, Jt, m) and all spot shifts at once: extreme-reduced blocks
    are one comparison per shift; a knock-out block tested at several dates uses the running
    minimum of its distance to the barrier, so the first knock-out date for every shift comes
    from one ``searchsorted`` and a histogram rather than a test per date and shift.
    Supports terminal legs, knock-in, maturity-rebate knock-outs and at most one up
    knock-out paid at the hit; not coupons, averages or continuous monitoring.
    """
    if shape.coupons is not None or shape.averaging or shape.continuous:
        return None
    hit_blocks = [j for j in range(len(shape.kos)) if f"ko{j}_m" not in extremes]
    if len(hit_blocks) > 1 or any(shape.kos[j][0] != "up" for j in hit_blocks):
        return None
    if shape.ki is not None and shape.ki[1] == "discrete" and "ki_m" not in extremes:
        return None

    def kernel(xp, Lc, c, p):
        """Lc (R, Jt, m); c (S,) log shifts on xp; p: row params. Returns (R, S, m) discounted values."""
        R, Jt, m = Lc.shape
        S = c.shape[0]
        dtype = Lc.dtype
        c3 = c.reshape(1, S, 1)
        ko_time = None
        ko_val = None
        for j, (direction, mon, at) in enumerate(shape.kos):
            mk = f"ko{j}_m"
            if mk in extremes:
                col = p["ext_col"][mk]
                E = Lc[:, col, :][:, None, :]
                lvl = p["ser"][f"ko{j}_l"][:, col][:, None, None]
                hit = (E + c3 >= lvl) if direction == "up" else (E + c3 <= lvl)
                first = xp.where(hit, xp.int32(col), xp.int32(Jt + 1))
                reb = p["ser"][f"ko{j}_r"][:, col][:, None, None]
                disc = p["df_mat"][:, :, None] if at == "maturity" else p["df"][:, col][:, None, None]
                val = xp.broadcast_to((reb * disc).astype(dtype), (R, S, m))
            else:
                lvl = p["ser"][f"ko{j}_l"][:, :, None]
                mask = p["ser"][mk][:, :, None] > 0.5
                d = xp.where(mask, lvl - Lc, xp.inf).astype(dtype)
                D = xp.minimum.accumulate(d, axis=1) if xp.__name__ == "numpy" else _cummin(xp, d)
                q = xp.searchsorted(c, D.transpose(0, 2, 1).reshape(-1), side="left").astype(xp.int32).reshape(R * m, Jt)
                flat = q + (xp.arange(R * m) * (S + 1))[:, None]
                cnt = xp.bincount(flat.reshape(-1), minlength=R * m * (S + 1)).reshape(R, m, S + 1)
                tail = xp.cumsum(cnt[:, :, ::-1], axis=2)[:, :, ::-1]  # sum over v >= s
                first = xp.ascontiguousarray(tail[:, :, 1:].transpose(0, 2, 1)).astype(xp.int32)  # #{j: q_j > s}
                rd = xp.concatenate([p["ser"][f"ko{j}_r"] * (p["df"] if at == "hit" else p["df_mat"]),
                                     xp.zeros((R, 2), dtype=dtype)], axis=1)  # index Jt, Jt+1: none
                first[first >= Jt] = Jt + 1
                val = xp.take_along_axis(rd, first.reshape(R, S * m), axis=1).reshape(R, S, m)
            if ko_time is None:
                ko_time, ko_val = first, val
            else:
                better = first < ko_time
                ko_time = xp.where(better, first, ko_time)
                ko_val = xp.where(better, val, ko_val)
        xT0 = Lc[xp.arange(R), p["mat_pos"], :][:, None, :]
        xT = xT0 + c3  # (R, S, m) log level at maturity
        u = xp.exp(xT0) * xp.exp(c3)
        s3 = {k: v[:, :, None] for k, v in p["s"].items()}
        final = _legs(xp, shape.legs, "L", s3, u)
        if shape.legs_ki is not None:
            ki = s3["knocked_in"] > 0.5
            if shape.ki is not None:
                direction, mon = shape.ki
                lvl = s3["ki_lvl"]
                if mon == "maturity":
                    E = xT
                else:
                    E = Lc[:, p["ext_col"]["ki_m"], :][:, None, :] + c3
                ki = ki | ((E <= lvl) if direction == "down" else (E >= lvl))
            final = xp.where(ki, _legs(xp, shape.legs_ki, "K", s3, u), final)
        final *= p["df_mat"][:, :, None]
        if ko_time is None:
            return final
        return xp.where(ko_time <= Jt, ko_val, final)

    return kernel


def _cummin(xp, d):
    out = d.copy()
    for j in range(1, d.shape[1]):
        xp.minimum(out[:, j - 1], out[:, j], out=out[:, j])
    return out
