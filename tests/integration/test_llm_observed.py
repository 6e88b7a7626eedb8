"""LLM calls are counted and traced: a real local OpenAI-compatible server (llm-marked), and a dead endpoint,
which counts as a fallback."""
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from desk_fixtures import free_port
from otcdesk.app.llm import LLMClient, LLMConnectionError
from otcdesk.app.metrics import Metrics
from otcdesk.app.tracing import Tracing


def observed(base_url: str, model: str):
    exporter, metrics = InMemorySpanExporter(), Metrics()
    tracing = Tracing.to_exporter(exporter)
    client = LLMClient(base_url, model, timeout=60, flavor="llama_cpp")
    client.instrument(metrics, tracing)
    return client, metrics, tracing, exporter


@pytest.mark.llm
def test_llm_call_is_a_span_with_model_tokens_and_latency(llm_server):
    client, metrics, tracing, exporter = observed(llm_server.base_url, llm_server.model)
    with tracing.tracer.start_as_current_span("desk.understand"):
        client.complete_text([{"role": "user", "content": "Say OK."}], max_tokens=4)
    node, = [s for s in exporter.get_finished_spans() if s.name == "desk.understand"]
    call, = [s for s in exporter.get_finished_spans() if s.name == "llm.chat"]
    assert call.parent.span_id == node.context.span_id
    assert call.attributes["gen_ai.request.model"] == llm_server.model
    assert call.attributes["gen_ai.usage.input_tokens"] > 0 and call.attributes["gen_ai.usage.output_tokens"] > 0
    assert call.attributes["llm.latency_ms"] > 0
    assert metrics.registry.get_sample_value("otcdesk_llm_calls_total",
                                             {"model": llm_server.model, "outcome": "ok"}) == 1
    assert metrics.registry.get_sample_value("otcdesk_llm_tokens_total",
                                             {"model": llm_server.model, "type": "completion"}) > 0


def test_a_failed_call_counts_as_a_fallback():
    client, metrics, tracing, exporter = observed(f"http://127.0.0.1:{free_port()}/v1", "m")
    with pytest.raises(LLMConnectionError):
        client.complete_text([{"role": "user", "content": "hi"}])
    assert metrics.registry.get_sample_value("otcdesk_llm_calls_total", {"model": "m", "outcome": "connection"}) == 1
    assert metrics.registry.get_sample_value("otcdesk_llm_fallbacks_total", {"reason": "connection"}) == 1
    [call] = exporter.get_finished_spans()
    assert call.name == "llm.chat" and call.status.status_code.name == "ERROR"
    assert call.status.description == "LLMConnectionError" and not call.events  # its text may quote a model reply
