"""`price(doc) -> doc`: the `otcdesk price` contract of CONTRACTS.md as a pure function.

Input: {product, market, valuation_date, engine, solve_for, target_price_pct, engine_options}.
`product` is a CONTRACTS.md product / QuoteRequest dict; `market` is required here (the CLI fills it
from the stored snapshot). Output: {price, price_pct, pv, stderr, greeks, engine, solved, diagnostics}
plus echo fields (product, market, valuation_date). Bad input raises PricingError.
With `market.vol_surface` (CONTRACTS.md) the surface is fitted against the valuation date (`surface.VolSurface`;
a malformed or calendar-arbitrageable one is refused with the reason), and the output gains `vol_used` (surface
name, vol model, implied vol at the strike and at the knock-in level) and `diagnostics.vol_model`/`surface`.
With `market.heston` (an addition) the mc engine prices Heston paths (`diagnostics.vol_model = "heston"`, `scheme`,
`feller`); it computes no Greeks, so `greeks` is null and `diagnostics.greeks_note` says why.
What is solved for is decided by `solve_field` alone: `solve_for`, or for a QuoteRequest with
`quote: "coupon"` and no `coupon_pct`, its coupon (target `target_price_pct`, default 0). The desk's
quoting (`otcdesk.app.quoting`) passes the QuoteRequest as it is and relies on that rule.
"""
from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Mapping

from otcdesk.pricing_engine.engines import EngineOptions, select_engine, vol_used
from otcdesk.pricing_engine.errors import PricingError
from otcdesk.pricing_engine.greeks import freeze
from otcdesk.pricing_engine.models import MarketSpec
from otcdesk.pricing_engine.products import ProductSpec, product_from_dict
from otcdesk.pricing_engine.results import GREEK_NAMES, PricingResult
from otcdesk.pricing_engine.schedule import to_date
from otcdesk.pricing_engine.solvers import solve_for


def side_sign(product: ProductSpec) -> float:
    return -1.0 if product.side == "client_sells" else 1.0


def price_product(product: ProductSpec, market: MarketSpec, valuation_date, engine: str = "auto",
                  options: EngineOptions | None = None) -> PricingResult:
    """Price a spec (holder's value, side applied) with the selected engine."""
    options = options or EngineOptions()
    vd = to_date(valuation_date, "valuation_date")
    model = market.to_model(vd)
    product = freeze(product, model, vd)
    eng = select_engine(product, engine, model)
    res = eng.price(product, model, vd, options)
    return res.scaled(side_sign(product))


def solve_field(doc: Mapping[str, Any], product: ProductSpec) -> str | None:
    """The field `price` solves for: `solve_for`, else `coupon_pct` for a QuoteRequest asking for a coupon
    (`quote: coupon`) that gives none. The one place this rule lives; a structure without a coupon is then
    refused by the solver with that reason."""
    if doc.get("solve_for"):
        return doc["solve_for"]
    if product.quote == "coupon" and getattr(product, "coupon_pct", None) is None:
        return "coupon_pct"
    return None


def _target(doc: Mapping[str, Any]) -> float:
    """`target_price_pct` (default 0) as a fraction."""
    target = doc.get("target_price_pct")
    try:
        return float(target if target is not None else 0.0) / 100.0
    except (TypeError, ValueError):
        raise PricingError("target_price_pct must be a number", {"field": "target_price_pct"}) from None


def price(doc: Mapping[str, Any]) -> dict:
    """The `otcdesk price` output document for one input document (see module docstring)."""
    t0 = time.perf_counter()
    if not isinstance(doc, Mapping):
        raise PricingError("the price request must be a JSON object", {"value": doc})
    if doc.get("product") is None:
        raise PricingError("product is missing", {"field": "product"})
    product = product_from_dict(doc["product"])
    market = MarketSpec.from_dict(doc.get("market"))
    vd_raw = doc.get("valuation_date") or market.info.get("as_of")
    if vd_raw is None:
        raise PricingError("valuation_date is missing", {"field": "valuation_date"})
    vd = to_date(vd_raw, "valuation_date")
    options = EngineOptions.from_dict(doc.get("engine_options"))
    kind = doc.get("engine") or "auto"
    model = market.to_model(vd)
    product = freeze(product, model, vd)
    eng = select_engine(product, kind, model)
    sign = side_sign(product)

    solved: dict[str, float] = {}
    res = None
    field = solve_field(doc, product)
    if field == "vol" and model.surface is not None:
        raise PricingError("solve_for vol solves a flat vol: with market.vol_surface give market.vol instead",
                           {"field": "solve_for", "value": "vol"})
    if field == "vol" and "heston" in model.inputs():
        raise PricingError("solve_for vol solves a flat vol: under market.heston there is none; give market.vol "
                           "instead", {"field": "solve_for", "value": "vol"})
    if field:
        target = _target(doc)
        quick = replace(options, greeks=False, ladder=None)
        seen: dict = {}

        def signed(p, m, v):
            seen[(p, m)] = r = eng.price(p, m, v, quick)
            return sign * r.price

        def linear(p, f, a, b):  # an engine that knows its price is affine in f (FD: coupons, participation)
            at = eng.linear_in(f, p, model, vd, quick, a, b) if hasattr(eng, "linear_in") else None
            if at is None:
                return None

            def g(v):
                pv, r = at(v)
                seen[(pv, model)] = r
                return sign * r.price
            return g

        value, product, model = solve_for(field, product, model, vd, signed, target, linear)
        solved[field] = value
        if not eng.supports(product):  # e.g. a solved strike changed what the engine can do
            eng = select_engine(product, kind, model)
        elif not options.greeks and not options.ladder:  # the solver's last price is the answer
            res = seen.get((product, model))
    res = (res or eng.price(product, model, vd, options)).scaled(sign)
    greeks = {k: float(res.greeks[k]) for k in GREEK_NAMES if k in res.greeks}
    diagnostics = dict(res.diagnostics)
    diagnostics.setdefault("paths", None)
    diagnostics.setdefault("steps", None)
    diagnostics.setdefault("vol_model", "flat")
    used = vol_used(product, model, vd, diagnostics["vol_model"])
    if model.surface is not None:
        diagnostics["surface"] = model.surface.describe()
    diagnostics["elapsed_s"] = time.perf_counter() - t0
    notional = product.notional
    out_market = market.to_dict()
    if field == "vol":
        out_market["vol"] = model.vol
        used.update(vol=model.vol, vol_at_strike=model.vol,
                    vol_at_knock_in=model.vol if used["vol_at_knock_in"] is not None else None)
    return {
        "price": float(res.price),
        "price_pct": float(res.price) * 100.0,
        "pv": float(res.price) * notional if notional is not None else None,
        "stderr": None if res.stderr is None else float(res.stderr),
        "greeks": None if not greeks and "greeks_note" in diagnostics else greeks,
        "engine": res.engine or eng.name,
        "solved": solved,
        "vol_used": used,
        "diagnostics": diagnostics,
        "product": product.to_dict(),
        "market": out_market,
        "valuation_date": vd.isoformat(),
    }
