"""The desk graph (langgraph): a client message → understood → KYC-checked → priced or read as an order → drafted →
trader review → sent (and, for an order or an unwind, booked).

`build_desk_graph(deps, checkpointer)` compiles the graph from explicit dependencies: each node gets only
the narrow service it needs from `DeskDeps` (the parser, the conversation context, the KYC lookup, the
pricer, the client's orders and trades, the trade service, the review queue, the outbox); nothing here touches a
database, a channel or the environment. The input is `InputState` (the stored inbound message); `State` is
internal. The `review` node interrupts (LangGraph `interrupt`) with the review item; the trader's decision resumes
it. Because a resumed node runs again from its top, `ReviewQueue.open`, `Outbox.enqueue` and `TradingPort.book` /
`unwind` must be idempotent (keyed by review id, which is `quote_id_for(thread_id)`, so one thread never opens two
items).

Orders (CONTRACTS.md Part 2, "Orders and trades"); the `orders` node reads the client's world through `Orders`:

* `order` — a follow-up to a quote SENT in this chat (confirmation words, the quote id, a size, 就这个) becomes a
  review item of kind `order`: `order` = {"quote_id", "notional", "execution": {"type", "limit_price", "pov_pct",
  "start", "end"}, "account", "line"}, `ref_id` = the quote id, `lines`/`requests` = the quoted line ordered.
  **One order item per quoted line**: a trade is booked per item (`trade.order_review_id` is unique), so a message
  that orders several lines of one quote ("序号1，100w；序号2，市价") opens one item per line — the first on the
  message's thread, the others on threads `<thread>#L<k>` that the runner starts (`State.more_threads`); their
  terms are stored with the first item (`detail.more_lines`). The size defaults to the quoted size; the execution
  instruction must be stated; the product account is asked for when the institution has several. Whatever is
  missing is asked in ONE message (an `order` item with `detail.missing`; approving it sends the question and
  books nothing) and the client's next message completes it (`ner.complete_order`). A size ≤ 0 or above
  `OrderPolicy.max_notional` is refused with the reason (`detail.refused`, nothing booked); no sent quote → a
  question; a quote older than `OrderPolicy.quote_valid_s` when the order arrives → `detail.stale` (approval is
  refused by `workflows.review`; the trader reprices).
* `amend` (改限价10, 改POV12, 名义本金改成300万) changes the client's pending order item (audited, published, draft
  re-rendered) and opens nothing; `cancel` (撤单) withdraws it (status `withdrawn`; the runner resumes its thread
  with the withdrawal, `State.withdrawn`) and drafts the acknowledgement; `order_status` drafts the latest order's
  state. When there is nothing to amend or cancel, the reply says so (kind `order_status`).
* `holdings` (查持仓) drafts the institution's live trades, numbered (`detail.trades` keeps the order, so
  "第一笔，全平" refers to it); `unwind` (平掉 T… 100万 市价, 第一笔全平) becomes an `unwind` item: `order` =
  {"trade_id", "notional" (the whole live notional for 全平), "execution", "account"}, `ref_id` = the trade id,
  priced by `TradingPort.unwind_quote` (`detail.unwind_quote`).

Approval of a complete, fresh `order` / `unwind` item calls `TradingPort.book` / `unwind` and sends the message it
returns (the booking confirmation) instead of the draft; None (the trade waits for a second approval) sends
nothing now. With no trade service (`DeskDeps.trading` None) nothing is booked: the item says so
(`detail.booking` = "manual") and approval sends the draft, an acknowledgement that the trader confirms the fill.

Knowledge (CONTRACTS Part 2, "Review items"): a client's product question (intent `knowledge`) is answered from the
client-facing knowledge base through `DeskDeps.knowledge` (question → `KnowledgeService.ask` result) into a review
item of kind `knowledge` with the answer's `citations` in `detail`; with no evidence (refused, or no knowledge base)
the draft says the desk will follow up and nothing is invented. No KYC check: product terms are public to clients.
Without `DeskDeps.knowledge` the intent is dropped as before.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Callable, Literal, Protocol

from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict  # typing's TypedDict has no JSON schema on Python < 3.12

from otcdesk.agents.quote_card import (MISSING_CN, STATUS_CN, draft_cancelled, draft_clarification, draft_holdings,
                                       draft_knowledge, draft_onboarding, draft_order, draft_order_confirm, draft_order_question,
                                       draft_order_refused, draft_order_status, draft_quote, draft_unwind,
                                       draft_unwind_question, draft_unwind_refused)
from otcdesk.ner.order_terms import execution_missing, finish_execution, line_terms, merge_execution, pick_account

ORDER_INTENTS = ("order", "amend", "cancel", "order_status", "holdings", "unwind")
BOOKABLE = ("order", "unwind")
_PART = re.compile(r"^(?P<main>.+)#L(?P<k>\d+)$")  # the thread of line k ≥ 2 of a multi-line order


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
    kind: str  # quote | clarification | onboarding | knowledge | orders (→ order | unwind | …) | none
    quote_ref: dict  # for an order: the quote it refers to, if any
    lines: list[dict]  # one priced line per request (an order: the quoted line it orders)
    requests: list[dict]  # an order's quoted request(s)
    order: dict  # order / unwind terms (CONTRACTS Part 2)
    ref_id: str  # the quote (order) or trade (unwind) the item refers to
    detail: dict  # kind-specific extras: missing, refused, stale, booking, more_lines, trades, unwind_quote
    part: int  # this thread is line `part` (≥ 2) of a multi-line order
    more_threads: list[str]  # threads of the other lines of a multi-line order, for the runner to start
    withdrawn: list[str]  # threads of order items the client cancelled, for the runner to resume
    draft: str
    review_id: str
    decision: dict  # {"action": "approve"|"reject"|"expire"|"withdraw", "reply"?, "by"?}
    booking: dict  # what TradingPort.book / unwind answered
    outcome: str


class ReviewDraft(TypedDict, total=False):
    """What the review queue stores for the trader (order, ref_id and detail only for the kinds that have them)."""

    inbound: Inbound
    kind: str
    requests: list[dict]
    lines: list[dict]
    draft: str
    order: dict | None
    ref_id: str | None
    detail: dict | None


class ConversationContext(Protocol):
    """What the desk remembers of a client's conversation in a chat."""

    def pending(self, inbound: Inbound) -> dict | None:
        """The client's open clarification (an incomplete parse, or an incomplete order), if any."""

    def remember(self, inbound: Inbound, parse: dict | None) -> None:
        """Keep an incomplete parse for the client's next message; None clears it."""

    def last_sent_quote(self, inbound: Inbound) -> dict | None:
        """{"id", "lines", "requests"} of the client's latest quote in this chat that was sent to them."""


