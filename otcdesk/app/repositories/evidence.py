"""Signed master agreements (`kyc_agreement`) and their evidence log (`agreement_evidence`): an append-only
SHA-256 hash chain, built like the audit log's (`repositories/audit.py`).

`store_agreement` keeps the signed PDF and appends, in the same transaction, an evidence entry: the
application, the signed file's SHA-256, the signer, the signing time and the client's acceptance (token hash,
time, content hash), with `prev_hash` (the previous entry's `entry_hash`, or `GENESIS`) and `entry_hash`,
SHA-256 over the canonical JSON of those fields and `prev_hash` (`entry_hash()`). The database refuses UPDATE
and DELETE on the table (revision 0005); the chain makes an edit behind its back visible: `verify_evidence`
names the first entry that no longer hashes to its `entry_hash` or does not link to the one before it.

Appends are serialised with the audit log's own lock (PostgreSQL advisory transaction lock, SQLite
`BEGIN IMMEDIATE`), held until the caller's transaction ends, so two signings never fork the chain and a
transaction that also writes the audit log takes one lock, not two in some order.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Mapping

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from otcdesk.app.models import AgreementEvidence, KycAgreement
from otcdesk.app.repositories.audit import GENESIS, AuditRepository, canonical_json, canonical_ts

_VERIFY_BATCH = 1000


class EvidenceError(ValueError):
    """An agreement that cannot be stored: already signed, or a hash that is not the file's."""


def entry_hash(entry: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of an entry's canonical JSON: id, application_id, agreement_sha256, signed_at, signer,
    acceptance, prev_hash."""
    doc = {"id": entry["id"], "application_id": entry["application_id"],
           "agreement_sha256": entry["agreement_sha256"], "signed_at": canonical_ts(entry["signed_at"]),
           "signer": entry["signer"], "acceptance": entry["acceptance"], "prev_hash": entry["prev_hash"]}
    return hashlib.sha256(canonical_json(doc).encode("utf-8")).hexdigest()


class EvidenceRepository:
    """Signed agreements and the evidence chain: store (and append), read, verify."""

    def __init__(self, session: Session):
        self.session = session

    def store_agreement(self, application_id: str, *, unsigned_sha256: str, pdf: bytes, sha256: str, signer: str,
                        signed_at: datetime, acceptance: Mapping[str, Any], replace: bool = False) -> KycAgreement:
        """Keep the signed agreement of `application_id` and append its evidence entry (one transaction, the
        caller's). `signer` is the e-seal's `subject` (what `verify_agreement_pdf` reports); `acceptance` the
        dict given to `sign_agreement`. EvidenceError when the application already has one (unless `replace`: an
        agreement signed again for changed data takes the row's place, its evidence entry appended after the
        earlier one's; the caller keeps the earlier PDF) or `sha256` is not the PDF's."""
        if hashlib.sha256(pdf).hexdigest() != sha256:
            raise EvidenceError(f"sha256 {sha256} is not the SHA-256 of the agreement PDF")
        accepted = json.loads(json.dumps(dict(acceptance or {}), ensure_ascii=False))  # what the DB gives back
        if "token" in accepted:
            raise EvidenceError("the acceptance must carry the token's hash, never the token")
        AuditRepository(self.session).lock_chain()
        row = self.agreement(application_id)
        if row is not None and not replace:
            raise EvidenceError(f"application {application_id} already has a signed agreement")
        if row is None:
            row = KycAgreement(application_id=application_id)
        row.unsigned_sha256, row.pdf, row.sha256, row.signer, row.signed_at, row.acceptance = \
            unsigned_sha256, pdf, sha256, signer, signed_at, accepted
        self.session.add(row)
        self.session.flush()
        head = self.session.exec(select(AgreementEvidence.id, AgreementEvidence.entry_hash)
                                 .order_by(AgreementEvidence.id.desc()).limit(1)).first()
        entry = AgreementEvidence(id=head.id + 1 if head else 1, application_id=application_id,
                                  agreement_sha256=sha256, signed_at=signed_at, signer=signer, acceptance=accepted,
                                  prev_hash=head.entry_hash if head else GENESIS)
        entry.entry_hash = entry_hash(entry.model_dump())
        self.session.add(entry)
        self.session.flush()
        return row

    def agreement(self, application_id: str) -> KycAgreement | None:
        """The signed agreement of an application, or None."""
        return self.session.exec(select(KycAgreement).where(KycAgreement.application_id == application_id)).first()

    def entries(self, application_id: str | None = None) -> list[AgreementEvidence]:
        """Evidence entries, oldest first, optionally of one application."""
        q = select(AgreementEvidence)
        if application_id is not None:
            q = q.where(AgreementEvidence.application_id == application_id)
        return list(self.session.exec(q.order_by(AgreementEvidence.id)))

    def verify(self) -> dict:
        """Walk the chain in id order: `{"ok", "entries", "broken_at": id | None, "reason": str | None,
        "head": {"id", "hash"} | None}`."""
        cols = (AgreementEvidence.id, AgreementEvidence.application_id, AgreementEvidence.agreement_sha256,
                AgreementEvidence.signed_at, AgreementEvidence.signer, AgreementEvidence.acceptance,
                AgreementEvidence.prev_hash, AgreementEvidence.entry_hash)
        rows = self.session.exec(select(*cols).order_by(AgreementEvidence.id)
                                 .execution_options(yield_per=_VERIFY_BATCH))
        count, broken, prev = 0, None, None
        for row in rows:
            count += 1
            if broken is None:
                broken = _first_fault(row._asdict(), prev)
            prev = row
        return {"ok": broken is None, "entries": count, "broken_at": broken[0] if broken else None,
                "reason": broken[1] if broken else None,
                "head": {"id": prev.id, "hash": prev.entry_hash} if prev is not None else None}


def _first_fault(row: dict, prev) -> tuple[int, str] | None:
    try:
        digest = entry_hash(row)
    except (TypeError, ValueError, AttributeError) as exc:
        return row["id"], f"unreadable entry: {exc}"
    if digest != row["entry_hash"]:
        return row["id"], "hash mismatch: the entry was edited or replaced"
    expected = prev.entry_hash if prev is not None else GENESIS
    if row["prev_hash"] == expected:
        return None
    if prev is None:
        return row["id"], ("prev_hash mismatch: the first entry does not start the chain "
                           "(entries before it were removed)")
    if row["id"] != prev.id + 1:
        return row["id"], (f"gap: no entries between id {prev.id} and id {row['id']}, and prev_hash does not match "
                           f"entry {prev.id} (entries were removed)")
    return row["id"], f"prev_hash mismatch: entry {prev.id} is not the entry this one was chained to"


def verify_evidence(engine: Engine) -> dict:
    """`EvidenceRepository.verify` in a read-only session of its own: `{"ok", "entries", "broken_at", "reason",
    "head"}`."""
    with Session(engine) as session:
        return EvidenceRepository(session).verify()
