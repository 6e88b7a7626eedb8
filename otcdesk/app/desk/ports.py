"""The desk graph's narrow services that read the client's world: conversation context, KYC lookup, the parser,
and the client's quotes, orders, product accounts and trades (`OrderStore`).

(The review queue and the outbox ports are `reviews.ReviewOpener` and `outbox.OutboxDispatcher.enqueue`; the trade
service is `app.trading.booking.TradeService`.)
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any, Callable

from sqlalchemy.engine import Engine

from otcdesk.agents.desk import Inbound
from otcdesk.app.events import EventBus
from otcdesk.app.models import ReviewItem, TradeRow, utcnow
from otcdesk.app.repositories import transaction

CLARIFICATION_TTL = timedelta(minutes=30)  # a clarification older than this is not completed by the next message
PARSE_CHARS = 4000  # the parser reads at most the first this many characters (the message is stored whole)


class ConversationStore:
    """`agents.desk.ConversationContext` over the conversation and review repositories."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def pending(self, inbound: Inbound) -> dict | None:
        with transaction(self.engine) as tx:
            return tx.conversations.open_clarification(inbound["channel"], inbound["chat_id"], inbound["sender_id"],
                                                       since=utcnow() - CLARIFICATION_TTL)

    def remember(self, inbound: Inbound, parse: dict | None) -> None:
        key = (inbound["channel"], inbound["chat_id"], inbound["sender_id"])
        with transaction(self.engine) as tx:
            if parse is None:
                tx.conversations.clear(*key)
            else:
                tx.conversations.remember(*key, parse)

    def last_sent_quote(self, inbound: Inbound) -> dict | None:
        with transaction(self.engine) as tx:
            item = tx.reviews.last_sent_quote(inbound["channel"], inbound["chat_id"], inbound["sender_id"])
            return {"id": item.id, "lines": item.lines, "requests": item.requests} if item else None


def kyc_lookup(engine: Engine) -> Callable[[Inbound], dict]:
    """`DeskDeps.kyc_status`: only an approved institution that may trade gets quotes."""

    def kyc_status(inbound: Inbound) -> dict:
        with transaction(engine) as tx:
            inst = tx.clients.institution_of(inbound["channel"], inbound["chat_id"], inbound["sender_id"])
            if inst is None:
                return {"institution": None, "status": "unknown", "approved": False}
            return {"institution": inst.name, "status": inst.kyc_status,
                    "approved": inst.kyc_status == "approved" and inst.can_trade}

    return kyc_status


def message_parser(llm: Any = None) -> Callable[[str, dict | None], dict]:
    """`DeskDeps.parse`: `otcdesk.ner`, completing an open clarification when there is one."""

    def parse(text: str, previous: dict | None) -> dict:
        from otcdesk.ner import complete_followup, parse_message

        text = text[:PARSE_CHARS]
        if previous:
            return complete_followup(previous, text, llm=llm).to_dict()
        return parse_message(text, llm=llm).to_dict()

    return parse


