"""Market data and models.

`MarketSpec` is the CONTRACTS.md `market` object. Its keys are market inputs (`MARKET_INPUTS`: `spot`,
`vol`, `rate`, `div`, `vol_surface`, and the addition `heston`), which change the price, or informational
(`MARKET_INFO`: `as_of`, `source`), echoed and never priced; any other key is refused, since it could only be ignored.
`GBMModel` is geometric Brownian motion with flat continuously-compounded rate, dividend yield and
volatility, or with a volatility surface (`surface.VolSurface`, built from `market.vol_surface` against the
valuation date by `MarketSpec.to_model(valuation_date)`); `inputs()` names the market inputs it carries. An
engine declares the inputs it can use (`market_inputs`) and refuses a model carrying any other
(`engines.refuse_unusable_inputs`): the book does not revalue on surfaces yet and refuses one, never
revaluing it with the flat vol instead.

`market.heston = {v0, kappa, theta, xi, rho}` (an addition to the contract) makes the model Heston's stochastic
volatility (`heston.HestonModel`, validated by `heston_params`): only the Monte Carlo engine prices it, the others
refuse it; it excludes `vol_surface` and `vol` (one volatility model per market: under Heston the volatility is √v).

With a surface, `market.vol` is optional: the model's `vol` is then the surface's reference vol (ATM, one
year) plus any parallel shift, and `bumped(vol=v)` shifts the whole surface by `v − vol` (vega, vol scenarios).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from otcdesk.pricing_engine.errors import PricingError

FLAT_INPUTS = frozenset({"spot", "vol", "rate", "div"})
MARKET_INPUTS = ("spot", "vol", "rate", "div", "vol_surface", "heston")
MARKET_INFO = ("as_of", "source")
HESTON_PARAMS = ("v0", "kappa", "theta", "xi", "rho")
NOT_IMPLEMENTED = {"vol_surface": "it revalues on flat vols only; give a flat market.vol",
                   "heston": "Heston stochastic volatility is priced by Monte Carlo only (engine mc); "
                             "give market.vol or market.vol_surface for this engine"}
"""Why a market input that CONTRACTS.md names is not usable by a user that refuses it."""


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


def heston_params(h) -> dict:
    """`market.heston` as floats, or PricingError with the field: an object with exactly v0, kappa, theta, xi
    (positive, finite) and rho (strictly between -1 and 1). The Feller condition is not required
    (`HestonModel.feller`; the QE scheme keeps the variance non-negative either way)."""
    if not isinstance(h, Mapping):
        raise PricingError("market.heston must be an object {v0, kappa, theta, xi, rho}",
                           {"field": "market.heston", "value": h})
    extra = sorted(set(h) - set(HESTON_PARAMS))
    if extra:
        raise PricingError(f"market.heston.{extra[0]} is not a Heston parameter: they are {', '.join(HESTON_PARAMS)}",
                           {"field": f"market.heston.{extra[0]}", "value": h[extra[0]]})
    out = {}
    for k in HESTON_PARAMS:
        v = h.get(k)
        if v is None:
            raise PricingError(f"market.heston.{k} is missing", {"field": f"market.heston.{k}"})
        try:
            f = float(v) if not isinstance(v, bool) else math.nan
        except (TypeError, ValueError):
            f = math.nan
        if not math.isfinite(f):
            raise PricingError(f"market.heston.{k} must be a finite number, got {v!r}",
                               {"field": f"market.heston.{k}", "value": v})
        out[k] = f
    for k in ("v0", "kappa", "theta", "xi"):
        if not out[k] > 0:
            raise PricingError(f"market.heston.{k} must be positive, got {out[k]}", {"field": f"market.heston.{k}",
                                                                                    "value": out[k]})
    if out["v0"] > 5 or out["theta"] > 5:
        raise PricingError("market.heston.v0 and theta are variances (0.04 for a 20% vol)",
                           {"field": "market.heston.v0/theta", "value": [out["v0"], out["theta"]]})
    if not -1 < out["rho"] < 1:
        raise PricingError(f"market.heston.rho must lie strictly between -1 and 1, got {out['rho']}",
                           {"field": "market.heston.rho", "value": out["rho"]})
    return out


@dataclass(frozen=True)
class MarketSpec:
    """The `market` object: spot (price level), vol (annual, 0.20 = 20%), rate and div (continuous, 0.03 = 3%);
    `vol_surface` (the CONTRACTS.md grid, shape-checked here, fitted in `to_model`), `heston` (validated
    parameters, see `heston_params`) and the informational keys in `info`. `vol` is None when only a surface
    or Heston parameters are given."""

    spot: float
    vol: float | None
    rate: float = 0.0
    div: float = 0.0
    vol_surface: Mapping[str, Any] | None = None
    info: Mapping[str, Any] = field(default_factory=dict)
    heston: Mapping[str, float] | None = None

    def __post_init__(self):
        if not self.spot > 0:
            raise PricingError(f"spot must be positive, got {self.spot}", {"field": "market.spot", "value": self.spot})
        if self.heston is not None:
            object.__setattr__(self, "heston", heston_params(self.heston))
            if self.vol_surface is not None:
                raise PricingError("market.heston and market.vol_surface are alternatives: give one or the other",
                                   {"field": "market.heston", "with": "market.vol_surface"})
            if self.vol is not None:
                raise PricingError("market.heston and market.vol are alternatives: under Heston the volatility is √v "
                                   "(market.heston.v0 is today's variance); give one or the other",
                                   {"field": "market.heston", "with": "market.vol"})
            return self._check_rates()
        if self.vol is None:
            if self.vol_surface is None:
                raise PricingError("market.vol is missing", {"field": "market.vol"})
            return self._check_rates()
        if self.vol < 0:
            raise PricingError(f"volatility cannot be negative, got {self.vol}", {"field": "market.vol", "value": self.vol})
        if self.vol == 0:
            raise PricingError("volatility must be positive, got 0", {"field": "market.vol", "value": self.vol})
        if self.vol > 5:
            raise PricingError(f"volatility {self.vol} looks like a percentage; give 0.20 for 20%",
                               {"field": "market.vol", "value": self.vol})
        self._check_rates()

    def _check_rates(self):
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
        heston = d.get("heston")
        if heston is not None and surface is not None:
            raise PricingError("market.heston and market.vol_surface are alternatives: give one or the other",
                               {"field": "market.heston", "with": "market.vol_surface"})
        if surface is not None:
            from otcdesk.pricing_engine.surface import validate_grid
            validate_grid(surface)  # the shape, here; the fit and calendar check need the valuation date
        vol = _num(d, "vol", None, required=surface is None and heston is None)
        return cls(spot=_num(d, "spot"), vol=vol, rate=_num(d, "rate", 0.0, False),
                   div=_num(d, "div", 0.0, False), vol_surface=surface,
                   info={k: d[k] for k in MARKET_INFO if k in d}, heston=heston)

    def to_dict(self) -> dict:
        out = dict(self.info)
        out.update(spot=self.spot, rate=self.rate, div=self.div)
        if self.vol is not None:
            out["vol"] = self.vol
        if self.vol_surface is not None:
            out["vol_surface"] = self.vol_surface
        if self.heston is not None:
            out["heston"] = dict(self.heston)
        return out

    def to_model(self, valuation_date=None):
        """The model: `heston.HestonModel` with `heston`, else a `GBMModel`; with a surface and a valuation date
        the surface is fitted (`surface.VolSurface`), without a valuation date it is carried unfitted (any engine
        then refuses it)."""
        if self.heston is not None:
            from otcdesk.pricing_engine.heston import HestonModel
            return HestonModel(spot=self.spot, rate=self.rate, div=self.div, **self.heston)
        surface = self.vol_surface
        if surface is not None and valuation_date is not None:
            from otcdesk.pricing_engine.surface import VolSurface
            surface = VolSurface.from_contract(surface, valuation_date, self.spot, self.rate, self.div)
            return GBMModel(spot=self.spot, vol=surface.ref_vol, rate=self.rate, div=self.div, vol_surface=surface)
        return GBMModel(spot=self.spot, vol=self.vol if self.vol is not None else float("nan"), rate=self.rate,
                        div=self.div, vol_surface=surface)


@dataclass(frozen=True)
class GBMModel:
    """dS/S = (rate - div) dt + vol dW under the pricing measure.

    `vol_surface` is a fitted `surface.VolSurface` (shifted so that its reference vol is `vol`), or the raw
    surface document when no valuation date was known (unusable: every engine refuses it), or None (flat vol).
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
        surf = self.vol_surface
        if vol is not None and surf is not None and hasattr(surf, "shifted"):
            kw["vol_surface"] = surf.shifted(surf.shift + (vol - self.vol))
        return replace(self, **kw)

    @property
    def surface(self):
        """The fitted `VolSurface`, or None (flat vol, or a surface not fitted)."""
        s = self.vol_surface
        return s if s is not None and hasattr(s, "local_vol") else None

    def flat(self, vol: float) -> "GBMModel":
        """The same market with a flat vol and no surface."""
        return replace(self, vol=float(vol), vol_surface=None)
