"""The audit log's hash chain (repositories/audit.py, revision 0003) on real SQLite files and the local PostgreSQL.

Entries link by SHA-256 over their canonical JSON as either database gives it back; REPLACE (SQLite) and
TRUNCATE (PostgreSQL) are refused; appends from two processes at once keep one chain. Revision 0003 on an
upgraded database: tests/unit/app/test_migrations.py. Tampering behind the service's back, named by the real
CLI and the console API: tests/integration/test_audit_verify.py.
"""
import hashlib
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlmodel import Session

from otcdesk.app.db import init_db, make_engine
from otcdesk.app.repositories import transaction
from otcdesk.app.repositories.audit import GENESIS, AuditRepository

DETAILS = [  # (what a caller hands to record(), what reading it back gives)
    ({"text": "报价 2.1%", "price": 2.1, "nested": {"b": [1, 2.0, None], "a": "x"}},
     {"text": "报价 2.1%", "price": 2.1, "nested": {"b": [1, 2.0, None], "a": "x"}}),
    ({3: "int key", "pair": (1, 2), "big": 10 ** 20, "tiny": 1e-300},
     {"3": "int key", "pair": [1, 2], "big": 10 ** 20, "tiny": 1e-300}),
    (None, {}),
]


def chain_rows(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(text("SELECT id, prev_hash, entry_hash FROM audit_log ORDER BY id")).all()


def test_entries_chain_over_their_canonical_json_as_read_back(db_engine):
    recorded = []
    for detail, _ in DETAILS[:2]:
        with transaction(db_engine) as tx:
            recorded.append(tx.audit.record("alice", "review.approved", "review:Q1", detail))
    with pytest.raises(RuntimeError):  # a rolled-back append leaves no gap: the next one takes its id
        with transaction(db_engine) as tx:
            tx.audit.record("bob", "review.rejected", "review:Q2")
            raise RuntimeError("the decision failed")
    with transaction(db_engine) as tx:  # two appends in one transaction
        recorded.append(tx.audit.record("bob", "login", "user:bob", DETAILS[2][0]))
        recorded.append(tx.audit.record("bob", "logout", "user:bob", {}))

    rows = chain_rows(db_engine)
    assert [r.id for r in rows] == [1, 2, 3, 4]
    assert [r.prev_hash for r in rows] == [GENESIS] + [r.entry_hash for r in rows[:-1]]
    with Session(db_engine) as s:
        if db_engine.dialect.name == "postgresql":  # what is hashed must not depend on the session's zone
            s.execute(text("SET TIME ZONE 'Asia/Shanghai'"))
        entries = AuditRepository(s).entries()
        assert [e.detail for e in entries] == [back for _given, back in DETAILS] + [{}]
        assert [e.detail for e in entries] == [r.detail for r in recorded]
        assert AuditRepository(s).verify() == {"ok": True, "entries": 4, "first_broken": None,
                                               "head": {"id": 4, "hash": rows[-1].entry_hash}}
    first = entries[0]  # its canonical JSON, spelled out: sorted keys, no spaces, UTF-8, UTC ts in microseconds
    assert first.ts.utcoffset() == timedelta(0)
    canonical = ('{"action":"review.approved","actor":"alice","detail":{"nested":{"a":"x","b":[1,2.0,null]},'
                 '"price":2.1,"text":"报价 2.1%"},"id":1,"prev_hash":"' + GENESIS + '","subject":"review:Q1","ts":"'
                 + first.ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ") + '"}')
    assert first.entry_hash == hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def test_replace_is_refused_on_sqlite_whatever_recursive_triggers_says(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'desk.db'}")
    init_db(engine)
    with transaction(engine) as tx:
        tx.audit.record("alice", "review.approved", "review:Q1", {"edited": False})
    engine.dispose()
    attacks = ["REPLACE INTO audit_log SELECT id, ts, 'mallory', action, subject, detail, prev_hash, entry_hash "
               "FROM audit_log WHERE id = 1",
               "INSERT OR REPLACE INTO audit_log SELECT id, ts, 'mallory', action, subject, detail, prev_hash, "
               "entry_hash FROM audit_log WHERE id = 1",
               "INSERT INTO audit_log SELECT * FROM audit_log WHERE id = 1 ON CONFLICT(id) DO UPDATE SET actor = "
               "'mallory'"]
    conn = sqlite3.connect(tmp_path / "desk.db")
    for recursive in ("OFF", "ON"):
        conn.execute(f"PRAGMA recursive_triggers = {recursive}")
        for stmt in attacks:
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                with conn:
                    conn.execute(stmt)
    assert conn.execute("SELECT actor FROM audit_log").fetchall() == [("alice",)]

    # Why revision 0003 adds the insert guard: without it, REPLACE deletes the row without firing the
    # delete trigger unless recursive_triggers is on (SQLite's default is off).
    conn.execute("DROP TRIGGER audit_log_no_replace")
    conn.execute("PRAGMA recursive_triggers = ON")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        with conn:
            conn.execute(attacks[0])
    conn.execute("PRAGMA recursive_triggers = OFF")
    with conn:
        conn.execute(attacks[0])
    assert conn.execute("SELECT actor FROM audit_log").fetchall() == [("mallory",)]
    conn.close()


def test_truncate_is_refused_on_postgres(pg_schema_url):
    engine = make_engine(pg_schema_url)
    init_db(engine)
    with transaction(engine) as tx:
        tx.audit.record("alice", "review.approved", "review:Q1")
    engine.dispose()
    with psycopg.connect(make_url(pg_schema_url).set(drivername="postgresql").render_as_string(False)) as conn:
        for stmt in ("TRUNCATE audit_log", "TRUNCATE ONLY audit_log", "TRUNCATE audit_log RESTART IDENTITY CASCADE"):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                conn.execute(stmt)
            conn.rollback()
        assert conn.execute("SELECT actor FROM audit_log").fetchall() == [("alice",)]


_APPEND_WHEN_TOLD = """
import pathlib, sys, threading, time
from otcdesk.app.db import make_engine
from otcdesk.app.repositories import transaction
url, name, ready, go = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3]), pathlib.Path(sys.argv[4])
engine = make_engine(url)
errors = []
def append(thread):
    try:
        for i in range(15):
            with transaction(engine) as tx:
                for part in range(1 + i % 2):  # one or two entries per transaction
                    tx.audit.record(f"{name}-{thread}", "test.append", f"n:{i}.{part}", {"i": i})
    except Exception as exc:
        errors.append(exc)
ready.touch()
while not go.exists():
    time.sleep(0.005)
threads = [threading.Thread(target=append, args=(t,)) for t in range(3)]
for t in threads:
    t.start()
for t in threads:
    t.join()
sys.exit(f"appends failed: {errors!r}" if errors else 0)
"""


def test_appends_from_two_processes_at_once_keep_one_chain(db_engine, db_settings, tmp_path):
    go = tmp_path / "go"
    readies = [tmp_path / f"ready{i}" for i in range(2)]
    procs = [subprocess.Popen([sys.executable, "-c", _APPEND_WHEN_TOLD, db_settings.db_url, f"p{i}", str(r), str(go)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i, r in enumerate(readies)]
    deadline = time.time() + 120
    while not all(r.exists() for r in readies) and time.time() < deadline:
        time.sleep(0.01)
    go.touch()
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-3000:] for _out, err in outs]

    per_process = 3 * (8 * 1 + 7 * 2)  # 3 threads; 15 transactions of one or two entries
    with Session(db_engine) as s:
        assert AuditRepository(s).verify()["ok"] and AuditRepository(s).verify()["entries"] == 2 * per_process
        writers = [e.actor[:2] for e in AuditRepository(s).entries(limit=10_000)]
    assert [r.id for r in chain_rows(db_engine)] == list(range(1, 2 * per_process + 1))
    switches = sum(a != b for a, b in zip(writers, writers[1:]))
    assert switches >= 2, "the two processes did not append at the same time"
