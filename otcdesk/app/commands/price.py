"""`otcdesk price [JSON]`: price one product (CONTRACTS.md); reads stdin when no argument is given."""
from __future__ import annotations

import json
import sys

from otcdesk.app.commands import CommandError


def register(subparsers) -> None:
    p = subparsers.add_parser("price", help="price one product (JSON argument or stdin)")
    p.add_argument("request", nargs="?", help="the price request as JSON; stdin when omitted")
    p.set_defaults(handler=handle)


def handle(args, settings) -> dict:
    from otcdesk.pricing_engine.api import price
    from otcdesk.pricing_engine.errors import PricingError

    raw = args.request if args.request is not None else sys.stdin.read()
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CommandError("the price request is not valid JSON", str(exc)) from None
    if not isinstance(doc, dict):
        raise CommandError("the price request must be a JSON object", raw[:200])
    product = doc.get("product")
    if not isinstance(product, dict):
        raise CommandError("product is missing", {"field": "product"})
    if doc.get("market") is None:
        from otcdesk.app.market import market_for
        underlying = product.get("underlying")
        if not underlying:
            raise CommandError("market is missing and product.underlying is not given", {"field": "market"})
        market = market_for(underlying)
        if market is None:
            raise CommandError(f"no stored market snapshot for {underlying}", {"field": "market",
                                                                                "underlying": underlying})
        doc = {**doc, "market": market}
        doc.setdefault("valuation_date", market.get("as_of"))
    options = doc.get("engine_options") or {}
    if "backend" not in options and settings.backend != "auto":  # OTCDESK_BACKEND picks the MC array backend
        doc = {**doc, "engine_options": {**options, "backend": settings.backend}}
    try:
        return price(doc)
    except PricingError as exc:
        raise CommandError(exc.message, exc.detail) from None
