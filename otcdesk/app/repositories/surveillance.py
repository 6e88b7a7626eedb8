"""Surveillance alerts (`surveillance_alert`): upserted by a run, triaged by compliance.

A run's alert whose id exists keeps its triage state (`status`, `note`, `version`); only what the detectors say
(score, evidence, `last_seen_at`) is refreshed. A triage step is a conditional update on `(id, status, version)`,
so of two concurrent decisions one wins and the other sees False.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, update
from sqlmodel import Session, select

from otcdesk.app.models import SurveillanceAlert, utcnow

_IN_BATCH = 500


def accounts_key(accounts: list[str]) -> str:
    return "|" + "|".join(accounts) + "|"


class SurveillanceRepository:
    def __init__(self, session: Session):
        self.session = session

    def get(self, alert_id: str) -> SurveillanceAlert | None:
        return self.session.get(SurveillanceAlert, alert_id)

    def upsert(self, found: dict[str, dict], at: datetime | None = None) -> tuple[list[str], list[str]]:
        """Store `found` (alert id → the detector's alert): new ids open, known ids refreshed with their triage
        state kept. Returns (new ids, ids seen again)."""
        at = at or utcnow()
        ids = list(found)
        known: set[str] = set()
        for i in range(0, len(ids), _IN_BATCH):
            known.update(self.session.exec(select(SurveillanceAlert.id)
                                           .where(SurveillanceAlert.id.in_(ids[i:i + _IN_BATCH]))))
        new, seen = [], []
        for alert_id, a in found.items():
            if alert_id in known:
                self.session.exec(update(SurveillanceAlert).where(SurveillanceAlert.id == alert_id)
                                  .values(score=a["score"], evidence=a["evidence"], last_seen_at=at))
                seen.append(alert_id)
            else:
                self.session.add(SurveillanceAlert(
                    id=alert_id, type=a["type"], accounts=a["accounts"], accounts_key=accounts_key(a["accounts"]),
                    order_ids=a["order_ids"], trade_ids=a["trade_ids"], score=a["score"], evidence=a["evidence"],
                    status="open", first_seen_at=at, last_seen_at=at, updated_at=at))
                new.append(alert_id)
        self.session.flush()
        return new, seen

    def list(self, *, type: str | None = None, status: str | None = None, account: str | None = None,
             limit: int = 200) -> list[SurveillanceAlert]:
        """Newest first (first seen), then highest score."""
        q = self._where(select(SurveillanceAlert), type, status, account)
        return list(self.session.exec(q.order_by(SurveillanceAlert.first_seen_at.desc(),
                                                 SurveillanceAlert.score.desc(), SurveillanceAlert.id).limit(limit)))

    def count(self, *, type: str | None = None, status: str | None = None, account: str | None = None) -> int:
        return self.session.exec(self._where(select(func.count()).select_from(SurveillanceAlert),
                                             type, status, account)).one()

    def counts(self) -> dict[str, dict[str, int]]:
        """type → status → number of alerts."""
        out: dict[str, dict[str, int]] = {}
        for t, s, n in self.session.exec(select(SurveillanceAlert.type, SurveillanceAlert.status, func.count())
                                         .group_by(SurveillanceAlert.type, SurveillanceAlert.status)):
            out.setdefault(t, {})[s] = n
        return out

    def last_seen(self) -> datetime | None:
        """When a run last found any alert."""
        return self.session.exec(select(func.max(SurveillanceAlert.last_seen_at))).one()

    @staticmethod
    def _where(q, type, status, account):
        if type:
            q = q.where(SurveillanceAlert.type == type)
        if status:
            q = q.where(SurveillanceAlert.status == status)
        if account:
            q = q.where(SurveillanceAlert.accounts_key.contains(accounts_key([account]), autoescape=True))
        return q

    def move(self, alert: SurveillanceAlert, dest: str, actor: str, note: str | None, version: int) -> bool:
        """alert.status → `dest` if it is still in its status at `version`; False otherwise (nothing written)."""
        at = utcnow()
        res = self.session.exec(update(SurveillanceAlert).where(SurveillanceAlert.id == alert.id,
                                                                SurveillanceAlert.status == alert.status,
                                                                SurveillanceAlert.version == version)
                                .values(status=dest, version=version + 1, updated_by=actor, updated_at=at,
                                        note=note))
        if res.rowcount != 1:
            return False
        self.session.flush()
        self.session.refresh(alert)
        return True
