"""One client message is one trace: the desk graph's node spans, the review wait and the send, all under the run's
root span, collected by the SDK's in-memory exporter (an in-process collector)."""
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from desk_fixtures import close_desks, desk_on
from otcdesk.app.settings import load_settings
from otcdesk.app.tracing import Tracing, run_ids
from otcdesk.bots.base import InboundMessage
from trace_fixtures import span_tree


@pytest.fixture
def traced_desk(tmp_path):
    exporter, built = InMemorySpanExporter(), []
    desk = desk_on(load_settings(data_dir=tmp_path, DATABASE_URL=None), built,
                   tracing=Tracing.to_exporter(exporter))
    yield desk, exporter
    close_desks(built)


async def test_spans_of_one_message_form_one_tree(traced_desk):
    desk, exporter = traced_desk
    desk.inbound(InboundMessage(channel="sim", chat_id="demo", sender_id="张经理", sender_name="张经理",
                                text="沪深300 1个月 平值看跌", platform_msg_id="m-trace"))
    assert desk.runner.drain() == 1
    [item] = desk.reviews.list("pending")
    desk.reviews.approve(item["id"], "trader1")
    assert await desk.outbox.dispatch() == 1

    spans = exporter.get_finished_spans()
    trace_id, root_id = run_ids("sim-m-trace")
    assert {s.context.trace_id for s in spans} == {trace_id}
    [root] = [s for s in spans if s.parent is None]
    assert (root.name, root.context.span_id) == ("desk.run", root_id)
    assert root.attributes["desk.review_id"] == item["id"] and root.attributes["desk.kind"] == "quote"
    assert all(s.parent.span_id == root_id for s in spans if s is not root)
    outline = span_tree(spans)
    print("\n".join(span_tree(spans, attributes=True)))
    assert outline == ["desk.run", "  desk.understand", "  desk.check_kyc", "  desk.price", "  desk.draft",
                       "  desk.review", "  desk.review_wait", "  desk.review", "  desk.deliver", "  desk.send"]
    review, resumed = [s for s in spans if s.name == "desk.review"]
    assert review.attributes.get("desk.interrupted") is True and "desk.interrupted" not in resumed.attributes
    [wait] = [s for s in spans if s.name == "desk.review_wait"]
    assert wait.attributes["desk.decision"] == "approved" and wait.end_time >= wait.start_time
    assert "沪深300" not in str([dict(s.attributes) for s in spans])  # ids and kinds, never the client's text


def test_tracing_is_off_without_an_endpoint(tmp_path):
    assert not Tracing.from_settings(load_settings(data_dir=tmp_path)).enabled
    on = Tracing.from_settings(load_settings(data_dir=tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4318"))
    assert on.enabled
    on.shutdown()
