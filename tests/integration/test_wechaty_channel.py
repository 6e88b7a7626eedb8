"""The WeChat channel on python-wechaty's own offline puppet: a room message in, an approved reply out
with the client @mentioned, and no second send of a reply whose delivery was interrupted."""
import asyncio
import uuid

import pytest
from sqlmodel import select

pytest.importorskip("wechaty_puppet", reason="python-wechaty is in the test extra; pip install -e '.[test]'")

import otcdesk.bots.wechaty_compat  # noqa: E402,F401
from wechaty import Wechaty, WechatyOptions  # noqa: E402
from wechaty.fake_puppet import FakePuppet  # noqa: E402
from wechaty_puppet.schemas.event import EventMessagePayload  # noqa: E402
from wechaty_puppet.schemas.puppet import PuppetOptions  # noqa: E402
from wechaty_puppet.schemas.types import ContactPayload, MessagePayload, MessageType, RoomPayload  # noqa: E402

from otcdesk.app.db import init_db, make_engine, unit_of_work  # noqa: E402
from otcdesk.app.models import OutboxMessage, ReviewItem  # noqa: E402
from otcdesk.app.repositories import transaction  # noqa: E402
from otcdesk.app.settings import load_settings  # noqa: E402
from otcdesk.app.wiring import build_desk  # noqa: E402
from otcdesk.bots.wechaty_channel import WechatyChannel  # noqa: E402


ROOM = CLIENT = ""


class RecordingPuppet(FakePuppet):
    """wechaty's offline puppet, keeping what the bot says (the real one forwards it to WeChat)."""

    def __init__(self):
        super().__init__(PuppetOptions())
        self.sent: list[tuple[str, str, list]] = []
        self.fail_next = False

    async def message_send_text(self, conversation_id, message, mention_ids=None):
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("puppet service went away mid-send")
        self.sent.append((conversation_id, message, list(mention_ids or [])))
        message_id = f"sent-{len(self.sent)}"  # like the puppet service, the sent message can be loaded
        self.add_fake_message(MessagePayload(id=message_id, from_id=self.self_id(), room_id=conversation_id,
                                             text=message, type=MessageType.MESSAGE_TYPE_TEXT,
                                             mention_ids=list(mention_ids or [])))
        return message_id


@pytest.fixture
async def wechat_desk(tmp_path):
    # python-wechaty caches rooms and contacts per id process-wide, so each test uses fresh ids
    global ROOM, CLIENT
    ROOM, CLIENT = f"room-{uuid.uuid4().hex[:8]}", f"client-{uuid.uuid4().hex[:8]}"
    settings = load_settings(data_dir=tmp_path, DATABASE_URL=None)
    engine = make_engine(settings.db_url)
    init_db(engine)
    with transaction(engine) as tx:
        inst = tx.clients.add_institution("某资管", kyc_status="approved", can_trade=True)
        tx.clients.add_group("wechat", ROOM, inst.id)
    puppet = RecordingPuppet()
    puppet.add_fake_contact(ContactPayload(id=CLIENT, name="张经理"))
    puppet.add_fake_contact(ContactPayload(id=puppet.self_id(), name="询价机器人"))
    puppet.add_fake_room(RoomPayload(id=ROOM, topic="某资管-场外衍生品", member_ids=[CLIENT, puppet.self_id()]))
    bot = Wechaty(WechatyOptions(puppet=puppet))
    await bot.init_puppet()
    await bot.init_puppet_event_bridge(bot.puppet)
    desk = build_desk(settings, engine)
    desk.connect(WechatyChannel(bot, desk.inbound))
    yield puppet, desk, engine
    desk.close()
    engine.dispose()


def say_in_room(puppet, message_id, text, mention_bot=True):
    puppet.add_fake_message(MessagePayload(
        id=message_id, from_id=CLIENT, room_id=ROOM, text=text, type=MessageType.MESSAGE_TYPE_TEXT,
        mention_ids=[puppet.self_id()] if mention_bot else []))
    puppet.emitter.emit("message", EventMessagePayload(message_id=message_id))


async def wait_inbound(desk, n):
    for _ in range(100):
        ids = desk.runner.unprocessed()
        if len(ids) >= n:
            return ids
        await asyncio.sleep(0.05)
    raise AssertionError("message not delivered to the desk")


async def test_room_message_is_quoted_and_reply_mentions_the_client(wechat_desk):
    puppet, desk, engine = wechat_desk
    say_in_room(puppet, "wx-1", "@询价机器人 沪深300 1个月 平值看跌")
    say_in_room(puppet, "wx-1", "@询价机器人 沪深300 1个月 平值看跌")  # the puppet redelivers: ignored
    [inbound_id] = await wait_inbound(desk, 1)
    await asyncio.sleep(0.2)
    assert desk.runner.unprocessed() == [inbound_id]
    assert await asyncio.to_thread(desk.runner.drain) == 1
    [item] = desk.reviews.list("pending")
    assert (item["channel"], item["group"], item["sender"], item["sender_id"]) == ("wechat", ROOM, "张经理", CLIENT)
    assert item["requests"][0]["underlying"] == "000300.SH" and "@询价机器人" not in item["text"]
    assert puppet.sent == [] and await desk.outbox.dispatch() == 0

    await asyncio.to_thread(desk.reviews.approve, item["id"], "t1")
    assert await desk.outbox.dispatch() == 1
    [(room, text, mentions)] = puppet.sent
    assert room == ROOM and mentions == [CLIENT] and text.startswith("@张经理 ") and item["id"] in text
    assert await desk.outbox.dispatch() == 0 and len(puppet.sent) == 1


async def test_interrupted_send_is_never_repeated(wechat_desk):
    puppet, desk, engine = wechat_desk
    say_in_room(puppet, "wx-2", "沪深300 1个月 平值看涨", mention_bot=False)
    [inbound_id] = await wait_inbound(desk, 1)
    await asyncio.to_thread(desk.runner.drain)
    [item] = desk.reviews.list("pending")
    await asyncio.to_thread(desk.reviews.approve, item["id"], "t1")
    puppet.fail_next = True
    assert await desk.outbox.dispatch() == 0
    assert await desk.outbox.dispatch() == 0  # WeChat has no idempotency key: flagged, not re-sent
    assert puppet.sent == []
    with unit_of_work(engine) as s:
        [row] = s.exec(select(OutboxMessage)).all()
        assert row.status == "unconfirmed"
        assert s.get(ReviewItem, item["id"]).status == "approved"
