"""Scoring a parser against labelled messages (tests/data/parse_*.jsonl): field P/R, exact match, request counts.

A labelled record is ``{"id", "text", "intent", "requests": [QuoteRequest fields + "missing"]}``. Predicted fields
that the parser lists in ``assumed`` are conventions, not readings of the text, so they are left out of precision
(except ``strike_pct`` and ``structure``, whose ATM/vanilla defaults the labels state). Requests are aligned greedily by agreeing fields.
"""
from __future__ import annotations

import json
from pathlib import Path

EVAL_FIELDS = ("underlying", "structure", "option_type", "tenor", "strike_pct", "upper_strike_pct", "strike_level",
               "barrier_pct", "lower_barrier_pct", "barrier_type", "rebate_pct", "participation_pct", "payout_pct",
               "ko_pct", "ki_pct", "ko_stepdown_pct", "coupon_pct", "coupon_barrier_pct", "lockup_months", "notional",
               "side", "quote")


def load_jsonl(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _fields(req: dict, predicted: bool) -> dict:
    assumed = set(req.get("assumed") or []) - {"strike_pct", "structure"} if predicted else set()
    return {k: req[k] for k in EVAL_FIELDS if req.get(k) is not None and k not in assumed}


def _same(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(float(a) - float(b)) < 1e-6
    return a == b


def _align(gold: list[dict], pred: list[dict]) -> list[tuple[dict | None, dict | None]]:
    pairs, used = [], set()
    for g in gold:
        best, best_score = None, -1
        for j, p in enumerate(pred):
            if j in used:
                continue
            score = sum(1 for k, v in g.items() if k in p and _same(p[k], v))
            if score > best_score:
                best, best_score = j, score
        if best is None:
            pairs.append((g, None))
        else:
            used.add(best)
            pairs.append((g, pred[best]))
    pairs += [(None, p) for j, p in enumerate(pred) if j not in used]
    return pairs


def score(records: list[dict], predictions: list[dict]) -> dict:
    """Compare predictions (``ParseResult.to_dict()`` each) with labelled records; returns the figures."""
    tp = fp = fn = 0
    exact = count_ok = intent_ok = 0
    nonquote = nonquote_clean = 0
    failures = []
    for rec, pred in zip(records, predictions):
        gold_reqs = [dict(_fields(r, False), missing=sorted(r.get("missing", []))) for r in rec["requests"]]
        pred_reqs = [dict(_fields(r, True), missing=sorted(r.get("missing", []))) for r in pred.get("requests", [])]
        if rec["intent"] != "quote":
            nonquote += 1
            nonquote_clean += int(not pred_reqs)
        intent_ok += int(pred.get("intent") == rec["intent"])
        count_ok += int(len(gold_reqs) == len(pred_reqs))
        ok = pred.get("intent") == rec["intent"] and len(gold_reqs) == len(pred_reqs)
        for g, p in _align(gold_reqs, pred_reqs):
            g = g or {}
            p = p or {}
            for k, v in g.items():
                if k == "missing":
                    continue
                if k in p and _same(p[k], v):
                    tp += 1
                else:
                    fn += 1
                    ok = False
            for k, v in p.items():
                if k == "missing":
                    continue
                if k not in g or not _same(g[k], v):
                    fp += 1
                    ok = False
            if g.get("missing", []) != p.get("missing", []):
                ok = False
        exact += int(ok)
        if not ok:
            failures.append({"id": rec.get("id"), "text": rec["text"], "gold": rec["requests"], "gold_intent": rec["intent"],
                             "pred": pred})
    n = max(1, len(records))
    return {
        "messages": len(records),
        "field_precision": tp / max(1, tp + fp),
        "field_recall": tp / max(1, tp + fn),
        "exact_match": exact / n,
        "request_count_accuracy": count_ok / n,
        "intent_accuracy": intent_ok / n,
        "nonquote_messages": nonquote,
        "nonquote_without_requests": nonquote_clean / max(1, nonquote),
        "failures": failures,
    }
