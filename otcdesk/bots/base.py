"""Channel-neutral message types and the text normalisation every adapter applies."""
from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Protocol

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]")


@dataclass(frozen=True)
class InboundMessage:
    """A client message as any channel delivers it."""

    channel: str
    chat_id: str
    sender_id: str
    sender_name: str
    text: str
    platform_msg_id: str
    mentions_bot: bool = False
    ts: datetime | None = None


@dataclass(frozen=True)
class Reply:
    """An approved reply: text to a chat, @mentioning one member."""

    channel: str
    chat_id: str
    text: str
    mention_id: str
    mention_name: str
    idempotency_key: str = ""


class Channel(Protocol):
    """What the outbox needs from a channel adapter: deliver one reply, return the platform message id."""

    name: str
    idempotent: bool  # True when re-sending with the same idempotency key cannot duplicate a message
    health: "ChannelHealth"

    async def send(self, reply: Reply) -> str: ...


class ChannelHealth:
    """A channel's health as the console shows it (`GET /api/channels`): whether it is connected and since when,
    when it last received a client message, its last error and when, and (while down) the seconds to its next
    reconnect. The adapter reports its connection (`up`, `down`) and arrivals (`received`); the outbox reports
    failed sends (`failed`). `on_change(connected)` hears each flip (the metrics gauge). Thread-safe."""

    def __init__(self, channel: str, *, connected: bool):
        self.channel = channel
        self._lock = threading.Lock()
        self._state = {"channel": channel, "connected": connected, "since": _now(), "last_message_at": None,
                       "last_error": None, "last_error_at": None, "retry_in_s": None, "reconnects": 0}
        self._was_up = connected  # a later `up` is a reconnect
        self.on_change: Callable[[bool], None] = lambda connected: None

    @property
    def connected(self) -> bool:
        return self._state["connected"]

    def up(self) -> None:
        with self._lock:
            was = self._state["connected"]
            if not was:
                self._state.update(connected=True, since=_now(), retry_in_s=None)
                self._state["reconnects"] += 1 if self._was_up else 0
                self._was_up = True
        if not was:
            self.on_change(True)

    def down(self, error: str, retry_in_s: float | None = None) -> None:
        with self._lock:
            was = self._state["connected"]
            self._state.update(connected=False, last_error=error[:300], last_error_at=_now(), retry_in_s=retry_in_s)
            if was:
                self._state["since"] = self._state["last_error_at"]
        if was:
            self.on_change(False)

    def failed(self, error: str) -> None:
        """An error that leaves the connection as it is (a reply that could not be sent)."""
        with self._lock:
            self._state.update(last_error=error[:300], last_error_at=_now())

    def received(self) -> None:
        with self._lock:
            self._state["last_message_at"] = _now()

    def snapshot(self) -> dict:
        """`{"channel", "connected", "since", "last_message_at", "last_error", "last_error_at", "retry_in_s",
        "reconnects"}`, times as ISO strings (UTC)."""
        with self._lock:
            state = dict(self._state)
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in state.items()}


def describe(exc: BaseException) -> str:
    """An exception as one line for the health panel and logs: its class and message, capped."""
    return f"{type(exc).__name__}: {exc}"[:300] if str(exc) else type(exc).__name__


def _now() -> datetime:
    return datetime.now(timezone.utc)


def normalise_text(text: str | bytes | None) -> str:
    """NFKC (full-width → half-width), control characters dropped, whitespace collapsed; never shortened
    (the desk stores the message whole and decides how much of it to parse)."""
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = unicodedata.normalize("NFKC", text)
    text = _CONTROL.sub("", text)
    text = re.sub(r"[ \t\u3000]+", " ", text).strip()
    return text


def mention_text(name: str) -> str:
    """The @mention prefix WeChat shows (with its thin space)."""
    return f"@{name}\u2005"
