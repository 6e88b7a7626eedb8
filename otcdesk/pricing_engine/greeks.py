"""Greeks by bump-and-revalue, in CONTRACTS.md units, for any `value(product, model, valuation_date)`.

delta = dV/dx, gamma = d2V/dx2 with x = spot / initial_price (central differences on a relative spot
bump), vega per 0.01 vol, rho per 0.01 rate (central differences), theta = V(valuation date + 1
calendar day) − V (same spot). The product is first *frozen* (start date and initial price fixed), so
that bumping spot or the date does not move the strike or the schedule.
"""
from __future__ import annotations

import datetime as dt
from typing import Callable

from otcdesk.pricing_engine.errors import PricingError
from otcdesk.pricing_engine.schedule import to_date

ValueFn = Callable[..., float]


def freeze(product, model, valuation_date):
    """The product with `start_date` and `initial_price` made explicit (no-op when already set)."""
    changes = {}
    vd = to_date(valuation_date, "valuation_date")
    if getattr(product, "start_date", None) is None:
        product.dates(vd)  # refuses a maturity on or before the valuation date with that reason
    if getattr(product, "initial_price", None) is None:
        changes["initial_price"] = model.spot
    if getattr(product, "start_date", None) is None:
        changes["start_date"] = vd
    return product.replace(**changes) if changes else product


def bump_greeks(value: ValueFn, product, model, valuation_date, base: float | None = None, *,
                rel_spot_bump: float = 0.01, vol_bump: float = 0.01, rate_bump: float = 0.0001,
                skip: tuple[str, ...] = ()) -> dict:
    """Bump-and-revalue Greeks. `skip` leaves out Greeks computed elsewhere (e.g. FD delta/gamma)."""
    vd = to_date(valuation_date, "valuation_date")
    p = freeze(product, model, vd)
    if base is None:
        base = value(p, model, vd)
    s0 = p.initial_price
    out: dict[str, float] = {}
    if "delta" not in skip or "gamma" not in skip:
        h = rel_spot_bump * model.spot
        up = value(p, model.bumped(spot=model.spot + h), vd)
        dn = value(p, model.bumped(spot=model.spot - h), vd)
        hx = h / s0
        out["delta"] = (up - dn) / (2 * hx)
        out["gamma"] = (up - 2 * base + dn) / (hx * hx)
    if "vega" not in skip:
        dv = min(vol_bump, 0.5 * model.vol)
        out["vega"] = (value(p, model.bumped(vol=model.vol + dv), vd)
                       - value(p, model.bumped(vol=model.vol - dv), vd)) / (2 * dv) * 0.01
    if "theta" not in skip:
        try:
            out["theta"] = value(p, model, vd + dt.timedelta(days=1)) - base
        except PricingError:  # matures tomorrow: no later valuation date exists
            out["theta"] = 0.0
    if "rho" not in skip:
        out["rho"] = (value(p, model.bumped(rate=model.rate + rate_bump), vd)
                      - value(p, model.bumped(rate=model.rate - rate_bump), vd)) / (2 * rate_bump) * 0.01
    return out
