"""Canary rollout per chat group (灰度): which groups' messages the desk drafts replies for.

Canary mode is the `canary` desk switch, off by default (no row): every group behaves as before. While it is on,
only the groups on the allowlist go on to the desk runner; a message of any other group is still stored and
audited (the inbound pipeline's intake), marked `held` and audited `inbound.held`, and gets no review item and no
reply. `CanaryAllowlist` (the last intake middleware) reads the switch and the list from the database for every
message, in the message's own unit of work, so a flip takes effect at once on every service instance (two
indexed lookups: `benchmarks/bench_canary_lookup.py` measures them).

The admin edits both in the console (`routes/channels.py`); `CanaryPolicy` validates the input and audits each
change (`canary.mode`, `canary.group_in`, `canary.group_out`: who, which group) in the change's transaction.
"""
from __future__ import annotations

import re
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from otcdesk.app.repositories import transaction
from otcdesk.bots.base import InboundMessage

CHANNELS = ("sim", "wechat", "wecom")  # the channel adapters' names (`bots.*.name`)
GROUP_ID = re.compile(r"[A-Za-z0-9@._:\-\u4e00-\u9fff（）()]{1,128}")  # room ids (…@chatroom), WeCom ChatIds, group names
GROUP_ID_RULE = "1-128 characters: letters, digits, Chinese characters, brackets and @ . _ : -"


class CanaryError(ValueError):
    def __init__(self, message: str, fields: dict[str, str]):
        super().__init__(message)
        self.message, self.fields = message, fields


def checked_group(channel: Any, group_id: Any) -> tuple[str, str]:
    """(channel, group_id) when both are well formed, else CanaryError naming the fields."""
    fields = {}
    if channel not in CHANNELS:
        fields["channel"] = f"one of {', '.join(CHANNELS)}"
    if not isinstance(group_id, str) or not GROUP_ID.fullmatch(group_id):
        fields["group_id"] = GROUP_ID_RULE
    if fields:
        raise CanaryError("invalid group", fields)
    return channel, group_id


class CanaryPolicy:
    """The canary state as the console shows it, and the admin's changes to it (validated, audited)."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def state(self) -> dict:
        """`{"enabled", "updated_by", "updated_at", "groups": [{"channel", "group_id", "added_by", "added_at"}],
        "channels"}`."""
        with transaction(self.engine) as tx:
            return {**tx.canary.mode(), "groups": tx.canary.groups(), "channels": list(CHANNELS)}

    def set_mode(self, enabled: Any, actor: str) -> dict:
        """Canary mode on (only allowlisted groups get drafts) or off (every group does); audited when it changes."""
        if not isinstance(enabled, bool):
            raise CanaryError("enabled must be true or false", {"enabled": "true or false"})
        try:
            with transaction(self.engine) as tx:
                if tx.canary.mode()["enabled"] != enabled:
                    before, after = tx.canary.set_mode(enabled, actor)
                    tx.audit.record(actor, "canary.mode", "canary", {"before": before["enabled"], "after": enabled})
        except IntegrityError:  # the first switch row, inserted by another admin at the same moment: theirs stands
            pass
        return self.state()

    def set_group(self, channel: Any, group_id: Any, admitted: Any, actor: str) -> dict:
        """Put a group in (`admitted` true) or take it out of the allowlist; audited when it changes."""
        channel, group_id = checked_group(channel, group_id)
        if not isinstance(admitted, bool):
            raise CanaryError("in must be true or false", {"in": "true or false"})
        try:
            with transaction(self.engine) as tx:
                row = tx.canary.add(channel, group_id, actor) if admitted else tx.canary.remove(channel, group_id)
                if row is not None:
                    tx.audit.record(actor, "canary.group_in" if admitted else "canary.group_out",
                                    f"group:{channel}:{group_id}", {"channel": channel, "group_id": group_id})
        except IntegrityError:  # another admin added it at the same moment: it is in, which is what was asked
            pass
        return self.state()


class CanaryAllowlist:
    """Intake middleware after `AuditReceived`: while canary mode is on, a message of a group outside the allowlist
    is marked `held` and audited (`inbound.held`) in its own unit of work, and goes no further."""

    def __init__(self, metrics: Any = None):
        self.metrics = metrics

    def __call__(self, handler, event: InboundMessage, data: dict):
        tx = data["tx"]
        if tx.canary.admits(event.channel, event.chat_id):
            return handler(event, data)
        tx.inbound.finish(data["inbound_id"], "held", None, None)
        tx.audit.record("desk-agent", "inbound.held", f"inbound:{data['inbound_id']}",
                        {"chat_id": event.chat_id, "reason": "canary"})
        data["held"] = True
        if self.metrics is not None:
            self.metrics.inbound_held.labels(channel=event.channel).inc()
        return None
