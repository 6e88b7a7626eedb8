"""Conversation context (`pending_clarification`): a client's last incomplete request in a chat.

Its own aggregate, not part of the inbound message: it is keyed by (channel, chat, sender), outlives the
message that opened it, is overwritten by the next incomplete parse and cleared once a request is complete.
"""
from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from otcdesk.app.models import PendingClarification, utcnow


class ConversationRepository:
    """The open clarification (待补充的询价) of one client in one chat."""

    def __init__(self, session: Session):
        self.session = session

    def _row(self, channel: str, chat_id: str, sender_id: str) -> PendingClarification | None:
        return self.session.exec(select(PendingClarification).where(
            PendingClarification.channel == channel, PendingClarification.chat_id == chat_id,
            PendingClarification.sender_id == sender_id)).first()

    def open_clarification(self, channel: str, chat_id: str, sender_id: str, since: datetime) -> dict | None:
        """The incomplete parse remembered at or after `since`, if any."""
        row = self._row(channel, chat_id, sender_id)
        return row.parse if row is not None and row.created_at >= since else None

    def remember(self, channel: str, chat_id: str, sender_id: str, parse: dict) -> None:
        row = self._row(channel, chat_id, sender_id) or PendingClarification(
            channel=channel, chat_id=chat_id, sender_id=sender_id)
        row.parse, row.created_at = parse, utcnow()
        self.session.add(row)

    def clear(self, channel: str, chat_id: str, sender_id: str) -> None:
        row = self._row(channel, chat_id, sender_id)
        if row is not None:
            self.session.delete(row)
