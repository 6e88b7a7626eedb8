"""The desk graph (langgraph): a client message → understood → KYC-checked → priced → drafted → trader review → sent.

`build_desk_graph(deps, checkpointer)` compiles the graph from explicit dependencies: each node gets only
the narrow service it needs from `DeskDeps` (the parser, the conversation context, the KYC lookup, the
pricer, the review queue, the outbox); nothing here touches a database, a channel or the environment.
The input is `InputState` (the stored inbound message); `State` is internal. The `review` node interrupts
(LangGraph `interrupt`) with the review item; the trader's decision resumes it. Because a resumed node
runs again from its top, `ReviewQueue.open` and `Outbox.enqueue` must be idempotent (keyed by review id,
which is `quote_id_for(thread_id)`, so one thread never opens two items).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable, Literal, Protocol

from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict  # typing's TypedDict has no JSON schema on Python < 3.12

from otcdesk.agents.quote_card import draft_clarification, draft_onboarding, draft_order, draft_quote


class Inbound(TypedDict):
    """A stored client message, as the desk runner hands it to the graph."""

    id: int
    channel: str
    chat_id: str
    sender_id: str
    sender_name: str
    text: str
    platform_msg_id: str


class InputState(TypedDict):
    """What a run starts from: one inbound message."""

    inbound: Inbound


class State(InputState, total=False):
    """Everything the nodes fill in."""

    intent: str
    parse: dict  # ParseResult.to_dict()
    kyc: dict  # {"institution", "status", "approved"}
    kind: str  # quote | clarification | onboarding | order | none
    quote_ref: dict  # for an order: the client's latest sent quote in this chat, if any
    lines: list[dict]  # one priced line per request
    draft: str
    review_id: str
    decision: dict  # {"action": "approve"|"reject"|"expire", "reply"?, "by"?}
    outcome: str


class ReviewDraft(TypedDict):
    """What the review queue stores for the trader."""

    inbound: Inbound
    kind: str
    requests: list[dict]
    lines: list[dict]
    draft: str


class ConversationContext(Protocol):
    """What the desk remembers of a client's conversation in a chat."""

    def pending(self, inbound: Inbound) -> dict | None:
        """The client's open clarification (an incomplete parse), if any."""

    def remember(self, inbound: Inbound, parse: dict | None) -> None:
        """Keep an incomplete parse for the client's next message; None clears it."""

    def last_sent_quote(self, inbound: Inbound) -> dict | None:
        """{"id", "lines", "requests"} of the client's latest quote in this chat that was sent to them."""


class ReviewQueue(Protocol):
    def open(self, review_id: str, thread_id: str, draft: ReviewDraft) -> None:
        """Put a draft before the trader; opening an id that exists does nothing."""


class Outbox(Protocol):
    def enqueue(self, review_id: str, text: str) -> None:
        """Queue an approved reply for delivery; enqueuing a review twice does nothing."""


@dataclass(frozen=True)
class DeskDeps:
    """The outside world, one narrow service per concern."""

    parse: Callable[[str, dict | None], dict]  # (text, previous incomplete parse or None) -> ParseResult dict
    context: ConversationContext
    kyc_status: Callable[[Inbound], dict]  # -> {"institution", "status", "approved"}
    price: Callable[[dict], dict]  # QuoteRequest -> priced line (or {"request", "error"})
    reviews: ReviewQueue
    outbox: Outbox


def quote_id_for(thread_id: str) -> str:
    """The review (and quote) id of a graph thread: deterministic, so a re-run node never makes a second item."""
    return "Q" + hashlib.sha1(thread_id.encode()).hexdigest()[:10].upper()


def _understand(deps: DeskDeps):
    def node(state: State) -> State:
        inbound = state["inbound"]
        result = deps.parse(inbound["text"], deps.context.pending(inbound))
        intent = result.get("intent", "other")
        requests = result.get("requests") or []
        if intent == "order":  # never dropped: a trader confirms or books it
            ref = deps.context.last_sent_quote(inbound)
            return {"intent": intent, "parse": result, "kind": "order", "quote_ref": ref or {},
                    "lines": (ref or {}).get("lines", [])}
        if intent != "quote":
            return {"intent": intent, "parse": result, "kind": "none"}
        incomplete = not requests or any(r.get("missing") for r in requests) or bool(result.get("clarification"))
        deps.context.remember(inbound, result if incomplete else None)
        return {"intent": intent, "parse": result, "kind": "clarification" if incomplete else "quote"}

    return node


def _check_kyc(deps: DeskDeps):
    def node(state: State) -> State:
        kyc = deps.kyc_status(state["inbound"])
        return {"kyc": kyc, "kind": state["kind"] if kyc.get("approved") else "onboarding"}

    return node


def _price(deps: DeskDeps):
    def node(state: State) -> State:
        return {"lines": [deps.price(req) for req in state["parse"]["requests"]]}

    return node


def _draft(state: State, config) -> State:
    kind = state["kind"]
    if kind == "onboarding":
        text = draft_onboarding(state["inbound"], state["kyc"])
    elif kind == "order":
        text = draft_order(state["inbound"], state["parse"], state.get("quote_ref") or None)
    elif kind == "clarification":
        text = draft_clarification(state["inbound"], state["parse"])
    else:
        text = draft_quote(state["inbound"], state["lines"], quote_id_for(config["configurable"]["thread_id"]))
    return {"draft": text}


def _review(deps: DeskDeps):
    def node(state: State, config) -> State:
        thread_id = config["configurable"]["thread_id"]
        review_id = quote_id_for(thread_id)
        requests = (state.get("parse") or {}).get("requests") or (state.get("quote_ref") or {}).get("requests", [])
        deps.reviews.open(review_id, thread_id, {"inbound": state["inbound"], "kind": state["kind"],
                                                 "requests": requests, "lines": state.get("lines", []),
                                                 "draft": state["draft"]})
        decision = interrupt({"review_id": review_id, "kind": state["kind"], "draft": state["draft"]})
        return {"review_id": review_id, "decision": decision}

    return node


def _deliver(deps: DeskDeps):
    def node(state: State) -> State:
        decision = state["decision"]
        if decision.get("action") != "approve":
            return {"outcome": decision.get("action", "rejected")}
        deps.outbox.enqueue(state["review_id"], decision.get("reply") or state["draft"])
        return {"outcome": "approved"}

    return node


def _after_understand(state: State) -> Literal["check_kyc", "__end__"]:
    return END if state["kind"] == "none" else "check_kyc"


def _after_kyc(state: State) -> Literal["price", "draft"]:
    return "price" if state["kind"] == "quote" else "draft"


def build_desk_graph(deps: DeskDeps, checkpointer: Any):
    """Compile the desk graph with a checkpointer (SQLite or Postgres saver) so reviews survive restarts."""
    g = StateGraph(State, input_schema=InputState)
    g.add_node("understand", _understand(deps))
    g.add_node("check_kyc", _check_kyc(deps))
    g.add_node("price", _price(deps))
    g.add_node("draft", _draft)
    g.add_node("review", _review(deps))
    g.add_node("deliver", _deliver(deps))
    g.add_edge(START, "understand")
    g.add_conditional_edges("understand", _after_understand)
    g.add_conditional_edges("check_kyc", _after_kyc)
    g.add_edge("price", "draft")
    g.add_edge("draft", "review")
    g.add_edge("review", "deliver")
    g.add_edge("deliver", END)
    return g.compile(checkpointer=checkpointer)
