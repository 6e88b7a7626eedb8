"""The outbox dispatcher: delivers each approved reply through its channel once.

The graph's `deliver` node enqueues a row per approved review item (`enqueue`, idempotent). `dispatch`
claims each row (pending → sending, only while the row is as it was read, so two dispatchers never both
send it), sends it with the idempotency key `outbox-<row id>`, and marks it
sent together with its review item. A row found `sending` was interrupted mid-send: an idempotent
channel gets it again with the same key; a non-idempotent one (WeChat) may already have shown it, so it
is marked `unconfirmed` for a person to check and never sent twice.
"""
from __future__ import annotations

import logging

from sqlalchemy.engine import Engine

from otcdesk.app.desk.reviews import item_log_ids, review_dict
from otcdesk.app.events import EventBus
from otcdesk.app.logs import log_context
from otcdesk.app.metrics import Metrics
from otcdesk.app.tracing import Tracing
from otcdesk.app.models import OutboxMessage, utcnow
from otcdesk.app.repositories import transaction
from otcdesk.bots.base import Channel, Reply

log = logging.getLogger(__name__)


class OutboxDispatcher:
    """`agents.desk.Outbox` for the graph, and the delivery loop's one pass (`dispatch`)."""

    def __init__(self, engine: Engine, events: EventBus, channels: dict[str, Channel] | None = None, *,
                 metrics: Metrics | None = None, tracing: Tracing | None = None):
        self.engine = engine
        self.events = events
        self.metrics = metrics or Metrics()
        self.tracing = tracing or Tracing.off()
        self.channels: dict[str, Channel] = dict(channels or {})

    def register(self, channel: Channel) -> None:
        """Deliver replies of `channel.name` through this channel."""
        self.channels[channel.name] = channel

    def enqueue(self, review_id: str, text: str) -> None:
        with transaction(self.engine) as tx:
            if not tx.outbox.enqueue_once(tx.reviews.get(review_id), text):
                return
            tx.audit.record("desk-agent", "outbox.enqueue", f"review:{review_id}", {"text": text})
        log.info("reply to review %s queued for sending", review_id, extra={"review_id": review_id})
        self.events.wake("outbox")

    async def dispatch(self) -> int:
        """Deliver every due row once; returns how many were sent."""
        with transaction(self.engine) as tx:
            rows = tx.outbox.due()
        sent = 0
        for row in rows:
            with log_context(review_id=row.review_id):
                sent += await self._dispatch_one(row)
        return sent

    async def _dispatch_one(self, row: OutboxMessage) -> int:
        """Send one due row; 1 when it was sent now. Its log lines carry the review's and the message's ids."""
        channel = self.channels.get(row.channel)
        if channel is None:
            log.error("no channel %s for outbox %s", row.channel, row.id)
            return 0
        if row.status == "sending" and not getattr(channel, "idempotent", False):
            self._mark_unconfirmed(row)
            return 0
        with transaction(self.engine) as tx:
            if not tx.outbox.claim(row):
                return 0  # another dispatcher claimed it since it was read
            item = tx.reviews.get(row.review_id)
            thread_id, ids = item.thread_id, item_log_ids(tx, item, self.tracing)
        reply = Reply(channel=row.channel, chat_id=row.chat_id, text=row.text, mention_id=row.mention_id,
                      mention_name=row.mention_name, idempotency_key=f"outbox-{row.id}")
        with log_context(**ids):
            try:
                with self.tracing.send(thread_id, row.review_id, row.channel):
                    platform_id = await channel.send(reply)
            except Exception:
                log.exception("sending outbox %s failed; will retry", row.id)
                self.metrics.outbox_sends.labels(channel=row.channel, result="failed").inc()
                return 0
            self.metrics.outbox_sends.labels(channel=row.channel, result="sent").inc()
            with transaction(self.engine) as tx:
                if not tx.outbox.mark_sent(row.id, platform_id, utcnow()):
                    return 0
                tx.reviews.mark_sent(row.review_id)
                tx.audit.record("outbox", "outbox.sent", f"review:{row.review_id}",
                                {"channel": row.channel, "chat_id": row.chat_id, "platform_msg_id": platform_id})
            log.info("outbox %s sent through %s", row.id, row.channel)
        self._publish(row.review_id)
        return 1

    def _mark_unconfirmed(self, row: OutboxMessage) -> None:
        with transaction(self.engine) as tx:
            if not tx.outbox.mark_unconfirmed(row.id):
                return
            tx.audit.record("outbox", "outbox.unconfirmed", f"review:{row.review_id}",
                            {"channel": row.channel, "chat_id": row.chat_id, "note": "check the group before re-sending"})
        self.metrics.outbox_sends.labels(channel=row.channel, result="unconfirmed").inc()
        self._publish(row.review_id)

    def _publish(self, review_id: str) -> None:
        with transaction(self.engine) as tx:
            data = review_dict(tx.reviews.get(review_id))
        self.events.publish("review", data)
