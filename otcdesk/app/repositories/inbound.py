"""Inbound messages (`inbound_message`): stored before anything else, unique per (channel, platform id)."""
from __future__ import annotations

from dataclasses import asdict

from sqlmodel import Session, select

from otcdesk.app.models import InboundMessageRow
from otcdesk.bots.base import InboundMessage


class InboundRepository:
    """Every message a channel delivered and how its desk run ended (received → processed | failed)."""

    def __init__(self, session: Session):
        self.session = session

    def add(self, msg: InboundMessage) -> int:
        """Store a message and return its id; a seen (channel, platform id) raises IntegrityError on flush."""
        row = InboundMessageRow(**{k: v for k, v in asdict(msg).items() if k != "ts"})
        self.session.add(row)
        self.session.flush()
        return row.id

    def find(self, channel: str, platform_msg_id: str) -> int | None:
        return self.session.exec(select(InboundMessageRow.id).where(
            InboundMessageRow.channel == channel, InboundMessageRow.platform_msg_id == platform_msg_id)).first()

    def get(self, inbound_id: int) -> dict | None:
        """The message as the desk graph takes it (`agents.desk.Inbound`)."""
        row = self.session.get(InboundMessageRow, inbound_id)
        if row is None:
            return None
        return {"id": row.id, "channel": row.channel, "chat_id": row.chat_id, "sender_id": row.sender_id,
                "sender_name": row.sender_name, "text": row.text, "platform_msg_id": row.platform_msg_id}

    def received_at(self, inbound_id: int):
        """When the message was stored (UTC), None when unknown."""
        row = self.session.get(InboundMessageRow, inbound_id)
        return row.received_at if row is not None else None

    def unprocessed(self) -> list[int]:
        """Ids of stored messages whose run has not finished, oldest first."""
        return list(self.session.exec(select(InboundMessageRow.id).where(InboundMessageRow.status == "received")
                                      .order_by(InboundMessageRow.id)))

    def finish(self, inbound_id: int, status: str, intent: str | None, error: str | None) -> bool:
        """received → `status` once; False when the message was already finished."""
        row = self.session.get(InboundMessageRow, inbound_id)
        if row.status != "received":
            return False
        row.status, row.intent, row.error = status, intent, error
        self.session.add(row)
        return True
