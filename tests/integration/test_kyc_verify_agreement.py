"""`otcdesk kyc verify-agreement ID` as an operator runs it (a real process) on a database prepared the way the
onboarding service signs: the drawn agreement, sealed with the data directory's e-seal, stored with its evidence.
Untouched it says ok; a PDF swapped or edited behind the service's back, or an evidence entry rewritten, says not
ok (exit 1) and which check failed.
"""
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from otcdesk.app.db import init_db, make_engine
from otcdesk.app.kyc.agreement import render_agreement, sha256, sign_agreement
from otcdesk.app.kyc.eseal import load_eseal
from otcdesk.app.repositories import transaction
from otcdesk.app.settings import load_settings

OTCDESK = str(Path(sys.executable).with_name("otcdesk"))
SIGNED_AT = datetime(2026, 12, 1, 10, 0, 5, tzinfo=timezone.utc)


def verify(settings, app_id: str) -> tuple[int, dict]:
    env = {**os.environ, "OTCDESK_DATA_DIR": str(settings.data_dir)}
    env.pop("DATABASE_URL", None)
    if settings.is_postgres:
        env["DATABASE_URL"] = settings.db_url
    done = subprocess.run([OTCDESK, "kyc", "verify-agreement", app_id], capture_output=True, text=True, env=env,
                          timeout=120)
    return done.returncode, json.loads(done.stdout)


def sign_and_store(settings, engine, app_id: str, name: str) -> bytes:
    """What the onboarding service does when the client signs."""
    app = {"id": app_id, "institution": {"name": name, "uscc": "91310000MA1FL0AB1X", "legal_representative": "王五",
                                         "legal_representative_id": "110101199003074514",
                                         "contact_name": "李四", "contact_mobile": "13812345678",
                                         "investor_category": "professional"},
           "history": [{"from": "risk_review", "to": "awaiting_signature", "at": "2026-12-01T09:00:00+00:00"}]}
    eseal = load_eseal(settings)
    unsigned = render_agreement(app)
    acceptance = {"token_sha256": hashlib.sha256(f"token-{app_id}".encode()).hexdigest(),
                  "accepted_at": "2026-12-01T10:00:00+00:00", "content_sha256": sha256(unsigned)}
    signed = sign_agreement(unsigned, eseal, acceptance=acceptance, signed_at=SIGNED_AT)
    with transaction(engine) as tx:
        tx.evidence.store_agreement(app_id, unsigned_sha256=sha256(unsigned), pdf=signed, sha256=sha256(signed),
                                    signer=eseal.subject, signed_at=SIGNED_AT, acceptance=acceptance)
    return signed


@pytest.fixture
def prepared(db_settings):
    engine = make_engine(db_settings.db_url)
    init_db(engine)
    pdfs = {app_id: sign_and_store(db_settings, engine, app_id, name)
            for app_id, name in (("KA1", "甲资产管理有限公司"), ("KA2", "乙投资有限公司"), ("KA3", "丙基金管理有限公司"))}
    engine.dispose()
    return db_settings, pdfs


class Raw:
    def __init__(self, url: str):
        parsed = make_url(url)
        self.sqlite = parsed.get_backend_name() == "sqlite"
        self.conn = (sqlite3.connect(parsed.database, isolation_level=None) if self.sqlite else
                     psycopg.connect(parsed.set(drivername="postgresql").render_as_string(False), autocommit=True))

    def run(self, stmt: str, params=()):
        return self.conn.execute(stmt if self.sqlite else stmt.replace("?", "%s"), params)


def test_an_untouched_agreement_verifies(prepared):
    settings, pdfs = prepared
    code, doc = verify(settings, "KA2")
    assert code == 0 and doc["ok"] is True, doc
    assert doc["application_id"] == "KA2"
    sig = doc["signature"]
    assert (sig["valid"], sig["intact"], sig["trusted"], sig["coverage"]) == (True, True, True, "entire_file")
    assert sig["sha256"] == sha256(pdfs["KA2"]) and sig["signed_at"] == SIGNED_AT.isoformat()
    assert sig["signer"] == load_eseal(settings, create=False).subject
    ev = doc["evidence"]
    assert ev["ok"] and ev["entry_id"] == 2 and ev["stored_sha256"] == ev["file_sha256"] == ev["entry_sha256"]
    assert ev["signed_over_unsigned"] and ev["signature_acceptance_match"]
    assert doc["chain"] == {"ok": True, "entries": 3, "broken_at": None, "reason": None,
                            "head": doc["chain"]["head"]} and doc["chain"]["head"]["id"] == 3


