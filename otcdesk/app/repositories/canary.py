"""CanaryRepository: the canary allowlist of chat groups (`canary_group`) and its switch (`desk_switch` "canary")."""
from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from otcdesk.app.models import CanaryGroup, DeskSwitch, utcnow

CANARY = "canary"  # the switch's name in `desk_switch`


def _iso(ts) -> str | None:
    return ts.isoformat() if isinstance(ts, datetime) else ts


def group_row(row: CanaryGroup) -> dict:
    """The JSON form of one allowlisted group (the API's and the audit log's)."""
    return {"channel": row.channel, "group_id": row.group_id, "added_by": row.added_by, "added_at": _iso(row.added_at)}


class CanaryRepository:
    def __init__(self, session: Session):
        self.session = session

    def admits(self, channel: str, group_id: str) -> bool:
        """Whether a message of this group goes on to the desk: always while canary mode is off (no row, or
        off), else only when the group is on the allowlist. One indexed lookup each (the inbound hot path)."""
        if not self.session.exec(select(DeskSwitch.enabled).where(DeskSwitch.name == CANARY)).first():
            return True
        return self.session.exec(select(CanaryGroup.id).where(CanaryGroup.channel == channel,
                                                              CanaryGroup.group_id == group_id)).first() is not None

    def mode(self) -> dict:
        """`{"enabled", "updated_by", "updated_at"}`; off and never set: `updated_by` None."""
        row = self.session.get(DeskSwitch, CANARY)
        if row is None:
            return {"enabled": False, "updated_by": None, "updated_at": None}
        return {"enabled": row.enabled, "updated_by": row.updated_by, "updated_at": _iso(row.updated_at)}

    def set_mode(self, enabled: bool, by: str) -> tuple[dict, dict]:
        """Turn canary mode on or off; returns (before, after)."""
        before = self.mode()
        row = self.session.get(DeskSwitch, CANARY) or DeskSwitch(name=CANARY, updated_by=by)
        row.enabled, row.updated_by, row.updated_at = bool(enabled), by, utcnow()
        self.session.add(row)
        self.session.flush()
        return before, self.mode()

    def groups(self) -> list[dict]:
        """The allowlist by channel, then group id (code-point order whatever the database's collation)."""
        return sorted((group_row(r) for r in self.session.exec(select(CanaryGroup))),
                      key=lambda g: (g["channel"], g["group_id"]))

    def _get(self, channel: str, group_id: str) -> CanaryGroup | None:
        return self.session.exec(select(CanaryGroup).where(CanaryGroup.channel == channel,
                                                           CanaryGroup.group_id == group_id)).first()

    def add(self, channel: str, group_id: str, by: str) -> dict | None:
        """Put a group on the allowlist; returns its row, None when it was there already."""
        if self._get(channel, group_id) is not None:
            return None
        row = CanaryGroup(channel=channel, group_id=group_id, added_by=by)
        self.session.add(row)
        self.session.flush()
        return group_row(row)

    def remove(self, channel: str, group_id: str) -> dict | None:
        """Take a group off the allowlist; returns what it held, None when it was not there."""
        row = self._get(channel, group_id)
        if row is None:
            return None
        before = group_row(row)
        self.session.delete(row)
        self.session.flush()
        return before
