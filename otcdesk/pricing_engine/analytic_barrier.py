"""Reiner–Rubinstein closed forms for single continuous barriers (all 8 types, with rebate).

Formulas as in Haug, *The Complete Guide to Option Pricing Formulas*, §4.17.1 (terms A–F). Rebates:
paid at the hit for out options, at expiry for in options that never knocked in (QuantLib's
AnalyticBarrierEngine convention). Daily monitoring uses the Broadie–Glasserman–Kou continuity
correction (barrier moved away from spot by exp(0.5826 σ √Δt), Δt = 1/252).

Also prices sharkfins with a continuous or daily single barrier (rebate paid at maturity):
participation × knock-out vanilla + rebate × e^{-rT} P(hit).
"""
from __future__ import annotations

import math

from scipy.special import ndtr

from otcdesk.pricing_engine.engines import ClosedFormEngine, register_engine
from otcdesk.pricing_engine.errors import PricingError

BGK_BETA = 0.5826
DAILY_DT = 1.0 / 252.0


def _terms(S, X, H, K, T, r, q, v, eta, phi):
    b = r - q
    sT = v * math.sqrt(T)
    mu = (b - 0.5 * v * v) / (v * v)
    lam = math.sqrt(mu * mu + 2.0 * r / (v * v))
    x1 = math.log(S / X) / sT + (1 + mu) * sT
    x2 = math.log(S / H) / sT + (1 + mu) * sT
    y1 = math.log(H * H / (S * X)) / sT + (1 + mu) * sT
    y2 = math.log(H / S) / sT + (1 + mu) * sT
    z = math.log(H / S) / sT + lam * sT
    N = ndtr
    fq, fr = math.exp((b - r) * T), math.exp(-r * T)
    hs = H / S
    A = phi * S * fq * N(phi * x1) - phi * X * fr * N(phi * x1 - phi * sT)
    B = phi * S * fq * N(phi * x2) - phi * X * fr * N(phi * x2 - phi * sT)
    C = phi * S * fq * hs ** (2 * (mu + 1)) * N(eta * y1) - phi * X * fr * hs ** (2 * mu) * N(eta * y1 - eta * sT)
    D = phi * S * fq * hs ** (2 * (mu + 1)) * N(eta * y2) - phi * X * fr * hs ** (2 * mu) * N(eta * y2 - eta * sT)
    E = K * fr * (N(eta * x2 - eta * sT) - hs ** (2 * mu) * N(eta * y2 - eta * sT))
    F = K * (hs ** (mu + lam) * N(eta * z) + hs ** (mu - lam) * N(eta * z - 2 * eta * lam * sT))
    return A, B, C, D, E, F


def barrier_price(barrier_type: str, option_type: str, S: float, X: float, H: float, rebate: float, T: float,
                  r: float, q: float, vol: float) -> float:
    """Continuous single-barrier option value (Reiner–Rubinstein). barrier_type: up_out|up_in|down_out|down_in."""
    down = barrier_type.startswith("down")
    if (down and S <= H) or (not down and S >= H):
        raise PricingError(f"{barrier_type} barrier {H} is on the wrong side of spot {S}", {"field": "barrier_pct"})
    eta = 1 if down else -1
    phi = 1 if option_type == "call" else -1
    A, B, C, D, E, F = _terms(S, X, H, rebate, T, r, q, vol, eta, phi)
    hi = X > H
    table = {
        ("down_in", "call"): (C + E) if hi else (A - B + D + E),
        ("up_in", "call"): (A + E) if hi else (B - C + D + E),
        ("down_in", "put"): (B - C + D + E) if hi else (A + E),
        ("up_in", "put"): (A - B + D + E) if hi else (C + E),
        ("down_out", "call"): (A - C + F) if hi else (B - D + F),
        ("up_out", "call"): F if hi else (A - B + C - D + F),
        ("down_out", "put"): (A - B + C - D + F) if hi else F,
        ("up_out", "put"): (B - D + F) if hi else (A - C + F),
    }
    return float(table[(barrier_type, option_type)])


def no_hit_cash(direction: str, S: float, H: float, T: float, r: float, q: float, vol: float) -> float:
    """e^{-rT} P(barrier not hit before T): the in-option rebate term E with K = 1."""
    eta = 1 if direction == "down" else -1
    return float(_terms(S, S, H, 1.0, T, r, q, vol, eta, 1)[4])


def bgk_shift(H: float, spot: float, vol: float, dt: float = DAILY_DT) -> float:
    """Continuity correction: a discretely monitored barrier acts like a continuous one further away."""
    f = math.exp(BGK_BETA * vol * math.sqrt(dt))
    return H * f if H > spot else H / f


class AnalyticBarrierEngine(ClosedFormEngine):
    """Reiner–Rubinstein engine: barrier options and sharkfins with one continuous/daily barrier."""

    name = "analytic"

    def supports(self, product) -> bool:
        from otcdesk.pricing_engine.products import BarrierSpec, SharkfinSpec
        if isinstance(product, BarrierSpec):
            return product.barrier_monitoring in ("continuous", "daily") and not product.knocked_in
        if isinstance(product, SharkfinSpec):
            return product.barrier_monitoring in ("continuous", "daily")
        return False

    def value(self, product, model, valuation_date) -> float:
        from otcdesk.pricing_engine.products import BarrierSpec, VanillaSpec
        res = product.resolve(valuation_date, model)  # validates dates and barrier side
        x, T, r, q, v = res.spot_x, res.T, model.rate, model.div, model.vol
        H = product.barrier_pct / 100.0
        if product.barrier_monitoring == "daily":
            H = bgk_shift(H, x, v)
        w = product.participation_pct / 100.0
        k = (VanillaSpec.strike_x(product, res.initial_price) if isinstance(product, BarrierSpec)
             else product.strike_pct / 100.0)
        rebate = product.rebate_pct / 100.0
        if isinstance(product, BarrierSpec):
            # participation scales the option, not the rebate
            opt = barrier_price(product.barrier_type, product.option_type, x, k, H, 0.0, T, r, q, v)
            reb = barrier_price(product.barrier_type, product.option_type, x, k, H, rebate, T, r, q, v) - opt
            return w * opt + reb
        direction = "up" if product.option_type == "call" else "down"
        opt = barrier_price(f"{direction}_out", product.option_type, x, k, H, 0.0, T, r, q, v)
        return w * opt + rebate * (math.exp(-r * T) - no_hit_cash(direction, x, H, T, r, q, v))

    def method(self, product) -> str:
        return "reiner_rubinstein" + ("_bgk" if product.barrier_monitoring == "daily" else "")


register_engine(AnalyticBarrierEngine())
