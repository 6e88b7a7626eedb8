"""Structured logs: JSON lines that name the message, review and trace they concern, with personal data masked —
over a real desk flow (simulator → inbound pipeline → desk graph → review → outbox → simulator), and from
`otcdesk serve` as a real process whose spans go to a real OTLP/HTTP receiver."""
from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from langgraph.graph import END, START, StateGraph
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from typing_extensions import TypedDict

from desk_fixtures import ServeProcess, close_desks, desk_on, free_port, log_message
from otcdesk.app.desk.runner import thread_for
from otcdesk.app.logs import JsonFormatter, TextFormatter, bind_log, log_context
from otcdesk.app.settings import load_settings
from otcdesk.app.tracing import Tracing, run_ids
from trace_fixtures import span_tree

MOBILE, ID_NUMBER = "13812345678", "11010519491231002X"
TEXT = f"@询价机器人 沪深300 1个月 平值看跌 1000万，联系我 {MOBILE}，身份证 {ID_NUMBER}"
KEYS = {"timestamp", "level", "logger", "message"}


@pytest.fixture
def traced_desk(tmp_path):
    exporter, built = InMemorySpanExporter(), []
    desk = desk_on(load_settings(data_dir=tmp_path, DATABASE_URL=None), built, tracing=Tracing.to_exporter(exporter))
    yield desk, exporter
    close_desks(built)


async def test_a_desk_flow_logs_json_lines_with_its_ids_and_no_personal_data(traced_desk, json_logs):
    desk, exporter = traced_desk
    sim = desk.outbox.channels["sim"]
    # as the HTTP API and the server's workers do it: in threads (asyncio.to_thread), the outbox on the loop
    message_id = await asyncio.to_thread(sim.post, "demo", "张经理", TEXT)
    assert await asyncio.to_thread(desk.runner.drain) == 1
    [item] = desk.reviews.list("pending")
    with log_context(message_id=message_id):
        logging.getLogger("otcdesk.careless").warning("client wrote: %s", item["text"])  # a careless call
    await asyncio.to_thread(desk.reviews.approve, item["id"], "trader1")
    assert await desk.outbox.dispatch() == 1
    assert [m["text"] for m in sim.transcript.messages("demo") if m["from_bot"]]

    lines = json_logs.lines()
    assert lines and all(KEYS <= line.keys() for line in lines)
    spans = exporter.get_finished_spans()
    print("\n".join(span_tree(spans, attributes=True)))
    [trace_id] = {format(s.context.trace_id, "032x") for s in spans}
    assert trace_id == format(run_ids(thread_for({"channel": "sim", "platform_msg_id": message_id}))[0], "032x")

    desk_lines = [line for line in lines if line["logger"].startswith("otcdesk.app.desk")]
    for line in desk_lines:
        print(json.dumps(line, ensure_ascii=False))
    assert desk_lines and all(line.get("message_id") == message_id for line in desk_lines), desk_lines
    assert all(line.get("trace_id") == trace_id for line in desk_lines), desk_lines

    def one(text: str) -> dict:
        [found] = [line for line in desk_lines if text in line["message"]]
        return found

    received, ran = one("inbound message on sim: stored"), one("desk run processed")
    assert isinstance(received["inbound_id"], int) and ran["inbound_id"] == received["inbound_id"]
    assert ran["review_id"] == item["id"]
    # logged inside the graph's review node (langgraph's executor): the node's own span, the runner's ids
    opened = one(f"review {item['id']} opened")
    [review_span, _resumed] = [s for s in spans if s.name == "desk.review"]
    assert opened["span_id"] == format(review_span.context.span_id, "016x")
    assert opened["review_id"] == item["id"] and opened["thread_id"] == f"sim-{message_id}"
    decided = one(f"review {item['id']} approved by trader1")
    assert decided["review_id"] == item["id"] and decided["level"] == "INFO"
    assert one(f"reply to review {item['id']} queued")["review_id"] == item["id"]
    assert one("sent through sim")["review_id"] == item["id"]

    [careless] = [line for line in lines if line["logger"] == "otcdesk.careless"]
    assert careless["message_id"] == message_id and careless["message"].count("[已脱敏]") == 2
    everything = "\n".join(json_logs.raw())
    assert MOBILE not in everything and ID_NUMBER not in everything and ID_NUMBER.lower() not in everything


class _Graph(TypedDict):
    seen: dict


