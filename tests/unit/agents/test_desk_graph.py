"""The desk graph on its own: langgraph's in-memory checkpointer, the real parser, and small real services."""
import uuid

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from otcdesk.agents.desk import DeskDeps, build_desk_graph, quote_id_for
from otcdesk.ner import complete_followup, parse_message

APPROVED, PROSPECT = "approved-group", "prospect-group"


def parse(text, previous):
    return (complete_followup(previous, text) if previous else parse_message(text)).to_dict()


def price(req):
    return {"request": req, "price_pct": 1.25, "pv": 125_000.0, "engine": "analytic"}


class Conversations:
    """Open clarifications by (chat, sender); the last sent quote is whatever the test put there."""

    def __init__(self, sent_quote=None):
        self.open, self.sent_quote = {}, sent_quote

    def pending(self, inbound):
        return self.open.get((inbound["chat_id"], inbound["sender_id"]))

    def remember(self, inbound, parse):
        key = (inbound["chat_id"], inbound["sender_id"])
        if parse is None:
            self.open.pop(key, None)
        else:
            self.open[key] = parse

    def last_sent_quote(self, inbound):
        return self.sent_quote


class Reviews:
    def __init__(self):
        self.calls, self.items = [], {}

    def open(self, review_id, thread_id, draft):
        self.calls.append(review_id)
        self.items.setdefault(review_id, {"thread_id": thread_id, **draft})


class Outbox:
    def __init__(self):
        self.sent = []

    def enqueue(self, review_id, text):
        if review_id not in {rid for rid, _ in self.sent}:
            self.sent.append((review_id, text))


def kyc_status(inbound):
    approved = inbound["chat_id"] == APPROVED
    return {"institution": "某资管" if approved else "某私募", "status": "approved" if approved else "screening",
            "approved": approved}


class Desk:
    def __init__(self, sent_quote=None):
        self.context, self.reviews, self.outbox, self.priced = Conversations(sent_quote), Reviews(), Outbox(), []

        def counting_price(req):
            self.priced.append(req)
            return price(req)

        deps = DeskDeps(parse=parse, context=self.context, kyc_status=kyc_status, price=counting_price,
                        reviews=self.reviews, outbox=self.outbox)
        self.graph = build_desk_graph(deps, InMemorySaver())

    def say(self, text, chat=APPROVED, sender="c1"):
        thread_id = f"sim-{uuid.uuid4().hex}"
        inbound = {"id": 1, "channel": "sim", "chat_id": chat, "sender_id": sender, "sender_name": "张经理",
                   "text": text, "platform_msg_id": thread_id}
        result = self.graph.invoke({"inbound": inbound}, _config(thread_id))
        return thread_id, result

    def decide(self, thread_id, action, reply=None):
        return self.graph.invoke(Command(resume={"action": action, "reply": reply, "by": "t1"}), _config(thread_id))

    def state(self, thread_id):
        return self.graph.get_state(_config(thread_id))


def _config(thread_id):
    return {"configurable": {"thread_id": thread_id}}


def test_input_schema_is_the_inbound_message_only():
    assert set(Desk().graph.get_input_jsonschema()["properties"]) == {"inbound"}


def test_quote_waits_for_review_then_approval_enqueues_one_reply():
    desk = Desk()
    thread, result = desk.say("@询价机器人 沪深300 1个月 平值看跌 1000万")
    [interrupt] = result["__interrupt__"]
    rid = quote_id_for(thread)
    assert interrupt.value == {"review_id": rid, "kind": "quote", "draft": result["draft"]}
    assert desk.state(thread).next == ("review",)
    item = desk.reviews.items[rid]
    assert item["kind"] == "quote" and item["thread_id"] == thread and rid in item["draft"]
    assert [ln["request"]["underlying"] for ln in item["lines"]] == ["000300.SH"] == \
        [r["underlying"] for r in item["requests"]]
    assert desk.outbox.sent == []  # nothing leaves before the trader decides

    final = desk.decide(thread, "approve")
    assert desk.outbox.sent == [(rid, item["draft"])] and final["outcome"] == "approved"
    assert desk.state(thread).next == ()


def test_edited_approval_sends_the_trader_text():
    desk = Desk()
    thread, _ = desk.say("沪深300 1个月 平值看跌")
    desk.decide(thread, "approve", reply="改价：期权费 2.00%")
    assert desk.outbox.sent == [(quote_id_for(thread), "改价：期权费 2.00%")]


@pytest.mark.parametrize("action", ["reject", "expire"])
def test_reject_or_expiry_enqueues_nothing(action):
    desk = Desk()
    thread, _ = desk.say("沪深300 1个月 平值看跌")
    final = desk.decide(thread, action)
    assert desk.outbox.sent == [] and final["outcome"] == action and desk.state(thread).next == ()


def test_resumed_review_node_reopens_the_same_item_not_a_second():
    desk = Desk()
    thread, _ = desk.say("沪深300 1个月 平值看跌")
    desk.decide(thread, "approve")
    rid = quote_id_for(thread)
    assert desk.reviews.calls == [rid, rid]  # the review node ran again from its top on resume
    assert list(desk.reviews.items) == [rid]
    desk.decide(thread, "approve")  # a second resume of a finished thread changes nothing
    assert len(desk.outbox.sent) == 1


def test_incomplete_request_asks_and_the_answer_completes_it():
    desk = Desk()
    thread, result = desk.say("沪深300 平值看跌")
    assert result["kind"] == "clarification" and "期限" in result["draft"] and desk.priced == []
    assert desk.reviews.items[quote_id_for(thread)]["kind"] == "clarification"
    assert desk.context.pending({"chat_id": APPROVED, "sender_id": "c1"})["requests"][0]["missing"] == ["tenor"]

    thread, result = desk.say("1个月")
    assert result["kind"] == "quote"
    assert [(r["underlying"], r["tenor"]) for r in result["parse"]["requests"]] == [("000300.SH", "1M")]
    assert desk.context.open == {}  # a complete request closes the clarification


def test_client_not_onboarded_gets_the_kyc_notice_and_no_price():
    desk = Desk()
    thread, result = desk.say("沪深300 1个月 平值看跌", chat=PROSPECT)
    item = desk.reviews.items[quote_id_for(thread)]
    assert result["kind"] == item["kind"] == "onboarding" and "KYC" in item["draft"] and "某私募" in item["draft"]
    assert item["lines"] == [] and desk.priced == []


def test_order_refers_to_the_last_sent_quote():
    sent = {"id": "Q0000000001", "lines": [price({"underlying": "000300.SH"})], "requests": [{"underlying": "000300.SH"}]}
    desk = Desk(sent_quote=sent)
    thread, result = desk.say("200万，确认下单")
    item = desk.reviews.items[quote_id_for(thread)]
    assert item["kind"] == "order" and "Q0000000001" in item["draft"] and "200万" in item["draft"]
    assert item["lines"] == sent["lines"] and item["requests"] == sent["requests"] and desk.priced == []


def test_order_without_a_sent_quote_asks_which_one():
    desk = Desk()
    thread, _ = desk.say("200万，确认下单")
    item = desk.reviews.items[quote_id_for(thread)]
    assert item["kind"] == "order" and "哪一笔报价" in item["draft"] and item["lines"] == []


def test_non_quote_ends_without_review():
    desk = Desk()
    thread, result = desk.say("谢谢各位老师")
    assert result["kind"] == "none" and "__interrupt__" not in result
    assert desk.state(thread).next == () and desk.reviews.calls == [] and desk.outbox.sent == []
