"""The simulator platform's transcript (`sim_message`): what the members of a simulated group see.

`SqlSimTranscript` is the store `bots.simulator.SimulatorChannel` is given (its `SimTranscript` protocol).
"""
from __future__ import annotations

from typing import Callable

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from otcdesk.app.db import unit_of_work
from otcdesk.app.models import InboundMessageRow, SimMessage


class SimTranscriptRepository:
    """Messages of simulated groups, oldest first; a message id is unique."""

    def __init__(self, session: Session):
        self.session = session

    def append(self, group: str, message_id: str, sender: str, text: str, from_bot: bool,
               mention: str | None = None) -> None:
        """Add a message; an id already in the transcript raises IntegrityError on flush."""
        self.session.add(SimMessage(message_id=message_id, group_id=group, sender=sender, text=text,
                                    from_bot=from_bot, mention=mention))
        self.session.flush()

    def undelivered(self, channel: str) -> list[dict]:
        """Client messages with no `inbound_message` row of `channel`, oldest first (the desk never stored them)."""
        stored = select(InboundMessageRow.id).where(InboundMessageRow.channel == channel,
                                                    InboundMessageRow.platform_msg_id == SimMessage.message_id)
        rows = self.session.exec(select(SimMessage).where(SimMessage.from_bot == False,  # noqa: E712
                                                          ~stored.exists()).order_by(SimMessage.id))
        return [{"group": r.group_id, "message_id": r.message_id, "sender": r.sender, "text": r.text} for r in rows]

    def messages(self, group: str) -> list[dict]:
        rows = self.session.exec(select(SimMessage).where(SimMessage.group_id == group).order_by(SimMessage.id))
        return [{"message_id": r.message_id, "sender": r.sender, "text": r.text, "from_bot": r.from_bot,
                 "mention": r.mention, "ts": r.ts.isoformat()} for r in rows]


class SqlSimTranscript:
    """`bots.simulator.SimTranscript` on the database, one unit of work per call; a known message id is a no-op."""

    def __init__(self, engine, on_append: Callable[[str], None] | None = None):
        self.engine = engine
        self.on_append = on_append

    def append(self, group: str, message_id: str, sender: str, text: str, from_bot: bool,
               mention: str | None = None) -> bool:
        try:
            with unit_of_work(self.engine) as s:
                SimTranscriptRepository(s).append(group, message_id, sender, text, from_bot, mention)
        except IntegrityError:
            return False
        if self.on_append:
            self.on_append(group)
        return True

    def messages(self, group: str) -> list[dict]:
        with unit_of_work(self.engine) as s:
            return SimTranscriptRepository(s).messages(group)

    def undelivered(self) -> list[dict]:
        with unit_of_work(self.engine) as s:
            return SimTranscriptRepository(s).undelivered("sim")
