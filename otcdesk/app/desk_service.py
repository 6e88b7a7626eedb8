"""The desk service: wires channels, the desk graph, the review queue and the outbox to the database.

Message life: a channel hands an `InboundMessage` to `ingest` (stored first, de-duplicated by
platform id, audited) → `process_inbound` runs the desk graph on its own thread id until the
review interrupt → the trader's `approve` / `reject` (or `expire_due`) is written first, then
resumes the graph → the graph enqueues one outbox row per approved item → `dispatch_outbox`
delivers it through the channel with an idempotency key and marks it sent once.
Every step is recoverable after a crash: `recover()` re-runs what was stored but not finished.
"""
from __future__ import annotations

import hashlib
import logging
import threading
from contextlib import contextmanager
from dataclasses import asdict
from datetime import timedelta
from typing import Any, Callable

from langgraph.types import Command
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from otcdesk.agents.desk import DeskDeps, build_desk_graph
from otcdesk.app.audit import record
from otcdesk.app.checkpoints import make_checkpointer
from otcdesk.app.db import unit_of_work
from otcdesk.app.events import EventBus
from otcdesk.app.models import (ChatGroup, ClientContact, InboundMessageRow, Institution, OutboxMessage,
                        PendingClarification, ReviewItem, utcnow)
from otcdesk.app.quoting import price_request
from otcdesk.app.settings import Settings
from otcdesk.bots.base import Channel, InboundMessage, Reply
from otcdesk.workflows.review import ReviewError, check_decision

log = logging.getLogger(__name__)
CLARIFICATION_TTL = timedelta(minutes=30)


def review_dict(item: ReviewItem) -> dict:
    """The review item as the HTTP API shows it (CONTRACTS.md fields plus detail)."""
    return {
        "id": item.id, "channel": item.channel, "group": item.chat_id, "sender": item.sender_name,
        "sender_id": item.sender_id, "text": item.text, "kind": item.kind, "requests": item.requests,
        "lines": item.lines, "draft_reply": item.draft_reply, "final_reply": item.final_reply,
        "created_at": item.created_at.isoformat(), "expires_at": item.expires_at.isoformat(),
        "status": item.status, "decided_by": item.decided_by,
        "decided_at": item.decided_at.isoformat() if item.decided_at else None,
        "reason": item.reason, "superseded_by": item.superseded_by,
    }


def quote_id_for(thread_id: str) -> str:
    """Deterministic quote/review id of a graph thread, so re-running a node never makes a second item."""
    return "Q" + hashlib.sha1(thread_id.encode()).hexdigest()[:10].upper()


