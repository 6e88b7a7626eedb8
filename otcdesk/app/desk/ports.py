"""The desk graph's narrow services that read the client's world: conversation context, KYC lookup, the parser.

(The review queue and the outbox ports are `reviews.ReviewOpener` and `outbox.OutboxDispatcher.enqueue`.)
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any, Callable

from sqlalchemy.engine import Engine

from otcdesk.agents.desk import Inbound
from otcdesk.app.models import utcnow
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
