"""Signed agreements and their evidence chain (repositories/evidence.py) on real SQLite files and the local
PostgreSQL: entries link by SHA-256, an entry edited or forged behind the service's back is named, two signings at
once do not fork the chain, the database refuses UPDATE and DELETE.
"""
import hashlib
import sqlite3
import threading
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from otcdesk.app.repositories import transaction
from otcdesk.app.repositories.audit import GENESIS
from otcdesk.app.repositories.evidence import EvidenceError, entry_hash, verify_evidence

T0 = datetime(2026, 12, 1, 9, 30, 15, 123456, tzinfo=timezone.utc)


def acceptance(i: int) -> dict:
    return {"token_sha256": hashlib.sha256(f"token-{i}".encode()).hexdigest(), "accepted_at": T0.isoformat(),
            "content_sha256": hashlib.sha256(f"unsigned-{i}".encode()).hexdigest(), "名称": "测试机构"}


def store(engine, app_id: str, i: int = 0, pdf: bytes | None = None):
    pdf = pdf or f"%PDF-1.7 agreement {app_id} {i}".encode()
    with transaction(engine) as tx:
        return tx.evidence.store_agreement(
            app_id, unsigned_sha256=hashlib.sha256(f"unsigned-{i}".encode()).hexdigest(), pdf=pdf,
            sha256=hashlib.sha256(pdf).hexdigest(), signer="CN=otcdesk 电子印章,O=otcdesk",
            signed_at=T0 + timedelta(seconds=i), acceptance=acceptance(i))


class Raw:
    """Raw SQL through a DBAPI connection of its own (autocommit), as someone holding the database would."""

    def __init__(self, url: str):
        parsed = make_url(url)
        self.sqlite = parsed.get_backend_name() == "sqlite"
        self.conn = (sqlite3.connect(parsed.database, isolation_level=None) if self.sqlite else
                     psycopg.connect(parsed.set(drivername="postgresql").render_as_string(False), autocommit=True))

    def run(self, stmt: str, params=()):
        return self.conn.execute(stmt if self.sqlite else stmt.replace("?", "%s"), params)

    def drop_guards(self) -> None:
        if self.sqlite:
            self.run("DROP TRIGGER agreement_evidence_no_update")
            self.run("DROP TRIGGER agreement_evidence_no_delete")
        else:
            self.run("DROP TRIGGER agreement_evidence_append_only ON agreement_evidence")


def test_store_links_entries_and_reads_back(db_engine):
    assert verify_evidence(db_engine) == {"ok": True, "entries": 0, "broken_at": None, "reason": None, "head": None}
    for i in range(3):
        row = store(db_engine, f"KA{i}", i)
        assert row.id is not None and row.sha256 == hashlib.sha256(row.pdf).hexdigest()
    with transaction(db_engine) as tx:
        entries = tx.evidence.entries()
        assert [e.application_id for e in entries] == ["KA0", "KA1", "KA2"] and [e.id for e in entries] == [1, 2, 3]
        assert entries[0].prev_hash == GENESIS
        assert [e.prev_hash for e in entries[1:]] == [e.entry_hash for e in entries[:-1]]
        for e in entries:
            assert entry_hash(e.model_dump()) == e.entry_hash
        one = tx.evidence.entries("KA1")
        assert len(one) == 1 and one[0].acceptance == acceptance(1)
        agreement = tx.evidence.agreement("KA1")
        assert agreement.acceptance == acceptance(1) and agreement.pdf.startswith(b"%PDF")
        assert one[0].agreement_sha256 == agreement.sha256
        assert tx.evidence.agreement("nope") is None
    doc = verify_evidence(db_engine)
    assert (doc["ok"], doc["entries"], doc["broken_at"], doc["head"]["id"]) == (True, 3, None, 3)


def test_store_refuses_a_second_agreement_a_wrong_hash_and_a_raw_token(db_engine):
    store(db_engine, "KA1")
    with pytest.raises(EvidenceError, match="already"):
        store(db_engine, "KA1", 1)
    with pytest.raises(EvidenceError, match="SHA-256"), transaction(db_engine) as tx:
        tx.evidence.store_agreement("KA2", unsigned_sha256="0" * 64, pdf=b"%PDF", sha256="0" * 64, signer="x",
                                    signed_at=T0, acceptance={})
    with pytest.raises(EvidenceError, match="token"), transaction(db_engine) as tx:
        tx.evidence.store_agreement("KA3", unsigned_sha256="0" * 64, pdf=b"%PDF",
                                    sha256=hashlib.sha256(b"%PDF").hexdigest(), signer="x", signed_at=T0,
                                    acceptance={"token": "secret"})
    with transaction(db_engine) as tx:
        assert [e.application_id for e in tx.evidence.entries()] == ["KA1"]


