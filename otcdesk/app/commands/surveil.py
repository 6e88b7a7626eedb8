"""`otcdesk surveil`: market-abuse surveillance over CSV files or the desk's own tables (CONTRACTS Part 2).

- `otcdesk surveil --orders orders.csv --trades trades.csv --accounts accounts.csv` prints `{"alerts": [...],
  "control_groups": [...]}` from `workflows.surveillance.surveil`; a bad file is `{"error", "detail"}` naming the
  file, line and column of each bad cell (up to 20, and how many more).
- `otcdesk surveil --from-desk` runs the same detectors over the desk's order and unwind items and booked trades
  (`app.surveillance_source`, read-only; its docstring says what maps) and adds `"source"` counts.
- `otcdesk surveil generate --seed N --accounts A --orders M --out DIR` writes a synthetic set (orders.csv,
  trades.csv, accounts.csv) and its ground truth (truth.json), and prints where and how much.
"""
from __future__ import annotations

import json
from pathlib import Path

from otcdesk.app.commands import CommandError


def register(sub) -> None:
    p = sub.add_parser("surveil", help="surveillance: control groups, wash trades, spoofing")
    p.add_argument("--orders", help="orders.csv: order_id, account_id, ts, instrument, side, price, qty, event")
    p.add_argument("--trades", help="trades.csv: trade_id, ts, instrument, price, qty, buy_account, sell_account")
    p.add_argument("--accounts", help="accounts.csv: account_id, name, id_number, mobile, address, bank_account, ip, "
                                      "device_id")
    p.add_argument("--from-desk", action="store_true", help="read the desk's own orders and trades instead")
    p.set_defaults(handler=run)
    gsub = p.add_subparsers(dest="surveil_command")
    g = gsub.add_parser("generate", help="write a synthetic order flow with injected manipulation and its truth")
    g.add_argument("--seed", type=int, required=True)
    g.add_argument("--accounts", type=int, default=2000)
    g.add_argument("--orders", type=int, default=100_000, help="order events to generate (about)")
    g.add_argument("--out", required=True, help="directory for orders.csv, trades.csv, accounts.csv, truth.json")
    g.set_defaults(handler=generate)


def run(args, settings) -> dict:
    from otcdesk.workflows.surveillance import InputError, read_accounts, read_orders, read_trades, surveil

    if args.from_desk:
        if args.orders or args.trades or args.accounts:
            raise CommandError("--from-desk reads the desk's tables: give no CSV files with it",
                               {"orders": args.orders, "trades": args.trades, "accounts": args.accounts})
        return _from_desk(settings)
    missing = [f"--{name}" for name in ("orders", "trades", "accounts") if not getattr(args, name)]
    if missing:
        raise CommandError(f"missing {', '.join(missing)} (or use --from-desk)", {"missing": missing})
    try:
        orders = read_orders(args.orders)
        trades = read_trades(args.trades)
        accounts = read_accounts(args.accounts)
    except InputError as exc:
        raise CommandError(str(exc), {"errors": [e.as_dict() for e in exc.errors], "more": exc.more}) from None
    return surveil(orders, trades, accounts)


def _from_desk(settings) -> dict:
    from otcdesk.app.db import init_db, make_engine
    from otcdesk.app.surveillance_source import load_from_desk
    from otcdesk.workflows.surveillance import surveil

    settings.ensure_dirs()
    engine = make_engine(settings.db_url)
    try:
        init_db(engine)
        orders, trades, accounts, counts = load_from_desk(engine)
    finally:
        engine.dispose()
    return {**surveil(orders, trades, accounts), "source": {"desk": True, **counts}}


def generate(args, _settings) -> dict:
    from otcdesk.workflows.surveillance.generate import GenSpec
    from otcdesk.workflows.surveillance.generate import generate as make
    from otcdesk.workflows.surveillance.io import write_accounts, write_orders, write_trades

    if args.accounts < 20 or args.orders < 1000:
        raise CommandError("--accounts must be at least 20 and --orders at least 1000",
                           {"accounts": args.accounts, "orders": args.orders})
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandError(f"cannot create {out}: {exc.strerror}", {"out": str(out)}) from None
    data = make(GenSpec(seed=args.seed, accounts=args.accounts, orders=args.orders))
    files = {name: str(out / f"{name}.csv") for name in ("orders", "trades", "accounts")}
    write_orders(files["orders"], data.orders)
    write_trades(files["trades"], data.trades)
    write_accounts(files["accounts"], data.account_rows)
    files["truth"] = str(out / "truth.json")
    Path(files["truth"]).write_text(json.dumps(data.truth, ensure_ascii=False, indent=1), encoding="utf-8")
    truth = data.truth
    return {"out": str(out), "files": files, "counts": truth["counts"],
            "truth": {"control_groups": len(truth["control_groups"]), "wash": len(truth["wash"]),
                      "spoofing": len(truth["spoofing"]), "near_misses": len(truth["near_misses"])}}
