"""Console users, argon2 password hashes and server-side sessions."""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Engine
from sqlmodel import select

from otcdesk.app.audit import record
from otcdesk.app.db import unit_of_work
from otcdesk.app.models import User, WebSession, utcnow
from otcdesk.app.roles import ROLES

_hasher = PasswordHasher()
# Verified against when the user does not exist, so a missing user costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-password")


class AuthError(ValueError):
    """Bad credentials or a bad user definition."""


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def upsert_user(engine: Engine, username: str, password: str, role: str, actor: str = "cli") -> User:
    """Create or update a user (password hashed with argon2); audited."""
    username = (username or "").strip()
    if not username or len(username) > 64:
        raise AuthError("username must be 1-64 characters")
    if role not in ROLES:
        raise AuthError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    if len(password or "") < 8:
        raise AuthError("password must have at least 8 characters")
    with unit_of_work(engine) as s:
        user = s.get(User, username)
        created = user is None
        if created:
            user = User(username=username, password_hash=_hasher.hash(password), role=role)
        else:
            user.password_hash = _hasher.hash(password)
            user.role = role
            user.active = True
        s.add(user)
        record(s, actor, "user.create" if created else "user.update", f"user:{username}", {"role": role})
    return user


def authenticate(engine: Engine, username: str, password: str) -> User:
    """The active user with these credentials, or AuthError."""
    with unit_of_work(engine) as s:
        user = s.get(User, username or "")
        try:
            _hasher.verify(user.password_hash if user else _DUMMY_HASH, password or "")
        except (VerificationError, InvalidHashError):
            user = None
        ok = user is not None and user.active
        record(s, username or "?", "login" if ok else "login.failed", f"user:{username}", {})
    if not ok:
        raise AuthError("invalid username or password")
    return user


def open_session(engine: Engine, username: str, ttl_s: float) -> str:
    """A new session token (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    with unit_of_work(engine) as s:
        s.add(WebSession(token_hash=_token_hash(token), username=username,
                         expires_at=utcnow() + timedelta(seconds=ttl_s)))
    return token


def session_user(engine: Engine, token: str | None) -> User | None:
    """The user behind a session token, or None when unknown, expired or deactivated."""
    if not token:
        return None
    with unit_of_work(engine) as s:
        sess = s.get(WebSession, _token_hash(token))
        if sess is None or sess.expires_at < utcnow():
            return None
        user = s.get(User, sess.username)
        return user if user and user.active else None


def close_session(engine: Engine, token: str | None) -> None:
    if not token:
        return
    with unit_of_work(engine) as s:
        sess = s.get(WebSession, _token_hash(token))
        if sess:
            s.delete(sess)


def purge_expired_sessions(engine: Engine) -> int:
    with unit_of_work(engine) as s:
        rows = list(s.exec(select(WebSession).where(WebSession.expires_at < utcnow())))
        for r in rows:
            s.delete(r)
        return len(rows)
