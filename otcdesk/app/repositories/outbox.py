"""The outbox (`outbox`): one row per approved review item, claimed before a send and marked sent once."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, select

from otcdesk.app.models import OutboxMessage, ReviewItem


class OutboxRepository:
    """pending → sending → sent, or sending → unconfirmed when a non-idempotent send was interrupted."""

    def __init__(self, session: Session):
        self.session = session

    def enqueue_once(self, item: ReviewItem, text: str) -> bool:
        """A row for the item's reply unless it has one already; True when added."""
        if self.session.exec(select(OutboxMessage.id).where(OutboxMessage.review_id == item.id)).first():
            return False
        self.session.add(OutboxMessage(review_id=item.id, channel=item.channel, chat_id=item.chat_id,
                                       mention_id=item.sender_id, mention_name=item.sender_name, text=text))
        return True

    def due(self) -> list[OutboxMessage]:
        """Rows not delivered yet (`sending` ones were interrupted), oldest first."""
        return list(self.session.exec(select(OutboxMessage).where(OutboxMessage.status.in_(("pending", "sending")))
                                      .order_by(OutboxMessage.id)))

    def claim(self, row: OutboxMessage) -> bool:
        """→ sending, counting the attempt (a retry after a crash re-sends with the same idempotency key), only if
        the row is still as `row` was read (status and attempts): of two dispatchers that read it, one claims it and
        the other gets False, so even two leaders at once (`app.leader`) never send a row twice."""
        res = self.session.exec(update(OutboxMessage).where(OutboxMessage.id == row.id,
                                                            OutboxMessage.status == row.status,
                                                            OutboxMessage.attempts == row.attempts)
                                .values(status="sending", attempts=OutboxMessage.attempts + 1))
        return res.rowcount == 1

    def mark_sent(self, outbox_id: int, platform_msg_id: str, at: datetime) -> bool:
        """sending → sent; False when another dispatcher got there first."""
        res = self.session.exec(update(OutboxMessage).where(OutboxMessage.id == outbox_id,
                                                            OutboxMessage.status == "sending")
                                .values(status="sent", sent_at=at, platform_msg_id=platform_msg_id))
        return res.rowcount == 1

    def mark_unconfirmed(self, outbox_id: int) -> bool:
        """sending → unconfirmed: the send may have reached the group, so it is never repeated."""
        res = self.session.exec(update(OutboxMessage).where(OutboxMessage.id == outbox_id,
                                                            OutboxMessage.status == "sending")
                                .values(status="unconfirmed"))
        return res.rowcount == 1
