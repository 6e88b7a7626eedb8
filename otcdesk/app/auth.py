"""Console users, argon2 password hashes and server-side sessions: the policy (the tables are `UserRepository`'s)."""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Engine

from otcdesk.app.models import User, utcnow
from otcdesk.app.repositories import transaction
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
    with transaction(engine) as tx:
        user = tx.users.get(username)
        created = user is None
        if created:
            user = User(username=username, password_hash=_hasher.hash(password), role=role)
        else:
            user.password_hash = _hasher.hash(password)
            user.role = role
            user.active = True
        tx.users.save(user)
        tx.audit.record(actor, "user.create" if created else "user.update", f"user:{username}", {"role": role})
    return user


def authenticate(engine: Engine, username: str, password: str) -> User:
    """The active user with these credentials, or AuthError."""
    with transaction(engine) as tx:
        user = tx.users.get(username or "")
        try:
            _hasher.verify(user.password_hash if user else _DUMMY_HASH, password or "")
        except (VerificationError, InvalidHashError):
            user = None
        ok = user is not None and user.active
        tx.audit.record(username or "?", "login" if ok else "login.failed", f"user:{username}", {})
    if not ok:
        raise AuthError("invalid username or password")
    return user


def open_session(engine: Engine, username: str, ttl_s: float) -> str:
    """A new session token (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    with transaction(engine) as tx:
        tx.users.add_session(_token_hash(token), username, utcnow() + timedelta(seconds=ttl_s))
    return token


def session_user(engine: Engine, token: str | None) -> User | None:
    """The user behind a session token, or None when unknown, expired or deactivated."""
    if not token:
        return None
    with transaction(engine) as tx:
        sess = tx.users.session_for(_token_hash(token))
        if sess is None or sess.expires_at < utcnow():
            return None
        user = tx.users.get(sess.username)
        return user if user and user.active else None


def close_session(engine: Engine, token: str | None) -> None:
    if not token:
        return
    with transaction(engine) as tx:
        tx.users.end_session(_token_hash(token))


def purge_expired_sessions(engine: Engine) -> int:
    """Delete expired sessions (at start); returns how many."""
    with transaction(engine) as tx:
        return tx.users.purge_sessions(utcnow())
