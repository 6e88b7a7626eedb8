"""In-process event bus: worker threads publish, SSE streams and background loops subscribe."""
from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator


class EventBus:
    """Thread-safe publish into the server's event loop; each subscriber gets its own bounded queue."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queues: set[asyncio.Queue] = set()
        self.wakeups: dict[str, asyncio.Event] = {}

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        for name in ("inbound", "outbox"):
            self.wakeups[name] = asyncio.Event()

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
            if q.full():
                q.get_nowait()
            q.put_nowait(None)

    def _fanout(self, event: dict) -> None:
        for q in list(self._queues):
            if q.full():  # a stalled client loses old events, never blocks the desk
                q.get_nowait()
            q.put_nowait(event)

    async def subscribe(self) -> AsyncIterator[str]:
        """Server-sent-event lines (`data: {...}`) until the consumer stops."""
        q: asyncio.Queue = asyncio.Queue(maxsize=256)
        self._queues.add(q)
        try:
            while True:
                event = await q.get()
                if event is None:
                    return
                yield f"event: {event['type']}\ndata: {json.dumps(event['data'], ensure_ascii=False, default=str)}\n\n"
        finally:
            self._queues.discard(q)
