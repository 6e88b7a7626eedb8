"""`otcdesk parse` as CONTRACTS.md describes it (subprocess, fresh data dir)."""
from __future__ import annotations

import json
import subprocess
import sys


def run(args, stdin=None, tmp_path=None):
    env = {"OTCDESK_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "otcdesk.app.cli", "parse", *args], input=stdin, capture_output=True,
                          text=True, env=env, timeout=120)


def test_parse_text(tmp_path):
    p = run(["300、创业板 各来一个 2周和1个月的平值看跌"], tmp_path=tmp_path)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["intent"] == "quote" and len(doc["requests"]) == 4 and doc["clarification"] is None
    assert p.stdout.count("\n") == 1


def test_parse_jsonl_in_order(tmp_path):
    msgs = ["谢谢", "沪深300 1个月平值看涨", "雪球的敲入是怎么观察的？", "700001 1M ATM call", "200万，确认下单"]
    p = run(["--jsonl", "--no-llm"], stdin="\n".join(msgs) + "\n", tmp_path=tmp_path)
    assert p.returncode == 0, p.stderr
    docs = [json.loads(line) for line in p.stdout.splitlines()]
    assert [d["intent"] for d in docs] == ["other", "quote", "knowledge", "quote", "order"]
    assert "700001" in docs[3]["clarification"]


def test_parse_without_text_is_an_error(tmp_path):
    p = run([], tmp_path=tmp_path)
    assert p.returncode != 0 and "error" in json.loads(p.stdout)
