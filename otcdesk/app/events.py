"""In-process event bus: worker threads publish, SSE streams and background loops subscribe.

Who may read an event is `EVENT_READERS`, by kind: the roles allowed to read what the event carries through
the API. A kind not in the table reaches nobody.
"""
from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator

from otcdesk.app.roles import ROLES

EVENT_READERS: dict[str, frozenset[str]] = {
    "review": frozenset({"trader"}),  # the whole review item (client text, draft reply), as GET /api/review
    "trade": frozenset({"trader", "risk", "compliance"}),  # a trade document, as GET /api/trades/{id}
    "sim": frozenset(ROLES),  # the name of a simulated group whose transcript changed
    "book": frozenset({"trader", "risk"}),  # a new risk snapshot's summary, as POST /api/risk/refresh answers
    "kyc": frozenset({"sales", "compliance", "risk", "admin"}),  # an application moved: {"id", "state", "awaiting_role"}
}
DEMO_ONLY_EVENTS = frozenset({"sim"})
KEEPALIVE_S = 15.0


def readable_kinds(role: str, *, demo: bool) -> frozenset[str]:
    """The event kinds a user of `role` may receive."""
    return frozenset(kind for kind, readers in EVENT_READERS.items()
                     if role in readers and (demo or kind not in DEMO_ONLY_EVENTS))


class EventBus:
    """Thread-safe publish into the server's event loop; each subscriber gets its own bounded queue of the kinds
    it may read."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queues: dict[asyncio.Queue, frozenset[str]] = {}
        self.wakeups: dict[str, asyncio.Event] = {}

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        for name in ("inbound", "outbox"):
            self.wakeups[name] = asyncio.Event()

    @property
    def subscribers(self) -> int:
        return len(self._queues)

    def publish(self, kind: str, data: dict[str, Any] | None = None) -> None:
        """Publish from any thread; a no-op before the bus is bound to a loop."""
        if self._loop is None or self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._fanout, {"type": kind, "data": data or {}})

    def wake(self, name: str) -> None:
        if self._loop is not None and not self._loop.is_closed() and name in self.wakeups:
            self._loop.call_soon_threadsafe(self.wakeups[name].set)

    def close(self) -> None:
        """End every subscriber's stream (called on shutdown, so open SSE responses do not hold it up)."""
        for q in list(self._queues):
            _put(q, None)

    def _fanout(self, event: dict) -> None:
        for q, kinds in list(self._queues.items()):
            if event["type"] in kinds:
                _put(q, event)

    async def subscribe(self, kinds: frozenset[str], keepalive_s: float = KEEPALIVE_S) -> AsyncIterator[str]:
        """Server-sent-event lines (`event: kind`, `data: {...}`) of the given kinds until the consumer stops;
        a comment line after `keepalive_s` without events (keeps proxies open, finds clients that left)."""
        q: asyncio.Queue = asyncio.Queue(maxsize=256)
        self._queues[q] = kinds
        try:
            while True:
                try:
                    event = await asyncio.wait_for(q.get(), keepalive_s)
                except asyncio.TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if event is None:
                    return
                yield f"event: {event['type']}\ndata: {json.dumps(event['data'], ensure_ascii=False, default=str)}\n\n"
        finally:
            self._queues.pop(q, None)


def _put(q: asyncio.Queue, event: dict | None) -> None:
    if q.full():  # a stalled client loses old events, never blocks the desk
        q.get_nowait()
    q.put_nowait(event)
