"""The repositories against both databases: SQLite in a temp dir and the local PostgreSQL."""
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from otcdesk.app.auth import AuthError, authenticate, close_session, open_session, purge_expired_sessions, session_user, \
    upsert_user
from otcdesk.app.db import init_db
from otcdesk.app.models import ReviewItem, utcnow
from otcdesk.app.repositories import transaction
from otcdesk.app.repositories.sim import SqlSimTranscript
from otcdesk.bots.base import InboundMessage


def inbound(platform_msg_id="m1", channel="sim", chat="g", sender="a"):
    return InboundMessage(channel=channel, chat_id=chat, sender_id=sender, sender_name=sender, text="沪深300 1个月",
                          platform_msg_id=platform_msg_id)


def review(rid="Q1", inbound_id=1, status="pending", sender="a", kind="quote", ttl_s=60.0, created_at=None):
    now = created_at or utcnow()
    return ReviewItem(id=rid, thread_id=f"t-{rid}", inbound_id=inbound_id, kind=kind, channel="sim", chat_id="g",
                      sender_id=sender, sender_name=sender, text="x", requests=[{"underlying": "000300.SH"}],
                      lines=[{"price_pct": 1.0}], draft_reply=f"draft {rid}", status=status, created_at=now,
                      expires_at=now + timedelta(seconds=ttl_s))


def test_init_db_is_idempotent(db_engine):
    init_db(db_engine)
    init_db(db_engine)
    with transaction(db_engine) as tx:
        tx.clients.add_institution("甲机构", kyc_status="approved", can_trade=True)
    init_db(db_engine)
    with transaction(db_engine) as tx:
        assert tx.clients.institution_named("甲机构").kyc_status == "approved"


def test_inbound_platform_id_is_unique_per_channel(db_engine):
    with transaction(db_engine) as tx:
        first = tx.inbound.add(inbound("m1"))
        tx.inbound.add(inbound("m1", channel="wecom"))
    with pytest.raises(IntegrityError):
        with transaction(db_engine) as tx:
            tx.inbound.add(inbound("m1", sender="b"))
    with transaction(db_engine) as tx:
        assert tx.inbound.find("sim", "m1") == first and tx.inbound.find("sim", "m2") is None
        assert tx.inbound.get(first)["text"] == "沪深300 1个月" and tx.inbound.get(first)["platform_msg_id"] == "m1"
        assert len(tx.inbound.unprocessed()) == 2


def test_inbound_is_finished_once(db_engine):
    with transaction(db_engine) as tx:
        iid = tx.inbound.add(inbound())
    with transaction(db_engine) as tx:
        assert tx.inbound.finish(iid, "processed", "quote", None)
        assert not tx.inbound.finish(iid, "failed", None, "late")
    with transaction(db_engine) as tx:
        assert tx.inbound.unprocessed() == []


def test_clarification_is_remembered_per_client_until_cleared_or_stale(db_engine):
    parse = {"requests": [{"missing": ["tenor"]}]}
    with transaction(db_engine) as tx:
        tx.conversations.remember("sim", "g", "a", parse)
        tx.conversations.remember("sim", "g", "a", {**parse, "again": True})  # one row per client: overwritten
    since = utcnow() - timedelta(minutes=30)
    with transaction(db_engine) as tx:
        assert tx.conversations.open_clarification("sim", "g", "a", since) == {**parse, "again": True}
        assert tx.conversations.open_clarification("sim", "g", "b", since) is None
        assert tx.conversations.open_clarification("sim", "g", "a", utcnow() + timedelta(seconds=1)) is None
        tx.conversations.clear("sim", "g", "a")
        tx.conversations.clear("sim", "g", "nobody")
    with transaction(db_engine) as tx:
        assert tx.conversations.open_clarification("sim", "g", "a", since) is None


def _with_inbound(db_engine) -> int:
    with transaction(db_engine) as tx:
        return tx.inbound.add(inbound())


def test_review_is_opened_once_and_one_decision_wins(db_engine):
    iid = _with_inbound(db_engine)
    with transaction(db_engine) as tx:
        assert tx.reviews.add_once(review("Q1", iid))
    with transaction(db_engine) as tx:
        assert not tx.reviews.add_once(review("Q1", iid, status="rejected"))
    now = utcnow()
    with transaction(db_engine) as tx:
        assert tx.reviews.decide("Q1", "approved", "t1", now, final_reply="ok", unexpired=True)
        assert not tx.reviews.decide("Q1", "rejected", "t2", now, reason="late")
    with transaction(db_engine) as tx:
        item = tx.reviews.get("Q1")
        assert (item.status, item.decided_by, item.final_reply, item.reason) == ("approved", "t1", "ok", None)
        assert [i.id for i in tx.reviews.in_status("approved", "expired")] == ["Q1"]


