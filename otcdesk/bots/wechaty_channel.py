"""WeChat groups through wechaty (puppet service): inbound room messages in, approved replies out.

Thin adapter: a room message becomes an `InboundMessage` (room id, talker, text without the bot's
@mention, platform message id) handed to `deliver`; a `Reply` is said in the same room with the
client @mentioned. WeChat has no idempotency key, so the outbox never re-sends an unconfirmed reply.
Connect with `WECHATY_PUPPET_SERVICE_TOKEN` and `WECHATY_PUPPET_SERVICE_ENDPOINT=host:port`.

`run` keeps the bot connected: it opens the puppet service's event stream, and when the service drops (the
stream ends or fails, or it cannot be reached) marks the channel down with the error and connects again after a
back-off that doubles from `retry_min_s` to `retry_max_s` (back to the minimum after a connection that held
`stable_s`). python-wechaty's own `start` retries once a minute, and not at all when the stream simply ends.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Callable

import otcdesk.bots.wechaty_compat  # noqa: F401  - must precede wechaty
from wechaty import Message, Wechaty, WechatyOptions
from wechaty_puppet_service import PuppetService

from otcdesk.bots.base import ChannelHealth, InboundMessage, Reply, describe, normalise_text
from otcdesk.bots.wechaty_compat import forget_loaded, split_endpoint

log = logging.getLogger(__name__)
STREAM_ENDED = "the puppet service ended its event stream"


class WechatyChannel:
    """Channel `wechat` on a `Wechaty` bot; chats are room ids, senders contact ids."""

    name = "wechat"
    idempotent = False

    def __init__(self, bot: Wechaty, deliver: Callable[[InboundMessage], object], *, retry_min_s: float = 1.0,
                 retry_max_s: float = 60.0, stable_s: float = 30.0):
        self.bot = bot
        self.deliver = deliver
        self.retry_min_s, self.retry_max_s, self.stable_s = retry_min_s, retry_max_s, stable_s
        self.health = ChannelHealth(self.name, connected=False)
        bot.on("message", self.on_message)

    @classmethod
    def connect(cls, token: str, endpoint: str | None, deliver, **backoff) -> "WechatyChannel":
        return cls(Wechaty(WechatyOptions(token=token, endpoint=endpoint)), deliver, **backoff)

    # ---- connection ---------------------------------------------------------------------------------
    async def run(self) -> None:
        """Stay connected to the puppet service until cancelled (see the module docstring)."""
        loop = asyncio.get_running_loop()
        delay = self.retry_min_s
        while True:
            started = loop.time()
            try:
                await self._session()
                error = STREAM_ENDED
            except asyncio.CancelledError:
                await self._close()
                raise
            except Exception as exc:
                error = describe(exc)
            if self.health.connected and loop.time() - started >= self.stable_s:
                delay = self.retry_min_s
            self.health.down(error, retry_in_s=delay)
            log.warning("wechaty: puppet service lost (%s); reconnecting in %.1f s", error, delay)
            await self._close()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.retry_max_s)

    async def _session(self) -> None:
        """One connection: a fresh puppet, its events bridged to the bot, the service started, its events read
        until the stream ends. The puppet service's own `start` in steps, so the channel is up once the service
        answered, and its blocking reachability probe only runs once a non-blocking one succeeded."""
        bot = self.bot
        forget_loaded(bot)  # rooms and contacts loaded on the previous puppet would call the closed one
        await bot.init_puppet()
        await bot.init_puppet_event_bridge(bot.puppet)
        puppet = bot.puppet
        if not isinstance(puppet, PuppetService):  # an in-process puppet: up while it runs
            self.health.up()
            await puppet.start()
            return
        if puppet.options.end_point:
            host, port = split_endpoint(puppet.options.end_point)
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5.0)
            writer.close()
        puppet._init_puppet()  # noqa: SLF001 - the library has no public step between connecting and listening
        await asyncio.wait_for(puppet.puppet_stub.start(), 15.0)
        self.health.up()
        log.info("wechaty: connected to the puppet service")
        await puppet._listen_for_event()  # noqa: SLF001

    async def _close(self) -> None:
        """Close the puppet's connection without asking the (possibly gone) service to stop first."""
        puppet = getattr(self.bot, "_puppet", None)
        channel = getattr(puppet, "channel", None)
        if channel is not None:
            with contextlib.suppress(Exception):
                channel.close()
            puppet.channel = None

    # ---- messages -----------------------------------------------------------------------------------
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
            self.health.received()
            await asyncio.to_thread(self.deliver, inbound)

    async def send(self, reply: Reply) -> str:
        try:
            room = self.bot.Room.load(reply.chat_id)
            await room.ready()
            sent = await room.say(reply.text, mention_ids=[reply.mention_id] if reply.mention_id else None)
        except Exception as exc:
            self.health.failed(describe(exc))
            raise
        return getattr(sent, "message_id", "") or ""
