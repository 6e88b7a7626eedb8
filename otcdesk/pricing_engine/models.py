"""Market data and models.

`MarketSpec` is the CONTRACTS.md `market` object. Its keys are market inputs (`MARKET_INPUTS`: `spot`,
`vol`, `rate`, `div`, `vol_surface`), which change the price, or informational (`MARKET_INFO`: `as_of`,
`source`), echoed and never priced; any other key is refused, since it could only be ignored.
`GBMModel` is geometric Brownian motion with flat continuously-compounded rate, dividend yield and
volatility; `inputs()` names the market inputs it carries. An engine declares the inputs it can use
(`market_inputs`) and refuses a model carrying any other (`engines.refuse_unusable_inputs`): until
volatility surfaces are implemented, a `vol_surface` is carried to the model and refused by every
engine and by the book, never priced with the flat vol instead.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from otcdesk.pricing_engine.errors import PricingError

FLAT_INPUTS = frozenset({"spot", "vol", "rate", "div"})
MARKET_INPUTS = ("spot", "vol", "rate", "div", "vol_surface")
MARKET_INFO = ("as_of", "source")
NOT_IMPLEMENTED = {"vol_surface": "volatility surfaces are not implemented yet; price with a flat market.vol"}
"""Why a market input that CONTRACTS.md names is not usable yet."""


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
    """The `market` object: spot (price level), vol (annual, 0.20 = 20%), rate and div (continuous, 0.03 = 3%);
    `vol_surface` (the CONTRACTS.md grid, not interpreted yet) and the informational keys in `info`."""

    spot: float
    vol: float
    rate: float = 0.0
    div: float = 0.0
    vol_surface: Mapping[str, Any] | None = None
    info: Mapping[str, Any] = field(default_factory=dict)

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
        for k in d:
            if k not in MARKET_INPUTS and k not in MARKET_INFO:
                raise PricingError(f"market.{k} is not a market input: the inputs are {', '.join(MARKET_INPUTS)}, "
                                   f"and {' and '.join(MARKET_INFO)} are informational",
                                   {"field": f"market.{k}", "value": d[k]})
        surface = d.get("vol_surface")
        if surface is not None and d.get("vol") is None:
            raise PricingError(f"market.vol_surface cannot be used: {NOT_IMPLEMENTED['vol_surface']}",
                               {"field": "market.vol_surface"})
        return cls(spot=_num(d, "spot"), vol=_num(d, "vol"), rate=_num(d, "rate", 0.0, False),
                   div=_num(d, "div", 0.0, False), vol_surface=surface,
                   info={k: d[k] for k in MARKET_INFO if k in d})

    def to_dict(self) -> dict:
        out = dict(self.info)
        out.update(spot=self.spot, vol=self.vol, rate=self.rate, div=self.div)
        if self.vol_surface is not None:
            out["vol_surface"] = self.vol_surface
        return out

    def to_model(self) -> "GBMModel":
        return GBMModel(spot=self.spot, vol=self.vol, rate=self.rate, div=self.div, vol_surface=self.vol_surface)


@dataclass(frozen=True)
class GBMModel:
    """dS/S = (rate - div) dt + vol dW under the pricing measure.

    `vol_surface` is the market's surface document, carried only so that engines refuse it (see the module
    docstring); every engine prices with the flat `vol`.
    """

    spot: float
    vol: float
    rate: float = 0.0
    div: float = 0.0
    vol_surface: Mapping[str, Any] | None = None

    def inputs(self) -> frozenset[str]:
        """The market inputs this model carries."""
        return FLAT_INPUTS | ({"vol_surface"} if self.vol_surface is not None else frozenset())

    def bumped(self, *, spot: float | None = None, vol: float | None = None, rate: float | None = None,
               div: float | None = None) -> "GBMModel":
        """A copy with some parameters replaced (used for bump-and-revalue Greeks and scenarios)."""
        kw = {k: v for k, v in dict(spot=spot, vol=vol, rate=rate, div=div).items() if v is not None}
        return replace(self, **kw)
