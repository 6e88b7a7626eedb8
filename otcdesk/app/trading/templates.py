"""TemplateService: structure templates added without code — from the data directory's templates/ folder at service
start, or uploaded by admin — checked, versioned, audited, and declared to the pricer and the parser.

A template (`pricing_engine.templates`, CONTRACTS.md "Structure templates") is checked by
`pricing_engine.templates.validate.check_template` against the parser's words (`ner.structures.taken_names`: a
name must not mean something else already, nor be part of a built-in structure word) and the structures stored
before (a structure already in `structure_template` may get a new version; any other registered structure is
built-in), then its defaults are priced on the demo market by every engine that supports its blocks (when every
parameter has a default). A refusal is a `TemplateError` with the reason per field.

Two uploads at once (on any instances) are stored one at a time, under the audit chain's lock, and each checks the
names the table holds for other structures before it stores: a name never comes to mean two structures.

Versions: each accepted document of a structure is the next version of it in `structure_template` (the same document
as the newest again is no new version); every version is declared to the pricer (`templates.declare`: a product that
names its `template_version` is priced by that version), the newest to the parser too (`ner.structures.DECLARED`).
Every process catches up with the table before it parses or prices (`sync`, one query counting the rows and the
withdrawn rows when nothing is new), so an upload or a withdrawal on one instance is understood by the next message on
every instance, no restart.

Withdrawal (`withdraw`, admin): a broken structure stops being understood. Its newest version is marked
`withdrawn_at`/`withdrawn_by`; every process's parser drops the structure at its next sync, while the pricer keeps
every version declared (booked trades name the version that priced them and still revalue). Nothing is deleted. A
later upload of the structure is its next version, not withdrawn: it brings the structure back. The folder loader
leaves a withdrawn structure withdrawn while its file is the withdrawn document (same sha256); a changed file is a new
version as before. A withdrawn structure's names are free for another structure.

Audit: `template.uploaded` (by the admin) and `template.loaded` (from a file, by `system`), each with structure,
version, sha256, names and source; `template.withdrawn` (by the admin) with structure, version and reason; a refused
file is logged with its name and reason.
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from otcdesk.app.repositories import transaction
from otcdesk.app.repositories.templates import template_row

log = logging.getLogger(__name__)
MAX_TEMPLATE_BYTES = 64 * 1024  # a template is a page of JSON; anything larger is not one
CHECK_UNDERLYING = "000905.SH"  # the demo market the defaults are priced on (checked-in snapshot, SIMULATED)
SUBJECT = "structure_template"


class TemplateConflict(RuntimeError):
    """Another upload of the same structure was stored at the same moment."""


class TemplateNotFound(LookupError):
    """No version of the structure is stored."""


class TemplateAlreadyWithdrawn(TemplateConflict):
    """The structure's newest version is withdrawn already."""


MAX_REASON_CHARS = 500


def canonical(doc: Any) -> str:
    """The JSON text that is hashed: sorted keys, no spaces, UTF-8 characters as they are."""
    return json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def sha256_of(doc: Any) -> str:
    return hashlib.sha256(canonical(doc).encode("utf-8")).hexdigest()


def _digest_or_none(doc: Any) -> str | None:
    """sha256_of(doc), or None for a document that has no canonical JSON (the check refuses it with its reason)."""
    try:
        return sha256_of(doc)
    except (TypeError, ValueError):
        return None


def read_template_file(path: Path) -> dict:
    """A template file's document; TemplateError when it is too large or not a JSON object."""
    from otcdesk.pricing_engine.templates.validate import TemplateError

    size = path.stat().st_size
    if size > MAX_TEMPLATE_BYTES:
        raise TemplateError(f"{path.name} is {size} bytes; a template is at most {MAX_TEMPLATE_BYTES}",
                            {"template": f"larger than {MAX_TEMPLATE_BYTES} bytes"})
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TemplateError(f"{path.name} is not UTF-8 JSON: {exc}", {"template": "is not UTF-8 JSON"}) from None
    if not isinstance(doc, dict):
        raise TemplateError(f"{path.name} is not a JSON object", {"template": "must be a JSON object"})
    return doc


