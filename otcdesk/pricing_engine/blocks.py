"""Building blocks: the engine-facing, resolved form of every product.

A product spec (`pricing_engine.products`) *resolves* against a valuation date and a model into a
`ResolvedSchedule`: plain floats and tuples, with

- levels relative to the initial price (x = S / initial_price; 1.03 = 103%),
- times in ACT/365 years from the valuation date. Knock-out and coupon observations *on* the
  valuation date are still to come (the valuation spot is that day's close) and get the time
  `SAME_DAY` (1e-8 years) so every engine applies them to the current spot; knock-in and barrier
  observations are kept strictly after the valuation date (a spot already through them is refused,
  or is the `knocked_in` state),
- cash amounts per unit of notional (a coupon of 20% p.a. over 0.5y is 0.10).

Blocks:

- `Leg(kind, strike, weight)` -- terminal payoff pieces on x_T: `call` max(x-K,0), `put` max(K-x,0),
  `digital_call` 1{x>K}, `digital_put` 1{x<K}, `cash` 1, `asset` x. On an `asian`, x_T is the average.
- `KnockOut(direction, monitoring, times, levels, rebates, rebate_at)` -- the product dies when
  x >= level ("up") or x <= level ("down") at an observation time (`discrete`) or at any time
  (`continuous`, constant level `levels[0]`); the holder then gets `rebates[i]` (constant `rebates[0]`
  when continuous), paid at the knock-out time (`rebate_at="hit"`) or at maturity (`"maturity"`).
  Knock-outs apply in both knock-in states.
- `KnockIn(direction, monitoring, times, level)` -- switches the state from not-knocked-in to
  knocked-in when x <= level ("down") / x >= level ("up") at `times` (`discrete`), at any time
  (`continuous`) or on x_T only (`maturity`). At maturity the holder gets `legs_ki` in the knocked-in
  state, `legs` otherwise.
- `CouponStrip(times, barriers, amounts, memory)` -- phoenix coupons: at times[i], if x >= barriers[i]
  the holder gets amounts[i] (plus all unpaid earlier amounts when `memory`), paid then. Applied
  before the knock-out test at the same date.

Order of events at one date: coupons, then knock-out, then knock-in (a knock-in at a knock-out
date is irrelevant). Engines discount cash at the model's flat rate.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

SAME_DAY = 1e-8  # time of an observation falling on the valuation date (see module docstring)
LEG_KINDS = ("call", "put", "digital_call", "digital_put", "cash", "asset")


@dataclass(frozen=True)
class Leg:
    kind: str
    strike: float = 0.0
    weight: float = 1.0

    def payoff(self, x, xp=np):
        """Vectorised payoff on relative levels `x` (array on backend `xp`)."""
        k, w = self.strike, self.weight
        if self.kind == "call":
            return w * xp.maximum(x - k, 0.0)
        if self.kind == "put":
            return w * xp.maximum(k - x, 0.0)
        if self.kind == "digital_call":
            return w * (x > k).astype(x.dtype)
        if self.kind == "digital_put":
            return w * (x < k).astype(x.dtype)
        if self.kind == "cash":
            return w * xp.ones_like(x)
        if self.kind == "asset":
            return w * x
        raise ValueError(self.kind)


def legs_payoff(legs, x, xp=np):
    """Sum of leg payoffs on `x` (zeros when there are no legs)."""
    out = xp.zeros_like(x)
    for leg in legs:
        out = out + leg.payoff(x, xp)
    return out


@dataclass(frozen=True)
class KnockOut:
    direction: str  # "up" | "down"
    monitoring: str  # "discrete" | "continuous"
    times: tuple[float, ...] = ()
    levels: tuple[float, ...] = ()
    rebates: tuple[float, ...] = ()
    rebate_at: str = "hit"  # "hit" | "maturity"
    accruals: tuple[float, ...] = ()  # ACT/365 start→observation (autocall coupons), informational
    dates: tuple[dt.date, ...] = ()

    @property
    def level(self) -> float:
        return self.levels[0]

    @property
    def rebate(self) -> float:
        return self.rebates[0] if self.rebates else 0.0


@dataclass(frozen=True)
class KnockIn:
    direction: str  # "down" | "up"
    monitoring: str  # "discrete" | "continuous" | "maturity"
    level: float
    times: tuple[float, ...] = ()
    dates: tuple[dt.date, ...] = ()


@dataclass(frozen=True)
class CouponStrip:
    times: tuple[float, ...]
    barriers: tuple[float, ...]
    amounts: tuple[float, ...]
    memory: bool = False
    dates: tuple[dt.date, ...] = ()
    past_amounts: tuple[float, ...] = ()  # amounts of coupon dates before the valuation date (memory)


@dataclass(frozen=True)
class ResolvedSchedule:
    """A product resolved at a valuation date (see module docstring). Plain data, engine-agnostic."""

    structure: str
    valuation_date: dt.date
    start_date: dt.date
    maturity_date: dt.date
    T: float  # ACT/365 valuation → maturity
    spot_x: float  # spot / initial_price
    initial_price: float
    legs: tuple[Leg, ...] = ()
    legs_ki: tuple[Leg, ...] | None = None
    knock_outs: tuple[KnockOut, ...] = ()
    knock_in: KnockIn | None = None
    knocked_in: bool = False
    coupons: CouponStrip | None = None
    unpaid_coupons: int = 0  # phoenix memory: coupons missed before the valuation date
    fixing_times: tuple[float, ...] = ()  # asian: future fixings
    past_fixings: tuple[float, ...] = ()  # asian: relative fixings already observed
    n_fixings: int = 0
    averaging: str | None = None  # "arithmetic" | "geometric"
    maturity_accrual: float = 0.0  # ACT/365 start → maturity
    extra: Mapping[str, Any] = field(default_factory=dict)

    # --- conveniences for autocallables (first knock-out block) -------------------------
    @property
    def ko_times(self) -> np.ndarray:
        return np.asarray(self.knock_outs[0].times if self.knock_outs else (), dtype=float)

    @property
    def ki_times(self) -> np.ndarray:
        return np.asarray(self.knock_in.times if self.knock_in else (), dtype=float)

    def event_times(self) -> np.ndarray:
        """Every observation time of any block (sorted, unique), plus maturity."""
        ts = [self.T]
        for ko in self.knock_outs:
            if ko.monitoring == "discrete":
                ts.extend(ko.times)
        if self.knock_in is not None and self.knock_in.monitoring == "discrete":
            ts.extend(self.knock_in.times)
        if self.coupons is not None:
            ts.extend(self.coupons.times)
        ts.extend(self.fixing_times)
        return np.unique(np.asarray([t for t in ts if t > 0], dtype=float))
