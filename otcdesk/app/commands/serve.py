"""`otcdesk serve [--host] [--port] [--demo]`: run the desk service."""
from __future__ import annotations

import sys



def register(sub) -> None:
    p = sub.add_parser("serve", help="run the service (web console, API, channels, workers)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--demo", action="store_true", help="seed embedded defaults and enable the group-chat simulator")
    p.set_defaults(handler=run)


def run(args, settings):
    from aiohttp import web

    from otcdesk.app.server import DEMO_LOGINS, create_app

    app = create_app(settings, demo=args.demo)
    url = f"http://{args.host}:{args.port}"

    def announce(_aiohttp_banner: str) -> None:  # run_app calls this once the port is listening
        err = sys.stderr
        print(f"otcdesk serving on {url}/console  (data: {settings.data_dir.resolve()}, db: "
              f"{'postgresql' if settings.is_postgres else 'sqlite'}, llm: {settings.llm_base_url or 'none'})",
              file=err, flush=True)
        for user, password in app.get(DEMO_LOGINS, {}).items():
            print(f"DEMO login: {user} / {password}", file=err, flush=True)
        if args.demo:
            print(f"DEMO simulator: {url}/sim  (group 'demo' is a KYC-approved sample institution)", file=err, flush=True)

    web.run_app(app, host=args.host, port=args.port, print=announce)
    return None
