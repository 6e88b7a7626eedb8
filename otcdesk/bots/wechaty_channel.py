"""WeChat groups through wechaty (puppet service): inbound room messages in, approved replies out.

Thin adapter: a room message becomes an `InboundMessage` (room id, talker, text without the bot's
@mention, platform message id) handed to `deliver`; a `Reply` is said in the same room with the
client @mentioned. WeChat has no idempotency key, so the outbox never re-sends an unconfirmed reply.
Connect with `WECHATY_PUPPET_SERVICE_TOKEN` and `WECHATY_PUPPET_SERVICE_ENDPOINT=host:port`.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Callable

import otcdesk.bots.wechaty_compat  # noqa: F401  - must precede wechaty
from wechaty import Message, Wechaty, WechatyOptions

from otcdesk.bots.base import InboundMessage, Reply, normalise_text

log = logging.getLogger(__name__)


class WechatyChannel:
    """Channel `wechat` on a `Wechaty` bot; chats are room ids, senders contact ids."""

    name = "wechat"
    idempotent = False

    def __init__(self, bot: Wechaty, deliver: Callable[[InboundMessage], object]):
        self.bot = bot
        self.deliver = deliver
        bot.on("message", self.on_message)

    @classmethod
    def connect(cls, token: str, endpoint: str | None, deliver) -> "WechatyChannel":
        return cls(Wechaty(WechatyOptions(token=token, endpoint=endpoint)), deliver)

    async def to_inbound(self, msg: Message) -> InboundMessage | None:
        """The platform message as an `InboundMessage`; None for our own messages and non-room chats."""
        room = msg.room()
        if msg.is_self() or room is None:
            return None
        talker = msg.talker()
        await talker.ready()
        mentions_bot = await msg.mention_self()
        text = await msg.mention_text() if mentions_bot else msg.text()
        return InboundMessage(channel=self.name, chat_id=room.room_id, sender_id=talker.contact_id,
                              sender_name=talker.name or talker.contact_id, text=normalise_text(text),
                              platform_msg_id=msg.message_id, mentions_bot=mentions_bot)

    async def on_message(self, msg: Message) -> None:
        try:
            inbound = await self.to_inbound(msg)
        except Exception:  # a malformed platform event must not stop the bot
            log.exception("could not read wechaty message %s", getattr(msg, "message_id", "?"))
            return
        if inbound is not None:
            await asyncio.to_thread(self.deliver, inbound)

    async def send(self, reply: Reply) -> str:
        room = self.bot.Room.load(reply.chat_id)
        await room.ready()
        sent = await room.say(reply.text, mention_ids=[reply.mention_id] if reply.mention_id else None)
        return getattr(sent, "message_id", "") or ""
