"""`otcdesk screen serve --list FILE` and `otcdesk screen query --endpoint URL --list FILE`: private blacklist screening.

`serve` holds a list (one identifier a line; blank and # lines ignored) and answers the PSI protocol over HTTP until
killed; once its setup is built and it listens it prints one JSON line `{"serving": url, "protocol", "holder_size"}`.
`query` prints `{"matches", "queried", "holder_size", "protocol", "bytes_sent", "bytes_received", "elapsed_s"}`:
which of the file's identifiers are on the holder's list, learned without revealing them (CONTRACTS Part 2).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from otcdesk.app.commands import CommandError


def register(sub) -> None:
    p = sub.add_parser("screen", help="private blacklist screening (private set intersection over HTTP)")
    ssub = p.add_subparsers(dest="screen_command", required=True)
    serve_p = ssub.add_parser("serve", help="hold a list and answer PSI queries until killed")
    serve_p.add_argument("--list", required=True, dest="list_file", help="the held list, one identifier a line")
    serve_p.add_argument("--host", default="127.0.0.1")
    serve_p.add_argument("--port", type=int, default=8790)
    serve_p.set_defaults(handler=serve)
    query_p = ssub.add_parser("query", help="which of my identifiers are on a holder's list")
    query_p.add_argument("--endpoint", required=True, help="the holder's base URL, e.g. http://127.0.0.1:8790")
    query_p.add_argument("--list", required=True, dest="list_file", help="my identifiers, one a line")
    query_p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the holder")
    query_p.set_defaults(handler=query)


def _read(path: str) -> list[str]:
    from otcdesk.app.kyc.psi import read_list

    if not Path(path).is_file():
        raise CommandError(f"no such file: {path}", {"file": path})
    try:
        return read_list(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"cannot read {path}: {exc.__class__.__name__}", {"file": path}) from None


def serve(args, _settings):
    from aiohttp import web

    from otcdesk.app.kyc.psi import PROTOCOL, PsiHolder, holder_app

    holder = PsiHolder(_read(args.list_file))
    holder.setup_bytes()  # built before listening: the ready line means ready
    app = holder_app(holder)

    def announce(_banner: str) -> None:
        sys.stdout.write(json.dumps({"serving": f"http://{args.host}:{args.port}", "protocol": PROTOCOL,
                                     "holder_size": holder.size}) + "\n")
        sys.stdout.flush()

    web.run_app(app, host=args.host, port=args.port, print=announce, access_log=None)
    return None


def query(args, _settings) -> dict:
    from otcdesk.app.kyc.psi import PsiError, psi_query

    items = _read(args.list_file)
    try:
        return psi_query(args.endpoint, items, timeout_s=args.timeout)
    except PsiError as exc:
        raise CommandError(str(exc), {"endpoint": args.endpoint}) from None