class Orders(Protocol):
    """The client's quotes, orders, accounts and trades as the desk graph reads them, and the changes a client may
    make to a pending order (each audited and published by the implementation)."""

    def quote(self, inbound: Inbound, quote_id: str | None) -> dict | None:
        """A quote sent in this chat: `quote_id` (whoever in the group asked for it), else the sender's latest;
        {"id", "lines", "requests", "age_s"} (age from pricing to now), None when there is none."""

    def accounts(self, inbound: Inbound) -> list[str]:
        """The names of the client institution's active product accounts (资管产品/产品户), in a stable order."""

    def pending_orders(self, inbound: Inbound) -> list[dict]:
        """The sender's pending order and unwind items in this chat, newest first: {"id", "thread_id", "kind",
        "order", "lines", "requests", "detail", "status"}."""

    def last_order(self, inbound: Inbound, quote_id: str | None = None) -> dict | None:
        """The sender's latest order item in this chat (on `quote_id` when given): as `pending_orders` items, plus
        "trade": {"id", "status"} once one was booked from it."""

    def amend(self, review_id: str, order: dict, draft: str, by: str) -> bool:
        """Replace a pending order item's terms and draft; False when it is no longer pending."""

    def withdraw(self, review_id: str, by: str, reason: str = "cancelled by the client") -> bool:
        """pending → withdrawn (the client cancelled, or answered the question it asked); False when it is no
        longer pending."""

    def live_trades(self, inbound: Inbound) -> list[dict]:
        """The client institution's live trades: {"id", "structure", "underlying", "underlying_name", "notional",
        "status", "account"}, in the order a holdings list shows them."""

    def trade(self, inbound: Inbound, trade_id: str) -> dict | None:
        """One trade of the client's institution (as `live_trades`), None when it is not theirs or unknown."""

    def holdings_list(self, inbound: Inbound) -> list[str]:
        """The trade ids of the last holdings list sent to the sender in this chat, in its order."""

    def order_part(self, review_id: str, k: int) -> dict | None:
        """The k-th line (k ≥ 2) of a multi-line order opened as `review_id`: what its own item carries."""


