"""The desk runner: hosts the desk graph and is the only code that invokes it.

It starts a stored message's run (up to the review interrupt or the end), resumes a thread with a
trader's decision, re-runs a message on a new thread for a reprice, and after a restart resumes decided
reviews and queues every stored message whose run did not finish. A run may ask for more: the threads of the
other lines of a multi-line order (one order item each) are started, and the order items the client withdrew
are resumed with the withdrawal, before the message counts as processed. Runs of one thread are serialised;
`close` waits for runs in flight before it closes the checkpointer. Log lines of a run carry its message id, thread
and trace (`log_ids`, `app.logs.log_context`).
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from contextlib import contextmanager
from typing import Any, Callable

from langgraph.types import Command
from sqlalchemy.engine import Engine

from otcdesk.app.logs import log_context
from otcdesk.app.repositories import transaction
from otcdesk.workflows.review import RESUME_ACTION

log = logging.getLogger(__name__)


DIRECT_PREFIX = "direct:"  # the thread id of a review item that a service opened, with no graph run behind it


def is_direct(thread_id: str) -> bool:
    """An item opened by a service (a lifecycle notice), decided without a graph: see `ReviewOpener.open_direct`."""
    return thread_id.startswith(DIRECT_PREFIX)


def thread_for(inbound: dict, attempt: int = 0) -> str:
    """The graph thread of a message's run; a reprice is attempt n ≥ 1.

    Platform ids are unique per channel, so thread (and quote) ids never repeat even across databases.
    """
    base = f"{inbound['channel']}-{inbound['platform_msg_id']}"
    return f"{base}:r{attempt}" if attempt else base


class DeskRunner:
    """Runs the compiled desk graph for stored messages and trader decisions."""

    def __init__(self, engine: Engine, graph: Any, close_checkpointer: Callable[[], None] = lambda: None,
                 wake: Callable[[], None] = lambda: None, tracing: Any = None):
        self.engine = engine
        self.tracing = tracing  # app.tracing.Tracing: a run's first pass is its trace's root span
        self.graph = graph
        self._close_checkpointer = close_checkpointer
        self._wake = wake
        self._queue: deque[int] = deque()
        self._thread_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._inflight = 0
        self._idle = threading.Condition()

    # ---- intake ------------------------------------------------------------------------------
    def submit(self, inbound_id: int) -> None:
        """Queue a stored message for its run (the inbound pipeline's last step) and wake the worker."""
        self._queue.append(inbound_id)
        self._wake()

    def drain(self) -> int:
        """Run every queued message, oldest first; returns how many.

        A message whose run raises outside the graph (e.g. the database is away) goes back to the end of the
        queue and the error propagates: the worker's next pass retries it rather than leaving it until a
        restart, and one message that keeps failing never holds up the others.
        """
        n = 0
        while self._queue:
            inbound_id = self._queue.popleft()
            try:
                self.process(inbound_id)
            except Exception:
                self._queue.append(inbound_id)
                raise
            n += 1
        return n

    def unprocessed(self) -> list[int]:
        """Stored messages whose run has not finished."""
        with transaction(self.engine) as tx:
            return tx.inbound.unprocessed()

    # ---- runs --------------------------------------------------------------------------------
    def process(self, inbound_id: int) -> dict:
        """Run the graph for one stored message up to its review interrupt (or its end); returns the state.

        A run cut off by a crash continues from its last checkpoint; one waiting for review is left alone.
        A failing run marks the message `failed` (audited): a bad message must not stop the desk.
        """
        with transaction(self.engine) as tx:
            inbound = tx.inbound.get(inbound_id)
        thread_id = thread_for(inbound)
        started = time.time()
        with self._graph_run(thread_id), log_context(**message_log_ids(inbound), **self.log_ids(thread_id)):
            try:
                state = self._advance(thread_id, inbound)
                status, error = "processed", None
            except Exception as exc:
                log.exception("desk graph failed on inbound %s", inbound_id)
                state, status, error = {}, "failed", f"{type(exc).__name__}: {exc}"
            review_id = state.get("review_id") or _review_of(thread_id, state)
            if self.tracing is not None:
                self.tracing.finish_run(thread_id, started, {
                    "desk.inbound_id": inbound_id, "desk.channel": inbound["channel"], "desk.status": status,
                    "desk.intent": state.get("intent"), "desk.kind": state.get("kind"),
                    "desk.review_id": review_id, "desk.error": error})
            log.info("desk run %s: intent %s, kind %s, review %s, %.0f ms", status, state.get("intent"),
                     state.get("kind"), review_id, (time.time() - started) * 1000, extra={"review_id": review_id})
            self._follow_up(inbound, state)
            with transaction(self.engine) as tx:
                if tx.inbound.finish(inbound_id, status, state.get("intent"), error):
                    tx.audit.record("desk-agent", f"inbound.{status}", f"inbound:{inbound_id}",
                                    {"intent": state.get("intent"), "kind": state.get("kind"), "error": error})
            return state

    def log_ids(self, thread_id: str) -> dict:
        """What a log line about the run on `thread_id` carries: the thread, and its trace when tracing is on."""
        return {"thread_id": thread_id, **(self.tracing.log_ids(thread_id) if self.tracing is not None else {})}

    def _advance(self, thread_id: str, inbound: dict) -> dict:
        """Start the thread's run on `inbound`, or go on with one a crash cut off; one waiting for review is left
        alone. Returns the thread's state. The caller holds the thread's lock (`_graph_run`)."""
        config = _config(thread_id)
        snapshot = self.graph.get_state(config)
        if not snapshot.created_at:
            self.graph.invoke({"inbound": inbound}, config)
        elif snapshot.next and not any(task.interrupts for task in snapshot.tasks):
            self.graph.invoke(None, config)
        return self.graph.get_state(config).values

    def _follow_up(self, inbound: dict, state: dict) -> None:
        """What a run asks of other threads: start the threads of the other lines of a multi-line order (one order
        item per line, `more_threads`) and resume the order items the client withdrew (`withdrawn`). Both are
        idempotent, so a message processed again after a crash asks again harmlessly."""
        for thread_id in state.get("more_threads") or []:
            with self._graph_run(thread_id), log_context(**self.log_ids(thread_id)):
                try:
                    self._advance(thread_id, inbound)
                except Exception:
                    log.exception("desk graph failed on %s", thread_id)
        for thread_id in state.get("withdrawn") or []:
            self.resume(thread_id, {"action": "withdraw", "reply": None, "by": "client"})

    def rerun(self, inbound_id: int, attempt: int) -> str:
        """Run a stored message again on its `attempt`-th thread (a reprice); returns the thread id."""
        with transaction(self.engine) as tx:
            inbound = tx.inbound.get(inbound_id)
        thread_id = thread_for(inbound, attempt)
        with self._graph_run(thread_id), log_context(**message_log_ids(inbound), **self.log_ids(thread_id)):
            self.graph.invoke({"inbound": inbound}, _config(thread_id))
        return thread_id

    def resume(self, thread_id: str, decision: dict) -> None:
        """Resume a thread waiting for review with `decision` ({"action", "reply", "by"}); no-op once resumed."""
        with self._graph_run(thread_id), log_context(**self.log_ids(thread_id)):
            if self.graph.get_state(_config(thread_id)).next:
                self.graph.invoke(Command(resume=decision), _config(thread_id))

    def recover(self) -> dict:
        """After a restart: resume decided-but-unresumed reviews, queue unfinished messages; returns counts."""
        with transaction(self.engine) as tx:
            decided = [(i.thread_id, {"action": RESUME_ACTION[i.status], "reply": i.final_reply, "by": i.decided_by})
                       for i in tx.reviews.in_status(*RESUME_ACTION) if not is_direct(i.thread_id)]
            unprocessed = tx.inbound.unprocessed()
        for thread_id, decision in decided:
            self.resume(thread_id, decision)
        for inbound_id in unprocessed:
            self.submit(inbound_id)
        return {"resumed": len(decided), "unprocessed": len(unprocessed)}

    def close(self, timeout: float = 60.0) -> None:
        """Wait for runs in worker threads to finish, then close the checkpointer."""
        with self._idle:
            self._idle.wait_for(lambda: self._inflight == 0, timeout=timeout)
        self._close_checkpointer()

    @contextmanager
    def _graph_run(self, thread_id: str):
        """Serialise runs of one graph thread and count them, so `close` never pulls the checkpointer away."""
        with self._idle:
            self._inflight += 1
        try:
            with self._lock(thread_id):
                yield
        finally:
            with self._idle:
                self._inflight -= 1
                self._idle.notify_all()

    def _lock(self, thread_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._thread_locks.setdefault(thread_id, threading.Lock())


def message_log_ids(inbound: dict) -> dict:
    """The ids naming a stored client message in log lines: the platform's message id (what the channel and the
    simulator's API call it) and the stored row's."""
    return {"message_id": inbound.get("platform_msg_id"), "inbound_id": inbound.get("id")}


def _review_of(thread_id: str, state: dict) -> str | None:
    """The review item a run waiting at its interrupt opened (the review id is fixed by the thread)."""
    from otcdesk.agents.desk import quote_id_for

    return quote_id_for(thread_id) if state.get("kind") not in (None, "none") else None


def _config(thread_id: str) -> dict:
    return {"configurable": {"thread_id": thread_id}}
