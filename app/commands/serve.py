"""`otcdesk serve [--host] [--port] [--demo]`: run the desk service."""
from __future__ import annotations

import logging
import sys

from aiohttp import web

from app.server import DEMO_LOGINS, create_app

log = logging.getLogger("otcdesk.serve")


def register(sub) -> None:
    p = sub.add_parser("serve", help="run the service (web console, API, channels, workers)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--demo", action="store_true", help="seed embedded defaults and enable the group-chat simulator")
    p.set_defaults(handler=run)


def run(args, settings):
    app = create_app(settings, demo=args.demo)

    async def announce(app_: web.Application) -> None:
        url = f"http://{args.host}:{args.port}"
        print(f"otcdesk serving on {url}/console  (data: {settings.data_dir.resolve()}, db: "
              f"{'postgresql' if settings.is_postgres else 'sqlite'}, llm: {settings.llm_base_url or 'none'})",
              file=sys.stderr, flush=True)
        for user, password in app_.get(DEMO_LOGINS, {}).items():
            print(f"DEMO login: {user} / {password}", file=sys.stderr, flush=True)
        if args.demo:
            print(f"DEMO simulator: {url}/sim  (group 'demo' is a KYC-approved sample institution)",
                  file=sys.stderr, flush=True)

    app.cleanup_ctx.append(_announce_ctx(announce))  # after the desk context: logins exist by then
    web.run_app(app, host=args.host, port=args.port, print=None)
    return None


def _announce_ctx(fn):
    async def ctx(app):
        await fn(app)
        yield

    return ctx
