"""The inbound pipeline: what happens to a channel's message before the desk runner takes it.

Middleware in the aiogram sense: each is called as `middleware(handler, event, data)` and decides whether
(and when) to call `handler(event, data)`, the rest of the chain. The event is the channel's
`InboundMessage`; `data` collects what the steps learn (`inbound_id`, `new`, `deferred`). The desk's chain:

    intake: CountInbound → StoreFirst → AuditReceived → CanaryAllowlist  |commit|  RateLimit → hand to the runner
            (`DeskRunner.submit`)

The intake middlewares write through `data["tx"]`, the message's one unit of work, so a stored message is
never unaudited; it commits before the other middlewares run (they may hold the message back and hand it
on later). Cross-cutting work (the canary allowlist, `desk.canary.CanaryAllowlist`; metrics,
`app.metrics.CountInbound`) is one more middleware in `wiring.build_desk`.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from functools import partial
from typing import Any, Callable, Protocol, Sequence

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from otcdesk.app.logs import log_context
from otcdesk.app.repositories import transaction
from otcdesk.bots.base import InboundMessage

log = logging.getLogger(__name__)
Handler = Callable[[InboundMessage, dict], Any]


class Middleware(Protocol):
    def __call__(self, handler: Handler, event: InboundMessage, data: dict) -> Any: ...


def _wrap(middlewares: Sequence[Middleware], handler: Handler) -> Handler:
    for mw in reversed(middlewares):
        handler = partial(mw, handler)
    return handler


class InboundPipeline:
    """`handler` wrapped by the `intake` middlewares, then the others; the first of each is outermost."""

    def __init__(self, engine: Engine, intake: Sequence[Middleware], middlewares: Sequence[Middleware],
                 handler: Handler, log_ids: Callable[[InboundMessage], dict] = lambda event: {}):
        """`log_ids(event)`: what the chain's log lines carry besides the message id (the run's thread and
        trace)."""
        self.engine = engine
        self.log_ids = log_ids
        self.intake, self.middlewares = list(intake), list(middlewares)
        after_intake = _wrap(self.middlewares, handler)

        def commit_then(event: InboundMessage, data: dict) -> Any:
            data.pop("tx").session.commit()
            return after_intake(event, data)

        self._chain = _wrap(self.intake, commit_then)

    def __call__(self, event: InboundMessage) -> dict:
        """Run the chain; returns its `data` (e.g. `{"inbound_id": 7, "new": True}`)."""
        data: dict = {}
        with log_context(message_id=event.platform_msg_id, **self.log_ids(event)):
            with transaction(self.engine) as tx:
                data["tx"] = tx
                try:
                    self._chain(event, data)
                finally:
                    data.pop("tx", None)
            outcome = ("a redelivery, ignored" if data.get("new") is False else
                       "stored, held (the group is outside the canary allowlist)" if data.get("held") else
                       "stored, held back by the group's rate limit" if data.get("deferred") else "stored")
            log.info("inbound message on %s: %s", event.channel, outcome, extra={"inbound_id": data.get("inbound_id")})
        return data


class StoreFirst:
    """Store the message before anything else; a platform message id seen before stops the chain.

    Sets `data["inbound_id"]` and `data["new"]` (False for a redelivery, which goes no further).
    The first intake middleware that writes: a redelivery rolls the unit of work back.
    """

    def __call__(self, handler: Handler, event: InboundMessage, data: dict) -> Any:
        tx = data["tx"]
        try:
            data["inbound_id"] = tx.inbound.add(event)
        except IntegrityError:
            tx.session.rollback()
            data["inbound_id"], data["new"] = tx.inbound.find(event.channel, event.platform_msg_id), False
            return None
        data["new"] = True
        return handler(event, data)


class AuditReceived:
    """Audit every stored message (`inbound.received`, the text capped at 2000 characters)."""

    def __call__(self, handler: Handler, event: InboundMessage, data: dict) -> Any:
        data["tx"].audit.record(f"{event.channel}:{event.sender_id}", "inbound.received",
                                f"inbound:{data['inbound_id']}", {"chat_id": event.chat_id,
                                                                   "platform_msg_id": event.platform_msg_id,
                                                                   "text": event.text[:2000]})
        return handler(event, data)


class RateLimit:
    """At most `limit` messages per chat group go on per `window_s` seconds; the rest wait, never dropped.

    A message over the limit is already stored and audited; it is audited as `inbound.deferred` and
    waits in its group's queue (in arrival order: while a group has waiting messages, newer ones queue
    behind them) until `release_due` finds room in the window. `limit <= 0` turns the limit off.
    After a restart, waiting messages are among the stored ones the runner recovers.
    """

    def __init__(self, engine: Engine, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic):
        self.engine = engine
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self._passed: dict[tuple[str, str], deque[float]] = {}  # when each of the window's messages went on
        self._waiting: dict[tuple[str, str], deque[Callable[[], Any]]] = {}
        self._lock = threading.Lock()

    def __call__(self, handler: Handler, event: InboundMessage, data: dict) -> Any:
        if self.limit <= 0:
            return handler(event, data)
        key = (event.channel, event.chat_id)
        with self._lock:
            now = self.clock()
            if not self._waiting.get(key) and self._room(key, now):
                go_on = True
            else:
                go_on = False
                self._waiting.setdefault(key, deque()).append(partial(handler, event, data))
                retry_in = self._passed[key][0] + self.window_s - now
        if go_on:
            return handler(event, data)
        data["deferred"] = True
        with transaction(self.engine) as tx:
            tx.audit.record("desk-agent", "inbound.deferred", f"inbound:{data['inbound_id']}",
                            {"chat_id": event.chat_id, "limit": self.limit, "window_s": self.window_s,
                             "retry_in_s": round(max(retry_in, 0.0), 3)})
        return None

    def release_due(self) -> int:
        """Send waiting messages on, oldest first, as far as their groups' windows allow; returns how many."""
        ready = []
        with self._lock:
            now = self.clock()
            for key, waiting in list(self._waiting.items()):
                while waiting and self._room(key, now):
                    ready.append(waiting.popleft())
                if not waiting:
                    del self._waiting[key]
        for go_on in ready:
            go_on()
        return len(ready)

    def next_release_s(self) -> float | None:
        """Seconds until a waiting message may go on; None when none waits."""
        with self._lock:
            if not self._waiting:
                return None
            now = self.clock()
            return max(0.0, min(self._passed[key][0] + self.window_s - now for key in self._waiting))

    def _room(self, key: tuple[str, str], now: float) -> bool:
        """Whether one more message of the group fits in the window ending now (and count it if so)."""
        passed = self._passed.setdefault(key, deque())
        while passed and passed[0] <= now - self.window_s:
            passed.popleft()
        if len(passed) >= self.limit:
            return False
        passed.append(now)
        return True