def test_expired_review_is_not_approved_and_is_due_for_expiry(db_engine):
    iid = _with_inbound(db_engine)
    with transaction(db_engine) as tx:
        tx.reviews.add_once(review("Q1", iid, ttl_s=-1))
        tx.reviews.add_once(review("Q2", iid, ttl_s=60))
    now = utcnow()
    with transaction(db_engine) as tx:
        assert tx.reviews.due_for_expiry(now) == ["Q1"]
        assert not tx.reviews.decide("Q1", "approved", "t1", now, unexpired=True)
        assert tx.reviews.decide("Q1", "expired", "system", now)
        assert tx.reviews.due_for_expiry(now) == []


def test_review_listing_reprice_links_and_last_sent_quote(db_engine):
    iid = _with_inbound(db_engine)
    t0 = utcnow()
    with transaction(db_engine) as tx:
        tx.reviews.add_once(review("Q1", iid, status="sent", created_at=t0))
        tx.reviews.add_once(review("Q2", iid, status="sent", created_at=t0 + timedelta(seconds=1)))
        tx.reviews.add_once(review("Q3", iid, status="pending", created_at=t0 + timedelta(seconds=2)))
        tx.reviews.add_once(review("Q4", iid, status="sent", kind="order", created_at=t0 + timedelta(seconds=3)))
        tx.reviews.add_once(review("Q5", iid, status="sent", sender="b", created_at=t0 + timedelta(seconds=4)))
    with transaction(db_engine) as tx:
        assert [i.id for i in tx.reviews.list()] == ["Q5", "Q4", "Q3", "Q2", "Q1"]
        assert [i.id for i in tx.reviews.list("pending")] == ["Q3"]
        assert [i.id for i in tx.reviews.list(limit=2)] == ["Q5", "Q4"]
        assert tx.reviews.count_for_inbound(iid) == 5
        assert tx.reviews.last_sent_quote("sim", "g", "a").id == "Q2"
        assert tx.reviews.last_sent_quote("sim", "other", "a") is None
        tx.reviews.supersede("Q1", "Q9")
        tx.reviews.mark_sent("Q3")
    with transaction(db_engine) as tx:
        assert tx.reviews.get("Q1").superseded_by == "Q9" and tx.reviews.get("Q3").status == "sent"


