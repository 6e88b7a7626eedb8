"""The simulator platform's transcript in the database (table `sim_message`)."""
from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from otcdesk.app.db import unit_of_work
from otcdesk.app.models import SimMessage


class SqlSimTranscript:
    """`bots.simulator.SimTranscript` on SQLModel; appending an existing message id is a no-op."""

    def __init__(self, engine, on_append=None):
        self.engine = engine
        self.on_append = on_append

    def append(self, group: str, message_id: str, sender: str, text: str, from_bot: bool,
               mention: str | None = None) -> bool:
        try:
            with unit_of_work(self.engine) as s:
                s.add(SimMessage(message_id=message_id, group_id=group, sender=sender, text=text,
                                 from_bot=from_bot, mention=mention))
        except IntegrityError:
            return False
        if self.on_append:
            self.on_append(group)
        return True

    def messages(self, group: str) -> list[dict]:
        with unit_of_work(self.engine) as s:
            rows = s.exec(select(SimMessage).where(SimMessage.group_id == group).order_by(SimMessage.id))
            return [{"message_id": r.message_id, "sender": r.sender, "text": r.text, "from_bot": r.from_bot,
                     "mention": r.mention, "ts": r.ts.isoformat()} for r in rows]
