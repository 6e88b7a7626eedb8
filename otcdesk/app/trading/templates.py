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
Every process catches up with the table before it parses or prices (`sync`, one `count(*)` query when nothing is new),
so an upload on one instance is understood by the next message on every instance, no restart.

Audit: `template.uploaded` (by the admin) and `template.loaded` (from a file, by `system`), each with structure,
version, sha256, names and source; a refused file is logged with its name and reason.
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


def canonical(doc: Any) -> str:
    """The JSON text that is hashed: sorted keys, no spaces, UTF-8 characters as they are."""
    return json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def sha256_of(doc: Any) -> str:
    return hashlib.sha256(canonical(doc).encode("utf-8")).hexdigest()


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


def names_stored_by_others(tx, structure: str, names) -> str | None:
    """Why a name is already another structure's in the table (its newest version), or None. The parser's check
    sees only what this process declared; two uploads of different structures with one name, on two instances at
    once, would both pass it."""
    from otcdesk.ner.structures import name_key

    mine = {name_key(n): n for n in names}
    for row in tx.templates.latest_all():
        if row.structure == structure:
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
        self._lock = threading.Lock()

    # ---- reading ----------------------------------------------------------------------------
    def sync(self) -> int:
        """Declare the versions stored since the last call (by any process); returns how many. Rows are never
        deleted, so a count equal to the rows declared means nothing is new; ids are not a high-water mark (on
        PostgreSQL a lower id may commit after a higher one, when two instances store at once)."""
        with transaction(self.engine) as tx:
            if tx.templates.count() == len(self._seen):
                return 0
        with self._lock:
            with transaction(self.engine) as tx:
                rows = [(r.id, r.structure, r.version, r.document) for r in tx.templates.since(0)
                        if r.id not in self._seen]
            for rid, structure, version, document in rows:
                try:
                    declare_row(structure, version, document)
                except Exception:  # a stored version that no longer declares must not stop the others
                    log.exception("stored template %s v%s could not be declared", structure, version)
                self._seen.add(rid)
            return len(rows)

    def table(self) -> list[dict]:
        """The newest version of every stored template, with its number of versions."""
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

    def load_folder(self) -> dict:
        """Store every acceptable *.json of the folder that differs from its structure's newest version (audited
        `template.loaded`, by system); a refused file is logged with its reason. Returns {"loaded", "refused"}."""
        from otcdesk.pricing_engine.templates.validate import TemplateError

        loaded, refused = [], {}
        if self.folder is None or not self.folder.is_dir():
            return {"loaded": loaded, "refused": refused}
        for path in sorted(self.folder.glob("*.json")):
            try:
                row = self._add(read_template_file(path), "system", f"file:{path.name}", "template.loaded")
            except (TemplateError, TemplateConflict) as exc:
                refused[path.name] = str(exc)
                log.warning("template file %s refused: %s", path.name, exc)
                continue
            if not row["unchanged"]:
                loaded.append({"file": path.name, "structure": row["structure"], "version": row["version"]})
        if loaded:
            log.info("templates loaded from %s: %s", self.folder, loaded)
        return {"loaded": loaded, "refused": refused}

    def _add(self, doc: Any, by: str, source: str, action: str) -> dict:
        self.sync()
        from otcdesk.ner.structures import DECLARED
        from otcdesk.pricing_engine.templates.validate import TemplateError

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
                if latest is not None and latest.sha256 == digest:
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