class TradingPort(Protocol):
    """The trade service as the desk graph uses it (implemented by app.trading.booking.TradeService).

    `book` and `unwind` are idempotent per review id (a resumed deliver node calls them again)."""

    def book(self, review_id: str, by: str) -> dict:
        """Book the trade of an approved order item: {"trade_id", "status", "message"}; `message` is the client's
        booking confirmation, or None while the trade waits for a second approval (four eyes)."""

    def unwind(self, review_id: str, by: str) -> dict:
        """Close (or reduce) the trade of an approved unwind item; the same shape as `book`."""

    def unwind_quote(self, trade_id: str, notional: float) -> dict:
        """The price to unwind `notional` of a trade from the book with the unwind margin: {"price_pct",
        "value_cny", "margin_pct", ...} or {"error"}."""


class ReviewQueue(Protocol):
    def open(self, review_id: str, thread_id: str, draft: ReviewDraft) -> None:
        """Put a draft before the trader; opening an id that exists does nothing."""


class Outbox(Protocol):
    def enqueue(self, review_id: str, text: str) -> None:
        """Queue an approved reply for delivery; enqueuing a review twice does nothing."""


@dataclass(frozen=True)
class OrderPolicy:
    """The desk's order rules (from settings: OTCDESK_MAX_ORDER_NOTIONAL, OTCDESK_QUOTE_VALID_S)."""

    max_notional: float = 2_000_000_000.0  # a size above this is refused as absurd
    quote_valid_s: float = 600.0  # an order on a quote older than this is not booked at the quoted price


@dataclass(frozen=True)
class DeskDeps:
    """The outside world, one narrow service per concern."""

    parse: Callable[[str, dict | None], dict]  # (text, previous incomplete parse or None) -> ParseResult dict
    context: ConversationContext
    kyc_status: Callable[[Inbound], dict]  # -> {"institution", "status", "approved"}
    price: Callable[[dict], dict]  # QuoteRequest -> priced line (or {"request", "error"})
    reviews: ReviewQueue
    outbox: Outbox
    orders: Orders | None = None  # None: orders refer to the context's last sent quote, and nothing else is known
    trading: TradingPort | None = None  # None: approving an order books nothing (the item says so)
    policy: OrderPolicy = OrderPolicy()
    knowledge: Callable[[str], dict] | None = None  # client KB: question -> {"answer", "refused", "citations"}


def quote_id_for(thread_id: str) -> str:
    """The review (and quote) id of a graph thread: deterministic, so a re-run node never makes a second item."""
    return "Q" + hashlib.sha1(thread_id.encode()).hexdigest()[:10].upper()


class _ContextOrders:
    """`Orders` when the desk has none: the context's last sent quote, no accounts, orders or trades."""

    def __init__(self, context: ConversationContext):
        self.context = context

    def quote(self, inbound, quote_id):
        ref = self.context.last_sent_quote(inbound)
        return ref if ref and (quote_id is None or ref.get("id") == quote_id) else None

    def accounts(self, inbound):
        return []

    def pending_orders(self, inbound):
        return []

    def last_order(self, inbound, quote_id=None):
        return None

    def amend(self, review_id, order, draft, by):
        return False

    def withdraw(self, review_id, by, reason="cancelled by the client"):
        return False

    def live_trades(self, inbound):
        return []

    def trade(self, inbound, trade_id):
        return None

    def holdings_list(self, inbound):
        return []

    def order_part(self, review_id, k):
        return None


def _orders_of(deps: DeskDeps) -> Orders:
    return deps.orders or _ContextOrders(deps.context)


