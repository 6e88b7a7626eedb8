"""Pricing one parsed QuoteRequest on the market snapshot: the desk graph's `price` dependency."""
from __future__ import annotations

import logging
from datetime import date, datetime, timedelta, timezone

from otcdesk.app.market import market_for

log = logging.getLogger(__name__)
_NON_PRODUCT_FIELDS = {"missing", "assumed"}
_CN_TZ = timezone(timedelta(hours=8))


def today_cn() -> date:
    """The trading date in Beijing time."""
    return datetime.now(_CN_TZ).date()


def price_request(req: dict, *, snapshot: dict | None = None, valuation_date: date | None = None,
                  engine: str = "auto") -> dict:
    """A priced line: the request, the `otcdesk price` result fields and the market used; or an `error`.

    The request goes to `price` as it is (`quote` included): what to solve for, e.g. the fair coupon of a
    request asking for one, is `pricing_engine.api.solve_field`'s rule.
    """
    from otcdesk.pricing_engine.api import price
    from otcdesk.pricing_engine.errors import PricingError

    line: dict = {"request": req}
    underlying = req.get("underlying")
    market = market_for(underlying, snapshot) if underlying else None
    if market is None:
        line["error"] = f"标的 {underlying or '?'} 不在报价标的池"
        return line
    doc = {
        "product": {k: v for k, v in req.items() if k not in _NON_PRODUCT_FIELDS and v is not None},
        "market": {k: market[k] for k in ("spot", "vol", "rate", "div")},
        "valuation_date": (valuation_date or today_cn()).isoformat(),
        "engine": engine,
    }
    try:
        result = price(doc)
    except PricingError as exc:
        line["error"] = str(exc)
        return line
    except Exception as exc:  # an engine bug must not lose the message: the trader sees the error
        log.exception("pricing failed for %s", req)
        line["error"] = f"定价失败：{type(exc).__name__}"
        return line
    line.update(result)
    line["market"] = market
    return line
