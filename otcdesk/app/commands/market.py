"""`otcdesk market load FILE` and `otcdesk market snapshot`: market data history for operators.

`load` reads a CSV of history (`trading.market_data.CsvFeed`: date or ts, underlying, close or spot, optional
vol, rate, div) into ticks and official closes in one transaction (a bad row: nothing is loaded, and every bad
row is listed with its line number), then applies each loaded day's closes to the live trades in date order,
as `POST /api/market/fixings` does (`--no-events` skips that). It prints `{"file", "rows", "ticks", "closes":
{"stored", "unchanged"}, "underlyings", "dates", "events", "ignored", "skipped"}`. `snapshot` prints the newest
snapshot (`MarketDataService.latest()`). `surface FILE` fits vol surfaces from listed option quotes
(`trading.vol_surfaces.OptionQuotesCsv`: underlying, expiry, strike, type, price or iv) and stores one per
underlying in the data directory; it prints `{"file", "quotes", "surfaces": {code: {"path", "expiries",
"fit_max_error_vol_pts", "arbitrage"}}}`, or refuses the file with every bad row (nothing stored).
"""
from __future__ import annotations

from pathlib import Path

from otcdesk.app.commands import CommandError

ACTOR = "cli:market-load"


def register(sub) -> None:
    p = sub.add_parser("market", help="market data history and official closes")
    msub = p.add_subparsers(dest="market_command", required=True)
    load_p = msub.add_parser("load", help="load a CSV of history (ticks and closes) and apply the closes")
    load_p.add_argument("file")
    load_p.add_argument("--no-events", action="store_true", help="store the data only; apply no lifecycle events")
    load_p.add_argument("--by", default=ACTOR, help="who loads it (the audit log's actor)")
    load_p.set_defaults(handler=load)
    msub.add_parser("snapshot", help="print the newest market snapshot").set_defaults(handler=snapshot)
    sp = msub.add_parser("surface", help="fit and store vol surfaces from a CSV of listed option quotes")
    sp.add_argument("file")
    sp.set_defaults(handler=surface)


def surface(args, settings) -> dict:
    from otcdesk.app.market import market_for
    from otcdesk.app.trading.market_data import FeedError
    from otcdesk.app.trading.vol_surfaces import OptionQuotesCsv, VolSurfaceStore, fit_quotes

    path = Path(args.file)
    if not path.is_file():
        raise CommandError(f"no such file: {args.file}", {"file": args.file})
    engine, market, fixings = _services(settings)
    try:
        quotes = OptionQuotesCsv(path, today=fixings.clock.today()).quotes()
        snap = market.latest()
        docs = fit_quotes(quotes, {q.underlying: market_for(q.underlying, snap) or {} for q in quotes})
    except FeedError as exc:
        raise CommandError(exc.message, {"file": str(path), "errors": exc.errors}) from None
    finally:
        engine.dispose()
    store = VolSurfaceStore(settings.data_dir)
    out = {}
    for code, doc in docs.items():
        out[code] = {"path": str(store.put(code, doc)), "expiries": doc["expiries"],
                     "fit_max_error_vol_pts": round(100 * max(doc["fit_max_error_vol"]), 4),
                     "arbitrage": {k: len(v) for k, v in doc["arbitrage"].items()}}
    return {"file": str(path), "quotes": len(quotes), "surfaces": out}


def _services(settings):
    from otcdesk.app.clock import Clock
    from otcdesk.app.db import init_db, make_engine
    from otcdesk.app.desk.reviews import ReviewOpener
    from otcdesk.app.events import EventBus
    from otcdesk.app.trading.lifecycle import FixingService
    from otcdesk.app.trading.market_data import MarketDataService

    settings.ensure_dirs()
    engine = make_engine(settings.db_url)
    init_db(engine)
    clock = Clock(settings.now)
    market = MarketDataService(engine, clock)
    return engine, market, FixingService(engine, ReviewOpener(engine, EventBus(), settings.review_ttl_s), clock, market)


def load(args, settings) -> dict:
    from otcdesk.app.trading.lifecycle import FixingError
    from otcdesk.app.trading.market_data import CsvFeed, FeedError

    path = Path(args.file)
    if not path.is_file():
        raise CommandError(f"no such file: {args.file}", {"file": args.file})
    engine, market, fixings = _services(settings)
    try:
        feed = CsvFeed(path, today=fixings.clock.today())
        try:
            summary = market.ingest(feed, actor=args.by)
        except FeedError as exc:
            raise CommandError(exc.message, {"file": str(path), "errors": exc.errors}) from None
        out = {"file": str(path), "rows": feed.rows, **summary, "events": [], "ignored": [], "skipped": []}
        if not args.no_events:
            for day in summary["dates"]:
                closes = {c.underlying: c.close for c in feed.closes() if c.date.isoformat() == day}
                try:
                    applied = fixings.apply(day, closes, args.by)
                except FixingError as exc:  # cannot happen for closes just stored; reported, not hidden
                    out["skipped"].append({"date": day, "reason": exc.message})
                    continue
                for key in ("events", "ignored", "skipped"):
                    out[key] += [{"date": day, **e} if "date" not in e else e for e in applied[key]]
        return out
    finally:
        engine.dispose()


def snapshot(_args, settings) -> dict:
    engine, market, _ = _services(settings)
    try:
        return market.latest()
    finally:
        engine.dispose()