def _understand(deps: DeskDeps):
    def node(state: State, config) -> State:
        inbound = state["inbound"]
        part = _PART.match(config["configurable"]["thread_id"])
        if part and _orders_of(deps).order_part(quote_id_for(part["main"]), int(part["k"])) is not None:
            # another line of a multi-line order: its terms were read with the first line's
            return {"intent": "order", "parse": {"intent": "order", "requests": [], "clarification": None},
                    "kind": "orders", "part": int(part["k"])}
        pending = deps.context.pending(inbound)
        result = deps.parse(inbound["text"], pending)
        intent = result.get("intent", "other")
        requests = result.get("requests") or []
        if intent == "other" and not pending and (result.get("order") or {}).get("notional") is not None \
                and _orders_of(deps).quote(inbound, None) is not None:
            intent, result = "order", {**result, "intent": "order"}  # a bare size after a sent quote is an order
        if intent in ORDER_INTENTS:  # never dropped: a trader confirms, books or answers it
            return {"intent": intent, "parse": result, "kind": "orders"}
        if intent == "knowledge" and deps.knowledge is not None:
            return {"intent": intent, "parse": result, "kind": "knowledge"}
        if intent != "quote":
            return {"intent": intent, "parse": result, "kind": "none"}
        incomplete = not requests or any(r.get("missing") for r in requests) or bool(result.get("clarification"))
        deps.context.remember(inbound, result if incomplete else None)
        return {"intent": intent, "parse": result, "kind": "clarification" if incomplete else "quote"}

    return node


def _knowledge(deps: DeskDeps):
    def node(state: State) -> State:
        question = state["inbound"]["text"]
        try:
            result = deps.knowledge(question) or {}
        except LookupError:  # no client knowledge base yet: the desk follows up
            result = {"refused": True, "citations": [], "reason": "no knowledge base"}
        cites = [] if result.get("refused") else [
            {k: c.get(k) for k in ("source", "text", "score", "chunk_id", "heading")} for c in result.get("citations", [])]
        detail = {"citations": cites, "refused": not cites, "kb": result.get("kb"),
                  "answerability": result.get("coverage")}
        return _reply("knowledge", draft_knowledge(state["inbound"], result.get("answer", ""), bool(cites)),
                      detail=detail)

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
    elif kind == "clarification":
        text = draft_clarification(state["inbound"], state["parse"])
    else:
        text = draft_quote(state["inbound"], state["lines"], quote_id_for(config["configurable"]["thread_id"]))
    return {"draft": text}


# ---------------------------------------------------------------- orders

def _orders(deps: DeskDeps):
    def node(state: State, config) -> State:
        thread_id = config["configurable"]["thread_id"]
        book = _orders_of(deps)
        part = _PART.match(thread_id)
        if part and state.get("part"):
            stored = book.order_part(quote_id_for(part["main"]), int(part["k"]))
            if stored is None:
                return {"kind": "none"}
            return {"kind": "order", **stored}
        handler = {"order": _order, "amend": _amend, "cancel": _cancel, "order_status": _status,
                   "holdings": _holdings, "unwind": _unwind}[state["intent"]]
        return handler(deps, book, state, thread_id)

    return node


def _reply(kind: str, draft: str, **extra) -> State:
    return {"kind": kind, "draft": draft, "lines": [], "requests": [], "order": None, "ref_id": None, "detail": {},
            **extra}


def _contract(quote_id, notional, execution, account, line) -> dict:
    """The `order` of an item: CONTRACTS fields (quote_id, notional, execution, account) and the quoted line."""
    return {"quote_id": quote_id, "notional": notional, "execution": execution, "account": account, "line": line}


def _resolve_account(terms: dict, accounts: list[str], text: str) -> str | None:
    if len(accounts) == 1:
        return accounts[0]
    if terms.get("account") in accounts:
        return terms["account"]
    return pick_account(text, accounts, terms.get("account_no"))


def _answered(book: Orders, inbound: Inbound, kind: str) -> list[str]:
    """Withdraw the client's pending questions about an order (or unwind) that this message answers or replaces
    (a question not yet sent must not reach the client after the answer); their threads, for the runner."""
    done = []
    for o in book.pending_orders(inbound):
        if o.get("kind") == kind and (o.get("detail") or {}).get("missing") and \
                book.withdraw(o["id"], _client(inbound), "answered by the client's next message"):
            done.append(o["thread_id"])
    return done


def _order(deps: DeskDeps, book: Orders, state: State, thread_id: str) -> State:
    out = _order_item(deps, book, state, thread_id)
    answered = _answered(book, state["inbound"], "order")
    return {**out, "withdrawn": answered} if answered else out