def test_review_pages_reach_every_item_once_while_items_arrive_and_leave(db_engine):
    """A keyset cursor (created_at, id): ties in created_at, new items at the head and items decided between
    pages neither repeat nor hide an item that was pending when the walk began."""
    iid = _with_inbound(db_engine)
    t0 = utcnow()
    with transaction(db_engine) as tx:
        for n in range(250):  # five items share each created_at
            tx.reviews.add_once(review(f"Q{n:03d}", iid, created_at=t0 + timedelta(seconds=n // 5)))
        tx.reviews.add_once(review("S1", iid, status="sent", created_at=t0))
    seen, before = [], None
    while True:
        with transaction(db_engine) as tx:
            page = tx.reviews.list("pending", 60, before)
            if before is None:
                tx.reviews.add_once(review("NEW", iid, created_at=t0 + timedelta(hours=1)))  # arrives mid-walk
            tx.reviews.decide(page[0].id, "approved", "t1", utcnow())  # leaves the status mid-walk
        seen += [i.id for i in page]
        if len(page) < 60:
            break
        before = page[-1].id
    assert len(seen) == len(set(seen)) == 250 and set(seen) == {f"Q{n:03d}" for n in range(250)}
    assert seen[:6] == ["Q249", "Q248", "Q247", "Q246", "Q245", "Q244"]  # newest first, ties by id
    with transaction(db_engine) as tx:
        assert tx.reviews.count("pending") == 250 + 1 - 5 and tx.reviews.count() == 252


def test_outbox_row_is_enqueued_once_claimed_and_sent_once(db_engine):
    iid = _with_inbound(db_engine)
    with transaction(db_engine) as tx:
        tx.reviews.add_once(review("Q1", iid))
        tx.reviews.add_once(review("Q2", iid))
    with transaction(db_engine) as tx:
        assert tx.outbox.enqueue_once(tx.reviews.get("Q1"), "reply 1")
        assert not tx.outbox.enqueue_once(tx.reviews.get("Q1"), "reply 1 again")
        assert tx.outbox.enqueue_once(tx.reviews.get("Q2"), "reply 2")
    with transaction(db_engine) as tx:
        first, second = tx.outbox.due()
        assert (first.review_id, first.text, first.mention_id, first.status) == ("Q1", "reply 1", "a", "pending")
        assert not tx.outbox.mark_sent(first.id, "p1", utcnow())  # only a claimed row can be marked sent
        assert tx.outbox.claim(first) and tx.outbox.claim(second)
    with transaction(db_engine) as tx:
        assert tx.outbox.mark_sent(first.id, "p1", utcnow())
        assert not tx.outbox.mark_sent(first.id, "p1", utcnow())
        assert tx.outbox.mark_unconfirmed(second.id)
    with transaction(db_engine) as tx:
        assert tx.outbox.due() == []
        assert not tx.outbox.mark_unconfirmed(second.id)


def test_institution_of_a_sender_overrides_the_group_owner(db_engine):
    with transaction(db_engine) as tx:
        owner = tx.clients.add_institution("群主机构", kyc_status="approved", can_trade=True)
        other = tx.clients.add_institution("另一机构", kyc_status="screening", can_trade=False)
        tx.clients.add_group("sim", "g", owner.id)
        tx.clients.add_contact("sim", "visitor", "访客", other.id)
    with transaction(db_engine) as tx:
        assert tx.clients.institution_of("sim", "g", "member").name == "群主机构"
        assert tx.clients.institution_of("sim", "g", "visitor").name == "另一机构"
        assert tx.clients.institution_of("sim", "unknown", "member") is None
        assert tx.clients.group("wechat", "g") is None
    with pytest.raises(IntegrityError):
        with transaction(db_engine) as tx:
            tx.clients.add_group("sim", "g", other.id)


def test_sim_transcript_ignores_a_known_message_id(db_engine):
    appended = []
    transcript = SqlSimTranscript(db_engine, on_append=appended.append)
    assert transcript.append("g", "m1", "张经理", "你好", from_bot=False)
    assert not transcript.append("g", "m1", "张经理", "你好", from_bot=False)
    assert transcript.append("g", "bot-1", "询价机器人", "@张经理 收到", from_bot=True, mention="张经理")
    assert transcript.append("other", "m2", "李四", "hi", from_bot=False)
    assert [(m["message_id"], m["from_bot"], m["mention"]) for m in transcript.messages("g")] == \
        [("m1", False, None), ("bot-1", True, "张经理")]
    assert appended == ["g", "g", "other"]


def test_sim_transcript_lists_client_messages_the_desk_never_stored(db_engine):
    transcript = SqlSimTranscript(db_engine)
    for mid, from_bot in (("m1", False), ("m2", False), ("bot-1", True), ("m3", False)):
        transcript.append("g", mid, "询价机器人" if from_bot else "张经理", f"text {mid}", from_bot=from_bot)
    with transaction(db_engine) as tx:
        tx.inbound.add(inbound("m2"))
        tx.inbound.add(inbound("m3", channel="wecom"))  # another channel's id says nothing about the simulator's
    assert transcript.undelivered() == [{"group": "g", "message_id": m, "sender": "张经理", "text": f"text {m}"}
                                        for m in ("m1", "m3")]


def test_audit_log_is_append_only_in_orm_and_database(db_engine):
    with transaction(db_engine) as tx:
        tx.audit.record("alice", "review.approved", "review:Q1", {"edited": False})
        tx.audit.record("bob", "review.rejected", "review:Q2")
    with pytest.raises(PermissionError):
        with transaction(db_engine) as tx:
            row = tx.audit.entries(subject="review:Q1")[0]
            row.actor = "mallory"
            tx.audit.session.add(row)
    for stmt in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError):
            with db_engine.begin() as conn:
                conn.execute(text(stmt))
    with transaction(db_engine) as tx:
        rows = tx.audit.entries(subject="review:Q1")
        assert [(r.actor, r.action, r.detail) for r in rows] == [("alice", "review.approved", {"edited": False})]
        assert [r.actor for r in tx.audit.entries(action="review.rejected")] == ["bob"]
        assert [r.actor for r in tx.audit.entries(limit=1)] == ["alice"]


def test_users_hash_passwords_and_sessions_expire(db_engine):
    upsert_user(db_engine, "t1", "correct horse", "trader")
    with transaction(db_engine) as tx:
        stored = tx.users.get("t1").password_hash
    assert "correct horse" not in stored and stored.startswith("$argon2")
    assert authenticate(db_engine, "t1", "correct horse").role == "trader"
    with pytest.raises(AuthError):
        authenticate(db_engine, "t1", "wrong password")
    with pytest.raises(AuthError):
        authenticate(db_engine, "nobody", "whatever1")
    with pytest.raises(AuthError):
        upsert_user(db_engine, "t2", "short", "trader")
    with pytest.raises(AuthError):
        upsert_user(db_engine, "t2", "long enough pw", "boss")
    token = open_session(db_engine, "t1", ttl_s=60)
    assert session_user(db_engine, token).username == "t1"
    assert session_user(db_engine, token + "x") is None
    close_session(db_engine, token)
    assert session_user(db_engine, token) is None
    assert session_user(db_engine, open_session(db_engine, "t1", ttl_s=-1)) is None
    live = open_session(db_engine, "t1", ttl_s=60)
    assert purge_expired_sessions(db_engine) == 1 and purge_expired_sessions(db_engine) == 0
    assert session_user(db_engine, live).username == "t1"
    with transaction(db_engine) as tx:
        actions = [r.action for r in tx.audit.entries(subject="user:t1")]
    assert actions[:1] == ["user.create"] and "login" in actions and "login.failed" in actions
