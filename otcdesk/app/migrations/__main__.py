"""Draft a revision: `python -m otcdesk.app.migrations "add orders table"` (from a source checkout).

Upgrades a scratch SQLite database to head, autogenerates the difference between it and the models
(`desk_metadata()`) into `versions/NNNN_<slug>.py`, and prints the file's path. Review it before
committing (see the package docstring).
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory

from otcdesk.app.db import make_engine
from otcdesk.app.migrations import alembic_config, desk_metadata, upgrade


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m otcdesk.app.migrations", description=__doc__.splitlines()[0])
    parser.add_argument("message", help="what the revision changes, e.g. 'add orders table'")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        engine = make_engine(f"sqlite:///{Path(scratch) / 'draft.db'}")
        upgrade(engine)
        revs = [r.revision for r in ScriptDirectory.from_config(alembic_config()).walk_revisions()]
        rev_id = f"{max((int(r) for r in revs if r.isdigit()), default=0) + 1:04d}"
        with engine.begin() as conn:
            cfg = alembic_config(conn)
            cfg.attributes["target_metadata"] = desk_metadata()
            script = command.revision(cfg, message=args.message, autogenerate=True, rev_id=rev_id)
        engine.dispose()
    print(script.path)


if __name__ == "__main__":
    main()
