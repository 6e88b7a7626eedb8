"""Ask latency with 1 and 10 concurrent askers: the lock-free pipeline beside the old serialised behaviour.

    .venv/bin/python benchmarks/bench_kb_concurrency.py [--llm] [--per-asker 3]

Over the product guide (the desk's own knowledge base), each asker asks dev questions in a thread. Modes:

- ``lexical``: extractive answers, no model;
- ``slow-llm``: a scripted chat client that takes 0.3 s a call (a model server with parallel slots);
- ``llama.cpp`` (with ``--llm``): the test LLM server of tests/llm_fixture.py (tiny Gemma, one slot: the server
  itself answers one request at a time, so this row shows what the model, not our code, serialises).

Each mode runs twice in the same process: ``pipeline`` (this code: immutable snapshot, no lock) and
``serialised`` (the old behaviour: every ask under one lock, as `KnowledgeHub` and `KnowledgeService` did).
Prints p50/p95 latency per ask (ms) and wall time per round.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(round(q * (len(values) - 1))))], 1)


class SlowLLM:
    """Answers with the first cited passage's opening after a fixed delay (no shared state besides a counter)."""

    def __init__(self, delay: float = 0.3):
        self.delay = delay

    def complete_text(self, messages, timeout=None):
        time.sleep(self.delay)
        content = messages[-1]["content"]
        start = content.find("[1] ")
        return content[start + 4:start + 40] if start >= 0 else "无法回答"


def run_round(ask, questions: list[str], askers: int, per_asker: int) -> dict:
    lat: list[float] = []
    lock = threading.Lock()

    def worker(i: int):
        for j in range(per_asker):
            q = questions[(i * per_asker + j) % len(questions)]
            t0 = time.perf_counter()
            ask(q)
            with lock:
                lat.append((time.perf_counter() - t0) * 1000)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(askers) as pool:
        list(pool.map(worker, range(askers)))
    return {"askers": askers, "asks": len(lat), "p50_ms": _pct(lat, 0.5), "p95_ms": _pct(lat, 0.95),
            "wall_s": round(time.perf_counter() - t0, 2)}


def bench(label: str, svc, questions: list[str], per_asker: int) -> list[dict]:
    svc.ask(questions[0])  # snapshot built, caches warm
    big = threading.Lock()

    def serialised(q):
        with big:
            return svc.ask(q)

    rows = []
    for mode, ask in (("pipeline", svc.ask), ("serialised", serialised)):
        for askers in (1, 10):
            r = run_round(ask, questions, askers, per_asker if askers == 1 else max(1, per_asker // 3) or 1)
            rows.append({"llm": label, "mode": mode, **r})
            print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--llm", action="store_true", help="also run against the llama.cpp test server")
    ap.add_argument("--per-asker", type=int, default=3)
    args = ap.parse_args()
    from otcdesk.knowledge.service import KnowledgeService

    guide = REPO / "otcdesk" / "app" / "data" / "product_guide.md"
    rows = [json.loads(line) for line in (REPO / "tests" / "data" / "kb_dev_kbgen.jsonl").read_text().splitlines()]
    questions = [r["question"] for r in rows if r["corpus"] == "guide"]
    root = Path(tempfile.mkdtemp())
    KnowledgeService(root, "guide").ingest([guide])
    out = bench("none", KnowledgeService(root, "guide"), questions, args.per_asker * 3)
    out += bench("slow-llm 0.3s", KnowledgeService(root, "guide", llm=SlowLLM(0.3)), questions, args.per_asker)
    if args.llm:
        import llm_fixture

        missing = llm_fixture._missing()
        if missing:
            print(f"llama.cpp server unavailable ({', '.join(missing)}): run bash scripts/setup_llm.sh")
        else:
            from otcdesk.app.llm import LLMClient

            server = llm_fixture._start(root / "llm.log", [])
            server.client = LLMClient(server.base_url, server.model, "sk-local", timeout=120.0, flavor="llama_cpp",
                                      merge_system=True)
            try:
                svc = KnowledgeService(root, "guide", llm=server.client, llm_timeout=120)
                out += bench("llama.cpp", svc, questions, 1)
            finally:
                llm_fixture._stop(server.process)
    print("\n| llm | mode | askers | asks | p50 ms | p95 ms | wall s |\n|---|---|---|---|---|---|---|")
    for r in out:
        print(f"| {r['llm']} | {r['mode']} | {r['askers']} | {r['asks']} | {r['p50_ms']} | {r['p95_ms']} | {r['wall_s']} |")


if __name__ == "__main__":
    main()