def demo_market() -> tuple[dict, str]:
    """(market, valuation date) the defaults are priced on: the checked-in demo snapshot of CHECK_UNDERLYING."""
    from otcdesk.app.market import market_for

    m = market_for(CHECK_UNDERLYING)
    return {k: m[k] for k in ("spot", "vol", "rate", "div")}, str(m["as_of"])[:10]


def check(doc: Any, replaceable: set[str] = frozenset()) -> tuple[Any, dict]:
    """(Template, {engine: {price_pct, stderr}}) of an acceptable document, against the parser's words and the
    structures declared so far; raises TemplateError. `engines` is empty when a required parameter has no default."""
    from otcdesk.ner.structures import name_conflicts, taken_names
    from otcdesk.ner.vocabulary import default_vocabulary
    from otcdesk.pricing_engine.templates.validate import TemplateError, check_template, missing_defaults, \
        price_defaults

    vocab = default_vocabulary()
    t = check_template(doc, taken_names=taken_names(vocab), replaceable=set(replaceable))
    why = name_conflicts(list(t.names), t.structure, vocab)
    if why:
        raise TemplateError(f"template refused: names {why}", {"names": why})
    if missing_defaults(t):
        return t, {}
    market, vd = demo_market()
    return t, price_defaults(t, market, vd, underlying=CHECK_UNDERLYING)


def declare_row(structure: str, version: int | None, document: dict) -> None:
    """Declare one stored version to the pricer and, as the newest, to the parser."""
    from otcdesk.ner.structures import DECLARED, DeclaredStructure
    from otcdesk.pricing_engine.templates import Template, declare

    t = declare(Template.from_dict(document, version))
    DECLARED.declare(DeclaredStructure(structure, t.names, t.params, version))


def _withdrawn_as(latest, digest: str | None) -> bool:
    """The structure's newest version is withdrawn and is this very document."""
    return latest is not None and latest.withdrawn_at is not None and latest.sha256 == digest


def names_stored_by_others(tx, structure: str, names) -> str | None:
    """Why a name is already another structure's in the table (its newest version), or None. The parser's check
    sees only what this process declared; two uploads of different structures with one name, on two instances at
    once, would both pass it."""
    from otcdesk.ner.structures import name_key

    mine = {name_key(n): n for n in names}
    for row in tx.templates.latest_all():
        if row.structure == structure or row.withdrawn_at is not None:  # a withdrawn structure's names are free
            continue
        for other in row.document.get("names") or ():
            if name_key(str(other)) in mine:
                return f"name {mine[name_key(str(other))]!r} is {row.structure!r}'s (version {row.version})"
    return None