async def test_bound_ids_reach_threads_and_graph_nodes_and_extra_wins(json_logs):
    log = logging.getLogger("otcdesk.test")

    def node(state: _Graph) -> _Graph:
        log.info("in a node")
        return {"seen": {"thread": threading.get_ident()}}

    g = StateGraph(_Graph)
    g.add_node("n", node)
    g.add_edge(START, "n")
    g.add_edge("n", END)
    graph = g.compile()
    with log_context(message_id="m-1", inbound_id=7):
        await asyncio.to_thread(log.info, "in a thread")
        await asyncio.to_thread(graph.invoke, {"seen": {}})
        with log_context(review_id="Q1"):
            bind_log(thread_id="sim-m-1")
            log.info("bound later", extra={"review_id": "Q2"})
        log.info("block ended")
    log.info("outside")
    by_message = {line["message"]: line for line in json_logs.lines()}
    for message in ("in a thread", "in a node", "bound later", "block ended"):
        assert by_message[message]["message_id"] == "m-1" and by_message[message]["inbound_id"] == 7
    assert by_message["bound later"]["review_id"] == "Q2" and by_message["bound later"]["thread_id"] == "sim-m-1"
    assert "review_id" not in by_message["block ended"] and "thread_id" not in by_message["block ended"]
    assert "message_id" not in by_message["outside"]


def test_both_formats_mask_the_message_its_arguments_and_the_traceback():
    record = logging.LogRecord("otcdesk.x", logging.ERROR, __file__, 1, "mobile %s id %s", (MOBILE, ID_NUMBER), None)
    try:
        raise ValueError(f"bad input {ID_NUMBER} from +86 138-1234-5678")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    as_json = json.loads(JsonFormatter().format(record))
    assert as_json["message"] == "mobile [已脱敏] id [已脱敏]" and "ValueError: bad input [已脱敏] from [已脱敏]" in as_json["exc"]
    as_text = TextFormatter().format(record)
    assert MOBILE not in as_text and ID_NUMBER not in as_text and "138-1234-5678" not in as_text
    assert "mobile [已脱敏] id [已脱敏]" in as_text and "bad input [已脱敏]" in as_text
    assert "notional 10000000.00" in JsonFormatter().format(logging.LogRecord(  # decimals stay
        "x", logging.INFO, __file__, 1, "notional %.2f", (1e7,), None))


class OTLPReceiver:
    """A real OTLP/HTTP trace receiver on 127.0.0.1: decodes each export request (protobuf) into spans."""

    def __init__(self):
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (ExportTraceServiceRequest,
                                                                              ExportTraceServiceResponse)

        self.spans: list = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                for rs in request.resource_spans:
                    for ss in rs.scope_spans:
                        receiver.spans.extend(ss.spans)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_serve_writes_json_lines_on_stderr_that_name_the_message_and_its_trace(tmp_path):
    receiver = OTLPReceiver()
    server = ServeProcess(tmp_path, "--demo", env={"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
                                                   "OTEL_BSP_SCHEDULE_DELAY": "200"})
    try:
        started = server.wait_for_log("DEMO simulator")
        [password] = [log_message(ln).split("/", 1)[1].strip() for ln in started
                      if log_message(ln).startswith("DEMO login: trader /")]
        s = requests.Session()
        assert s.post(f"{server.url}/api/login", json={"username": "trader", "password": password}).status_code == 200
        r = requests.post(f"{server.url}/api/sim/groups/demo/messages", json={"sender": "客户A", "text": TEXT})
        message_id = r.json()["message_id"]
        deadline, pending = time.time() + 30, []
        while time.time() < deadline and not pending:
            pending = s.get(f"{server.url}/api/review?status=pending").json()
            time.sleep(0.2)
        [item] = pending
        assert s.post(f"{server.url}/api/review/{item['id']}/approve", json={}).status_code == 200
        server.wait_for_log("sent through sim", timeout=30)
    finally:
        server.stop()
        receiver.close()

    lines = [json.loads(ln) for ln in server.log_lines()]  # every line of stderr is one JSON object
    assert all(KEYS <= line.keys() for line in lines)
    trace_id = format(run_ids(thread_for({"channel": "sim", "platform_msg_id": message_id}))[0], "032x")
    about = [line for line in lines if line.get("message_id") == message_id]
    assert {line["logger"] for line in about} >= {"otcdesk.app.desk.inbound", "otcdesk.app.desk.runner",
                                                  "otcdesk.app.desk.reviews", "otcdesk.app.desk.outbox"}
    assert {line["trace_id"] for line in about} == {trace_id}
    [decided] = [line for line in about if "approved by trader" in line["message"]]
    assert decided["review_id"] == item["id"]
    assert trace_id in {s.trace_id.hex() for s in receiver.spans}  # the trace the log lines name was exported
    raw = "\n".join(server.log_lines())
    assert MOBILE not in raw and ID_NUMBER not in raw