def _order_item(deps: DeskDeps, book: Orders, state: State, thread_id: str) -> State:
    inbound, parse = state["inbound"], state["parse"]
    terms = dict(parse.get("order") or {})
    quote = book.quote(inbound, terms.get("quote_id"))
    if quote is None:
        deps.context.remember(inbound, {**parse, "intent": "order", "order": {**terms, "awaiting": ["quote"]}})
        partial = _contract(None, terms.get("notional"), finish_execution(terms.get("execution")), None, None)
        return _reply("order", draft_order(inbound, parse, None), order=partial,
                      detail={"missing": ["quote"]})
    qid, qlines = quote["id"], quote.get("lines") or []
    n = len(qlines)
    picks = terms.get("picks") or (list(range(1, n + 1)) if terms.get("pick_all") or n == 1 else [])
    picks = [p for p in picks if 1 <= p <= n]
    accounts = book.accounts(inbound)
    account = _resolve_account(terms, accounts, inbound["text"])
    missing: list[str] = [] if picks else ["line"]
    if len(accounts) > 1 and account is None:
        missing.append("account")
    per_line: dict[int, dict] = {}
    for p in picks:
        said = line_terms(terms, p)
        req = (qlines[p - 1].get("request") or {})
        notional = said.get("notional", req.get("notional"))
        execution = finish_execution(said.get("execution"))
        gaps = ([] if notional is not None else ["notional"]) + execution_missing(execution)
        per_line[p] = {"notional": notional, "execution": execution, "missing": gaps}
    if missing or any(v["missing"] for v in per_line.values()):
        all_missing = missing + [m for v in per_line.values() for m in v["missing"]]
        remembered = {**terms, "quote_id": qid, "account": account, "awaiting": list(dict.fromkeys(all_missing))}
        deps.context.remember(inbound, {**parse, "intent": "order", "order": remembered})
        first = picks[0] if picks else None
        partial = _contract(qid, per_line[first]["notional"] if first else terms.get("notional"),
                            per_line[first]["execution"] if first else finish_execution(terms.get("execution")),
                            account, first)
        text = draft_order_question(qid, n, qlines, {p: v["missing"] for p, v in per_line.items()}, missing,
                                    accounts, {"notional": partial["notional"]})
        chosen = [qlines[p - 1] for p in picks] if picks else qlines
        return _reply("order", text, order=partial, ref_id=qid, lines=chosen,
                      requests=[ln.get("request") or {} for ln in chosen],
                      detail={"missing": list(dict.fromkeys(all_missing)),
                              "missing_by_line": {str(p): v["missing"] for p, v in per_line.items()}})
    deps.context.remember(inbound, None)
    bad = [v["notional"] for v in per_line.values()
           if v["notional"] <= 0 or v["notional"] > deps.policy.max_notional]
    if bad:
        return _reply("order", draft_order_refused(qid, bad[0], deps.policy.max_notional), ref_id=qid,
                      order=_contract(qid, bad[0], None, account, None),
                      detail={"refused": "notional must be > 0" if bad[0] <= 0 else
                              f"notional above the maximum {deps.policy.max_notional:g}"})
    unpriced = [p for p in picks if qlines[p - 1].get("error")]
    if unpriced:
        return _reply("order", f"您好，报价 {qid} 序号{unpriced[0]}未能报价，无法下单，交易员将与您确认。", ref_id=qid,
                      detail={"refused": f"line {unpriced[0]} of {qid} has no price"})
    age = quote.get("age_s")
    stale = age is not None and age > deps.policy.quote_valid_s
    items = []
    for p in picks:
        line = qlines[p - 1]
        order = _contract(qid, per_line[p]["notional"], per_line[p]["execution"], account, p)
        detail = {"line": p, "quote_lines": n, "quote_age_s": age, "quote_valid_s": deps.policy.quote_valid_s}
        if stale:
            detail["stale"] = True
        if deps.trading is None:
            detail["booking"] = "manual"  # no trade service: approval sends this acknowledgement, books nothing
        stale_note = {"age_min": round(age / 60, 1), "valid_min": round(deps.policy.quote_valid_s / 60, 1)} \
            if stale else None
        text = draft_order_confirm(qid, p, n, line.get("request") or {}, order, stale=stale_note,
                                   booking=deps.trading is not None)
        items.append({"order": order, "ref_id": qid, "lines": [line], "requests": [line.get("request") or {}],
                      "detail": detail, "draft": text})
    first, rest = items[0], items[1:]
    if rest:
        first["detail"]["more_lines"] = rest
    return {"kind": "order", **first, "more_threads": [f"{thread_id}#L{k}" for k in range(2, len(items) + 1)]}