class TemplateService:
    """The structure templates of one database (see the module docstring)."""

    def __init__(self, engine: Engine, folder: Path | None = None):
        self.engine = engine
        self.folder = folder
        self._seen: set[int] = set()  # the ids of the rows declared
        self._withdrawn: set[int] = set()  # the ids of the withdrawn rows applied
        self._lock = threading.Lock()

    # ---- reading ----------------------------------------------------------------------------
    def sync(self) -> int:
        """Declare the versions stored since the last call (by any process) and drop from the parser the structures
        withdrawn since; returns how many of those changes it applied. Rows are never deleted and a withdrawal is
        never undone in place, so counts of rows and of withdrawn rows equal to those applied mean nothing is new;
        ids are not a high-water mark (on PostgreSQL a lower id may commit after a higher one, when two instances
        store at once)."""
        with transaction(self.engine) as tx:
            if tx.templates.counts() == (len(self._seen), len(self._withdrawn)):
                return 0
        from otcdesk.ner.structures import DECLARED

        with self._lock:
            with transaction(self.engine) as tx:
                stored = [(r.id, r.structure, r.version, r.document, r.withdrawn_at is not None)
                          for r in tx.templates.since(0)]
            new = sorted((r for r in stored if r[0] not in self._seen), key=lambda r: (r[1], r[2]))
            for rid, structure, version, document, _ in new:  # oldest first: the parser keeps the newest
                try:
                    declare_row(structure, version, document)
                except Exception:  # a stored version that no longer declares must not stop the others
                    log.exception("stored template %s v%s could not be declared", structure, version)
                self._seen.add(rid)
            new_ids = {r[0] for r in new}
            newest: dict[str, tuple] = {}
            for row in stored:
                if row[1] not in newest or row[2] > newest[row[1]][2]:
                    newest[row[1]] = row
            withdrawn = {r[0] for r in stored if r[4]} - self._withdrawn
            for rid, structure, version, _, is_withdrawn in newest.values():
                if is_withdrawn and (rid in withdrawn or rid in new_ids):
                    DECLARED.withdraw(structure)  # the parser only: the pricer keeps every version
                    log.info("template %s withdrawn (version %s): no longer understood", structure, version)
            self._withdrawn |= withdrawn
            return len(new) + len(withdrawn)

    def table(self) -> list[dict]:
        """The newest version of every stored template, with its number of versions (`withdrawn_at`/`withdrawn_by`
        set when the structure is withdrawn)."""
        with transaction(self.engine) as tx:
            out = []
            for r in tx.templates.latest_all():
                row = template_row(r)
                row["versions"] = r.version
                out.append(row)
            return out

    def versions(self, structure: str) -> list[dict] | None:
        """Every version of `structure`, newest first, with its document; None when it has none."""
        with transaction(self.engine) as tx:
            rows = tx.templates.versions(structure)
            return [template_row(r, with_document=True) for r in rows] or None

    # ---- adding -------------------------------------------------------------------------------
    def upload(self, doc: Any, by: str) -> dict:
        """Check and store `doc` as the next version of its structure (audited `template.uploaded`), declare it;
        returns the version row with `engines` (the defaults' prices) and `unchanged` (the same document as the
        newest: no new version). Raises TemplateError, TemplateConflict."""
        from otcdesk.pricing_engine.templates.validate import TemplateError

        if len(json.dumps(doc, ensure_ascii=False).encode()) > MAX_TEMPLATE_BYTES:  # whatever the request's framing
            raise TemplateError(f"a template is at most {MAX_TEMPLATE_BYTES} bytes", {"template": "too large"})
        return self._add(doc, by, "upload", "template.uploaded")

    def withdraw(self, structure: str, by: str, reason: str) -> dict:
        """Withdraw `structure` (audited `template.withdrawn` in the same transaction): its newest version is marked
        withdrawn, every process's parser drops it at its next sync (this one's now), the pricer keeps every version.
        Returns the newest version's row with `versions`. Raises ValueError (no reason, or too long),
        TemplateNotFound, TemplateAlreadyWithdrawn."""
        reason = (reason or "").strip() if isinstance(reason, str) else ""
        if not reason:
            raise ValueError("a withdrawal needs a reason")
        if len(reason) > MAX_REASON_CHARS:
            raise ValueError(f"a reason is at most {MAX_REASON_CHARS} characters")
        with transaction(self.engine) as tx:
            tx.audit.lock_chain()  # withdrawals and uploads on any instance one at a time: this sees them all
            latest = tx.templates.latest(structure)
            if latest is None:
                raise TemplateNotFound(f"no stored template {structure!r}")
            if latest.withdrawn_at is not None:
                raise TemplateAlreadyWithdrawn(
                    f"{structure} version {latest.version} was withdrawn already by {latest.withdrawn_by}")
            row = tx.templates.withdraw(latest, by)
            tx.audit.record(by, "template.withdrawn", f"{SUBJECT}:{structure}",
                            {"structure": structure, "version": row.version, "reason": reason})
            out = {**template_row(row), "versions": row.version}
        self.sync()
        return out

    def load_folder(self) -> dict:
        """Store every acceptable *.json of the folder that differs from its structure's newest version (audited
        `template.loaded`, by system); a refused file is logged with its reason. A file that is the withdrawn newest
        version of its structure (same sha256) leaves it withdrawn: no new version, listed under "withdrawn".
        Returns {"loaded", "refused", "withdrawn"}."""
        from otcdesk.pricing_engine.templates.validate import TemplateError

        loaded, refused, withdrawn = [], {}, []
        if self.folder is None or not self.folder.is_dir():
            return {"loaded": loaded, "refused": refused, "withdrawn": withdrawn}
        for path in sorted(self.folder.glob("*.json")):
            try:
                row = self._add(read_template_file(path), "system", f"file:{path.name}", "template.loaded",
                                revive=False)
            except (TemplateError, TemplateConflict) as exc:
                refused[path.name] = str(exc)
                log.warning("template file %s refused: %s", path.name, exc)
                continue
            if row.get("withdrawn_at"):
                withdrawn.append({"file": path.name, "structure": row["structure"], "version": row["version"]})
            elif not row["unchanged"]:
                loaded.append({"file": path.name, "structure": row["structure"], "version": row["version"]})
        if loaded:
            log.info("templates loaded from %s: %s", self.folder, loaded)
        if withdrawn:
            log.info("template files left withdrawn (the withdrawn document unchanged): %s", withdrawn)
        return {"loaded": loaded, "refused": refused, "withdrawn": withdrawn}

    def _add(self, doc: Any, by: str, source: str, action: str, revive: bool = True) -> dict:
        """Store `doc` as the next version unless it is the newest already. A withdrawn newest version with the same
        document is stored again as a new version when `revive` (an admin's upload brings the structure back); else
        (the folder at start) it stays withdrawn and is returned as it is, unchecked."""
        self.sync()
        from otcdesk.ner.structures import DECLARED
        from otcdesk.pricing_engine.templates.validate import TemplateError

        if not revive and isinstance(doc.get("structure"), str):
            with transaction(self.engine) as tx:
                latest = tx.templates.latest(doc["structure"])
                if _withdrawn_as(latest, _digest_or_none(doc)):
                    return {**template_row(latest), "engines": {}, "unchanged": True}

        with transaction(self.engine) as tx:  # stored here, or declared from a stored version: not built-in
            replaceable = tx.templates.structures() | {e.structure for e in DECLARED.entries() if e.version}
        t, engines = check(doc, replaceable)
        digest = sha256_of(doc)
        try:
            with transaction(self.engine) as tx:
                tx.audit.lock_chain()  # uploads on any instance one at a time from here: the check below sees them all
                taken = names_stored_by_others(tx, t.structure, t.names)
                if taken:
                    raise TemplateError(f"template refused: {taken}, stored at the same moment", {"names": taken})
                latest = tx.templates.latest(t.structure)
                if not revive and _withdrawn_as(latest, digest):
                    return {**template_row(latest), "engines": {}, "unchanged": True}  # withdrawn meanwhile
                if latest is not None and latest.sha256 == digest and latest.withdrawn_at is None:
                    return {**template_row(latest), "engines": engines, "unchanged": True}
                row = tx.templates.add(t.structure, dict(doc), digest, source, by)
                tx.audit.record(by, action, f"{SUBJECT}:{t.structure}",
                                {"structure": t.structure, "version": row.version, "sha256": digest,
                                 "names": list(t.names), "source": source})
                out = template_row(row)
        except IntegrityError:
            raise TemplateConflict(f"{t.structure} was changed at the same moment; upload it again") from None
        self.sync()
        return {**out, "engines": engines, "unchanged": False}


def declare_for_command(settings) -> None:
    """For the one-shot commands (`parse`, `price`, `template check`): declare the templates this data directory
    knows — the versions stored in its database, when it has one, and the acceptable files of its templates/ folder
    (checked, not stored: storing is the service's job at start). Touches no database that does not exist yet."""
    from otcdesk.pricing_engine.templates.validate import TemplateError

    stored: set[str] = set()
    sqlite_file = settings.data_dir / "otcdesk.db"
    if settings.database_url or sqlite_file.exists():
        from otcdesk.app.db import init_db, make_engine

        engine = make_engine(settings.db_url)
        try:
            init_db(engine)
            service = TemplateService(engine)
            service.sync()
            with transaction(engine) as tx:
                stored = tx.templates.structures()
        finally:
            engine.dispose()
    folder = settings.data_dir / "templates"
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            doc = read_template_file(path)
            if doc.get("structure") in stored:
                continue  # the service stores a changed file as a new version at its next start
            t, _ = check(doc)
        except TemplateError as exc:
            log.warning("template file %s refused: %s", path.name, exc)
            continue
        declare_row(t.structure, None, doc)
