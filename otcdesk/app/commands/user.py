"""`otcdesk user add USERNAME --role ROLE`: create or update a console user (password on stdin)."""
from __future__ import annotations

import sys

from otcdesk.app.commands import CommandError
from otcdesk.app.roles import ROLES


def register(sub) -> None:
    p = sub.add_parser("user", help="console users")
    usub = p.add_subparsers(dest="user_command", required=True)
    add = usub.add_parser("add", help="create or update a user; the password is read from stdin (one line)")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=ROLES)
    add.set_defaults(handler=add_user)


def add_user(args, settings):
    from otcdesk.app.auth import AuthError, upsert_user
    from otcdesk.app.db import init_db, make_engine

    password = sys.stdin.readline().rstrip("\r\n")
    settings.ensure_dirs()
    engine = make_engine(settings.db_url)
    init_db(engine)
    try:
        upsert_user(engine, args.username, password, args.role, actor="cli")
    except AuthError as exc:
        raise CommandError(str(exc), {"username": args.username})
    finally:
        engine.dispose()
    return {"user": args.username, "role": args.role}
