"""`otcdesk kyc verify-agreement ID`: check an application's signed master agreement end to end.

Prints `{"application_id", "signature": {...}, "evidence": {...}, "chain": {...}, "ok"}`:
- `signature`: `verify_agreement_pdf` of the stored PDF against the desk's e-seal (the configured one or the one
  in the data directory; none is generated here);
- `evidence`: the stored SHA-256, the file's, and the evidence entry's agree; the entry's signer and acceptance
  are the agreement's; the acceptance in the signature is the stored one; the signed file is an incremental
  update of the document the client accepted (`unsigned_sha256`);
- `chain`: `verify_evidence`, the whole evidence chain.
Exits 0 when all hold, 1 when any does not (the same document is printed), 2 for an unknown application or a
database that does not exist or is not migrated (read only: nothing is created or upgraded).
"""
from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url

from otcdesk.app.commands import CommandError

BROKEN_EXIT = 1


def register(sub) -> None:
    p = sub.add_parser("kyc", help="client onboarding")
    ksub = p.add_subparsers(dest="kyc_command", required=True)
    v = ksub.add_parser("verify-agreement", help="verify an application's signed agreement and the evidence chain")
    v.add_argument("application_id")
    v.set_defaults(handler=verify_agreement)


def verify_agreement(args, settings):
    from otcdesk.app import migrations
    from otcdesk.app.cli import emit
    from otcdesk.app.db import make_engine
    from otcdesk.app.kyc.eseal import ESealError, load_eseal
    from otcdesk.app.repositories import transaction
    from otcdesk.app.repositories.evidence import verify_evidence

    url = make_url(settings.db_url)
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
        raise CommandError("no database to verify", {"database": shown})
    try:
        eseal = load_eseal(settings, create=False)
    except ESealError as exc:
        raise CommandError("no e-seal to verify against", {"reason": str(exc)}) from exc
    engine = make_engine(settings.db_url)
    try:
        with engine.connect() as conn:
            revision, head = migrations.current(conn), migrations.head()
        if revision != head:
            raise CommandError(f"database is at revision {revision}, not {head}: run `otcdesk db upgrade` first",
                               {"database": shown})
        with transaction(engine) as tx:
            agreement = tx.evidence.agreement(args.application_id)
            if agreement is None:
                raise CommandError("no signed agreement for this application",
                                   {"application_id": args.application_id})
            entries = tx.evidence.entries(args.application_id)
        chain = verify_evidence(engine)
    finally:
        engine.dispose()
    doc = check(args.application_id, agreement, entries, eseal, chain)
    if doc["ok"]:
        return doc
    emit(doc)  # the CLI maps only CommandError to a non-zero exit; a failed check prints the same document
    raise SystemExit(BROKEN_EXIT)


def check(application_id: str, agreement, entries: list, eseal, chain: dict) -> dict:
    """The verification document for a stored agreement, its evidence entries and the chain's verification."""
    from otcdesk.app.kyc.agreement import sha256, signed_over, verify_agreement_pdf

    pdf = bytes(agreement.pdf)
    signature = verify_agreement_pdf(pdf, eseal)
    file_sha = sha256(pdf)
    entry = entries[-1] if entries else None
    stored_acceptance = {k: str(v) for k, v in (agreement.acceptance or {}).items() if v is not None}
    evidence = {
        "entry_id": entry.id if entry else None,
        "entry_hash": entry.entry_hash if entry else None,
        "entries_for_application": len(entries),
        "stored_sha256": agreement.sha256,
        "file_sha256": file_sha,
        "entry_sha256": entry.agreement_sha256 if entry else None,
        "sha256_match": entry is not None and agreement.sha256 == file_sha == entry.agreement_sha256,
        "signer_match": entry is not None and entry.signer == agreement.signer == signature["signer"],
        "acceptance_match": entry is not None and entry.acceptance == agreement.acceptance,
        "signature_acceptance_match": signature["acceptance"] == stored_acceptance,
        "unsigned_sha256": agreement.unsigned_sha256,
        "signed_over_unsigned": signed_over(pdf, agreement.unsigned_sha256),
    }
    evidence["ok"] = all(evidence[k] for k in ("sha256_match", "signer_match", "acceptance_match",
                                                 "signature_acceptance_match", "signed_over_unsigned")) \
        and len({e.agreement_sha256 for e in entries}) == len(entries)  # one entry per agreement (signed again)
    return {"application_id": application_id, "signature": signature, "evidence": evidence, "chain": chain,
            "ok": bool(signature["valid"] and evidence["ok"] and chain["ok"])}