def _complete(item: dict) -> bool:
    return not (item.get("detail") or {}).get("missing")


def _amend(deps: DeskDeps, book: Orders, state: State, thread_id: str) -> State:
    inbound, terms = state["inbound"], dict(state["parse"].get("order") or {})
    pending = [o for o in book.pending_orders(inbound) if o.get("kind") == "order" and _complete(o)]
    if terms.get("picks"):
        pending = [o for o in pending if (o.get("order") or {}).get("line") in terms["picks"]] or pending
    if not pending:
        last = book.last_order(inbound)
        note = ("您好，目前没有待确认的订单可以修改。" if last is None or last.get("status") == "pending" else
                f"您好，您的订单已{_status_word(last)}，无法修改；如需调整请联系交易员。")
        return _reply("order_status", draft_order_status(last, note))
    target = pending[0]
    old = dict(target.get("order") or {})
    new = dict(old)
    said = line_terms(terms, old.get("line") or 1)
    if said.get("notional") is not None:
        new["notional"] = said["notional"]
    if said.get("execution"):
        new["execution"] = merge_execution(old.get("execution"), said["execution"])
    accounts = book.accounts(inbound)
    if terms.get("account_no") or terms.get("account"):
        new["account"] = _resolve_account(terms, accounts, inbound["text"]) or old.get("account")
    if new["notional"] is None or new["notional"] <= 0 or new["notional"] > deps.policy.max_notional:
        refusal = draft_order_refused(old.get("quote_id"), new["notional"], deps.policy.max_notional)
        return _reply("order_status", refusal)
    gaps = execution_missing(new.get("execution"))
    if gaps:
        return _reply("order_status", f"您好，请补充{MISSING_CN.get(gaps[0], gaps[0])}，我们按修改后的指令为您下单。")
    detail = target.get("detail") or {}
    stale_note = ({"age_min": round(detail["quote_age_s"] / 60, 1),
                   "valid_min": round(detail.get("quote_valid_s", deps.policy.quote_valid_s) / 60, 1)}
                  if detail.get("stale") else None)
    line = (target.get("lines") or [{}])[0]
    text = draft_order_confirm(new.get("quote_id") or "", new.get("line") or 1, detail.get("quote_lines") or 1,
                               line.get("request") or {},
                               new, stale=stale_note, booking=deps.trading is not None)
    if book.amend(target["id"], new, text, _client(inbound)):
        return {"kind": "none", "ref_id": target["id"]}
    return _reply("order_status", "您好，您的订单已在交易员处理中，无法修改；如需调整请联系交易员。")


def _cancel(deps: DeskDeps, book: Orders, state: State, thread_id: str) -> State:
    inbound, terms = state["inbound"], dict(state["parse"].get("order") or {})
    pending = book.pending_orders(inbound)
    if terms.get("quote_id"):
        pending = [o for o in pending if (o.get("order") or {}).get("quote_id") == terms["quote_id"]]
    if terms.get("picks"):
        pending = [o for o in pending if (o.get("order") or {}).get("line") in terms["picks"]] or pending
    open_order = (deps.context.pending(inbound) or {}).get("intent") in BOOKABLE
    if open_order:
        deps.context.remember(inbound, None)  # the order being completed is dropped too
    done = [o for o in pending if book.withdraw(o["id"], _client(inbound))]
    if done:
        return _reply("order_status", draft_cancelled(done), withdrawn=[o["thread_id"] for o in done],
                      detail={"withdrawn": [o["id"] for o in done]})
    last = book.last_order(inbound, terms.get("quote_id"))
    if pending or (last and last.get("status") in ("approved", "sent")):
        note = f"您好，您的订单已{_status_word(last)}，无法撤单；如需提前平仓请发送平仓指令，交易员将与您确认。"
    elif open_order:
        note = "您好，已取消本次下单，不会成交。"
    else:
        note = "您好，目前没有待确认的订单可以撤销。"
    return _reply("order_status", note)


