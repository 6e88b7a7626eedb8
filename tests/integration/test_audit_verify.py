"""`otcdesk audit verify` (a real process) and `GET /api/audit/verify` name the first broken link of the audit chain.

The tampering happens behind the service's back, as an attacker holding the SQLite file or the PostgreSQL
table owner would: raw SQL through a connection of its own, after dropping the triggers that stand in the way.
"""
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from desk_fixtures import TRADER
from otcdesk.app.auth import upsert_user
from otcdesk.app.db import init_db, make_engine
from otcdesk.app.repositories import transaction
from otcdesk.app.repositories.audit import entry_hash

OTCDESK = str(Path(sys.executable).with_name("otcdesk"))
COMPLIANCE = ("carol", "compliance-password-1")
ADMIN = ("root", "admin-password-1")


def audit_verify(settings) -> tuple[int, dict]:
    env = {**os.environ, "OTCDESK_DATA_DIR": str(settings.data_dir)}
    env.pop("DATABASE_URL", None)
    if settings.is_postgres:
        env["DATABASE_URL"] = settings.db_url
    done = subprocess.run([OTCDESK, "audit", "verify"], capture_output=True, text=True, env=env, timeout=120)
    return done.returncode, json.loads(done.stdout)


class Attacker:
    """Raw SQL on the desk's database through a DBAPI connection of its own (autocommit)."""

    def __init__(self, url: str):
        self.url = url
        parsed = make_url(url)
        self.sqlite = parsed.get_backend_name() == "sqlite"
        if self.sqlite:
            self.conn = sqlite3.connect(parsed.database, isolation_level=None)
        else:
            self.conn = psycopg.connect(parsed.set(drivername="postgresql").render_as_string(False), autocommit=True)

    def run(self, *stmts: str, params=()) -> None:
        for stmt in stmts:
            self.conn.execute(stmt if self.sqlite else stmt.replace("?", "%s"), params if "?" in stmt else ())

    def drop_guards(self) -> None:
        if self.sqlite:
            self.run("DROP TRIGGER audit_log_no_update", "DROP TRIGGER audit_log_no_delete",
                     "DROP TRIGGER audit_log_no_replace")
        else:
            self.run("DROP TRIGGER audit_log_append_only ON audit_log")

    def row(self, entry_id: int) -> tuple:
        return self.conn.execute(f"SELECT id, actor, entry_hash FROM audit_log WHERE id = {entry_id}").fetchone()


def seed(settings) -> None:
    engine = make_engine(settings.db_url)
    init_db(engine)
    for i in range(1, 6):
        with transaction(engine) as tx:
            tx.audit.record(f"trader{i}", "review.approved", f"review:Q{i}",
                            {"reply": f"报价 {i}.5%", "edited": i % 2 == 0})
    engine.dispose()


def edit(a: Attacker) -> None:
    a.run("UPDATE audit_log SET actor = 'mallory' WHERE id = 3")


def edit_and_rehash(a: Attacker) -> None:
    """Edit entry 3 and recompute its own hash: the entry after it no longer links to it."""
    engine = make_engine(a.url)
    with transaction(engine) as tx:
        forged = {**tx.audit.entries()[2].model_dump(), "actor": "mallory"}
    engine.dispose()
    a.run("UPDATE audit_log SET actor = 'mallory', entry_hash = ? WHERE id = 3", params=(entry_hash(forged),))


def delete(a: Attacker) -> None:
    a.run("DELETE FROM audit_log WHERE id = 3")


def replace(a: Attacker) -> None:
    """SQLite: REPLACE INTO (its delete fires no trigger); PostgreSQL: delete and insert again in one transaction."""
    copy = ("SELECT id, ts, 'mallory', action, subject, detail, prev_hash, entry_hash FROM audit_log WHERE id = 3")
    if a.sqlite:
        a.run(f"REPLACE INTO audit_log {copy}")
    else:
        with a.conn.transaction():
            a.run(f"CREATE TEMP TABLE stolen AS {copy}", "DELETE FROM audit_log WHERE id = 3",
                  "INSERT INTO audit_log SELECT * FROM stolen")


