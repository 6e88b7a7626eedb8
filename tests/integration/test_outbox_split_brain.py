"""Two outbox dispatchers at once on one database (what a split brain of two leaders would do), each with its own
engine and its own real WeCom channel, against a local server that speaks the WeCom API and records every send:
the conditional claim lets only one of them send each row."""
import asyncio
import uuid
from collections import Counter

from desk_fixtures import close_desks, desk_on, free_port
from wecom_fixtures import FakeWeComApi, WeComApp

from otcdesk.app.db import make_engine
from otcdesk.app.desk.outbox import OutboxDispatcher
from otcdesk.app.events import EventBus
from otcdesk.app.repositories import transaction
from otcdesk.app.wiring import wecom_channel
from otcdesk.bots.base import InboundMessage

CHAT = "wrk" + uuid.uuid4().hex[:12]
TEXTS = ["沪深300 1个月 平值看跌", "中证500 2周 平值看涨", "300 3个月 95看跌", "中证1000 1个月 平值看涨"]
N = 8


def approved_replies(desk) -> list[str]:
    """N quotes to the WeCom group, each approved: N outbox rows waiting (this desk has no WeCom channel)."""
    with transaction(desk.engine) as tx:
        inst = tx.clients.add_institution("某资管", kyc_status="approved", can_trade=True)
        tx.clients.add_group("wecom", CHAT, inst.id)
    for i in range(N):
        desk.inbound(InboundMessage(channel="wecom", chat_id=CHAT, sender_id="zhangjl", sender_name="张经理",
                                    text=TEXTS[i % len(TEXTS)], platform_msg_id=f"m-{i}", mentions_bot=True))
    desk.runner.drain()
    items = desk.reviews.list("pending")
    assert len(items) == N
    for item in items:
        desk.reviews.approve(item["id"], "trader1")
    return [item["id"] for item in items]


async def test_two_dispatchers_at_once_send_every_row_once(db_settings):
    wecom = WeComApp()
    api = await FakeWeComApi(wecom).start(free_port())
    settings = db_settings.model_copy(update={"wecom_corp_id": wecom.corp_id, "wecom_token": wecom.token,
                                              "wecom_aes_key": wecom.aes_key, "wecom_secret": wecom.secret,
                                              "wecom_agent_id": wecom.agent_id, "wecom_api_base": api.url})
    built: list = []
    dispatchers = []
    try:
        desk = desk_on(settings, built)
        ids = approved_replies(desk)
        for _ in range(2):
            channel = wecom_channel(settings, deliver=lambda message: None)
            dispatchers.append(OutboxDispatcher(make_engine(settings.db_url), EventBus(), {"wecom": channel}))
        await asyncio.gather(*(d.dispatch() for d in dispatchers))
        await asyncio.gather(*(d.dispatch() for d in dispatchers))  # and again: nothing is left to send

        received = Counter(rid for s in api.sent for rid in ids if rid in s["json"]["text"]["content"])
        assert received == Counter({rid: 1 for rid in ids}), received
        assert len(api.sent) == N
        with transaction(desk.engine) as tx:
            statuses = Counter(tx.reviews.get(rid).status for rid in ids)
        # a row one dispatcher was sending may be flagged `unconfirmed` by the other (WeCom has no idempotency
        # key), never sent again; the rest are `sent`
        assert set(statuses) <= {"sent", "approved", "edited"} | {"unconfirmed"} and statuses["sent"] >= 1, statuses
    finally:
        for d in dispatchers:
            await d.channels["wecom"].close()
            d.engine.dispose()
        close_desks(built)
        await api.stop()
