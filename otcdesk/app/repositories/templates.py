"""TemplateRepository: every version of each structure template (`structure_template`)."""
from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, func, select

from otcdesk.app.models import StructureTemplate, utcnow


def _iso(t):
    return t.isoformat() if isinstance(t, datetime) else t


def template_row(row: StructureTemplate, with_document: bool = False) -> dict:
    """The JSON form of one version (the API's); `document` only when asked. `withdrawn_at`/`withdrawn_by` are
    null unless this version was the newest when admin withdrew the structure."""
    out = {"structure": row.structure, "version": row.version, "sha256": row.sha256, "source": row.source,
           "uploaded_by": row.uploaded_by, "names": list((row.document or {}).get("names") or []),
           "description": (row.document or {}).get("description", ""), "uploaded_at": _iso(row.uploaded_at),
           "withdrawn_at": _iso(row.withdrawn_at), "withdrawn_by": row.withdrawn_by}
    if with_document:
        out["document"] = row.document
    return out


class TemplateRepository:
    def __init__(self, session: Session):
        self.session = session

    def since(self, after_id: int) -> list[StructureTemplate]:
        """The versions stored after row `after_id`, oldest first."""
        return list(self.session.exec(select(StructureTemplate).where(StructureTemplate.id > after_id)
                                      .order_by(StructureTemplate.id)))

    def count(self) -> int:
        return self.session.exec(select(func.count(StructureTemplate.id))).one() or 0

    def counts(self) -> tuple[int, int]:
        """(rows, withdrawn rows), in one query: both only ever grow (rows are never deleted, a withdrawal is
        never undone in place), so equal counts mean nothing changed."""
        rows, withdrawn = self.session.exec(select(func.count(StructureTemplate.id),
                                                   func.count(StructureTemplate.withdrawn_at))).one()
        return rows or 0, withdrawn or 0

    def versions(self, structure: str) -> list[StructureTemplate]:
        """The versions of one structure, newest first."""
        return list(self.session.exec(select(StructureTemplate).where(StructureTemplate.structure == structure)
                                      .order_by(StructureTemplate.version.desc())))

    def latest(self, structure: str) -> StructureTemplate | None:
        found = self.versions(structure)
        return found[0] if found else None

    def latest_all(self) -> list[StructureTemplate]:
        """The newest version of every structure, by structure."""
        newest = (select(StructureTemplate.structure, func.max(StructureTemplate.version).label("v"))
                  .group_by(StructureTemplate.structure).subquery())
        rows = self.session.exec(select(StructureTemplate).join(
            newest, (StructureTemplate.structure == newest.c.structure) & (StructureTemplate.version == newest.c.v)))
        return sorted(rows, key=lambda r: r.structure)

    def withdraw(self, row: StructureTemplate, by: str) -> StructureTemplate:
        """Mark `row` (a structure's newest version) withdrawn by `by`, now."""
        row.withdrawn_at, row.withdrawn_by = utcnow(), by
        self.session.add(row)
        self.session.flush()
        return row

    def structures(self) -> set[str]:
        return set(self.session.exec(select(StructureTemplate.structure).distinct()))

    def add(self, structure: str, document: dict, sha256: str, source: str, by: str) -> StructureTemplate:
        """Store the next version of `structure` (1 for a new one); a concurrent add of the same version fails on the
        unique (structure, version) at flush."""
        latest = self.latest(structure)
        row = StructureTemplate(structure=structure, version=(latest.version + 1) if latest else 1, document=document,
                                sha256=sha256, source=source, uploaded_by=by, uploaded_at=utcnow())
        self.session.add(row)
        self.session.flush()
        return row
