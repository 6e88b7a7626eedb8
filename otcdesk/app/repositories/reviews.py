"""Review items (`review_item`): drafted replies waiting for a trader, one per graph thread.

Decisions are conditional updates (`decide`), so of two concurrent decisions exactly one wins; which
decision is allowed is `workflows.review`'s rule, not this module's. An order item's terms change only while it
is pending (`amend_order`, also conditional), so an amendment never races a trader's approval into a booking.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, func, or_, update
from sqlmodel import Session, select

from otcdesk.app.models import ReviewItem


class ReviewRepository:
    """Opens, lists and decides review items."""

    def __init__(self, session: Session):
        self.session = session

    def get(self, review_id: str) -> ReviewItem | None:
        return self.session.get(ReviewItem, review_id)

    def list(self, status: str | None = None, limit: int = 200, before: str | None = None) -> list[ReviewItem]:
        """Newest first (ties by id), optionally in one status; `before` is the id of the last item of the page
        before (a keyset cursor: pages stay stable while items arrive or change status)."""
        q = select(ReviewItem)
        if status:
            q = q.where(ReviewItem.status == status)
        if before is not None:
            at = select(ReviewItem.created_at).where(ReviewItem.id == before).scalar_subquery()
            q = q.where(or_(ReviewItem.created_at < at, and_(ReviewItem.created_at == at, ReviewItem.id < before)))
        order = (ReviewItem.created_at.desc(), ReviewItem.id.desc())
        return list(self.session.exec(q.order_by(*order).limit(limit)))

    def count(self, status: str | None = None) -> int:
        """How many items there are, optionally in one status."""
        q = select(func.count()).select_from(ReviewItem)
        if status:
            q = q.where(ReviewItem.status == status)
        return self.session.exec(q).one()

    def add_once(self, item: ReviewItem) -> bool:
        """Add the item unless one with its id exists (a resumed graph node opens it again); True when added."""
        if self.session.get(ReviewItem, item.id) is not None:
            return False
        self.session.add(item)
        return True

    def decide(self, review_id: str, status: str, by: str, at: datetime, *, reason: str | None = None,
               final_reply: str | None = None, unexpired: bool = False) -> bool:
        """pending → `status` when still pending (and, with `unexpired`, not past its expiry); True if this won."""
        conditions = [ReviewItem.id == review_id, ReviewItem.status == "pending"]
        if unexpired:
            conditions.append(ReviewItem.expires_at > at)
        res = self.session.exec(update(ReviewItem).where(*conditions).values(
            status=status, decided_by=by, decided_at=at, reason=reason, final_reply=final_reply))
        return res.rowcount == 1

    def mark_sent(self, review_id: str) -> None:
        self.session.exec(update(ReviewItem).where(ReviewItem.id == review_id).values(status="sent"))

    def supersede(self, review_id: str, new_review_id: str) -> None:
        """Link a repriced item to the item that replaced it."""
        self.session.exec(update(ReviewItem).where(ReviewItem.id == review_id).values(superseded_by=new_review_id))

    def due_for_expiry(self, now: datetime) -> list[str]:
        """Ids of pending items at or past their expiry."""
        return list(self.session.exec(select(ReviewItem.id).where(ReviewItem.status == "pending",
                                                                  ReviewItem.expires_at <= now)))

    def in_status(self, *statuses: str) -> list[ReviewItem]:
        return list(self.session.exec(select(ReviewItem).where(ReviewItem.status.in_(statuses))))

    def count_for_inbound(self, inbound_id: int) -> int:
        """How many items (the first and every reprice) one inbound message has had."""
        return self.session.exec(select(func.count()).select_from(ReviewItem)
                                 .where(ReviewItem.inbound_id == inbound_id)).one()

    def last_sent_quote(self, channel: str, chat_id: str, sender_id: str) -> ReviewItem | None:
        """The client's most recent quote in this chat that reached them."""
        return self.session.exec(select(ReviewItem).where(
            ReviewItem.channel == channel, ReviewItem.chat_id == chat_id, ReviewItem.sender_id == sender_id,
            ReviewItem.kind == "quote", ReviewItem.status == "sent").order_by(ReviewItem.created_at.desc())).first()

    def last_sent(self, kind: str, channel: str, chat_id: str, sender_id: str) -> ReviewItem | None:
        """The client's most recent item of `kind` in this chat that reached them (e.g. the last holdings list)."""
        return self.session.exec(select(ReviewItem).where(
            ReviewItem.channel == channel, ReviewItem.chat_id == chat_id, ReviewItem.sender_id == sender_id,
            ReviewItem.kind == kind, ReviewItem.status == "sent").order_by(ReviewItem.created_at.desc())).first()

    def sent_quote(self, channel: str, chat_id: str, quote_id: str) -> ReviewItem | None:
        """The quote `quote_id` if it was sent in this chat (to whichever member of the group asked for it)."""
        return self.session.exec(select(ReviewItem).where(
            ReviewItem.id == quote_id, ReviewItem.channel == channel, ReviewItem.chat_id == chat_id,
            ReviewItem.kind == "quote", ReviewItem.status == "sent")).first()

    def orders_of(self, channel: str, chat_id: str, sender_id: str, *, status: str | None = None,
                  kinds: tuple[str, ...] = ("order", "unwind"), ref_id: str | None = None,
                  limit: int = 50) -> list[ReviewItem]:
        """The client's order (and unwind) items in this chat, newest first; optionally in one status or on one
        quote (`ref_id`)."""
        q = select(ReviewItem).where(ReviewItem.channel == channel, ReviewItem.chat_id == chat_id,
                                     ReviewItem.sender_id == sender_id, ReviewItem.kind.in_(kinds))
        if status:
            q = q.where(ReviewItem.status == status)
        if ref_id:
            q = q.where(ReviewItem.ref_id == ref_id)
        return list(self.session.exec(q.order_by(ReviewItem.created_at.desc(), ReviewItem.id.desc()).limit(limit)))

    def amend_order(self, review_id: str, order: dict, draft: str) -> bool:
        """New terms and draft for a pending order item; False when it is no longer pending."""
        res = self.session.exec(update(ReviewItem).where(ReviewItem.id == review_id, ReviewItem.status == "pending")
                                .values(order=order, draft_reply=draft))
        return res.rowcount == 1
