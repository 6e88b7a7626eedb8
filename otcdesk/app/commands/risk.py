"""`otcdesk risk bench --trades N [--backend numpy|cupy]`: revalue a seeded sample book;
`otcdesk risk refresh`: revalue the live book in the data directory's database and store a snapshot.

`bench` prints `{"trades", "backend", "elapsed_s", "greeks_s", "scenario_s", "scenario_points", ...}`
(CONTRACTS.md). The backend defaults to `settings.backend` (OTCDESK_BACKEND: auto picks CuPy
only when a GPU is usable) and Ray is used when `settings.ray_address` (RAY_ADDRESS) or
`--ray-address` is set.

`refresh` prints the snapshot summary `{"snapshot_id", "as_of", "live_trades", "elapsed_s", "scenario_points",
...}` (CONTRACTS Part 2), the same as `POST /api/risk/refresh`, on the newest market data of the database
(`MarketDataService.latest`); audited with the actor `cli`. It migrates a fresh database first, so it works on an
empty data directory (an empty book).
"""
from __future__ import annotations

from otcdesk.app.commands import CommandError


def register(sub) -> None:
    p = sub.add_parser("risk", help="book risk")
    rsub = p.add_subparsers(dest="risk_command", required=True)
    b = rsub.add_parser("bench", help="revalue a sample book with Greeks and a spot x vol grid, and time it")
    b.add_argument("--trades", type=int, required=True)
    b.add_argument("--backend", choices=("numpy", "cupy", "auto"), default=None)
    b.add_argument("--ray-address", default=None, help="Ray cluster address (default: RAY_ADDRESS)")
    b.add_argument("--paths", type=int, default=2000, help="Monte Carlo paths for path-dependent trades")
    b.add_argument("--seed", type=int, default=7, help="seed of the sample book")
    b.add_argument("--workers", type=int, default=2, help="in-process worker threads when Ray is not used")
    b.set_defaults(handler=bench)
    r = rsub.add_parser("refresh", help="revalue the live book of the data directory and store a risk snapshot")
    r.set_defaults(handler=refresh)


def bench(args, settings) -> dict:
    from otcdesk.pricing_engine.book import bench as run_bench  # noqa: PLC0415
    from otcdesk.pricing_engine.errors import PricingError  # noqa: PLC0415

    if args.trades <= 0:
        raise CommandError("--trades must be positive", {"trades": args.trades})
    if args.paths < 2:
        raise CommandError("--paths must be at least 2", {"paths": args.paths})
    backend = args.backend or settings.backend or "auto"
    try:
        return run_bench(args.trades, backend=backend, ray_address=args.ray_address or settings.ray_address,
                         seed=args.seed, mc_options={"paths": args.paths}, workers=max(1, args.workers))
    except PricingError as exc:
        raise CommandError(str(exc), getattr(exc, "detail", None)) from None


def refresh(_args, settings) -> dict:
    from otcdesk.app.clock import Clock  # noqa: PLC0415
    from otcdesk.app.db import init_db, make_engine  # noqa: PLC0415
    from otcdesk.app.trading.market_data import MarketDataService  # noqa: PLC0415
    from otcdesk.app.trading.risk import RiskService  # noqa: PLC0415

    settings.ensure_dirs()
    engine = make_engine(settings.db_url)
    try:
        init_db(engine)
        clock = Clock(settings.now)
        service = RiskService(engine, None, clock, MarketDataService(engine, clock).latest, backend=settings.backend,
                              ray_address=settings.ray_address)
        return service.refresh("cli")
    finally:
        engine.dispose()
