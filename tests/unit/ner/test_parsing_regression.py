"""Regression gate: accuracy on the held-out test split, and on the second blind set (parse_blind2.jsonl: messages
written by a second author and scored before the parser was fixed on them), must not fall below
tests/data/parse_floor.json."""
from __future__ import annotations

import json
from pathlib import Path

from otcdesk.ner import parse_message
from otcdesk.ner.evaluate import load_jsonl, score

DATA = Path(__file__).resolve().parents[2] / "data"


def _check(name: str) -> None:
    floor = json.loads((DATA / "parse_floor.json").read_text())
    records = load_jsonl(DATA / name)
    figures = score(records, [parse_message(r["text"]).to_dict() for r in records])
    failures = figures.pop("failures")
    for key, minimum in floor["minimum"].items():
        assert figures[key] >= minimum, (key, figures[key], minimum, [f["text"] for f in failures][:10])


def test_test_split_meets_the_floor():
    assert len(load_jsonl(DATA / "parse_test.jsonl")) + len(load_jsonl(DATA / "parse_dev.jsonl")) >= 300
    _check("parse_test.jsonl")


def test_second_blind_set_meets_the_floor():
    records = load_jsonl(DATA / "parse_blind2.jsonl")
    assert len(records) >= 150 and sum(r["intent"] != "quote" for r in records) >= 75  # half of it non-quotes
    _check("parse_blind2.jsonl")
