"""Console users (`user`) and their server-side login sessions (`web_session`, token hashes only)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlmodel import Session

from otcdesk.app.models import User, WebSession


class UserRepository:
    """A user and the sessions they hold; password and token policy live in `app.auth`."""

    def __init__(self, session: Session):
        self.session = session

    def get(self, username: str) -> User | None:
        return self.session.get(User, username)

    def save(self, user: User) -> None:
        self.session.add(user)

    def add_session(self, token_hash: str, username: str, expires_at: datetime) -> None:
        self.session.add(WebSession(token_hash=token_hash, username=username, expires_at=expires_at))

    def session_for(self, token_hash: str) -> WebSession | None:
        return self.session.get(WebSession, token_hash)

    def end_session(self, token_hash: str) -> None:
        sess = self.session.get(WebSession, token_hash)
        if sess is not None:
            self.session.delete(sess)

    def purge_sessions(self, expired_before: datetime) -> int:
        """Delete sessions that expired before the given time; returns how many."""
        return self.session.exec(delete(WebSession).where(WebSession.expires_at < expired_before)).rowcount
