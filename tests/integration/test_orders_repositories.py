"""The queries orders rest on, on SQLite and PostgreSQL: sent quotes by id, a client's orders, conditional amendments
and withdrawals, the last holdings list, product accounts (OrderStore over the repositories)."""
from datetime import timedelta

from otcdesk.app.desk.ports import OrderStore
from otcdesk.app.events import EventBus
from otcdesk.app.models import ReviewItem, utcnow
from otcdesk.app.repositories import transaction

WHO = {"channel": "sim", "chat_id": "g", "sender_id": "a", "sender_name": "a", "id": 1, "text": "",
       "platform_msg_id": "m"}


def _item(rid, kind, status, *, chat="g", sender="a", ref_id=None, order=None, detail=None, age_s=0):
    at = utcnow() - timedelta(seconds=age_s)
    return ReviewItem(id=rid, thread_id=f"t-{rid}", kind=kind, channel="sim", chat_id=chat, sender_id=sender,
                      sender_name=sender, text="x", draft_reply="d", status=status, created_at=at,
                      expires_at=at + timedelta(minutes=5), ref_id=ref_id, order=order, detail=detail,
                      lines=[{"request": {"underlying": "000300.SH"}, "price_pct": 1.0}])


def test_order_queries_and_conditional_changes(db_engine):
    with transaction(db_engine) as tx:
        inst = tx.clients.add_institution("某资管", "approved", True)
        tx.clients.add_group("sim", "g", inst.id)
        for name in ("乙号产品", "甲号产品"):
            tx.clients.add_account(inst.id, name)
        for it in (_item("Q1", "quote", "sent", age_s=700), _item("Q2", "quote", "sent", sender="b", age_s=10),
                   _item("Q3", "quote", "pending"), _item("Q4", "quote", "sent", chat="other"),
                   _item("O1", "order", "pending", ref_id="Q1", order={"notional": 1}, age_s=5),
                   _item("O2", "order", "sent", ref_id="Q1", order={"notional": 2}, age_s=50),
                   _item("U1", "unwind", "pending", ref_id="T1", order={"trade_id": "T1"}, age_s=1),
                   _item("H1", "holdings", "sent", detail={"trades": ["T2", "T1"]})):
            tx.reviews.add_once(it)
    store = OrderStore(db_engine, EventBus())
    assert store.accounts(WHO) == ["乙号产品", "甲号产品"]  # in the order they were opened
    mine = store.quote(WHO, None)
    assert mine["id"] == "Q1" and 690 < mine["age_s"] < 800
    assert store.quote(WHO, "Q2")["id"] == "Q2"  # a colleague's quote in the same group
    assert store.quote(WHO, "Q3") is None and store.quote(WHO, "Q4") is None  # not sent / another chat
    assert [o["id"] for o in store.pending_orders(WHO)] == ["U1", "O1"]
    assert store.last_order(WHO)["id"] == "O1" and store.last_order(WHO, "Q1")["id"] == "O1"
    assert store.last_order(WHO, "Q9") is None
    assert store.holdings_list(WHO) == ["T2", "T1"]

    assert store.amend("O1", {"notional": 3}, "new draft", "client:a")
    assert not store.amend("O2", {"notional": 4}, "x", "client:a")  # only a pending order changes
    assert store.withdraw("O1", "client:a")
    assert not store.withdraw("O1", "client:a") and not store.amend("O1", {"notional": 5}, "y", "client:a")
    with transaction(db_engine) as tx:
        o1 = tx.reviews.get("O1")
        assert (o1.status, o1.order, o1.draft_reply) == ("withdrawn", {"notional": 3}, "new draft")
        assert tx.reviews.get("O2").order == {"notional": 2}
        assert [e.action for e in tx.audit.entries(subject="review:O1")] == ["order.amend", "review.withdrawn"]
