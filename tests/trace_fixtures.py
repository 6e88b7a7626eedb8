"""Pytest plugin for observability tests: `json_logs` (the root logger's records as the service's JSON handler
writes them) and `span_tree` (spans collected by the SDK's in-memory exporter, drawn as an indented tree)."""
from __future__ import annotations

import io
import json
import logging

import pytest

from otcdesk.app.logs import JsonFormatter

# attributes worth showing beside a span's name, in this order, with their labels
SHOWN = {"desk.kind": "kind", "desk.review_id": "review", "desk.decision": "decision", "assistant.role": "role",
         "assistant.planner": "planner", "assistant.allowed": "allowed", "assistant.refusal": "refusal",
         "gen_ai.request.model": "model", "gen_ai.usage.input_tokens": "prompt_tokens",
         "gen_ai.usage.output_tokens": "completion_tokens", "llm.latency_ms": "latency_ms"}


class CapturedLogs:
    def __init__(self):
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(JsonFormatter())

    def raw(self) -> list[str]:
        return self.stream.getvalue().splitlines()

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.raw()]  # every line is one JSON object


@pytest.fixture
def json_logs():
    """INFO and above from every logger, formatted by `app.logs.JsonFormatter`, for the test to read."""
    cap, root = CapturedLogs(), logging.getLogger()
    old = root.level
    root.addHandler(cap.handler)
    root.setLevel(logging.INFO)
    yield cap
    root.removeHandler(cap.handler)
    root.setLevel(old)


def span_tree(spans, attributes: bool = False) -> list[str]:
    """The spans as an indented outline (two spaces a level), children in start order; with `attributes`, the
    `SHOWN` ones after each name, and the status when it is an error."""
    by_parent: dict = {}
    ids = {s.context.span_id for s in spans}
    for s in spans:
        parent = s.parent.span_id if s.parent and s.parent.span_id in ids else None
        by_parent.setdefault(parent, []).append(s)
    lines: list[str] = []

    def walk(parent, depth):
        for s in sorted(by_parent.get(parent, []), key=lambda s: s.start_time):
            line = "  " * depth + s.name
            if attributes:
                shown = [f"{label}={s.attributes[k]}" for k, label in SHOWN.items() if k in s.attributes]
                if s.status.status_code.name == "ERROR":
                    shown.append(f"ERROR {s.status.description}")
                line += f"  [{', '.join(shown)}]" if shown else ""
            lines.append(line)
            walk(s.context.span_id, depth + 1)

    walk(None, 0)
    return lines
