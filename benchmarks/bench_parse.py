"""Quote-request parser: accuracy on the held-out test split and `otcdesk parse --jsonl` throughput.

    .venv/bin/python benchmarks/bench_parse.py [--split test|dev|blind2] [--messages 1000] [--failures]

Prints, side by side, the full parser and a dictionary-only reference in the same process (exact aliases and codes,
no pinyin/fuzzy correction, no CRF): field-level precision/recall, message-level exact match, request-count
exactness, intent accuracy, and the share of non-quote messages given no request. Then times the CLI over N
messages in one process (start-up included, and start-up subtracted using a one-message run).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from otcdesk.ner.evaluate import load_jsonl, score  # noqa: E402
from otcdesk.ner.lexicon import Corrector  # noqa: E402
from otcdesk.ner.parser import MessageParser, default_parser  # noqa: E402

KEYS = ("field_precision", "field_recall", "exact_match", "request_count_accuracy", "intent_accuracy",
        "nonquote_without_requests")


class _NoCorrection(Corrector):
    def correct(self, text):
        return text, []


def _cli(texts: list[str]) -> float:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "otcdesk.app.cli", "parse", "--jsonl", "--no-llm"], input="\n".join(texts) + "\n",
                       capture_output=True, text=True, cwd=REPO, check=True)
    dt = time.perf_counter() - t0
    assert len(p.stdout.splitlines()) == len(texts)
    return dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", default="test", choices=["test", "dev", "blind2"])
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3, help="CLI timings: best of this many runs")
    ap.add_argument("--failures", action="store_true", help="print the messages that are not an exact match")
    args = ap.parse_args()
    records = load_jsonl(REPO / "tests" / "data" / f"parse_{args.split}.jsonl")

    full = default_parser()
    preds = [full.parse(r["text"]).to_dict() for r in records]
    res = score(records, preds)
    baseline = MessageParser(pool=full.pool, corrector=_NoCorrection(full.pool), tagger=None)
    base = score(records, [baseline.parse(r["text"]).to_dict() for r in records])

    print(f"split={args.split} messages={res['messages']} (non-quote: {res['nonquote_messages']})")
    print(f"{'metric':28s} {'parser':>8s} {'dict-only ref':>14s}")
    for k in KEYS:
        print(f"{k:28s} {res[k]:8.4f} {base[k]:14.4f}")

    all_texts = [r["text"].replace("\n", " ") for r in
                 load_jsonl(REPO / "tests" / "data" / "parse_test.jsonl") + load_jsonl(REPO / "tests" / "data" / "parse_dev.jsonl")
                 + load_jsonl(REPO / "tests" / "data" / "parse_blind2.jsonl")]
    texts = (all_texts * (args.messages // len(all_texts) + 1))[: args.messages]
    t0 = time.perf_counter()
    for t in texts:
        full.parse(t).to_dict()
    in_process = len(texts) / (time.perf_counter() - t0)
    # the machine is shared: take the best of a few runs for both
    startup = min(_cli(texts[:1]) for _ in range(args.repeats))
    total = min(_cli(texts) for _ in range(args.repeats))
    print(f"otcdesk parse --jsonl: {len(texts)} messages in {total:.2f} s wall = {len(texts) / total:.0f} msg/s "
          f"(one-message run {startup:.2f} s = CLI start-up + parser load; "
          f"{len(texts) / max(1e-3, total - startup):.0f} msg/s after it); parse_message in-process {in_process:.0f} msg/s")
    figures = {k: round(res[k], 4) for k in KEYS}
    figures.update(messages=res["messages"], cli_msgs_per_s=round(len(texts) / total, 1),
                   cli_msgs_per_s_after_startup=round(len(texts) / max(1e-3, total - startup), 1),
                   cli_startup_s=round(startup, 2), in_process_msgs_per_s=round(in_process, 1),
                   reference_dict_only={k: round(base[k], 4) for k in KEYS})
    print(json.dumps(figures, ensure_ascii=False))
    if args.failures:
        for f in res["failures"]:
            print("FAIL", f["id"], f["text"].replace("\n", " / "), json.dumps(f["pred"]["requests"], ensure_ascii=False))


if __name__ == "__main__":
    main()
