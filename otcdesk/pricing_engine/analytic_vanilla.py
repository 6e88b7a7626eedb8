"""Black–Scholes closed forms: vanilla, digital (cash-or-nothing) and any European payoff built from legs.

`european_value` prices a sum of `Leg`s restricted to an interval of x_T (plus cash outside it),
exactly, from two primitives on [a, b):
  cash(a, b)  = e^{-rT} P(a <= x_T < b)         = e^{-rT} [N(d2(a)) - N(d2(b))]
  asset(a, b) = E[e^{-rT} x_T 1{a <= x_T < b}]  = x e^{-qT} [N(d1(a)) - N(d1(b))]
That covers vanilla, spreads, digitals, and European (at-maturity) barriers, sharkfins and knock-ins.
The formulas take NumPy arrays as well as floats for x, T, r, q and vol (levels a, b, k are floats):
the book revalues its closed-form trades over Greek bumps and the spot x vol grid with them.

On a vol surface the vol is a `Smile` (the surface's slice at the maturity): a call or put uses the implied
vol at its strike, and the two primitives take the smile's slope, so that every European payoff is priced
on the terminal distribution the surface implies (a digital is −∂C/∂K, not N(d2) at one vol):
  cash_above(k)  = e^{-rT} N(d2(k)) − c(k),   asset_above(k) = x e^{-qT} N(d1(k)) − k c(k),
  c(k) = x e^{-qT} φ(d1(k)) √T ∂σ/∂k.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr

from otcdesk.pricing_engine.blocks import Leg, ResolvedSchedule
from otcdesk.pricing_engine.engines import ClosedFormEngine, register_engine, surface_time
from otcdesk.pricing_engine.errors import PricingError

INF = math.inf


def _d(x, k: float, T, r, q, s):
    """(N(d1), N(d2)) for the event x_T > k; handles k = 0 and k = inf."""
    if k <= 0:
        return 1.0, 1.0
    if k == INF:
        return 0.0, 0.0
    sd = s * np.sqrt(T)
    d1 = (np.log(x / k) + (r - q + 0.5 * s * s) * T) / sd
    return ndtr(d1), ndtr(d1 - sd)


class Smile:
    """The implied vols of one maturity as a function of the relative strike k = K / initial price."""

    def __init__(self, surface, initial_price: float, T_surface: float):
        self.surface, self.s0, self.T = surface, initial_price, T_surface

    def vol(self, k: float) -> float:
        return float(self.surface.implied_vol(k * self.s0, self.T))

    def slope(self, k: float) -> float:
        """∂σ/∂k."""
        return float(self.surface.smile_slope(k * self.s0, self.T)) * self.s0

    def above(self, x, k: float, T, r, q):
        """(asset_above(k), cash_above(k)): E[e^{-rT} x_T 1{x_T>k}] and e^{-rT} P(x_T > k) on the smile."""
        if k <= 0:
            return x * np.exp(-q * T), np.exp(-r * T) + 0.0 * x
        if k == INF:
            return 0.0 * x, 0.0 * x
        s = self.vol(k)
        sd = s * np.sqrt(T)
        d1 = (np.log(x / k) + (r - q + 0.5 * s * s) * T) / sd
        c = x * np.exp(-q * T) * np.exp(-0.5 * d1 * d1) / math.sqrt(2 * math.pi) * np.sqrt(T) * self.slope(k)
        return x * np.exp(-q * T) * ndtr(d1) - k * c, np.exp(-r * T) * ndtr(d1 - sd) - c


def cash_between(x, a: float, b: float, T, r, q, s):
    if b <= a:
        return 0.0 * x
    if isinstance(s, Smile):
        return s.above(x, a, T, r, q)[1] - s.above(x, b, T, r, q)[1]
    return np.exp(-r * T) * (_d(x, a, T, r, q, s)[1] - _d(x, b, T, r, q, s)[1])


def asset_between(x, a: float, b: float, T, r, q, s):
    if b <= a:
        return 0.0 * x
    if isinstance(s, Smile):
        return s.above(x, a, T, r, q)[0] - s.above(x, b, T, r, q)[0]
    return x * np.exp(-q * T) * (_d(x, a, T, r, q, s)[0] - _d(x, b, T, r, q, s)[0])


def leg_value(leg: Leg, x, T, r, q, s, a: float = 0.0, b: float = INF):
    """Discounted value of `leg` paid only when a <= x_T < b."""
    k, w = leg.strike, leg.weight
    if leg.kind == "call":
        lo = max(a, k)
        v = asset_between(x, lo, b, T, r, q, s) - k * cash_between(x, lo, b, T, r, q, s)
    elif leg.kind == "put":
        hi = min(b, k)
        v = k * cash_between(x, a, hi, T, r, q, s) - asset_between(x, a, hi, T, r, q, s)
    elif leg.kind == "digital_call":
        v = cash_between(x, max(a, k), b, T, r, q, s)
    elif leg.kind == "digital_put":
        v = cash_between(x, a, min(b, k), T, r, q, s)
    elif leg.kind == "cash":
        v = cash_between(x, a, b, T, r, q, s)
    elif leg.kind == "asset":
        v = asset_between(x, a, b, T, r, q, s)
    else:
        raise PricingError(f"unknown leg kind {leg.kind}")
    return w * v


def european_value(legs, x, T, r, q, s, a: float = 0.0, b: float = INF):
    return sum(leg_value(leg, x, T, r, q, s, a, b) for leg in legs)


def bs_price(option_type: str, x: float, k: float, T: float, r: float, q: float, s: float) -> float:
    """Black–Scholes call/put on relative spot x and strike k (per unit of initial price)."""
    return float(leg_value(Leg(option_type, k, 1.0), x, T, r, q, s))


def is_european(res: ResolvedSchedule) -> bool:
    """True when every event of `res` is at maturity, so its value depends on x_T only."""
    if res.coupons is not None or res.fixing_times or res.averaging:
        return False
    for ko in res.knock_outs:
        if ko.monitoring != "discrete" or tuple(ko.times) != (res.T,):
            return False
    ki = res.knock_in
    return ki is None or res.knocked_in or ki.monitoring == "maturity"


def value_european(res: ResolvedSchedule, x, T, r, q, s):
    """Value of a product whose only events are at maturity (see `is_european`) at spot x, term T, rate r,
    dividend q and vol s (floats, or arrays broadcast together)."""
    lo, hi = 0.0, INF
    rebate_lo = rebate_hi = 0.0
    for ko in res.knock_outs:  # at-maturity knock-out: x_T >= level (up) or <= level (down) pays the rebate
        if ko.direction == "up":
            hi, rebate_hi = min(hi, ko.level), ko.rebate
        else:
            lo, rebate_lo = max(lo, ko.level), ko.rebate
    if lo >= hi:
        return rebate_hi * np.exp(-r * T) + 0.0 * x
    # x_T == level knocks out; with a continuous law the boundary point has no mass
    v = rebate_hi * cash_between(x, hi, INF, T, r, q, s) + rebate_lo * cash_between(x, 0.0, lo, T, r, q, s)
    ki = res.knock_in
    if ki is None or res.knocked_in:
        legs = res.legs_ki if (ki is not None and res.knocked_in and res.legs_ki is not None) else res.legs
        return v + european_value(legs, x, T, r, q, s, lo, hi)
    legs_ki = res.legs_ki or ()
    if ki.direction == "down":
        ki_region, nki_region = (lo, min(hi, ki.level)), (max(lo, ki.level), hi)
    else:
        ki_region, nki_region = (max(lo, ki.level), hi), (lo, min(hi, ki.level))
    return (v + european_value(legs_ki, x, T, r, q, s, *ki_region)
            + european_value(res.legs, x, T, r, q, s, *nki_region))


class AnalyticEuropeanEngine(ClosedFormEngine):
    """Closed-form engine for products whose payoff depends on x_T only (vanilla, spread, digital,
    at-maturity barriers / sharkfins / double sharkfins, European-knock-in airbag)."""

    name = "analytic"
    surface_use = "smile"

    def supports(self, product) -> bool:
        from otcdesk.pricing_engine.products import (AirbagSpec, BarrierSpec, DigitalSpec, DoubleSharkfinSpec, SharkfinSpec,
                                             SpreadSpec, VanillaSpec)
        if isinstance(product, (VanillaSpec, SpreadSpec, DigitalSpec)):
            return True
        if isinstance(product, BarrierSpec) and product.is_in and product.knocked_in:
            return True  # already knocked in: a plain vanilla
        if isinstance(product, (BarrierSpec, SharkfinSpec, DoubleSharkfinSpec)):
            return product.barrier_monitoring == "maturity"
        if isinstance(product, AirbagSpec):
            return product.ki_observation == "maturity" or product.knocked_in
        return bool(getattr(product, "is_european", lambda: False)())

    def value(self, product, model, valuation_date) -> float:
        res = product.resolve(valuation_date, model)
        if not is_european(res):
            raise PricingError("the analytic European engine needs a payoff on the final price only")
        vol = model.vol
        if model.surface is not None:
            vol = Smile(model.surface, res.initial_price, res.T + surface_time(model, valuation_date))
        return float(value_european(res, res.spot_x, res.T, model.rate, model.div, vol))

    def method(self, product) -> str:
        return "black_scholes_closed_form"


register_engine(AnalyticEuropeanEngine())
