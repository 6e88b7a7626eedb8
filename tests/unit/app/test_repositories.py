"""The persistence layer against both databases: SQLite in a temp dir and the local PostgreSQL."""
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import select

from otcdesk.app.audit import entries, record
from otcdesk.app.auth import AuthError, authenticate, close_session, open_session, session_user, upsert_user
from otcdesk.app.db import init_db, unit_of_work
from otcdesk.app.models import AuditLog, InboundMessageRow, Institution, User


def test_init_db_is_idempotent(db_engine):
    init_db(db_engine)
    init_db(db_engine)
    with unit_of_work(db_engine) as s:
        s.add(Institution(name="甲机构", kyc_status="approved", can_trade=True))
    init_db(db_engine)
    with unit_of_work(db_engine) as s:
        assert [i.name for i in s.exec(select(Institution))] == ["甲机构"]


def test_inbound_platform_id_is_unique_per_channel(db_engine):
    with unit_of_work(db_engine) as s:
        s.add(InboundMessageRow(channel="sim", chat_id="g", sender_id="a", sender_name="a", text="x",
                                platform_msg_id="m1"))
        s.add(InboundMessageRow(channel="wecom", chat_id="g", sender_id="a", sender_name="a", text="x",
                                platform_msg_id="m1"))
    with pytest.raises(Exception):
        with unit_of_work(db_engine) as s:
            s.add(InboundMessageRow(channel="sim", chat_id="g", sender_id="b", sender_name="b", text="y",
                                    platform_msg_id="m1"))


def test_audit_log_is_append_only_in_orm_and_database(db_engine):
    with unit_of_work(db_engine) as s:
        record(s, "alice", "review.approved", "review:Q1", {"edited": False})
    with pytest.raises(PermissionError):
        with unit_of_work(db_engine) as s:
            row = s.exec(select(AuditLog)).one()
            row.actor = "mallory"
            s.add(row)
    for stmt in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError):
            with db_engine.begin() as conn:
                conn.execute(text(stmt))
    with unit_of_work(db_engine) as s:
        rows = entries(s, subject="review:Q1")
        assert [(r.actor, r.action, r.detail) for r in rows] == [("alice", "review.approved", {"edited": False})]


def test_users_hash_passwords_and_sessions_expire(db_engine):
    upsert_user(db_engine, "t1", "correct horse", "trader")
    with unit_of_work(db_engine) as s:
        stored = s.get(User, "t1").password_hash
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
    with unit_of_work(db_engine) as s:
        actions = [r.action for r in entries(s, subject="user:t1")]
    assert actions[:1] == ["user.create"] and "login" in actions and "login.failed" in actions