def _status_word(order: dict | None) -> str:
    if not order:
        return "处理"
    trade = order.get("trade")
    status = trade["status"] if trade else order.get("status") or ""
    return STATUS_CN.get(status, status).lstrip("已") or "处理"


def _status(deps: DeskDeps, book: Orders, state: State, thread_id: str) -> State:
    inbound, terms = state["inbound"], dict(state["parse"].get("order") or {})
    last = book.last_order(inbound, terms.get("quote_id"))
    return _reply("order_status", draft_order_status(last),
                  ref_id=last["id"] if last else None,
                  detail={"order_review": last["id"] if last else None, "status": (last or {}).get("status")})


def _holdings(deps: DeskDeps, book: Orders, state: State, thread_id: str) -> State:
    trades = book.live_trades(state["inbound"])
    return _reply("holdings", draft_holdings(trades), detail={"trades": [t["id"] for t in trades]})


def _unwind(deps: DeskDeps, book: Orders, state: State, thread_id: str) -> State:
    out = _unwind_item(deps, book, state, thread_id)
    answered = _answered(book, state["inbound"], "unwind")
    return {**out, "withdrawn": answered} if answered else out


def _unwind_item(deps: DeskDeps, book: Orders, state: State, thread_id: str) -> State:
    inbound, parse = state["inbound"], state["parse"]
    terms = dict(parse.get("order") or {})
    picks = terms.get("picks") or []
    listed = terms.get("offered") or book.holdings_list(inbound)
    trade_id = terms.get("trade_id")
    pick = picks[0] if picks else None
    if trade_id is None and pick is not None and 1 <= pick <= len(listed):
        trade_id = listed[pick - 1]
    trade = book.trade(inbound, trade_id) if trade_id else None
    if trade_id and (trade is None or trade.get("status") != "live"):
        deps.context.remember(inbound, None)
        why = "未找到贵司的该笔存续交易" if trade is None else f"该交易状态为{trade.get('status')}，不可平仓"
        return _reply("unwind", draft_unwind_refused(trade_id, why), ref_id=trade_id,
                      detail={"refused": f"trade {trade_id} is not a live trade of the client"})
    said = line_terms(terms, pick) if pick is not None else line_terms(terms, 0)
    missing: list[str] = []
    notional = None
    if trade is None:
        missing.append("trade")
    elif said.get("full"):
        notional = trade["notional"]
    elif said.get("fraction"):
        notional = round(trade["notional"] * said["fraction"], 2)
    elif said.get("notional") is not None:
        notional = said["notional"]
    if notional is None and not (said.get("full") or said.get("fraction") or said.get("notional") is not None):
        missing.append("unwind_notional")  # asked with the trade, so one question covers everything
    execution = finish_execution(said.get("execution"))
    gaps = execution_missing(execution)
    missing += ["unwind_execution" if g == "execution" else g for g in gaps]
    if missing:
        offered = [] if trade is not None else [t["id"] for t in book.live_trades(inbound)]
        live = [book.trade(inbound, t) for t in offered] if offered else []
        remembered = {**terms, "trade_id": trade_id, "awaiting": missing}
        if offered:
            remembered["offered"], remembered["picks"] = offered, []
        deps.context.remember(inbound, {**parse, "intent": "unwind", "order": remembered})
        order = {"trade_id": trade_id, "notional": notional, "execution": execution,
                 "account": (trade or {}).get("account")}
        return _reply("unwind", draft_unwind_question(missing, [t for t in live if t], trade), order=order,
                      ref_id=trade_id, detail={"missing": missing, **({"trades": offered} if offered else {})})
    deps.context.remember(inbound, None)
    if notional <= 0 or notional > trade["notional"]:
        why = "名义本金需大于0" if notional <= 0 else f"超过存续名义本金{trade['notional'] / 1e4:g}万"
        return _reply("unwind", draft_unwind_refused(trade_id, why), ref_id=trade_id,
                      detail={"refused": f"unwind notional {notional:g} outside (0, {trade['notional']:g}]"})
    order = {"trade_id": trade_id, "notional": notional, "execution": execution, "account": trade.get("account")}
    quote = deps.trading.unwind_quote(trade_id, notional) if deps.trading is not None else None
    detail = {"trade": trade, "full": notional == trade["notional"]}
    if quote is not None:
        detail["unwind_quote"] = quote
    if deps.trading is None:
        detail["booking"] = "manual"
    usable = quote if quote and not quote.get("error") else None
    return _reply("unwind", draft_unwind(trade, order, usable, booking=deps.trading is not None), order=order,
                  ref_id=trade_id, detail=detail)