class DeskService:
    """All desk side effects, for the HTTP server, the workers and the tests."""

    def __init__(self, settings: Settings, engine, channels: dict[str, Channel], events: EventBus | None = None,
                 *, parse_fn: Callable[[str, dict | None], dict] | None = None,
                 price_fn: Callable[[dict], dict] | None = None, llm: Any = None):
        self.settings = settings
        self.engine = engine
        self.channels = channels
        self.events = events or EventBus()
        self.llm = llm
        self._parse_fn = parse_fn or self._parse
        self._price_fn = price_fn or price_request
        self.checkpointer, self._close_checkpointer = make_checkpointer(settings)
        self.graph = build_desk_graph(self._deps(), self.checkpointer)
        self._thread_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._inflight = 0
        self._idle = threading.Condition()

    def warm_up(self) -> None:
        """Load the parser's dictionaries, the calendar and the engines before the first client message."""
        for req in self._parse_fn("沪深300 1个月 平值看跌", None).get("requests", []):
            self._price_fn(req)

    def close(self, timeout: float = 60.0) -> None:
        """Wait for graph runs in worker threads to finish, then close the checkpointer."""
        with self._idle:
            self._idle.wait_for(lambda: self._inflight == 0, timeout=timeout)
        self._close_checkpointer()

    @contextmanager
    def _graph_run(self, thread_id: str):
        """Serialise runs of one graph thread and count them, so `close` never pulls the checkpointer away."""
        with self._idle:
            self._inflight += 1
        try:
            with self._lock(thread_id):
                yield
        finally:
            with self._idle:
                self._inflight -= 1
                self._idle.notify_all()

    # ---- graph dependencies -------------------------------------------------------------
    def _deps(self) -> DeskDeps:
        return DeskDeps(parse=self._parse_fn, pending_context=self._pending_context,
                        remember_context=self._remember_context, kyc_status=self._kyc_status,
                        price=self._price_fn, open_review=self._open_review, enqueue_reply=self._enqueue_reply,
                        quote_id=quote_id_for, last_quote=self._last_quote)

    def _last_quote(self, inbound: dict) -> dict | None:
        """The client's most recent quote in this chat that was sent to them."""
        with unit_of_work(self.engine) as s:
            item = s.exec(select(ReviewItem).where(
                ReviewItem.channel == inbound["channel"], ReviewItem.chat_id == inbound["chat_id"],
                ReviewItem.sender_id == inbound["sender_id"], ReviewItem.kind == "quote",
                ReviewItem.status == "sent").order_by(ReviewItem.created_at.desc())).first()
            return {"id": item.id, "lines": item.lines, "requests": item.requests} if item else None

    def _parse(self, text: str, previous: dict | None) -> dict:
        from otcdesk.ner import complete_followup, parse_message

        if previous:
            return complete_followup(previous, text, llm=self.llm).to_dict()
        return parse_message(text, llm=self.llm).to_dict()

    def _pending_context(self, inbound: dict) -> dict | None:
        with unit_of_work(self.engine) as s:
            row = self._clarification_row(s, inbound)
            if row is None or row.created_at < utcnow() - CLARIFICATION_TTL:
                return None
            return row.parse

    @staticmethod
    def _clarification_row(s: Session, inbound: dict) -> PendingClarification | None:
        return s.exec(select(PendingClarification).where(
            PendingClarification.channel == inbound["channel"], PendingClarification.chat_id == inbound["chat_id"],
            PendingClarification.sender_id == inbound["sender_id"])).first()

    def _remember_context(self, inbound: dict, parse: dict | None) -> None:
        with unit_of_work(self.engine) as s:
            row = self._clarification_row(s, inbound)
            if parse is None:
                if row is not None:
                    s.delete(row)
                return
            row = row or PendingClarification(channel=inbound["channel"], chat_id=inbound["chat_id"],
                                              sender_id=inbound["sender_id"])
            row.parse, row.created_at = parse, utcnow()
            s.add(row)

    def _kyc_status(self, inbound: dict) -> dict:
        with unit_of_work(self.engine) as s:
            contact = s.exec(select(ClientContact).where(ClientContact.channel == inbound["channel"],
                                                         ClientContact.sender_id == inbound["sender_id"])).first()
            inst_id = contact.institution_id if contact else None
            if inst_id is None:
                group = s.exec(select(ChatGroup).where(ChatGroup.channel == inbound["channel"],
                                                       ChatGroup.group_id == inbound["chat_id"])).first()
                inst_id = group.institution_id if group else None
            inst = s.get(Institution, inst_id) if inst_id else None
            if inst is None:
                return {"institution": None, "status": "unknown", "approved": False}
            return {"institution": inst.name, "status": inst.kyc_status,
                    "approved": inst.kyc_status == "approved" and inst.can_trade}

    def _open_review(self, thread_id: str, state: dict) -> str:
        inbound = state["inbound"]
        review_id = quote_id_for(thread_id)
        with unit_of_work(self.engine) as s:
            if s.get(ReviewItem, review_id) is not None:
                return review_id
            now = utcnow()
            item = ReviewItem(
                id=review_id, thread_id=thread_id, inbound_id=inbound["id"], kind=state["kind"],
                channel=inbound["channel"], chat_id=inbound["chat_id"], sender_id=inbound["sender_id"],
                sender_name=inbound["sender_name"], text=inbound["text"],
                requests=(state.get("parse") or {}).get("requests") or (state.get("quote_ref") or {}).get("requests", []),
                lines=state.get("lines", []),
                draft_reply=state["draft"], created_at=now,
                expires_at=now + timedelta(seconds=self.settings.review_ttl_s))
            s.add(item)
            record(s, "desk-agent", "review.open", f"review:{review_id}",
                   {"kind": item.kind, "inbound_id": inbound["id"], "draft": item.draft_reply,
                    "lines": [{k: ln.get(k) for k in ("price_pct", "engine", "error", "solved")} for ln in item.lines]})
            data = review_dict(item)
        self.events.publish("review", data)
        return review_id

    def _enqueue_reply(self, review_id: str, text: str) -> None:
        with unit_of_work(self.engine) as s:
            item = s.get(ReviewItem, review_id)
            if s.exec(select(OutboxMessage).where(OutboxMessage.review_id == review_id)).first():
                return
            s.add(OutboxMessage(review_id=review_id, channel=item.channel, chat_id=item.chat_id,
                                mention_id=item.sender_id, mention_name=item.sender_name, text=text))
            record(s, "desk-agent", "outbox.enqueue", f"review:{review_id}", {"text": text})
        self.events.wake("outbox")

    # ---- inbound -------------------------------------------------------------------------
    def ingest(self, msg: InboundMessage) -> tuple[int, bool]:
        """Store an inbound message before anything else; (row id, is_new). A seen platform id is ignored."""
        row = InboundMessageRow(**{k: v for k, v in asdict(msg).items() if k != "ts"})
        try:
            with unit_of_work(self.engine) as s:
                s.add(row)
                s.flush()
                record(s, f"{msg.channel}:{msg.sender_id}", "inbound.received", f"inbound:{row.id}",
                       {"chat_id": msg.chat_id, "platform_msg_id": msg.platform_msg_id, "text": msg.text[:2000]})
                row_id = row.id
        except IntegrityError:
            with unit_of_work(self.engine) as s:
                existing = s.exec(select(InboundMessageRow).where(
                    InboundMessageRow.channel == msg.channel,
                    InboundMessageRow.platform_msg_id == msg.platform_msg_id)).one()
                return existing.id, False
        self.events.wake("inbound")
        return row_id, True

    def unprocessed_inbound(self) -> list[int]:
        with unit_of_work(self.engine) as s:
            return list(s.exec(select(InboundMessageRow.id).where(InboundMessageRow.status == "received")
                               .order_by(InboundMessageRow.id)))

    def _inbound_dict(self, inbound_id: int) -> dict:
        with unit_of_work(self.engine) as s:
            row = s.get(InboundMessageRow, inbound_id)
            return {"id": row.id, "channel": row.channel, "chat_id": row.chat_id, "sender_id": row.sender_id,
                    "sender_name": row.sender_name, "text": row.text, "platform_msg_id": row.platform_msg_id}

    def _lock(self, thread_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._thread_locks.setdefault(thread_id, threading.Lock())

    def _config(self, thread_id: str) -> dict:
        return {"configurable": {"thread_id": thread_id}}

    def process_inbound(self, inbound_id: int) -> dict:
        """Run the desk graph for one stored message up to its review interrupt (or its end).

        A run cut off by a crash continues from its last checkpoint; one waiting for review is left alone.
        """
        inbound = self._inbound_dict(inbound_id)
        # platform ids are unique per channel, so quote ids never repeat even across databases
        thread_id = f"{inbound['channel']}-{inbound['platform_msg_id']}"
        with self._graph_run(thread_id):
            snapshot = self.graph.get_state(self._config(thread_id))
            try:
                if not snapshot.created_at:
                    self.graph.invoke({"inbound": inbound}, self._config(thread_id))
                elif snapshot.next and not any(task.interrupts for task in snapshot.tasks):
                    self.graph.invoke(None, self._config(thread_id))
                state = self.graph.get_state(self._config(thread_id)).values
                status, error = "processed", None
            except Exception as exc:  # a bad message must not stop the desk; it is marked and audited
                log.exception("desk graph failed on inbound %s", inbound_id)
                state, status, error = {}, "failed", f"{type(exc).__name__}: {exc}"
            with unit_of_work(self.engine) as s:
                row = s.get(InboundMessageRow, inbound_id)
                if row.status == "received":
                    row.status, row.intent, row.error = status, state.get("intent"), error
                    s.add(row)
                    record(s, "desk-agent", f"inbound.{status}", f"inbound:{inbound_id}",
                           {"intent": state.get("intent"), "kind": state.get("kind"), "error": error})
            return state

    # ---- review decisions -----------------------------------------------------------------
    def list_reviews(self, status: str | None = None, limit: int = 200) -> list[dict]:
        with unit_of_work(self.engine) as s:
            q = select(ReviewItem)
            if status:
                q = q.where(ReviewItem.status == status)
            return [review_dict(r) for r in s.exec(q.order_by(ReviewItem.created_at.desc()).limit(limit))]

    def get_review(self, review_id: str) -> dict:
        with unit_of_work(self.engine) as s:
            item = s.get(ReviewItem, review_id)
            if item is None:
                raise ReviewError("not_found", f"no review item {review_id}")
            return review_dict(item)

    def _decide(self, review_id: str, action: str, user: str, *, reply: str | None = None,
                reason: str | None = None) -> dict:
        """Write the decision first (conditional update: one decision wins), then resume the graph."""
        now = utcnow()
        new_status = {"approve": "approved", "reject": "rejected", "expire": "expired"}[action]
        with unit_of_work(self.engine) as s:
            item = s.get(ReviewItem, review_id)
            if item is None:
                raise ReviewError("not_found", f"no review item {review_id}")
            check_decision(action, item.status, item.expires_at, now, reply=reply, reason=reason)
            conditions = [ReviewItem.id == review_id, ReviewItem.status == "pending"]
            if action == "approve":
                conditions.append(ReviewItem.expires_at > now)
            res = s.exec(update(ReviewItem).where(*conditions).values(
                status=new_status, decided_by=user, decided_at=now, reason=reason,
                final_reply=(reply or item.draft_reply) if action == "approve" else None))
            if res.rowcount != 1:
                raise ReviewError("conflict", f"review item {review_id} was decided concurrently")
            record(s, user, f"review.{new_status}", f"review:{review_id}",
                   {"edited": bool(reply and reply != item.draft_reply), "draft": item.draft_reply,
                    "reply": reply if reply and reply != item.draft_reply else None, "reason": reason})
        self._resume(review_id)
        data = self.get_review(review_id)
        self.events.publish("review", data)
        return data

    def _resume(self, review_id: str) -> None:
        """Resume the review's graph thread with the stored decision (no-op when already resumed)."""
        with unit_of_work(self.engine) as s:
            item = s.get(ReviewItem, review_id)
            thread_id, status = item.thread_id, item.status
            decision = {"action": {"approved": "approve", "sent": "approve", "rejected": "reject",
                                   "expired": "expire"}.get(status), "reply": item.final_reply,
                        "by": item.decided_by}
        if decision["action"] is None:
            return
        with self._graph_run(thread_id):
            if self.graph.get_state(self._config(thread_id)).next:
                self.graph.invoke(Command(resume=decision), self._config(thread_id))

    def approve(self, review_id: str, user: str, reply: str | None = None) -> dict:
        return self._decide(review_id, "approve", user, reply=reply)

    def reject(self, review_id: str, user: str, reason: str) -> dict:
        return self._decide(review_id, "reject", user, reason=reason)

    def expire_due(self) -> list[str]:
        """Mark every pending item past its expiry as expired; returns their ids."""
        with unit_of_work(self.engine) as s:
            due = list(s.exec(select(ReviewItem.id).where(ReviewItem.status == "pending",
                                                          ReviewItem.expires_at <= utcnow())))
        done = []
        for rid in due:
            try:
                self._decide(rid, "expire", "system")
                done.append(rid)
            except ReviewError:
                pass  # decided meanwhile
        return done

    def reprice(self, review_id: str, user: str) -> dict:
        """Re-run an expired (or rejected) quote on today's market as a new pending item."""
        with unit_of_work(self.engine) as s:
            item = s.get(ReviewItem, review_id)
            if item is None:
                raise ReviewError("not_found", f"no review item {review_id}")
            if item.status not in ("expired", "rejected") or item.superseded_by:
                raise ReviewError("conflict", f"only an expired or rejected item can be repriced (status {item.status})")
            n = len(list(s.exec(select(ReviewItem.id).where(ReviewItem.inbound_id == item.inbound_id))))
            inbound_id, new_thread = item.inbound_id, f"{item.thread_id.split(':r')[0]}:r{n}"
        self.process_inbound_thread(inbound_id, new_thread)
        new_id = quote_id_for(new_thread)
        with unit_of_work(self.engine) as s:
            old = s.get(ReviewItem, review_id)
            old.superseded_by = new_id
            s.add(old)
            record(s, user, "review.reprice", f"review:{review_id}", {"new_review": new_id})
        return self.get_review(new_id)

    def process_inbound_thread(self, inbound_id: int, thread_id: str) -> dict:
        with self._graph_run(thread_id):
            self.graph.invoke({"inbound": self._inbound_dict(inbound_id)}, self._config(thread_id))
            return self.graph.get_state(self._config(thread_id)).values

    # ---- outbox ---------------------------------------------------------------------------
    async def dispatch_outbox(self) -> int:
        """Deliver every pending outbox row once; returns how many were sent."""
        with unit_of_work(self.engine) as s:
            rows = list(s.exec(select(OutboxMessage).where(OutboxMessage.status.in_(("pending", "sending")))
                               .order_by(OutboxMessage.id)))
        sent = 0
        for row in rows:
            channel = self.channels.get(row.channel)
            if channel is None:
                log.error("no channel %s for outbox %s", row.channel, row.id)
                continue
            if row.status == "sending" and not getattr(channel, "idempotent", False):
                self._mark_unconfirmed(row)  # an interrupted send may have reached the group: never send twice
                continue
            with unit_of_work(self.engine) as s:  # claim: pending → sending (a retry after a crash re-sends
                s.exec(update(OutboxMessage).where(OutboxMessage.id == row.id)  # with the same key)
                       .values(status="sending", attempts=OutboxMessage.attempts + 1))
            reply = Reply(channel=row.channel, chat_id=row.chat_id, text=row.text, mention_id=row.mention_id,
                          mention_name=row.mention_name, idempotency_key=f"outbox-{row.id}")
            try:
                platform_id = await channel.send(reply)
            except Exception:
                log.exception("sending outbox %s failed; will retry", row.id)
                continue
            with unit_of_work(self.engine) as s:
                res = s.exec(update(OutboxMessage).where(OutboxMessage.id == row.id,
                                                         OutboxMessage.status == "sending")
                             .values(status="sent", sent_at=utcnow(), platform_msg_id=platform_id))
                if res.rowcount != 1:
                    continue
                s.exec(update(ReviewItem).where(ReviewItem.id == row.review_id).values(status="sent"))
                record(s, "outbox", "outbox.sent", f"review:{row.review_id}",
                       {"channel": row.channel, "chat_id": row.chat_id, "platform_msg_id": platform_id})
            sent += 1
            self.events.publish("review", self.get_review(row.review_id))
        return sent

    def _mark_unconfirmed(self, row: OutboxMessage) -> None:
        with unit_of_work(self.engine) as s:
            s.exec(update(OutboxMessage).where(OutboxMessage.id == row.id, OutboxMessage.status == "sending")
                   .values(status="unconfirmed"))
            record(s, "outbox", "outbox.unconfirmed", f"review:{row.review_id}",
                   {"channel": row.channel, "chat_id": row.chat_id, "note": "check the group before re-sending"})
        self.events.publish("review", self.get_review(row.review_id))

    # ---- recovery -------------------------------------------------------------------------
    def recover(self) -> dict:
        """After a restart: resume decided-but-unresumed reviews; return counts (inbound is re-read by the worker)."""
        with unit_of_work(self.engine) as s:
            decided = list(s.exec(select(ReviewItem.id).where(ReviewItem.status.in_(("approved", "rejected", "expired")))))
        for rid in decided:
            self._resume(rid)
        return {"resumed": len(decided), "unprocessed": len(self.unprocessed_inbound())}
