"""The trader review queue: `ReviewOpener` opens items for the graph, `ReviewService` decides them.

A decision (approve, edit-and-approve, reject, expire) is written first, as a conditional update so that
of two concurrent decisions one wins; only then does the runner resume the item's graph thread. A *direct*
item (a notice that a service drafted, e.g. a knock-out notice, `ReviewOpener.open_direct`) has no graph:
its approval queues the reply for the outbox in the decision's own transaction. Which
decision is allowed when is `workflows.review`'s rule. A reprice re-runs an expired or rejected item's
message on a new thread, as a new pending item on today's market.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable
from datetime import timedelta, timezone

from sqlalchemy.engine import Engine

from otcdesk.agents.desk import ReviewDraft, quote_id_for
from otcdesk.app.desk.ports import PARSE_CHARS
from otcdesk.app.desk.runner import DIRECT_PREFIX, DeskRunner, is_direct, message_log_ids
from otcdesk.app.events import EventBus
from otcdesk.app.logs import bind_log, log_context
from otcdesk.app.metrics import Metrics
from otcdesk.app.tracing import Tracing
from otcdesk.app.models import ReviewItem, utcnow
from otcdesk.app.repositories import transaction
from otcdesk.workflows.review import TRANSITIONS, ReviewError, check_decision

MAX_PAGE = 500  # review items per page at most
BOOKED_KINDS = frozenset({"order", "unwind"})  # approving these books or unwinds a trade: `refusal` is asked first
# approving these sends a price or books a trade: only for a client whose institution is approved now (a suspension
# or a periodic review stops what was drafted before it); unwinds and notices stay possible
KYC_GATED_KINDS = frozenset({"quote", "order"})
DIRECT_TTL = timedelta(days=1)  # a notice waits a trading day for a trader, not a quote's minutes
log = logging.getLogger(__name__)


def review_dict(item: ReviewItem) -> dict:
    """The review item as the HTTP API shows it (CONTRACTS.md fields plus detail); `text` is the whole message,
    `truncated_for_parsing` says the parser read only its first `parsed_chars` characters."""
    return {
        "id": item.id, "channel": item.channel, "group": item.chat_id, "sender": item.sender_name,
        "sender_id": item.sender_id, "text": item.text, "kind": item.kind, "requests": item.requests,
        "lines": item.lines, "draft_reply": item.draft_reply, "final_reply": item.final_reply,
        "created_at": item.created_at.isoformat(), "expires_at": item.expires_at.isoformat(),
        "status": item.status, "decided_by": item.decided_by,
        "decided_at": item.decided_at.isoformat() if item.decided_at else None,
        "reason": item.reason, "superseded_by": item.superseded_by, "order": item.order, "ref_id": item.ref_id,
        "detail": item.detail or {},
        "truncated_for_parsing": len(item.text) > PARSE_CHARS, "parsed_chars": min(len(item.text), PARSE_CHARS),
    }


@dataclass(frozen=True)
class ReviewPage:
    """A page of the review queue: `total` items match the filter; `next_before` is None on the last page."""

    items: list[dict]
    total: int
    next_before: str | None


class ReviewOpener:
    """`agents.desk.ReviewQueue`: stores a draft as a pending item (audited, published to the console)."""

    def __init__(self, engine: Engine, events: EventBus, ttl_s: float, metrics: Metrics | None = None):
        self.engine = engine
        self.events = events
        self.ttl = timedelta(seconds=ttl_s)
        self.metrics = metrics or Metrics()

    def open(self, review_id: str, thread_id: str, draft: ReviewDraft) -> None:
        inbound = draft["inbound"]
        now = utcnow()
        item = ReviewItem(
            id=review_id, thread_id=thread_id, inbound_id=inbound["id"], kind=draft["kind"],
            channel=inbound["channel"], chat_id=inbound["chat_id"], sender_id=inbound["sender_id"],
            sender_name=inbound["sender_name"], text=inbound["text"], requests=draft["requests"],
            lines=draft["lines"], draft_reply=draft["draft"], created_at=now, expires_at=now + self.ttl,
            order=draft.get("order"), ref_id=draft.get("ref_id"), detail=draft.get("detail"))
        with transaction(self.engine) as tx:
            if not tx.reviews.add_once(item):
                return
            received_at = tx.inbound.received_at(inbound["id"])
            tx.audit.record("desk-agent", "review.open", f"review:{review_id}",
                            {"kind": item.kind, "inbound_id": inbound["id"], "draft": item.draft_reply,
                             "order": item.order, "ref_id": item.ref_id,
                             "lines": [{k: ln.get(k) for k in ("price_pct", "engine", "error", "solved")}
                                       for ln in item.lines]})
            data = review_dict(item)
        self.metrics.review_opened.labels(kind=item.kind).inc()
        log.info("review %s opened: kind %s, %d line(s)", review_id, item.kind, len(item.lines),
                 extra={"review_id": review_id})
        if received_at is not None:
            self.metrics.review_latency.labels(kind=item.kind).observe(
                max(0.0, (now - _aware(received_at)).total_seconds()))
        self.events.publish("review", data)

    def open_direct(self, review_id: str, *, kind: str, channel: str, chat_id: str, sender_id: str,
                    sender_name: str, text: str, draft: str, ref_id: str | None = None,
                    detail: dict | None = None, actor: str = "desk-agent", tx=None) -> bool:
        """Open a pending item no graph waits on (a lifecycle notice): approving it queues `draft` (or the
        trader's edit) for the outbox. Idempotent by `review_id`; pass `tx` to open it inside the caller's unit
        of work (so the event that caused it and the item commit together). True when it was opened now."""
        now = utcnow()
        item = ReviewItem(id=review_id, thread_id=DIRECT_PREFIX + review_id, inbound_id=None, kind=kind,
                          channel=channel, chat_id=chat_id, sender_id=sender_id, sender_name=sender_name, text=text,
                          requests=[], lines=[], draft_reply=draft, created_at=now, expires_at=now + DIRECT_TTL,
                          ref_id=ref_id, detail=detail)
        if tx is None:
            with transaction(self.engine) as own:
                return self.open_direct(review_id, kind=kind, channel=channel, chat_id=chat_id, sender_id=sender_id,
                                        sender_name=sender_name, text=text, draft=draft, ref_id=ref_id,
                                        detail=detail, actor=actor, tx=own)
        if not tx.reviews.add_once(item):
            return False
        tx.audit.record(actor, "review.open", f"review:{review_id}", {"kind": kind, "ref_id": ref_id, "draft": draft})
        self.metrics.review_opened.labels(kind=kind).inc()
        log.info("review %s opened: kind %s (a notice)", review_id, kind, extra={"review_id": review_id})
        self.events.publish("review", review_dict(item))  # published before commit: the console re-reads anyway
        return True


class ReviewService:
    """The trader's decisions on review items, and the queue as the console lists it."""

    def __init__(self, engine: Engine, runner: DeskRunner, events: EventBus,
                 refusal: Callable[[str], str | None] | None = None, *, metrics: Metrics | None = None,
                 tracing: Tracing | None = None):
        """`refusal(review_id)`: why approving that order or unwind item now would be refused by the trade
        service (KYC, a trade no longer live, a notional above what is live…), or None; such an approval is
        refused before anything is written, so the item stays pending and the trader sees the reason."""
        self.engine = engine
        self.runner = runner
        self.events = events
        self.refusal = refusal or (lambda review_id: None)
        self.metrics = metrics or Metrics()
        self.tracing = tracing or Tracing.off()

    def list(self, status: str | None = None, limit: int = 200, before: str | None = None) -> list[dict]:
        """Newest first, optionally in one status, after the item `before` (the previous page's last id)."""
        return self.page(status, limit, before).items

    def page(self, status: str | None = None, limit: int = 200, before: str | None = None) -> ReviewPage:
        """One page of `list` with the number of items in `status` and the cursor of the next page."""
        if not 1 <= limit <= MAX_PAGE:
            raise ReviewError("invalid", f"limit must be 1-{MAX_PAGE}")
        with transaction(self.engine) as tx:
            if before is not None and tx.reviews.get(before) is None:
                raise ReviewError("invalid", f"no review item {before} to page from")
            rows = tx.reviews.list(status, limit + 1, before)
            more = len(rows) > limit
            return ReviewPage(items=[review_dict(r) for r in rows[:limit]], total=tx.reviews.count(status),
                              next_before=rows[limit - 1].id if more else None)

    def get(self, review_id: str) -> dict:
        with transaction(self.engine) as tx:
            return review_dict(_existing(tx, review_id))

    def approve(self, review_id: str, user: str, reply: str | None = None) -> dict:
        """Approve the draft, or an edited `reply`; the reply is then enqueued for the outbox."""
        return self._decide(review_id, "approve", user, reply=reply)

    def reject(self, review_id: str, user: str, reason: str) -> dict:
        return self._decide(review_id, "reject", user, reason=reason)

    def expire_due(self) -> list[str]:
        """Mark every pending item past its expiry as expired; returns their ids."""
        with transaction(self.engine) as tx:
            due = tx.reviews.due_for_expiry(utcnow())
        done = []
        for rid in due:
            try:
                self._decide(rid, "expire", "system")
                done.append(rid)
            except ReviewError:
                pass  # decided meanwhile
        return done

    def reprice(self, review_id: str, user: str) -> dict:
        """Re-run an expired (or rejected) quote on today's market as a new pending item.

        An order on a stale quote (`detail.stale`) reprices its quote: the quote's request runs again as a new
        quote item (the client confirms that one); a pending stale order is rejected first, as repriced."""
        with transaction(self.engine) as tx:
            item = _existing(tx, review_id)
            stale = item.kind == "order" and bool((item.detail or {}).get("stale"))
        if stale and item.status == "pending":
            self._decide(review_id, "reject", user, reason="stale quote: repriced")
        with transaction(self.engine) as tx:
            item = _existing(tx, review_id)
            if is_direct(item.thread_id):
                raise ReviewError("conflict", "a notice is not repriced: the service that drafted it drafts it again")
            if item.status not in ("expired", "rejected") or item.superseded_by:
                raise ReviewError("conflict", f"only an expired or rejected item can be repriced (status {item.status})")
            source = tx.reviews.get(item.ref_id) if stale and item.ref_id else None
            inbound_id = source.inbound_id if source is not None and source.inbound_id else item.inbound_id
            attempt = tx.reviews.count_for_inbound(inbound_id)
        new_id = quote_id_for(self.runner.rerun(inbound_id, attempt))
        with transaction(self.engine) as tx:
            tx.reviews.supersede(review_id, new_id)
            tx.audit.record(user, "review.reprice", f"review:{review_id}", {"new_review": new_id})
        log.info("review %s repriced as %s by %s", review_id, new_id, user, extra={"review_id": review_id})
        return self.get(new_id)

    def _decide(self, review_id: str, action: str, user: str, *, reply: str | None = None,
                reason: str | None = None) -> dict:
        """Write the decision first (conditional update: one decision wins), then resume the graph. Its log lines
        carry the review id, the message's ids and the run's trace."""
        with log_context(review_id=review_id):
            return self._decide_logged(review_id, action, user, reply=reply, reason=reason)

    def _decide_logged(self, review_id: str, action: str, user: str, *, reply: str | None, reason: str | None) -> dict:
        now = utcnow()
        new_status = TRANSITIONS[action][1]
        with transaction(self.engine) as tx:
            item = _existing(tx, review_id)
            bind_log(**item_log_ids(tx, item, self.tracing))
            if action == "approve" and item.kind in KYC_GATED_KINDS and (why := _kyc_refusal(tx, item)):
                raise ReviewError("conflict", why)
            if action == "approve" and item.kind in BOOKED_KINDS and (why := self.refusal(review_id)):
                raise ReviewError("conflict", why)
            check_decision(action, item.status, item.expires_at, now, reply=reply, reason=reason, kind=item.kind,
                           detail=item.detail)
            final_reply = (reply or item.draft_reply) if action == "approve" else None
            if not tx.reviews.decide(review_id, new_status, user, now, reason=reason, final_reply=final_reply,
                                     unexpired=action == "approve"):
                raise ReviewError("conflict", f"review item {review_id} was decided concurrently")
            edited = bool(reply and reply != item.draft_reply)
            tx.audit.record(user, f"review.{new_status}", f"review:{review_id}",
                            {"edited": edited, "draft": item.draft_reply, "reply": reply if edited else None,
                             "reason": reason})
            thread_id, kind, opened_at = item.thread_id, item.kind, item.created_at
            if is_direct(thread_id) and action == "approve":  # no graph: queue it in this same unit of work
                tx.outbox.enqueue_once(item, final_reply)
                tx.audit.record(user, "outbox.enqueue", f"review:{review_id}", {"text": final_reply})
        decision = "edited" if edited and action == "approve" else new_status
        log.info("review %s %s by %s (kind %s)", review_id, decision, user, kind)
        self.metrics.review_decisions.labels(kind=kind, decision=decision).inc()
        self.tracing.review_wait(thread_id, review_id, kind, decision, _aware(opened_at), now)
        if is_direct(thread_id):
            if action == "approve":
                self.events.wake("outbox")
        else:
            self.runner.resume(thread_id, {"action": action, "reply": final_reply, "by": user})
        data = self.get(review_id)
        self.events.publish("review", data)
        return data


def item_log_ids(tx, item: ReviewItem, tracing: Tracing) -> dict:
    """The ids log lines about a review item carry: the item, its message (when a client's message opened it), its
    graph thread and that run's trace."""
    message = tx.inbound.get(item.inbound_id) if item.inbound_id else None
    return {"review_id": item.id, **(message_log_ids(message) if message else {}), "thread_id": item.thread_id,
            **tracing.log_ids(item.thread_id)}


def _kyc_refusal(tx, item: ReviewItem) -> str | None:
    """Why the item's client may not get it now (its institution is not approved for trading), or None."""
    inst = tx.clients.institution_of(item.channel, item.chat_id, item.sender_id)
    if inst is None:
        return "the client's institution is unknown: no quotes before onboarding (KYC)"
    if inst.kyc_status != "approved" or not inst.can_trade:
        return f"the client's institution {inst.name} is {inst.kyc_status} (KYC): no quotes or orders until it is " \
               "approved again"
    return None


def _aware(when):
    """SQLite gives back naive datetimes for what was stored as UTC."""
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def _existing(tx, review_id: str) -> ReviewItem:
    item = tx.reviews.get(review_id)
    if item is None:
        raise ReviewError("not_found", f"no review item {review_id}")
    return item
