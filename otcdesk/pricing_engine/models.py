"""Market data and models.

`MarketSpec` is the CONTRACTS.md `market` object (`spot`, `vol`, `rate`, `div`, extra keys kept).
`GBMModel` is geometric Brownian motion with flat continuously-compounded rate, dividend yield and
volatility. Engines only talk to the model through `sigma(t, x)`, `rate`, `div`, `spot`, so a vol
surface can be plugged in later (``vol_surface``: any object with ``vol(t, x) -> float``) without
changing any engine signature; engines that need a single number use `model.sigma()` (the flat or
at-the-money level).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Protocol

from otcdesk.pricing_engine.errors import PricingError


class VolSurface(Protocol):
    def vol(self, t: float, x: float) -> float: ...


def _num(d: Mapping, key: str, default=None, required=True) -> float:
    v = d.get(key, default)
    if v is None:
        if required:
            raise PricingError(f"market.{key} is missing", {"field": f"market.{key}"})
        return default
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise PricingError(f"market.{key} must be a number, got {v!r}", {"field": f"market.{key}", "value": v}) from None
    if not math.isfinite(f):
        raise PricingError(f"market.{key} must be finite", {"field": f"market.{key}", "value": v})
    return f


@dataclass(frozen=True)
class MarketSpec:
    """The `market` object: spot (price level), vol (annual, 0.20 = 20%), rate and div (continuous, 0.03 = 3%)."""

    spot: float
    vol: float
    rate: float = 0.0
    div: float = 0.0
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if not self.spot > 0:
            raise PricingError(f"spot must be positive, got {self.spot}", {"field": "market.spot", "value": self.spot})
        if self.vol < 0:
            raise PricingError(f"volatility cannot be negative, got {self.vol}", {"field": "market.vol", "value": self.vol})
        if self.vol == 0:
            raise PricingError("volatility must be positive, got 0", {"field": "market.vol", "value": self.vol})
        if self.vol > 5:
            raise PricingError(f"volatility {self.vol} looks like a percentage; give 0.20 for 20%",
                               {"field": "market.vol", "value": self.vol})
        if abs(self.rate) > 1 or abs(self.div) > 1:
            raise PricingError("rate and div are decimals (0.03 for 3%)",
                               {"field": "market.rate/div", "value": [self.rate, self.div]})

    @classmethod
    def from_dict(cls, d: Mapping | None) -> "MarketSpec":
        if d is None:
            raise PricingError("market is missing: give {spot, vol, rate, div}", {"field": "market"})
        if not isinstance(d, Mapping):
            raise PricingError("market must be an object {spot, vol, rate, div}", {"field": "market", "value": d})
        known = {"spot", "vol", "rate", "div"}
        return cls(spot=_num(d, "spot"), vol=_num(d, "vol"), rate=_num(d, "rate", 0.0, False),
                   div=_num(d, "div", 0.0, False), extra={k: v for k, v in d.items() if k not in known})

    def to_dict(self) -> dict:
        out = dict(self.extra)
        out.update(spot=self.spot, vol=self.vol, rate=self.rate, div=self.div)
        return out

    def to_model(self) -> "GBMModel":
        return GBMModel(spot=self.spot, vol=self.vol, rate=self.rate, div=self.div)


@dataclass(frozen=True)
class GBMModel:
    """dS/S = (rate - div) dt + sigma dW under the pricing measure."""

    spot: float
    vol: float
    rate: float = 0.0
    div: float = 0.0
    vol_surface: VolSurface | None = None

    def sigma(self, t: float | None = None, x: float | None = None) -> float:
        """Volatility at time t (years) and relative level x = S/S0; flat unless a surface is attached."""
        if self.vol_surface is not None and t is not None and x is not None:
            return float(self.vol_surface.vol(t, x))
        return self.vol

    def bumped(self, *, spot: float | None = None, vol: float | None = None, rate: float | None = None,
               div: float | None = None) -> "GBMModel":
        """A copy with some parameters replaced (used for bump-and-revalue Greeks and scenarios)."""
        kw = {k: v for k, v in dict(spot=spot, vol=vol, rate=rate, div=div).items() if v is not None}
        return replace(self, **kw)

    def discount(self, t: float) -> float:
        return math.exp(-self.rate * t)

    def forward(self, t: float) -> float:
        return self.spot * math.exp((self.rate - self.div) * t)
