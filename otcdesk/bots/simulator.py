"""The local group-chat simulator: a stand-in WeChat platform for demo mode and tests.

Its transcript (what the group's members see) lives in a store the app injects; the adapter
itself only turns a posted client message into an `InboundMessage` and a `Reply` into a bot
message that @mentions the client. Sends are idempotent on the reply's idempotency key.

Like a real platform it records a message before it delivers it, and delivers at least once: a
message the group saw but the desk never stored (the process died in between) is delivered again by
`redeliver` at start-up; the desk de-duplicates by platform message id.
"""
from __future__ import annotations

import uuid
from typing import Callable, Protocol

from otcdesk.bots.base import ChannelHealth, InboundMessage, Reply, mention_text, normalise_text

BOT_NAME = "询价机器人"


class SimTranscript(Protocol):
    def append(self, group: str, message_id: str, sender: str, text: str, from_bot: bool,
               mention: str | None = None) -> bool: ...

    def messages(self, group: str) -> list[dict]: ...

    def undelivered(self) -> list[dict]:
        """Client messages ({"group", "message_id", "sender", "text"}) the desk has not stored, oldest first."""


class SimulatorChannel:
    """Channel `sim`: groups are plain names, a member's display name is their id."""

    name = "sim"
    idempotent = True

    def __init__(self, transcript: SimTranscript, deliver: Callable[[InboundMessage], object]):
        self.transcript = transcript
        self.deliver = deliver
        self.health = ChannelHealth(self.name, connected=True)  # in-process: up while the service is

    def post(self, group: str, sender: str, text: str) -> str:
        """A client speaks in a group: the platform records it, then delivers it to the desk."""
        message_id = f"sim-{uuid.uuid4().hex}"
        self.transcript.append(group, message_id, sender, text, from_bot=False)
        self._deliver(group, message_id, sender, text)
        return message_id

    def redeliver(self) -> int:
        """Deliver again every client message of the transcript the desk has not stored; returns how many."""
        missing = self.transcript.undelivered()
        for m in missing:
            self._deliver(m["group"], m["message_id"], m["sender"], m["text"])
        return len(missing)

    def _deliver(self, group: str, message_id: str, sender: str, text: str) -> None:
        clean = normalise_text(text)
        self.health.received()
        self.deliver(InboundMessage(channel=self.name, chat_id=group, sender_id=sender, sender_name=sender,
                                    text=clean, platform_msg_id=message_id, mentions_bot=f"@{BOT_NAME}" in clean))

    async def send(self, reply: Reply) -> str:
        message_id = f"bot-{reply.idempotency_key or uuid.uuid4().hex}"
        self.transcript.append(reply.chat_id, message_id, BOT_NAME, mention_text(reply.mention_name) + reply.text,
                               from_bot=True, mention=reply.mention_id)
        return message_id
