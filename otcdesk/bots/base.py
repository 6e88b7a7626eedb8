"""Channel-neutral message types and the text normalisation every adapter applies."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

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

    async def send(self, reply: Reply) -> str: ...


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