TAMPERING = {  # what the attacker does: the entry verify must name, and how its reason starts
    "edit": (edit, 3, "hash mismatch"),
    "edit_and_rehash": (edit_and_rehash, 4, "prev_hash mismatch"),
    "delete": (delete, 4, "gap"),
    "replace": (replace, 3, "hash mismatch"),
}


@pytest.mark.parametrize("kind", TAMPERING)
def test_cli_names_the_first_entry_tampered_with_behind_the_services_back(db_settings, kind):
    tamper, broken_id, reason = TAMPERING[kind]
    seed(db_settings)
    attacker = Attacker(db_settings.db_url)
    attacker.drop_guards()
    tamper(attacker)
    tampered = attacker.row(3)
    assert tampered is None if kind == "delete" else tampered[1] == "mallory"  # it really happened
    head = attacker.row(5)
    attacker.conn.close()

    code, doc = audit_verify(db_settings)
    assert code == 1, doc
    assert (doc["ok"], doc["entries"]) == (False, 4 if kind == "delete" else 5)
    assert doc["first_broken"]["id"] == broken_id and doc["first_broken"]["reason"].startswith(reason), doc
    assert doc["head"] == {"id": 5, "hash": head[2]}


def test_cli_passes_an_untouched_chain_and_shows_its_head(db_settings):
    seed(db_settings)
    attacker = Attacker(db_settings.db_url)
    head = attacker.row(5)
    code, doc = audit_verify(db_settings)
    assert (code, doc) == (0, {"ok": True, "entries": 5, "first_broken": None, "head": {"id": 5, "hash": head[2]}})
    # Removing entries from the end leaves a valid, shorter chain: only a head kept elsewhere tells.
    attacker.drop_guards()
    attacker.run("DELETE FROM audit_log WHERE id = 5")
    attacker.conn.close()
    code, doc = audit_verify(db_settings)
    assert (code, doc["ok"], doc["entries"]) == (0, True, 4) and doc["head"]["id"] == 4


def test_cli_refuses_a_missing_or_unmigrated_database_without_creating_it(tmp_path):
    from otcdesk.app.settings import load_settings

    settings = load_settings(data_dir=tmp_path, DATABASE_URL=None)
    code, doc = audit_verify(settings)
    assert code == 2 and doc["error"] == "no database to verify" and not (tmp_path / "otcdesk.db").exists()
    sqlite3.connect(tmp_path / "otcdesk.db").close()
    code, doc = audit_verify(settings)
    assert code == 2 and "otcdesk db upgrade" in doc["error"]


async def test_api_shows_the_chain_to_compliance_and_admin_only(desk):
    engine = make_engine(desk.settings.db_url)
    upsert_user(engine, *COMPLIANCE, role="compliance")
    upsert_user(engine, *ADMIN, role="admin")
    engine.dispose()
    async with desk.session() as anonymous:
        assert (await anonymous.get("/api/audit/verify")).status == 401
    for username, password in (TRADER, ("risk1", "risk-password-1")):
        async with await desk.login(username, password) as s:
            r = await s.get("/api/audit/verify")
            assert r.status == 403 and (await r.json())["detail"]["allowed"] == ["compliance", "admin"]
    async with await desk.login(*COMPLIANCE) as s:
        doc = await (await s.get("/api/audit/verify")).json()
        assert doc["ok"] and doc["first_broken"] is None and doc["entries"] >= 7  # user.create ×4, logins
        assert audit_verify(desk.settings) == (0, doc)

        attacker = Attacker(desk.settings.db_url)
        attacker.drop_guards()
        edit(attacker)
        attacker.conn.close()
        doc = await (await s.get("/api/audit/verify")).json()
        assert (doc["ok"], doc["first_broken"]["id"]) == (False, 3)
    async with await desk.login(*ADMIN) as s:
        assert (await (await s.get("/api/audit/verify")).json())["first_broken"]["id"] == 3
