"""`otcdesk db upgrade` / `otcdesk db current`: the database's schema revision, for operators.

`upgrade` does what every start does (`init_db`: stamp a pre-Alembic database at the baseline, then
upgrade to head) and prints `{"database", "from", "stamped", "current", "head"}`; `current` only reads,
and prints `{"database", "current", "head", "up_to_date"}` (`current` is null for a database that does
not exist yet, which it does not create, or that was made before Alembic).
"""
from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url

from otcdesk.app.commands import CommandError


def register(sub) -> None:
    p = sub.add_parser("db", help="database schema migrations")
    dsub = p.add_subparsers(dest="db_command", required=True)
    dsub.add_parser("upgrade", help="migrate the database to the newest revision").set_defaults(handler=upgrade)
    dsub.add_parser("current", help="show the database's revision and the newest one").set_defaults(handler=current)


def upgrade(_args, settings) -> dict:
    from otcdesk.app import migrations
    from otcdesk.app.db import make_engine

    settings.ensure_dirs()
    engine = make_engine(settings.db_url)
    try:
        done = migrations.upgrade(engine)
    except migrations.UnknownSchemaError as exc:
        raise CommandError(str(exc), {"database": _shown(settings.db_url)}) from None
    finally:
        engine.dispose()
    return {"database": _shown(settings.db_url), **done, "head": migrations.head()}


def current(_args, settings) -> dict:
    from otcdesk.app import migrations
    from otcdesk.app.db import make_engine

    url = make_url(settings.db_url)
    revision = None
    if url.get_backend_name() != "sqlite" or Path(url.database or "").is_file():
        engine = make_engine(settings.db_url)
        try:
            with engine.connect() as conn:
                revision = migrations.current(conn)
        finally:
            engine.dispose()
    head = migrations.head()
    return {"database": _shown(settings.db_url), "current": revision, "head": head, "up_to_date": revision == head}


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)
