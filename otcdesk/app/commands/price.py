"""`otcdesk price [JSON]` / `otcdesk price --jsonl`: price products (CONTRACTS.md); reads stdin when no argument
is given.

`market` may be omitted: the stored snapshot of `product.underlying` is used, with the underlying's stored vol
surface when there is one (`trading.vol_surfaces.VolSurfaceStore`: a surface loaded from option quotes into the
data directory, else the checked-in SIMULATED demo surface). `--jsonl` reads one request per line and prints one
result, or one `{"error", "detail"}` document, per line, in order, in one warm process (imports, fitted surfaces
and calendars are reused); it exits 0 even when some lines were refused.
"""
from __future__ import annotations

import json
import sys

from otcdesk.app.commands import CommandError


def register(subparsers) -> None:
    p = subparsers.add_parser("price", help="price one product (JSON argument or stdin), or many with --jsonl")
    p.add_argument("request", nargs="?", help="the price request as JSON; stdin when omitted")
    p.add_argument("--jsonl", action="store_true", help="read one request per line from stdin, print one result per line")
    p.set_defaults(handler=handle)


def handle(args, settings) -> dict | None:
    from otcdesk.app.trading.templates import declare_for_command

    declare_for_command(settings)  # the data directory's structure templates
    if getattr(args, "jsonl", False):
        if args.request is not None:
            raise CommandError("--jsonl reads requests from stdin; give no JSON argument", None)
        out = sys.stdout
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                doc = price_one(line, settings)
            except CommandError as exc:
                doc = {"error": exc.message, "detail": exc.detail}
            except Exception as exc:  # noqa: BLE001 - one bad line must not end the batch
                doc = {"error": f"pricing failed: {type(exc).__name__}: {exc}", "detail": None}
            out.write(json.dumps(doc, ensure_ascii=False, allow_nan=False, default=str) + "\n")
            out.flush()
        return None
    raw = args.request if args.request is not None else sys.stdin.read()
    return price_one(raw, settings)


def price_one(raw: str, settings) -> dict:
    """One request's result document, or CommandError with the reason."""
    from otcdesk.pricing_engine.api import price
    from otcdesk.pricing_engine.errors import PricingError

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
        from otcdesk.app.trading.vol_surfaces import VolSurfaceStore
        underlying = product.get("underlying")
        if not underlying:
            raise CommandError("market is missing and product.underlying is not given", {"field": "market"})
        market = market_for(underlying)
        if market is None:
            raise CommandError(f"no stored market snapshot for {underlying}", {"field": "market",
                                                                                "underlying": underlying})
        vd = doc.get("valuation_date") or market.get("as_of")
        surface = VolSurfaceStore(settings.data_dir).contract_for(underlying, vd)
        if surface is not None:
            market = {**market, "vol_surface": surface}
        doc = {**doc, "market": market}
        doc.setdefault("valuation_date", market.get("as_of"))
    options = doc.get("engine_options") or {}
    if "backend" not in options and settings.backend != "auto":  # OTCDESK_BACKEND picks the MC array backend
        doc = {**doc, "engine_options": {**options, "backend": settings.backend}}
    try:
        return price(doc)
    except PricingError as exc:
        raise CommandError(exc.message, exc.detail) from None
