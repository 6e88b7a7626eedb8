"""The HTTP edge's rules without a server: who reads which event, which text no database stores."""
import asyncio

import pytest

from otcdesk.app.events import EVENT_READERS, EventBus, readable_kinds
from otcdesk.app.http_security import unstorable_text
from otcdesk.app.roles import ROLES


def test_event_readers_name_only_known_roles():
    assert all(readers <= set(ROLES) for readers in EVENT_READERS.values())


@pytest.mark.parametrize("role, demo, kinds", [
    ("trader", True, {"review", "sim", "trade", "book"}), ("trader", False, {"review", "trade", "book"}),
    ("risk", True, {"sim", "trade", "book", "kyc"}), ("compliance", True, {"sim", "trade", "kyc"}),
    ("admin", False, {"kyc"}), ("sales", False, {"kyc"}),
])
def test_readable_kinds(role, demo, kinds):
    assert readable_kinds(role, demo=demo) == kinds


async def test_a_subscriber_gets_only_its_kinds_in_order():
    bus = EventBus()
    bus.bind(asyncio.get_running_loop())
    stream = bus.subscribe(frozenset({"review"}))
    first = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)  # subscribed
    for kind, data in [("sim", {"group": "g"}), ("unlisted", {}), ("review", {"id": "a"}), ("review", {"id": "b"})]:
        bus.publish(kind, data)
    assert await first == 'event: review\ndata: {"id": "a"}\n\n'
    assert await anext(stream) == 'event: review\ndata: {"id": "b"}\n\n'
    bus.close()
    with pytest.raises(StopAsyncIteration):
        await anext(stream)
    assert bus.subscribers == 0


async def test_an_idle_stream_sends_keep_alives():
    bus = EventBus()
    bus.bind(asyncio.get_running_loop())
    stream = bus.subscribe(frozenset({"review"}), keepalive_s=0.01)
    assert await anext(stream) == ": keep-alive\n\n"
    await stream.aclose()
    assert bus.subscribers == 0


@pytest.mark.parametrize("body, path", [
    ({"text": "ok", "sender": "a\ud800"}, "sender"),
    ({"a": [1, {"b": "x\x00"}]}, "a[1].b"),
    ({"a": {"\udfff": 1}}, "a.'\\udfff'"),
    ("\ud800", "body"),
    ({"text": "看😀\u202e\x1b\r\n", "n": 1.5, "l": [None, True]}, None),
])
def test_unstorable_text_names_the_field(body, path):
    assert unstorable_text(body) == path
