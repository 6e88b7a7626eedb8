"""Discrete geometric-average Asian option, closed form (lognormal average); a control variate for MC.

ln G = (1/n) Σ ln S(t_i) over all n fixings (past ones known) is normal with
  m = (1/n)[Σ_past ln x_j + n_f ln x + (r − q − σ²/2) Σ t_i],   v = (σ²/n²) Σ_i Σ_j min(t_i, t_j),
so the call is e^{-rT}[e^{m+v/2} N(d1) − K N(d2)], d1 = (m − ln K + v)/√v, d2 = d1 − √v (put by parity).
Matches QuantLib's AnalyticDiscreteGeometricAveragePriceAsianEngine.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr

from otcdesk.pricing_engine.engines import ClosedFormEngine, register_engine
from otcdesk.pricing_engine.errors import PricingError


def geometric_asian(option_type: str, x: float, k: float, fixing_times, T: float, r: float, q: float, vol: float,
                    past_log_sum: float = 0.0, n_total: int | None = None) -> float:
    """Discrete geometric average-price option on relative spot x, strike k, fixings at `fixing_times` (years)."""
    t = np.asarray(fixing_times, dtype=float)
    nf = len(t)
    n = n_total or nf
    if n == 0:
        raise PricingError("an Asian option needs at least one fixing")
    m = (past_log_sum + nf * math.log(x) + (r - q - 0.5 * vol * vol) * t.sum()) / n
    var = vol * vol * float(np.minimum.outer(t, t).sum()) / (n * n) if nf else 0.0
    df = math.exp(-r * T)
    if var <= 1e-300:
        g = math.exp(m)
        return df * (max(g - k, 0.0) if option_type == "call" else max(k - g, 0.0))
    sv = math.sqrt(var)
    d1 = (m - math.log(k) + var) / sv
    d2 = d1 - sv
    fwd = math.exp(m + 0.5 * var)
    call = df * (fwd * ndtr(d1) - k * ndtr(d2))
    if option_type == "call":
        return float(call)
    return float(call - df * (fwd - k))


class AnalyticGeometricAsianEngine(ClosedFormEngine):
    name = "analytic"

    def supports(self, product) -> bool:
        from otcdesk.pricing_engine.products import AsianSpec
        return isinstance(product, AsianSpec) and product.averaging == "geometric"

    def value(self, product, model, valuation_date) -> float:
        res = product.resolve(valuation_date, model)
        past = sum(math.log(p) for p in res.past_fixings)
        leg = res.legs[0]
        v = geometric_asian(leg.kind, res.spot_x, leg.strike, res.fixing_times, res.T, model.rate, model.div,
                            model.vol, past, res.n_fixings)
        return leg.weight * v

    def method(self, product) -> str:
        return "geometric_asian_closed_form"


register_engine(AnalyticGeometricAsianEngine())
