"""OpenTelemetry traces of the desk: each desk-graph run is one trace. The one place that makes spans.

A run lives longer than a call: the graph runs up to the review interrupt, waits for a trader (minutes, maybe
across a restart), resumes, and the outbox sends the reply later still. So a run's trace id and its root span's
id are derived from the graph thread id (`run_ids`), and every span of the run names that root as its parent,
whichever call or process makes it:

    desk.run                     the first pass over the message (emitted when it returns: `finish_run`)
    ├── desk.understand          one span per graph node (`node`), every time it runs
    │   └── llm.chat             an LLM call inside it (`llm_call`: model, tokens, latency)
    ├── desk.check_kyc, desk.price | desk.orders, desk.draft
    ├── desk.review              opens the item and interrupts (`desk.interrupted`); runs again when resumed
    ├── desk.review_wait         item opened → trader's decision (`review_wait`, emitted at the decision)
    ├── desk.deliver             queues the approved reply
    └── desk.send                the outbox delivering it through the channel (`send`)

An assistant turn (one staff question) is one call, so it is a trace of ordinary nested spans:

    assistant.turn               `assistant_turn`: the thread, the role, the planner used
    ├── assistant.plan           one span per graph node (`step`)
    │   └── llm.chat             the planner's LLM calls, if any
    ├── assistant.authorize
    ├── assistant.run
    │   └── tool.<name>          one per proposed call (`tool_call`): allowed, or refused and why; not run if refused
    └── assistant.answer
        └── llm.chat             the phrasing call, if any

LLM calls are spans of one kind wherever they happen (`llm_call`, made by `app.llm.LLMClient` once instrumented).
Log lines name the trace they belong to (`app.logs`): the current span's, or the run's root (`log_ids`).

`Tracing.from_settings` exports over OTLP/HTTP to `OTEL_EXPORTER_OTLP_ENDPOINT` (batched, off the request path)
and is a no-op without it; tests pass their own exporter (`Tracing.to_exporter`, e.g. the SDK's in-memory one).
Spans carry ids and kinds, never message text or client names.
"""
from __future__ import annotations

import contextvars
import functools
import hashlib
import time
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Callable, Iterator

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, Status, StatusCode, TraceFlags

_FIXED_IDS: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar("otcdesk_run_ids", default=None)


class _RunIdGenerator(RandomIdGenerator):
    """Random ids, except for a run's root span, whose ids `finish_run` fixes (see `run_ids`)."""

    def generate_trace_id(self) -> int:
        fixed = _FIXED_IDS.get()
        return fixed[0] if fixed else super().generate_trace_id()

    def generate_span_id(self) -> int:
        fixed = _FIXED_IDS.get()
        return fixed[1] if fixed else super().generate_span_id()


def run_ids(thread_id: str) -> tuple[int, int]:
    """(trace id, root span id) of the desk run on graph thread `thread_id`: the same in every process."""
    digest = hashlib.sha256(f"otcdesk-run:{thread_id}".encode()).digest()
    return int.from_bytes(digest[:16], "big") or 1, int.from_bytes(digest[16:24], "big") or 1


def _ns(when: datetime) -> int:
    return int(when.timestamp() * 1e9)