def test_the_database_refuses_update_and_delete(db_engine, db_settings):
    store(db_engine, "KA1")
    raw = Raw(db_settings.db_url)
    errors = (sqlite3.DatabaseError, psycopg.Error)
    for stmt in ("UPDATE agreement_evidence SET signer = 'mallory'", "DELETE FROM agreement_evidence"):
        with pytest.raises(errors, match="append-only"):
            raw.run(stmt)
    assert raw.run("SELECT signer FROM agreement_evidence").fetchall()[0][0].startswith("CN=otcdesk")


def test_an_entry_edited_behind_the_services_back_is_named(db_engine, db_settings):
    for i in range(4):
        store(db_engine, f"KA{i}", i)
    raw = Raw(db_settings.db_url)
    raw.drop_guards()
    raw.run("UPDATE agreement_evidence SET agreement_sha256 = ? WHERE id = 3", ("f" * 64,))
    assert raw.run("SELECT agreement_sha256 FROM agreement_evidence WHERE id = 3").fetchone()[0] == "f" * 64
    doc = verify_evidence(db_engine)
    assert (doc["ok"], doc["entries"], doc["broken_at"]) == (False, 4, 3) and doc["reason"].startswith("hash mismatch")


def test_an_edit_with_a_recomputed_hash_breaks_the_next_link(db_engine, db_settings):
    for i in range(3):
        store(db_engine, f"KA{i}", i)
    with transaction(db_engine) as tx:
        forged = {**tx.evidence.entries()[1].model_dump(), "signer": "CN=mallory"}
    raw = Raw(db_settings.db_url)
    raw.drop_guards()
    raw.run("UPDATE agreement_evidence SET signer = 'CN=mallory', entry_hash = ? WHERE id = 2", (entry_hash(forged),))
    doc = verify_evidence(db_engine)
    assert (doc["ok"], doc["broken_at"]) == (False, 3) and doc["reason"].startswith("prev_hash mismatch")


def test_a_forged_row_inserted_with_a_made_up_hash_is_named(db_engine, db_settings):
    """No trigger stands in the way of an INSERT: a forged entry needs a hash, and a wrong one shows."""
    for i in range(2):
        store(db_engine, f"KA{i}", i)
    raw = Raw(db_settings.db_url)
    head = raw.run("SELECT entry_hash FROM agreement_evidence WHERE id = 2").fetchone()[0]
    raw.run("INSERT INTO agreement_evidence (id, application_id, agreement_sha256, signed_at, signer, acceptance, "
            "prev_hash, entry_hash) VALUES (3, 'KAFORGED', ?, ?, 'CN=otcdesk', '{}', ?, ?)",
            ("a" * 64, "2026-12-02 00:00:00", head, "b" * 64))
    doc = verify_evidence(db_engine)
    assert (doc["ok"], doc["entries"], doc["broken_at"]) == (False, 3, 3) and "hash mismatch" in doc["reason"]


def test_a_removed_entry_leaves_a_gap(db_engine, db_settings):
    for i in range(3):
        store(db_engine, f"KA{i}", i)
    raw = Raw(db_settings.db_url)
    raw.drop_guards()
    raw.run("DELETE FROM agreement_evidence WHERE id = 2")
    doc = verify_evidence(db_engine)
    assert (doc["ok"], doc["entries"], doc["broken_at"]) == (False, 2, 3) and doc["reason"].startswith("gap")


def test_concurrent_signings_do_not_fork_the_chain(db_engine):
    n_threads, per_thread = 4, 6
    barrier = threading.Barrier(n_threads)
    errors = []

    def sign(t: int) -> None:
        try:
            barrier.wait(timeout=30)
            for i in range(per_thread):
                store(db_engine, f"KA{t}-{i}", t * 100 + i)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=sign, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    doc = verify_evidence(db_engine)
    assert (doc["ok"], doc["entries"]) == (True, n_threads * per_thread), doc
    with db_engine.connect() as conn:
        rows = conn.execute(text("SELECT id, prev_hash, entry_hash FROM agreement_evidence ORDER BY id")).all()
    assert [r.id for r in rows] == list(range(1, n_threads * per_thread + 1))
    assert len({r.prev_hash for r in rows}) == len(rows)  # no two entries chained to the same predecessor
    with transaction(db_engine) as tx:
        writers = [e.application_id.split("-")[0] for e in tx.evidence.entries()]
    assert sum(a != b for a, b in zip(writers, writers[1:])) >= 1, "the threads did not sign at the same time"
