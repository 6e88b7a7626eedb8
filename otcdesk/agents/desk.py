"""The desk graph (langgraph): a client message → understood → KYC-checked → priced → drafted → trader review → sent.

`build_desk_graph(deps, checkpointer)` compiles the graph from explicit dependencies; nothing
here touches a database, a channel or the environment directly. The `review` node interrupts
(LangGraph `interrupt`) with the review item; the trader's decision resumes it. Because a
resumed node runs again from its top, `deps.open_review` must be idempotent (keyed by thread).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt

from otcdesk.agents.quote_card import draft_clarification, draft_onboarding, draft_order, draft_quote


class DeskState(TypedDict, total=False):
    """Graph state. Public input: `inbound`; everything else is filled by the nodes."""

    inbound: dict  # {"id", "channel", "chat_id", "sender_id", "sender_name", "text"}
    intent: str
    parse: dict  # ParseResult.to_dict()
    kyc: dict  # {"institution", "status", "approved"}
    kind: str  # quote | clarification | onboarding | order | none
    quote_ref: dict  # for an order: the client's latest approved quote in this chat, if any
    lines: list[dict]  # one priced line per request
    draft: str
    review_id: str
    decision: dict  # {"action": "approve"|"reject"|"expire", "reply"?, "by"?}
    outcome: str


@dataclass(frozen=True)
class DeskDeps:
    """Everything the graph needs from the outside world, as plain callables."""

    parse: Callable[[str, dict | None], dict]  # (text, previous incomplete parse or None) -> ParseResult dict
    pending_context: Callable[[dict], dict | None]  # inbound -> this client's open clarification, if any
    remember_context: Callable[[dict, dict | None], None]  # inbound, parse to remember (None clears)
    kyc_status: Callable[[dict], dict]  # inbound -> {"institution", "status", "approved"}
    price: Callable[[dict], dict]  # QuoteRequest -> priced line (or {"request", "error"})
    open_review: Callable[[str, DeskState], str]  # (thread_id, state) -> review id; idempotent per thread
    enqueue_reply: Callable[[str, str], None]  # (review id, final text) -> outbox row; idempotent
    quote_id: Callable[[str], str] = lambda thread_id: thread_id
    last_quote: Callable[[dict], dict | None] = lambda inbound: None  # inbound -> latest sent quote item


def _understand(deps: DeskDeps):
    def node(state: DeskState) -> DeskState:
        inbound = state["inbound"]
        previous = deps.pending_context(inbound)
        result = deps.parse(inbound["text"], previous)
        intent = result.get("intent", "other")
        requests = result.get("requests") or []
        if intent == "order":  # never dropped: a trader confirms or books it
            ref = deps.last_quote(inbound)
            return {"intent": intent, "parse": result, "kind": "order", "quote_ref": ref or {},
                    "lines": (ref or {}).get("lines", [])}
        if intent != "quote":
            return {"intent": intent, "parse": result, "kind": "none"}
        incomplete = not requests or any(r.get("missing") for r in requests) or bool(result.get("clarification"))
        deps.remember_context(inbound, result if incomplete else None)
        return {"intent": intent, "parse": result, "kind": "clarification" if incomplete else "quote"}

    return node


def _check_kyc(deps: DeskDeps):
    def node(state: DeskState) -> DeskState:
        kyc = deps.kyc_status(state["inbound"])
        return {"kyc": kyc, "kind": state["kind"] if kyc.get("approved") else "onboarding"}

    return node


def _price(deps: DeskDeps):
    def node(state: DeskState) -> DeskState:
        return {"lines": [deps.price(req) for req in state["parse"]["requests"]]}

    return node


def _draft(deps: DeskDeps):
    def node(state: DeskState, config) -> DeskState:
        thread_id = config["configurable"]["thread_id"]
        kind = state["kind"]
        if kind == "onboarding":
            text = draft_onboarding(state["inbound"], state["kyc"])
        elif kind == "order":
            text = draft_order(state["inbound"], state["parse"], state.get("quote_ref") or None)
        elif kind == "clarification":
            text = draft_clarification(state["inbound"], state["parse"])
        else:
            text = draft_quote(state["inbound"], state["lines"], deps.quote_id(thread_id))
        return {"draft": text}

    return node


def _review(deps: DeskDeps):
    def node(state: DeskState, config) -> DeskState:
        review_id = deps.open_review(config["configurable"]["thread_id"], state)
        decision = interrupt({"review_id": review_id, "kind": state["kind"], "draft": state["draft"]})
        return {"review_id": review_id, "decision": decision}

    return node


def _deliver(deps: DeskDeps):
    def node(state: DeskState) -> DeskState:
        decision = state["decision"]
        if decision.get("action") != "approve":
            return {"outcome": decision.get("action", "rejected")}
        deps.enqueue_reply(state["review_id"], decision.get("reply") or state["draft"])
        return {"outcome": "approved"}

    return node


def _after_understand(state: DeskState) -> Literal["check_kyc", "__end__"]:
    return END if state["kind"] == "none" else "check_kyc"


def _after_kyc(state: DeskState) -> Literal["price", "draft"]:
    return "price" if state["kind"] == "quote" else "draft"


def build_desk_graph(deps: DeskDeps, checkpointer: Any):
    """Compile the desk graph with a checkpointer (SQLite or Postgres saver) so reviews survive restarts."""
    g = StateGraph(DeskState)
    g.add_node("understand", _understand(deps))
    g.add_node("check_kyc", _check_kyc(deps))
    g.add_node("price", _price(deps))
    g.add_node("draft", _draft(deps))
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
