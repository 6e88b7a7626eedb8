"""`otcdesk audit verify`: walk the audit log's hash chain and name the first broken link.

Prints `{"ok", "entries", "first_broken": {"id", "reason"} | null, "head": {"id", "hash"} | null}`
(`AuditRepository.verify`); exits 0 when the chain holds, 1 when it is broken. Only reads: a database
that does not exist or is not at the newest revision is an error (exit 2), not migrated.
"""
from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url

from otcdesk.app.commands import CommandError

BROKEN_EXIT = 1


def register(sub) -> None:
    p = sub.add_parser("audit", help="the audit log")
    asub = p.add_subparsers(dest="audit_command", required=True)
    asub.add_parser("verify", help="verify the audit log's hash chain").set_defaults(handler=verify)


def verify(_args, settings):
    from otcdesk.app import migrations
    from otcdesk.app.cli import emit
    from otcdesk.app.db import make_engine
    from otcdesk.app.repositories.audit import verify_chain

    url = make_url(settings.db_url)
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
        raise CommandError("no database to verify", {"database": shown})
    engine = make_engine(settings.db_url)
    try:
        with engine.connect() as conn:
            revision, head = migrations.current(conn), migrations.head()
        if revision != head:
            raise CommandError(f"database is at revision {revision}, not {head}: run `otcdesk db upgrade` first",
                               {"database": shown})
        doc = verify_chain(engine)
    finally:
        engine.dispose()
    if doc["ok"]:
        return doc
    emit(doc)  # the CLI maps only CommandError to a non-zero exit; a broken chain prints the same document
    raise SystemExit(BROKEN_EXIT)
