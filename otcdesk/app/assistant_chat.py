"""`AssistantChat`: the assistant graph (`agents.assistant`) behind `POST /api/assistant/chat`, with its threads.

A thread id is minted here (32 hex characters) when a conversation starts; its checkpoint (key
`assistant:<id>`, in the langgraph checkpointer beside the desk's) records the user who started it, and only that
user may continue it (`ThreadForbidden`); an id nobody started is `UnknownThread`. Turns of one thread run one at a
time. `build_assistant` assembles it from the desk's services. Each turn is one trace (`Tracing.assistant_turn`:
node, tool and LLM spans under it), and its log lines carry the thread and that trace.
"""
from __future__ import annotations

import copy
import logging
import re
import threading
import uuid
from typing import Any, Callable

from otcdesk.agents.assistant import AssistantDeps, build_assistant_graph, turn_result
from otcdesk.app.logs import log_context
from otcdesk.app.tracing import Tracing

log = logging.getLogger(__name__)

THREAD_ID = re.compile(r"^[0-9a-f]{32}$")
MAX_MESSAGE = 2000


class ThreadForbidden(PermissionError):
    """The thread belongs to another user (HTTP 403)."""


class UnknownThread(LookupError):
    """No conversation has that thread id (HTTP 404)."""


class AssistantChat:
    def __init__(self, graph, close: Callable[[], None] = lambda: None, tools: Any = None,
                 tracing: Tracing | None = None):
        self.graph, self._close, self.tools = graph, close, tools  # tools: the AssistantTools the graph runs
        self.tracing = tracing or Tracing.off()
        self._locks: dict[str, list] = {}  # thread id → [lock, turns waiting or running]; dropped when idle
        self._guard = threading.Lock()

    @staticmethod
    def _config(thread_id: str) -> dict:
        return {"configurable": {"thread_id": f"assistant:{thread_id}"}}

    def owner(self, thread_id: str) -> str | None:
        """The user who started the thread, None when there is no such thread."""
        values = self.graph.get_state(self._config(thread_id)).values
        return values.get("owner") if values else None

    def chat(self, user: str, role: str, message: str, thread_id: str | None = None) -> dict:
        """One turn: the contract's `{"reply", "thread_id", "tool_calls", "citations"}` (plus `planner`)."""
        if thread_id is None:
            thread_id = uuid.uuid4().hex
        else:
            if not THREAD_ID.match(thread_id):
                raise ValueError("thread_id must be the 32 hexadecimal characters the assistant gave")
            owner = self.owner(thread_id)
            if owner is None:
                raise UnknownThread(thread_id)
            if owner != user:
                raise ThreadForbidden(thread_id)
        with self._guard:
            entry = self._locks.setdefault(thread_id, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0], log_context(thread_id=f"assistant:{thread_id}"), \
                    self.tracing.assistant_turn(thread_id, role) as span:
                # one turn at a time per thread: a follow-up reads the previous turn's state
                state = self.graph.invoke({"message": message, "user": user, "role": role},
                                          self._config(thread_id))
                calls = state.get("results") or []
                span.set_attribute("assistant.planner", state.get("planner") or "")
                log.info("assistant turn by %s (%s): planner %s, tools %s", user, role, state.get("planner"),
                         [(c["tool"], "allowed" if c["allowed"] else "refused") for c in calls])
        finally:
            with self._guard:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._locks[thread_id]
        return turn_result(state, thread_id)

    def close(self) -> None:
        self._close()


def build_assistant(settings, engine, desk, hub, llm: Any = None, checkpointer: Any = None,
                    tracing: Tracing | None = None, **options: Any) -> AssistantChat:
    """The assistant over `desk`'s services (price, risk, trades), the knowledge `hub`, the surveillance detectors
    and the optional LLM (counted and traced by the desk's metrics and tracing, as the desk's LLM calls are); its own
    checkpointer connection unless one is given; `tracing` defaults to the desk's. `options`: `AssistantDeps` fields
    (phrase, llm_tools)."""
    from otcdesk.agents.assistant_router import Router
    from otcdesk.app.assistant_tools import AssistantTools, audit_tool_call, institution_names
    from otcdesk.app.checkpoints import make_checkpointer
    from otcdesk.app.surveillance import SurveillanceService

    close: Callable[[], None] = lambda: None
    if checkpointer is None:
        checkpointer, close = make_checkpointer(settings)
    tools = AssistantTools(engine, hub=hub, price=desk.price, risk=desk.risk, trades=desk.trades,
                           surveillance=getattr(desk, "surveillance", None)
                           or SurveillanceService(engine, settings.surveillance_dir))
    router = Router(institutions=institution_names(engine))
    tracing = tracing or getattr(desk, "tracing", None) or Tracing.off()
    if llm is not None and hasattr(llm, "instrument") and getattr(llm, "tracing", None) is not tracing:
        llm = copy.copy(llm)  # a client the desk did not instrument (shared by others): observe this one only
        llm.instrument(getattr(desk, "metrics", None), tracing)
    deps = AssistantDeps(tools=tools, route=router.route, audit=audit_tool_call(engine), llm=llm,
                         llm_timeout_s=settings.llm_timeout_s, trace_tool=tracing.tool_call, **options)
    return AssistantChat(build_assistant_graph(deps, checkpointer, wrap=tracing.step("assistant")), close, tools,
                         tracing)