class OrderStore:
    """`agents.desk.Orders` over the review, client and trade repositories. A client's amendment or withdrawal of
    a pending order item is a conditional update (only while pending), audited in the same unit of work and
    published to the console like any change of a review item."""

    def __init__(self, engine: Engine, events: EventBus):
        self.engine = engine
        self.events = events

    def quote(self, inbound: Inbound, quote_id: str | None) -> dict | None:
        key = (inbound["channel"], inbound["chat_id"])
        with transaction(self.engine) as tx:
            item = (tx.reviews.sent_quote(*key, quote_id) if quote_id else
                    tx.reviews.last_sent_quote(*key, inbound["sender_id"]))
            if item is None:
                return None
            return {"id": item.id, "lines": item.lines, "requests": item.requests,
                    "age_s": (utcnow() - item.created_at).total_seconds()}

    def accounts(self, inbound: Inbound) -> list[str]:
        with transaction(self.engine) as tx:
            inst = tx.clients.institution_of(inbound["channel"], inbound["chat_id"], inbound["sender_id"])
            return [a.name for a in tx.clients.accounts(inst.id)] if inst is not None else []

    def pending_orders(self, inbound: Inbound) -> list[dict]:
        with transaction(self.engine) as tx:
            return [_order_view(i) for i in tx.reviews.orders_of(*_who(inbound), status="pending")]

    def last_order(self, inbound: Inbound, quote_id: str | None = None) -> dict | None:
        with transaction(self.engine) as tx:
            items = tx.reviews.orders_of(*_who(inbound), kinds=("order",), ref_id=quote_id, limit=1)
            if not items:
                return None
            view = _order_view(items[0])
            trade = tx.trades.for_order(items[0].id)
            if trade is not None:
                view["trade"] = {"id": trade.id, "status": trade.status}
            return view

    def amend(self, review_id: str, order: dict, draft: str, by: str) -> bool:
        with transaction(self.engine) as tx:
            item = tx.reviews.get(review_id)
            if item is None or item.kind != "order" or not tx.reviews.amend_order(review_id, order, draft):
                return False
            tx.audit.record(by, "order.amend", f"review:{review_id}", {"from": item.order, "to": order, "draft": draft})
        self._publish(review_id)
        return True

    def withdraw(self, review_id: str, by: str, reason: str = "cancelled by the client") -> bool:
        with transaction(self.engine) as tx:
            item = tx.reviews.get(review_id)
            if item is None or item.kind not in ("order", "unwind"):
                return False
            if not tx.reviews.decide(review_id, "withdrawn", by, utcnow(), reason=reason):
                return False
            tx.audit.record(by, "review.withdrawn", f"review:{review_id}",
                            {"kind": item.kind, "order": item.order, "reason": reason})
        self._publish(review_id)
        return True

    def live_trades(self, inbound: Inbound) -> list[dict]:
        with transaction(self.engine) as tx:
            inst = tx.clients.institution_of(inbound["channel"], inbound["chat_id"], inbound["sender_id"])
            if inst is None:
                return []
            return [_trade_view(t) for t in tx.trades.list(status="live", institution=inst.name)]

    def trade(self, inbound: Inbound, trade_id: str) -> dict | None:
        with transaction(self.engine) as tx:
            inst = tx.clients.institution_of(inbound["channel"], inbound["chat_id"], inbound["sender_id"])
            trade = tx.trades.get(trade_id)
            if trade is None or inst is None or trade.institution != inst.name:
                return None
            return _trade_view(trade)

    def holdings_list(self, inbound: Inbound) -> list[str]:
        with transaction(self.engine) as tx:
            item = tx.reviews.last_sent("holdings", *_who(inbound))
            return list((item.detail or {}).get("trades") or []) if item is not None else []

    def order_part(self, review_id: str, k: int) -> dict | None:
        with transaction(self.engine) as tx:
            item = tx.reviews.get(review_id)
            parts = ((item.detail or {}).get("more_lines") or []) if item is not None else []
            return dict(parts[k - 2]) if 2 <= k <= len(parts) + 1 else None

    def _publish(self, review_id: str) -> None:
        from otcdesk.app.desk.reviews import review_dict

        with transaction(self.engine) as tx:
            data = review_dict(tx.reviews.get(review_id))
        self.events.publish("review", data)


def _who(inbound: Inbound) -> tuple[str, str, str]:
    return inbound["channel"], inbound["chat_id"], inbound["sender_id"]


def _order_view(item: ReviewItem) -> dict:
    return {"id": item.id, "thread_id": item.thread_id, "kind": item.kind, "status": item.status,
            "order": item.order, "lines": item.lines, "requests": item.requests, "detail": item.detail or {},
            "ref_id": item.ref_id}


def _trade_view(trade: TradeRow) -> dict:
    product = trade.product or {}
    return {"id": trade.id, "structure": trade.structure, "underlying": trade.underlying,
            "underlying_name": product.get("underlying_name"), "notional": trade.notional, "status": trade.status,
            "account": trade.account}
