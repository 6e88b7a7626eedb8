"""Pricing one parsed QuoteRequest on the market snapshot: the desk graph's `price` dependency.

`price_request` gives the engine's fair value; `quote_request` runs it through the desk's quoting policy
(`app.trading.margins.MarginPolicy`), which is what `wiring.build_desk` hands the desk graph. `solve_again`
re-solves a priced line's solved field against another target price (the policy's exact coupon re-solve).
"""
from __future__ import annotations

import logging
from datetime import date, datetime, timedelta, timezone

from otcdesk.agents.quote_card import describe_vol_used
from otcdesk.app.market import market_for
from otcdesk.app.trading.margins import SOLVED_DOWN

log = logging.getLogger(__name__)
_NON_PRODUCT_FIELDS = {"missing", "assumed"}
_MARKET_INPUTS = ("spot", "vol", "rate", "div", "vol_surface")  # the underlying's stored surface when it has one
_CN_TZ = timezone(timedelta(hours=8))


def today_cn() -> date:
    """The trading date in Beijing time."""
    return datetime.now(_CN_TZ).date()


def price_request(req: dict, *, snapshot: dict | None = None, valuation_date: date | None = None,
                  engine: str = "auto", solve_for: str | None = None,
                  target_price_pct: float | None = None, greeks: bool = True) -> dict:
    """A priced line: the request, the `otcdesk price` result fields and the market used; or an `error`.

    The request goes to `price` as it is (`quote` included): what to solve for, e.g. the fair coupon of a
    request asking for one, is `pricing_engine.api.solve_field`'s rule (`solve_for` overrides it). When a field
    was solved, `target_price_pct` (default 0) is the price it was solved to, recorded in the line.
    `greeks=False` skips the Greeks (a solve then costs only its own pricings).
    The underlying's stored vol surface, when the snapshot carries one, prices the request (`vol_used` in the
    line says which vols: surface name, vol at the strike and at the knock-in level).
    """
    underlying = req.get("underlying")
    vd = valuation_date or today_cn()
    market = market_for(underlying, snapshot, with_surface=True, valuation_date=vd) if underlying else None
    if market is None:
        return {"request": req, "error": f"标的 {underlying or '?'} 不在报价标的池"}
    doc = {
        "product": {k: v for k, v in req.items() if k not in _NON_PRODUCT_FIELDS and v is not None},
        "market": {k: market[k] for k in _MARKET_INPUTS if k in market},
        "valuation_date": vd.isoformat(),
        "engine": engine,
    }
    if not greeks:
        doc["engine_options"] = {"greeks": False}
    if solve_for:
        doc["solve_for"] = solve_for
    if target_price_pct is not None:
        doc["target_price_pct"] = target_price_pct
    line: dict = {"request": req}
    result = _run(doc, req, line)
    if result is None:
        return line
    line.update(result)
    line["market"] = market
    line["vol_note"] = describe_vol_used(line)
    if result.get("solved"):
        line["target_price_pct"] = float(target_price_pct or 0.0)
    return line


def quote_request(req: dict, policy, **kw) -> dict:
    """The desk's quote for a request: `price_request` then `policy.apply` (fair → quote).

    A request that asks for a coupon or participation is solved twice (fair, then quoted less the margin): the
    fair solve skips the Greeks, which the card and the pre-trade check take from the quoted terms."""
    asks = req.get("quote")
    fair = price_request(req, greeks=not (asks and f"{asks}_pct" in SOLVED_DOWN), **kw)
    return policy.apply(fair)


def with_pretrade(line: dict, risk) -> dict:
    """The line with `pretrade`: how it would move the desk's delta and vega on its underlying against the limits
    (`trading.risk.RiskService.pretrade`; None before the book has a snapshot, or for an error line)."""
    if "error" not in line:
        try:
            line["pretrade"] = risk.pretrade(line)
        except Exception:  # a check that fails must not lose the quote: the card says it was not checked
            log.exception("pre-trade check failed")
            line["pretrade"] = {"error": "pre-trade check failed", "breached": None}
    return line


def solve_again(line: dict, field: str, target_price_pct: float) -> dict:
    """The `price` result of the line's product with `field` solved for `target_price_pct`, on the line's market,
    valuation date and engine; or `{"error"}`. The line itself is not changed."""
    product = {k: v for k, v in (line.get("product") or {}).items() if k != field}
    market = line.get("market") or {}
    doc = {"product": product, "market": {k: market[k] for k in _MARKET_INPUTS if k in market},
           "valuation_date": line.get("valuation_date"), "engine": line.get("engine") or "auto",
           "solve_for": field, "target_price_pct": target_price_pct}
    out: dict = {}
    result = _run(doc, line.get("request"), out)
    return out if result is None else result


def _run(doc: dict, req, line: dict) -> dict | None:
    """`pricing_engine.api.price(doc)`, or None with `line["error"]` set."""
    from otcdesk.pricing_engine.api import price
    from otcdesk.pricing_engine.errors import PricingError

    try:
        return price(doc)
    except PricingError as exc:
        line["error"] = str(exc)
    except Exception as exc:  # an engine bug must not lose the message: the trader sees the error
        log.exception("pricing failed for %s", req)
        line["error"] = f"定价失败：{type(exc).__name__}"
    return None
