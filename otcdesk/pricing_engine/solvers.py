"""Solvers: the value of one input (coupon, participation, strike, vol) that gives a target price.

Robust scheme: search outward from a starting bracket for a sign change of price(v) − target
(doubling the step, within hard limits), then `scipy.optimize.brentq`. No root in range → NoSolutionError
(a PricingError) saying which prices the range can reach.

Affine prices (a coupon or a participation under an engine that can tell, e.g. `FDEngine.linear_in`): the caller
passes `linear`, the price is known at every value from two evaluations, and the root is read off the line.
"""
from __future__ import annotations

from typing import Callable

from scipy.optimize import brentq

from otcdesk.pricing_engine.errors import NoSolutionError, PricingError

# field: (start_lo, start_hi, hard_lo, hard_hi)
SOLVE_RANGES = {
    "coupon_pct": (0.0, 30.0, -100.0, 500.0),
    "participation_pct": (1.0, 200.0, 1e-6, 2000.0),
    "strike_pct": (50.0, 150.0, 1.0, 1000.0),
    "vol": (0.05, 0.6, 1e-4, 4.0),
}
SOLVABLE = tuple(SOLVE_RANGES)


def solve_scalar(f: Callable[[float], float], target: float, start_lo: float, start_hi: float, hard_lo: float,
                 hard_hi: float, name: str = "value", xtol: float = 1e-7, max_evals: int = 40,
                 ftol: float = 1e-12) -> float:
    """Root of f(v) = target by bracket expansion then brentq."""
    cache: dict[float, float] = {}

    def g(v):
        if v not in cache:
            cache[v] = f(v) - target
        return cache[v]

    lo, hi = start_lo, start_hi
    glo, ghi = g(lo), g(hi)
    step = hi - lo
    while glo * ghi > 0:
        if (lo <= hard_lo and hi >= hard_hi) or len(cache) > max_evals:
            vals = sorted(v + target for v in cache.values())
            raise NoSolutionError(
                f"no {name} in [{hard_lo}, {hard_hi}] gives the target price: reachable prices are about "
                f"{vals[0]:.6g} .. {vals[-1]:.6g} against a target of {target:.6g}",
                {"field": name, "target": target, "range": [hard_lo, hard_hi], "reachable": [vals[0], vals[-1]]})
        if hi < hard_hi:
            nhi = min(hard_hi, hi + step)
            gn = g(nhi)
            if gn * ghi <= 0:
                lo, glo, hi, ghi = hi, ghi, nhi, gn
                break
            hi, ghi = nhi, gn
        if lo > hard_lo:
            nlo = max(hard_lo, lo - step)
            gn = g(nlo)
            if gn * glo <= 0:
                lo, glo, hi, ghi = nlo, gn, lo, glo
                break
            lo, glo = nlo, gn
        step *= 2
    if glo == 0:
        return lo
    if ghi == 0:
        return hi
    # one secant step first: exact when the price is linear in the input (coupons), then brentq
    sec = lo - glo * (hi - lo) / (ghi - glo)
    gs = g(sec)
    if abs(gs) <= ftol:
        return sec
    if glo * gs < 0:
        hi, ghi = sec, gs
    else:
        lo, glo = sec, gs
    return brentq(g, lo, hi, xtol=xtol, rtol=1e-12, maxiter=100)


def solve_affine(f: Callable[[float], float], target: float, a: float, b: float, hard_lo: float, hard_hi: float,
                 name: str = "value") -> float:
    """Root of f(v) = target when f is affine: from f(a) and f(b), within [hard_lo, hard_hi]."""
    fa, fb = f(a), f(b)
    slope = (fb - fa) / (b - a)
    v = a + (target - fa) / slope if slope != 0.0 else float("nan")
    if not hard_lo <= v <= hard_hi:
        ends = sorted((fa + (hard_lo - a) * slope, fa + (hard_hi - a) * slope))
        raise NoSolutionError(
            f"no {name} in [{hard_lo}, {hard_hi}] gives the target price: reachable prices are about "
            f"{ends[0]:.6g} .. {ends[1]:.6g} against a target of {target:.6g}",
            {"field": name, "target": target, "range": [hard_lo, hard_hi], "reachable": ends})
    return v


def solve_for(field: str, product, model, valuation_date, price_fn: Callable, target: float,
              linear: Callable | None = None):
    """Find `field` such that price_fn(product', model') == target; returns (value, product', model').

    price_fn(product, model, valuation_date) -> float is the signed price (side applied).
    linear(product, field, a, b) -> (v -> signed price) or None: an engine's affine price in `field` (two
    evaluations, see `FDEngine.linear_in`); when it answers, the root is exact from those two.
    """
    if field not in SOLVE_RANGES:
        raise PricingError(f"solve_for must be one of {SOLVABLE}, got {field!r}", {"field": "solve_for", "value": field})
    if field != "vol" and not hasattr(product, field):
        raise PricingError(f"{product.structure} has no field {field} to solve for",
                           {"field": "solve_for", "value": field, "structure": product.structure})
    lo, hi, hlo, hhi = SOLVE_RANGES[field]
    if field == "vol":
        f = lambda v: price_fn(product, model.bumped(vol=v), valuation_date)  # noqa: E731
        v = solve_scalar(f, target, lo, hi, hlo, hhi, field, xtol=1e-9)
        return v, product, model.bumped(vol=v)
    if field == "strike_pct" and getattr(product, "strike_level", None) is not None:
        product = product.replace(strike_level=None)
    cur = getattr(product, field, None)
    if field == "coupon_pct" and cur is None:
        product = product.replace(coupon_pct=0.0)
    if field == "strike_pct":
        hhi = max(hhi, hi)
    g = linear(product, field, 0.5 * (lo + hi), hi) if linear is not None and field != "strike_pct" else None
    if g is not None:
        v = solve_affine(g, target, 0.5 * (lo + hi), hi, hlo, hhi, field)
        g(v)  # the price at the answer (a combination of the two solves, no third)
        return v, product.replace(**{field: v}), model
    f = lambda v: price_fn(product.replace(**{field: v}), model, valuation_date)  # noqa: E731
    v = solve_scalar(f, target, lo, hi, hlo, hhi, field)
    return v, product.replace(**{field: v}), model
