"""Regression gate: accuracy on the held-out test split must not fall below tests/data/parse_floor.json."""
from __future__ import annotations

import json
from pathlib import Path

from agents.parsing import parse_message
from agents.parsing.evaluate import load_jsonl, score

DATA = Path(__file__).resolve().parents[2] / "data"


def test_test_split_meets_the_floor():
    floor = json.loads((DATA / "parse_floor.json").read_text())
    records = load_jsonl(DATA / "parse_test.jsonl")
    assert len(records) + len(load_jsonl(DATA / "parse_dev.jsonl")) >= 300
    figures = score(records, [parse_message(r["text"]).to_dict() for r in records])
    failures = figures.pop("failures")
    for key, minimum in floor["minimum"].items():
        assert figures[key] >= minimum, (key, figures[key], minimum, [f["text"] for f in failures][:10])