def _client(inbound: Inbound) -> str:
    return f"client:{inbound['channel']}:{inbound['sender_id']}"


# ---------------------------------------------------------------- review and delivery

def _review(deps: DeskDeps):
    def node(state: State, config) -> State:
        thread_id = config["configurable"]["thread_id"]
        review_id = quote_id_for(thread_id)
        requests = state.get("requests")
        if requests is None:
            requests = (state.get("parse") or {}).get("requests") or []
        draft: ReviewDraft = {"inbound": state["inbound"], "kind": state["kind"], "requests": requests,
                              "lines": state.get("lines", []), "draft": state["draft"]}
        for key in ("order", "ref_id", "detail"):
            if state.get(key) is not None:
                draft[key] = state[key]
        deps.reviews.open(review_id, thread_id, draft)
        decision = interrupt({"review_id": review_id, "kind": state["kind"], "draft": state["draft"]})
        return {"review_id": review_id, "decision": decision}

    return node


def bookable(state: State) -> bool:
    """An order or unwind item whose terms are complete, accepted and fresh: approving it books (or unwinds)."""
    detail = state.get("detail") or {}
    return state.get("kind") in BOOKABLE and bool(state.get("order")) and not (
        detail.get("missing") or detail.get("refused") or detail.get("stale"))


def _deliver(deps: DeskDeps):
    def node(state: State) -> State:
        decision = state["decision"]
        if decision.get("action") != "approve":
            return {"outcome": decision.get("action", "rejected")}
        review_id = state["review_id"]
        if bookable(state) and deps.trading is not None:
            step = deps.trading.book if state["kind"] == "order" else deps.trading.unwind
            result = step(review_id, decision.get("by") or "trader")
            if result.get("error"):
                return {"outcome": "booking_refused", "booking": result}
            if result.get("message"):
                deps.outbox.enqueue(review_id, result["message"])
            return {"outcome": "booked" if state["kind"] == "order" else "unwound", "booking": result}
        deps.outbox.enqueue(review_id, decision.get("reply") or state["draft"])
        return {"outcome": "approved"}

    return node


def _after_understand(state: State) -> Literal["check_kyc", "knowledge", "__end__"]:
    if state["kind"] == "knowledge":
        return "knowledge"
    return END if state["kind"] == "none" else "check_kyc"


def _after_kyc(state: State) -> Literal["price", "orders", "draft"]:
    if state["kind"] == "quote":
        return "price"
    return "orders" if state["kind"] == "orders" else "draft"


def _after_orders(state: State) -> Literal["review", "__end__"]:
    return END if state["kind"] == "none" else "review"


def build_desk_graph(deps: DeskDeps, checkpointer: Any, wrap: Callable[[str, Callable], Callable] | None = None):
    """Compile the desk graph with a checkpointer (SQLite or Postgres saver) so reviews survive restarts.
    `wrap(name, node)` may wrap each node (the app's tracing does) and must keep its signature."""
    wrap = wrap or (lambda name, node: node)
    g = StateGraph(State, input_schema=InputState)
    for name, node in (("understand", _understand(deps)), ("check_kyc", _check_kyc(deps)), ("price", _price(deps)),
                       ("orders", _orders(deps)), ("draft", _draft), ("knowledge", _knowledge(deps)),
                       ("review", _review(deps)), ("deliver", _deliver(deps))):
        g.add_node(name, wrap(name, node))
    g.add_edge(START, "understand")
    g.add_conditional_edges("understand", _after_understand)
    g.add_conditional_edges("check_kyc", _after_kyc)
    g.add_edge("price", "draft")
    g.add_conditional_edges("orders", _after_orders)
    g.add_edge("draft", "review")
    g.add_edge("knowledge", "review")
    g.add_edge("review", "deliver")
    g.add_edge("deliver", END)
    return g.compile(checkpointer=checkpointer)
