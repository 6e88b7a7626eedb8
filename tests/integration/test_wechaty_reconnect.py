"""The WeChat channel against a puppet service peer over real gRPC (`wechaty_peer.PuppetPeer`): when the service
drops, the channel's health goes disconnected with the error and it reconnects with a doubling back-off; once the
service is back, client messages reach the review queue and approved replies go out again."""
import asyncio
import uuid

import pytest

pytest.importorskip("wechaty_puppet_service", reason="python-wechaty is in the test extra; pip install -e '.[test]'")

from otcdesk.app.db import init_db, make_engine  # noqa: E402
from otcdesk.app.repositories import transaction  # noqa: E402
from otcdesk.app.settings import load_settings  # noqa: E402
from otcdesk.app.wiring import build_desk  # noqa: E402
from otcdesk.bots.wechaty_channel import WechatyChannel  # noqa: E402
from desk_fixtures import wait_for  # noqa: E402
from wechaty_peer import PuppetPeer  # noqa: E402


@pytest.fixture
async def peer_desk(tmp_path):
    room, client = f"{uuid.uuid4().hex[:8]}@chatroom", f"wxid_{uuid.uuid4().hex[:8]}"  # fresh ids: wechaty pools them
    settings = load_settings(data_dir=tmp_path, DATABASE_URL=None)
    engine = make_engine(settings.db_url)
    init_db(engine)
    with transaction(engine) as tx:
        inst = tx.clients.add_institution("某资管", kyc_status="approved", can_trade=True)
        tx.clients.add_group("wechat", room, inst.id)
    peer = PuppetPeer(room, {client: "张经理"})
    await peer.start()
    desk = build_desk(settings, engine)
    channel = desk.connect(WechatyChannel.connect("token", peer.endpoint, desk.inbound, retry_min_s=0.2,
                                                  retry_max_s=1.6, stable_s=30.0))
    task = asyncio.create_task(channel.run())
    yield peer, desk, channel, client
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    if peer._server is not None:
        await peer.stop()
    desk.close()
    engine.dispose()


def gauge(desk):
    return desk.metrics.registry.get_sample_value("otcdesk_channel_connected", {"channel": "wechat"})


async def quote_round_trip(peer, desk, client, message_id, text):
    """A client asks in the room; the desk drafts a review item; approved, the reply reaches the room."""
    sent_before = len(peer.sent)
    peer.say(f"{message_id}-{uuid.uuid4().hex[:8]}", client, f"@询价机器人 {text}")  # wechaty drops ids it saw
    await wait_for(lambda: asyncio.sleep(0, desk.runner.unprocessed()), timeout=10)
    await asyncio.to_thread(desk.runner.drain)
    [item] = [i for i in desk.reviews.list("pending")]
    assert item["channel"] == "wechat" and item["text"] == text
    await asyncio.to_thread(desk.reviews.approve, item["id"], "t1")
    assert await desk.outbox.dispatch() == 1
    assert len(peer.sent) == sent_before + 1 and peer.sent[-1][2] == [client] and item["id"] in peer.sent[-1][1]


async def test_the_channel_reconnects_with_back_off_and_messages_flow_again(peer_desk):
    peer, desk, channel, client = peer_desk
    await wait_for(lambda: asyncio.sleep(0, channel.health.connected and peer.streams), timeout=10)
    assert gauge(desk) == 1 and channel.health.snapshot()["reconnects"] == 0
    await quote_round_trip(peer, desk, client, "wx-1", "沪深300 1个月 平值看跌")
    first_message_at = channel.health.snapshot()["last_message_at"]
    assert first_message_at is not None

    await peer.stop()  # the puppet service goes away
    down = await wait_for(lambda: asyncio.sleep(0, (s := channel.health.snapshot())["connected"] is False and s),
                          timeout=5)
    assert "StreamTerminatedError" in down["last_error"] and gauge(desk) == 0
    retries = []
    for _ in range(60):  # while it stays away, each attempt is refused and the wait doubles up to its ceiling
        s = channel.health.snapshot()
        if s["retry_in_s"] not in retries[-1:]:
            retries.append(s["retry_in_s"])
        if len(retries) >= 4:
            break
        await asyncio.sleep(0.1)
    assert retries[:4] == [0.2, 0.4, 0.8, 1.6]
    assert "ConnectionRefusedError" in channel.health.snapshot()["last_error"]

    await peer.start()  # back on the same endpoint
    await wait_for(lambda: asyncio.sleep(0, channel.health.connected and peer.streams), timeout=10)
    s = channel.health.snapshot()
    assert s["reconnects"] == 1 and s["retry_in_s"] is None and gauge(desk) == 1 and peer.connections == 2
    await quote_round_trip(peer, desk, client, "wx-2", "中证500 2周 平值看涨")
    assert channel.health.snapshot()["last_message_at"] > first_message_at
