"""One assistant question is one trace: the turn, a span per graph node, a span per tool call (allowed, or refused
and not run) and the LLM calls with their model, tokens and latency — collected by the SDK's in-memory exporter.
The deterministic router's path always; the LLM's path against the real local server (`llm`-marked)."""
from __future__ import annotations

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from assistant_fixtures import QUESTIONS, build_world
from otcdesk.app.assistant_chat import build_assistant
from otcdesk.app.tracing import Tracing
from trace_fixtures import span_tree

NODES = ["assistant.plan", "assistant.authorize", "assistant.run", "assistant.answer"]


@pytest.fixture
def world(make_desk_core, tmp_path):
    return build_world(make_desk_core, tmp_path)


def traced_assistant(world, llm=None, **options):
    exporter = InMemorySpanExporter()
    chat = build_assistant(world.settings, world.engine, world.desk, world.hub, llm=llm, checkpointer=InMemorySaver(),
                           tracing=Tracing.to_exporter(exporter), **options)
    return chat, exporter


def one_trace(exporter) -> list:
    spans = exporter.get_finished_spans()
    exporter.clear()
    assert len({s.context.trace_id for s in spans}) == 1, span_tree(spans, attributes=True)
    [root] = [s for s in spans if s.parent is None]
    assert root.name == "assistant.turn"
    return spans


def test_a_question_is_one_trace_with_a_span_per_node_and_per_tool_call(world, json_logs):
    chat, exporter = traced_assistant(world)
    answer = chat.chat("trader1", "trader", QUESTIONS["price"])
    assert [(c["tool"], c["allowed"]) for c in answer["tool_calls"]] == [("price", True)]
    spans = one_trace(exporter)
    print("\n".join(span_tree(spans, attributes=True)))
    assert span_tree(spans) == ["assistant.turn", *[f"  {n}" for n in NODES[:3]], "    tool.price", f"  {NODES[3]}"]
    [root], [tool] = [s for s in spans if s.parent is None], [s for s in spans if s.name == "tool.price"]
    assert root.attributes["assistant.role"] == "trader" and root.attributes["assistant.planner"] == "router"
    assert tool.attributes["gen_ai.tool.name"] == "price" and tool.attributes["assistant.allowed"] is True
    assert "沪深300" not in str([dict(s.attributes) for s in spans])  # ids and kinds, never the question
    [line] = [ln for ln in json_logs.lines() if ln["logger"] == "otcdesk.app.assistant_chat"]
    assert line["trace_id"] == format(root.context.trace_id, "032x")
    assert line["thread_id"] == f"assistant:{answer['thread_id']}" and "('price', 'allowed')" in line["message"]

    # a refused call is a span too, marked refused, with nothing under it; the next question is a trace of its own
    refused = chat.chat("trader1", "trader", QUESTIONS["surveillance_alerts"], answer["thread_id"])
    assert [(c["tool"], c["allowed"]) for c in refused["tool_calls"]] == [("surveillance_alerts", False)]
    again = one_trace(exporter)
    print("\n".join(span_tree(again, attributes=True)))
    assert again[0].context.trace_id != root.context.trace_id
    [denied] = [s for s in again if s.name == "tool.surveillance_alerts"]
    assert denied.attributes["assistant.allowed"] is False and denied.attributes["assistant.refusal"] == "forbidden"
    assert not [s for s in again if s.parent and s.parent.span_id == denied.context.span_id]
    assert chat.tools.surveillance._cache is None  # and it never ran


@pytest.mark.llm
def test_the_llm_path_puts_model_calls_under_the_nodes_that_made_them(world, llm_server):
    chat, exporter = traced_assistant(world, llm=llm_server.client)
    chat.chat("trader1", "trader", QUESTIONS["book_exposure"])
    spans = one_trace(exporter)
    print("\n".join(span_tree(spans, attributes=True)))
    names = {s.context.span_id: s.name for s in spans}
    calls = [s for s in spans if s.name == "llm.chat"]
    assert calls and {names[s.parent.span_id] for s in calls} <= {"assistant.plan", "assistant.answer"}
    assert any(names[s.parent.span_id] == "assistant.plan" for s in calls)
    for call in calls:
        assert call.attributes["gen_ai.request.model"] == llm_server.model and call.attributes["llm.latency_ms"] > 0
        if call.status.status_code.name != "ERROR":
            assert call.attributes["gen_ai.usage.input_tokens"] > 0
            assert call.attributes["gen_ai.usage.output_tokens"] > 0
    assert getattr(llm_server.client, "tracing", None) is not chat.tracing  # observed through a copy: the shared
    # client is left as it was