def flip_signed_byte(raw: Raw, pdfs: dict) -> None:
    """Edit the stored PDF inside its signed range and store the new file's hash with it."""
    bad = bytearray(pdfs["KA2"])
    bad[bad.index(b"stream\n", 2000) + 20] ^= 0x01
    raw.run("UPDATE kyc_agreement SET pdf = ?, sha256 = ? WHERE application_id = 'KA2'", (bytes(bad), sha256(bad)))


def swap_for_unsigned_padding_edit(raw: Raw, pdfs: dict) -> None:
    """Edit a byte no signature covers (the padding after the CMS value): the signature still holds; the hashes
    do not."""
    bad = bytearray(pdfs["KA2"])
    hex_at = bad.index(b"/Contents <") + len(b"/Contents <")
    der_len = 4 + int.from_bytes(bytes.fromhex(bad[hex_at + 4:hex_at + 8].decode()), "big")
    bad[hex_at + 2 * der_len + 100] = ord("1")
    raw.run("UPDATE kyc_agreement SET pdf = ? WHERE application_id = 'KA2'", (bytes(bad),))


def swap_for_another_agreement(raw: Raw, pdfs: dict) -> None:
    """Put KA3's (validly sealed) agreement and its hash in KA2's row."""
    raw.run("UPDATE kyc_agreement SET pdf = ?, sha256 = ? WHERE application_id = 'KA2'",
            (pdfs["KA3"], sha256(pdfs["KA3"])))


def rewrite_evidence(raw: Raw, pdfs: dict) -> None:
    """Rewrite the first evidence entry behind the database's guard."""
    if raw.sqlite:
        raw.run("DROP TRIGGER agreement_evidence_no_update")
    else:
        raw.run("DROP TRIGGER agreement_evidence_append_only ON agreement_evidence")
    raw.run("UPDATE agreement_evidence SET signer = 'CN=mallory' WHERE id = 1")


TAMPERING = {  # what is done: which parts then fail
    "flip_signed_byte": (flip_signed_byte, {"signature", "evidence"}),
    "unsigned_padding": (swap_for_unsigned_padding_edit, {"evidence"}),
    "another_agreement": (swap_for_another_agreement, {"evidence"}),
    "rewrite_evidence": (rewrite_evidence, {"chain"}),
}


@pytest.mark.parametrize("kind", TAMPERING)
def test_tampering_behind_the_services_back_is_reported(request, db_settings, kind):
    if db_settings.is_postgres and kind != "rewrite_evidence":
        pytest.skip("the PDF edits are the same SQL on PostgreSQL; the chain edit covers its trigger")
    settings, pdfs = request.getfixturevalue("prepared")
    tamper, failing = TAMPERING[kind]
    raw = Raw(settings.db_url)
    tamper(raw, pdfs)
    raw.conn.close()
    code, doc = verify(settings, "KA2")
    assert code == 1 and doc["ok"] is False, doc
    parts = {"signature": doc["signature"]["valid"], "evidence": doc["evidence"]["ok"], "chain": doc["chain"]["ok"]}
    assert {k for k, ok in parts.items() if not ok} == failing, doc
    if kind == "rewrite_evidence":
        assert doc["chain"]["broken_at"] == 1 and doc["chain"]["reason"].startswith("hash mismatch")
    if kind == "unsigned_padding":
        assert doc["signature"]["valid"] and not doc["evidence"]["sha256_match"]
    if kind == "another_agreement":
        assert not doc["evidence"]["sha256_match"] and not doc["evidence"]["signed_over_unsigned"]


def test_unknown_application_missing_database_or_eseal(prepared, tmp_path):
    settings, _ = prepared
    code, doc = verify(settings, "NOPE")
    assert code == 2 and doc["error"] == "no signed agreement for this application"
    if settings.is_postgres:
        return
    empty = load_settings(data_dir=tmp_path / "empty", DATABASE_URL=None)
    code, doc = verify(empty, "KA1")
    assert code == 2 and doc["error"] == "no database to verify" and not (tmp_path / "empty" / "otcdesk.db").exists()
    os.rename(settings.data_dir / "kyc" / "eseal", settings.data_dir / "kyc" / "moved")
    code, doc = verify(settings, "KA1")
    assert code == 2 and doc["error"] == "no e-seal to verify against"
    assert not (settings.data_dir / "kyc" / "eseal").exists()  # verifying never makes a new e-seal
