"""`otcdesk serve [--host] [--port] [--demo]`: run the desk service. Its logs are JSON lines on standard error
(`app.logs`; `OTCDESK_LOG_FORMAT=text` for people), the start-up announcement included."""
from __future__ import annotations

import logging

log = logging.getLogger("otcdesk.serve")


def register(sub) -> None:
    p = sub.add_parser("serve", help="run the service (web console, API, channels, workers)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--demo", action="store_true", help="seed embedded defaults and enable the group-chat simulator")
    p.set_defaults(handler=run)


def run(args, settings):
    from aiohttp import web

    from otcdesk.app.logs import configure_logging
    from otcdesk.app.server import DEMO_LOGINS, create_app

    configure_logging(settings.log_format or "json")
    app = create_app(settings, demo=args.demo)
    url = f"http://{args.host}:{args.port}"

    def announce(_aiohttp_banner: str) -> None:  # run_app calls this once the port is listening
        log.info("otcdesk serving on %s/console  (data: %s, db: %s, llm: %s)", url, settings.data_dir.resolve(),
                 "postgresql" if settings.is_postgres else "sqlite", settings.llm_base_url or "none")
        for user, password in app.get(DEMO_LOGINS, {}).items():
            log.info("DEMO login: %s / %s", user, password)
        if args.demo:
            log.info("DEMO simulator: %s/sim  (group 'demo' is a KYC-approved sample institution)", url)

    web.run_app(app, host=args.host, port=args.port, print=announce)
    return None