class Tracing:
    """The desk's tracer; every method is a cheap no-op when tracing is off."""

    def __init__(self, provider: TracerProvider | None = None):
        self.provider = provider
        self.tracer = provider.get_tracer("otcdesk") if provider is not None else trace.NoOpTracer()

    @classmethod
    def off(cls) -> "Tracing":
        return cls(None)

    @classmethod
    def from_settings(cls, settings: Any) -> "Tracing":
        """OTLP/HTTP to `settings.otlp_endpoint` (`<endpoint>/v1/traces`, as the OTel convention for the base
        variable), off when it is unset."""
        endpoint = getattr(settings, "otlp_endpoint", None)
        if not endpoint:
            return cls.off()
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
        return cls._with(BatchSpanProcessor(exporter), getattr(settings, "otel_service_name", "otcdesk"))

    @classmethod
    def to_exporter(cls, exporter: SpanExporter, service_name: str = "otcdesk") -> "Tracing":
        """Spans handed to `exporter` as each ends (tests: `InMemorySpanExporter`)."""
        return cls._with(SimpleSpanProcessor(exporter), service_name)

    @classmethod
    def _with(cls, processor, service_name: str) -> "Tracing":
        provider = TracerProvider(resource=Resource.create({"service.name": service_name}),
                                  id_generator=_RunIdGenerator())
        provider.add_span_processor(processor)
        return cls(provider)

    @property
    def enabled(self) -> bool:
        return self.provider is not None

    def shutdown(self) -> None:
        """Flush what is batched and stop exporting."""
        if self.provider is not None:
            self.provider.shutdown()

    # ---- a desk run --------------------------------------------------------------------------------
    @staticmethod
    def run_context(thread_id: str) -> Context:
        """A context whose current span is the run's root, for spans made outside the root's own call."""
        trace_id, span_id = run_ids(thread_id)
        root = SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
        return trace.set_span_in_context(NonRecordingSpan(root))

    def log_ids(self, thread_id: str) -> dict:
        """The trace and root span ids of the desk run on `thread_id`, as log lines carry them ({} when off, or for
        a notice, which has no run)."""
        from otcdesk.app.desk.runner import is_direct

        if not self.enabled or is_direct(thread_id):
            return {}
        trace_id, span_id = run_ids(thread_id)
        return {"trace_id": format(trace_id, "032x"), "span_id": format(span_id, "016x")}

    def finish_run(self, thread_id: str, started: float, attributes: dict) -> None:
        """Emit the run's root span `desk.run` (started at `started`, a `time.time()`, ending now)."""
        if not self.enabled:
            return
        token = _FIXED_IDS.set(run_ids(thread_id))
        try:
            span = self.tracer.start_span("desk.run", context=Context(), start_time=int(started * 1e9),
                                          attributes={"desk.thread_id": thread_id, **_clean(attributes)})
        finally:
            _FIXED_IDS.reset(token)
        span.end()

    def node(self, name: str, fn: Callable) -> Callable:
        """The graph node `fn` in a span `desk.<name>` under its run's root (the thread id from the node's config);
        `build_desk_graph(..., wrap=tracing.node)`. The signature is kept, so langgraph passes what `fn` asks for."""
        if not self.enabled:
            return fn

        @functools.wraps(fn)
        def traced(*args, **kwargs):
            from langgraph.config import get_config
            from langgraph.errors import GraphBubbleUp

            thread_id = (get_config().get("configurable") or {}).get("thread_id", "")
            with self.tracer.start_as_current_span(f"desk.{name}", context=self.run_context(thread_id),
                                                   record_exception=False, set_status_on_exception=False) as span:
                try:
                    result = fn(*args, **kwargs)
                except GraphBubbleUp:  # the review interrupt: the node waits, it did not fail
                    span.set_attribute("desk.interrupted", True)
                    raise
                except Exception as exc:
                    span.record_exception(exc)
                    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                    raise
                if isinstance(result, dict):
                    span.set_attributes(_clean({"desk.kind": result.get("kind"), "desk.intent": result.get("intent"),
                                                "desk.review_id": result.get("review_id")}))
                return result

        return traced

    def review_wait(self, thread_id: str, review_id: str, kind: str, decision: str, opened_at: datetime,
                    decided_at: datetime) -> None:
        """Emit `desk.review_wait`: the item waiting for a trader, from opened to decided."""
        if not self.enabled:
            return
        span = self.tracer.start_span("desk.review_wait", context=self._parent(thread_id), start_time=_ns(opened_at),
                                      attributes={"desk.review_id": review_id, "desk.kind": kind,
                                                  "desk.decision": decision})
        span.end(end_time=max(_ns(decided_at), _ns(opened_at)))

    @contextmanager
    def send(self, thread_id: str, review_id: str, channel: str) -> Iterator[Any]:
        """`desk.send`: the outbox delivering a reply through its channel."""
        with self.tracer.start_as_current_span("desk.send", context=self._parent(thread_id),
                                               attributes={"desk.review_id": review_id,
                                                           "desk.channel": channel}) as span:
            yield span

    def _parent(self, thread_id: str) -> Context | None:
        from otcdesk.app.desk.runner import is_direct

        return None if is_direct(thread_id) else self.run_context(thread_id)  # a notice has no run: its own trace

    # ---- an assistant turn -------------------------------------------------------------------------
    @contextmanager
    def assistant_turn(self, thread_id: str, role: str) -> Iterator[Any]:
        """`assistant.turn`: the root of one staff question's trace, current while the graph runs."""
        with self.tracer.start_as_current_span("assistant.turn", context=Context(), attributes={
                "assistant.thread_id": thread_id, "assistant.role": role}, record_exception=False) as span:
            yield span

    def step(self, prefix: str) -> Callable[[str, Callable], Callable]:
        """A graph's `wrap`: each node `fn` in a span `<prefix>.<name>` under the current span (the turn)."""
        def wrap(name: str, fn: Callable) -> Callable:
            if not self.enabled:
                return fn

            @functools.wraps(fn)
            def traced(*args, **kwargs):
                with self._span(f"{prefix}.{name}"):
                    return fn(*args, **kwargs)

            return traced

        return wrap

    def tool_call(self, tool: str, allowed: bool, refusal: str | None = None):
        """`tool.<name>`: one assistant tool call, around its run when allowed; `assistant.refusal` (forbidden,
        invalid) when it was not."""
        return self._span(f"tool.{tool or 'unknown'}", {"gen_ai.operation.name": "execute_tool",
                                                        "gen_ai.tool.name": tool, "assistant.allowed": allowed,
                                                        "assistant.refusal": refusal})

    @contextmanager
    def _span(self, name: str, attributes: dict | None = None) -> Iterator[Any]:
        """A span under the current one; a failure sets its status to the exception's class (its text may quote a
        user or a model, so it is not recorded)."""
        with self.tracer.start_as_current_span(name, attributes=_clean(attributes or {}), record_exception=False,
                                               set_status_on_exception=False) as span:
            try:
                yield span
            except Exception as exc:
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise

    # ---- LLM calls ---------------------------------------------------------------------------------
    @contextmanager
    def llm_call(self, model: str, operation: str = "chat") -> Iterator["LLMSpan"]:
        """`llm.chat` under the current span (a graph node, or an assistant run); `LLMSpan.done` records usage."""
        started = time.perf_counter()
        with self._span(f"llm.{operation}", {"gen_ai.system": "openai", "gen_ai.operation.name": operation,
                                             "gen_ai.request.model": model}) as span:
            call = LLMSpan(span, started)
            try:
                yield call
            finally:
                span.set_attribute("llm.latency_ms", round((time.perf_counter() - started) * 1000, 1))


class LLMSpan:
    def __init__(self, span, started: float):
        self.span, self.started = span, started

    def done(self, prompt_tokens: int | None, completion_tokens: int | None, model: str | None = None) -> None:
        self.span.set_attributes(_clean({"gen_ai.usage.input_tokens": prompt_tokens,
                                         "gen_ai.usage.output_tokens": completion_tokens,
                                         "gen_ai.response.model": model}))


def _clean(attributes: dict) -> dict:
    """OTel attributes take no None."""
    return {k: v for k, v in attributes.items() if v is not None}
