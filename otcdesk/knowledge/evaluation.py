"""RAG evaluation in the spirit of RAGAS: retrieval hit rate and MRR@k, context precision and recall, answer
and citation accuracy, faithfulness of answers to their citations, refusal precision and recall, latency
percentiles — overall and per batch; JSON plus an offline HTML report with a chart per batch.

A QA row: ``{"question", "answer", "source", "answerable": bool, "keywords": [...], "batch"?, "known_failure"?}``.
``answerable`` defaults to whether an answer is given; ``batch`` (default "default") groups rows written
together (a development set, a fresh batch scored at first sight).

- context precision: rank-weighted share of the k retrieved passages that come from the expected document
  (RAGAS: mean of precision@i over the relevant ranks);
- context recall: share of the expected keywords (or answer content words) found in the k passages;
- faithfulness: share of an answer's content words and figures found in its citations, 0 when a number or
  named entity is unsupported (the grounding check);
- refusal precision / recall: of the refusals, how many were out-of-corpus; of the out-of-corpus, how many refused. An answer counts as correct when it contains every keyword
(whitespace, case and full/half width ignored), or, without keywords, when it contains the expected answer or most
of its content words.
"""
from __future__ import annotations

import html
import json
import re
import time
import unicodedata
from typing import Callable

import numpy as np

from otcdesk.knowledge.text import key_terms


def _norm(s: str) -> str:
    """Whitespace-, case- and width-insensitive form ("800 笔" = "800笔", "１０％" = "10%")."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", s or "")).lower()


def answer_correct(answer: str, expected: str | None, keywords: list[str] | None = None) -> bool:
    a = _norm(answer)
    if keywords:
        return all(_norm(k) in a for k in keywords)
    if not expected:
        return False
    e = _norm(expected)
    if e and e in a:
        return True
    terms = key_terms(expected)
    return bool(terms) and sum(1 for t in terms if _norm(t) in a) / len(terms) >= 0.6


def _percentiles(values: list[float]) -> dict:
    if not values:
        return {"p50": None, "p90": None, "p95": None, "p99": None, "mean": None, "max": None}
    arr = np.asarray(values)
    return {
        "p50": round(float(np.percentile(arr, 50)), 2),
        "p90": round(float(np.percentile(arr, 90)), 2),
        "p95": round(float(np.percentile(arr, 95)), 2),
        "p99": round(float(np.percentile(arr, 99)), 2),
        "mean": round(float(arr.mean()), 2),
        "max": round(float(arr.max()), 2),
    }


def _content_units(text: str) -> list[str]:
    return [t for t in key_terms(text) if not re.fullmatch(r"[\W_]+", t)]


def faithfulness(answer: str, citations: list[str]) -> float:
    """Share of the answer's content words found in its citations; 0 when the grounding check fails."""
    from otcdesk.knowledge.answer import groundedness

    ctx = _norm("\n".join(citations))
    if not groundedness(answer, "\n".join(citations))[0]:
        return 0.0
    units = _content_units(answer)
    return round(sum(1 for u in units if _norm(u) in ctx) / len(units), 4) if units else 1.0


def context_precision(sources: list[str], expected: str | None) -> float | None:
    if not expected:
        return None
    hits, precisions = 0, []
    for i, s in enumerate(sources, 1):
        if s == expected:
            hits += 1
            precisions.append(hits / i)
    return round(sum(precisions) / hits, 4) if hits else 0.0


def context_recall(texts: list[str], expected: str | None, keywords: list[str] | None) -> float | None:
    wanted = list(keywords or []) or (_content_units(expected) if expected else [])
    if not wanted:
        return None
    ctx = _norm("\n".join(texts))
    return round(sum(1 for w in wanted if _norm(w) in ctx) / len(wanted), 4)


def evaluate(service, rows: list[dict], k: int = 5, progress: Callable[[int, int, str], None] | None = None) -> dict:
    """Run `rows` against a `KnowledgeService`; returns ``{"kb", "k", "summary", "rows"}``."""
    details = []
    latencies = []
    for i, row in enumerate(rows):
        q = row["question"]
        answerable = bool(row.get("answerable", row.get("answer") not in (None, "")))
        expected_src = row.get("source")
        t0 = time.perf_counter()
        res = service.ask(q, k=k)
        latency = (time.perf_counter() - t0) * 1000
        latencies.append(latency)
        contexts = service.retrieve(q, k=k)
        retrieved = [c["source"] for c in contexts]
        rank = next((r + 1 for r, s in enumerate(retrieved) if s == expected_src), None) if expected_src else None
        cites = [c["source"] for c in res.get("citations", [])]
        correct = (not res["refused"]) and answer_correct(res["answer"], row.get("answer"), row.get("keywords"))
        cite_ok = bool(cites) and cites[0] == expected_src
        details.append({
            "question": q,
            "batch": row.get("batch", "default"),
            "known_failure": bool(row.get("known_failure")),
            "context_precision": context_precision(retrieved, expected_src) if answerable else None,
            "context_recall": context_recall([c["text"] for c in contexts], row.get("answer"), row.get("keywords"))
            if answerable else None,
            "faithfulness": None if res["refused"] else faithfulness(res["answer"], [c["text"] for c in
                                                                                    res.get("citations", [])]),
            "answerable": answerable,
            "expected_source": expected_src,
            "expected_answer": row.get("answer"),
            "answer": res["answer"],
            "refused": res["refused"],
            "citation_sources": cites,
            "retrieval_rank": rank,
            "answer_correct": correct if answerable else None,
            "citation_correct": cite_ok if answerable else None,
            "coverage": res.get("coverage"),
            "latency_ms": round(latency, 2),
        })
        if progress:
            progress(i + 1, len(rows), q)

    summary = _summary(details, latencies, k)
    batches = sorted({d["batch"] for d in details})
    summary["batches"] = {b: _summary([d for d in details if d["batch"] == b],
                                      [d["latency_ms"] for d in details if d["batch"] == b], k) for b in batches}
    return {"kb": getattr(service, "name", None), "k": k, "summary": summary, "rows": details}


def _mean(xs: list) -> float | None:
    xs = [x for x in xs if x is not None]
    return round(float(sum(xs)) / len(xs), 4) if xs else None


def _summary(details: list[dict], latencies: list[float], k: int) -> dict:
    ans = [d for d in details if d["answerable"]]
    out = [d for d in details if not d["answerable"]]
    with_src = [d for d in ans if d["expected_source"]]
    refused = [d for d in details if d["refused"]]

    def rate(xs, pred):
        return round(sum(1 for x in xs if pred(x)) / len(xs), 4) if xs else None

    return {
        "questions": len(details),
        "answerable": len(ans),
        "unanswerable": len(out),
        f"hit_rate@{k}": rate(with_src, lambda d: d["retrieval_rank"] is not None),
        f"mrr@{k}": round(sum(1 / d["retrieval_rank"] for d in with_src if d["retrieval_rank"]) / len(with_src), 4)
        if with_src else None,
        "answer_accuracy": rate(ans, lambda d: d["answer_correct"]),
        "citation_accuracy": rate(with_src, lambda d: d["citation_correct"]),
        "answer_with_citation_accuracy": rate(with_src, lambda d: d["answer_correct"] and d["citation_correct"]),
        "false_refusal_rate": rate(ans, lambda d: d["refused"]),
        "refusal_rate_out_of_corpus": rate(out, lambda d: d["refused"]),
        "refusal_precision": rate(refused, lambda d: not d["answerable"]),
        "refusal_recall": rate(out, lambda d: d["refused"]),
        "context_precision": _mean([d["context_precision"] for d in ans]),
        "context_recall": _mean([d["context_recall"] for d in ans]),
        "faithfulness": _mean([d["faithfulness"] for d in details]),
        "latency_ms": _percentiles(latencies),
    }


# ---- HTML report ---------------------------------------------------------------------------------
def _bar_chart(metrics: dict[str, float | None], width: int = 560) -> str:
    items = [(k, v) for k, v in metrics.items() if isinstance(v, (int, float))]
    bar_h, gap, label_w = 22, 8, 230
    height = len(items) * (bar_h + gap) + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="evaluation metrics">']
    scale = width - label_w - 60
    for i, (name, val) in enumerate(items):
        y = 5 + i * (bar_h + gap)
        w = max(0.0, min(1.0, float(val))) * scale
        color = "#2e7d32" if val >= 0.85 else ("#f9a825" if val >= 0.6 else "#c62828")
        if name == "false_refusal_rate":
            color = "#2e7d32" if val <= 0.15 else "#c62828"
        parts.append(f'<text x="0" y="{y + 15}" font-size="13">{html.escape(name)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{color}"/>')
        parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 15}" font-size="13">{val:.3f}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _latency_chart(latencies: list[float], width: int = 560, height: int = 160) -> str:
    if not latencies:
        return ""
    arr = np.asarray(latencies)
    counts, edges = np.histogram(arr, bins=min(20, max(1, len(arr))))
    peak = counts.max() or 1
    bw = (width - 40) / len(counts)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 30}" role="img" '
             f'aria-label="latency histogram">']
    for i, c in enumerate(counts):
        h = c / peak * height
        parts.append(f'<rect x="{30 + i * bw:.1f}" y="{height - h:.1f}" width="{bw - 2:.1f}" height="{h:.1f}" '
                     f'fill="#1565c0"><title>{edges[i]:.1f}–{edges[i + 1]:.1f} ms: {c}</title></rect>')
    parts.append(f'<text x="30" y="{height + 20}" font-size="12">{edges[0]:.1f} ms</text>')
    parts.append(f'<text x="{width - 90}" y="{height + 20}" font-size="12">{edges[-1]:.1f} ms</text>')
    parts.append("</svg>")
    return "".join(parts)


def html_report(result: dict, title: str = "知识库评估报告") -> str:
    """A self-contained HTML page (inline SVG charts, no network) for an `evaluate` result."""
    s = result["summary"]

    def chartable(summary: dict) -> dict:
        return {k: v for k, v in summary.items() if isinstance(v, float) or (isinstance(v, int) and k not in
                                                                              ("questions", "answerable", "unanswerable"))}

    metrics = chartable(s)
    per_batch = "".join(
        f"<h3>批次 {html.escape(b)}（问题 {bs['questions']} 个：可回答 {bs['answerable']}，库外 {bs['unanswerable']}）</h3>"
        f"<div class='batch' data-batch='{html.escape(b)}'>{_bar_chart(chartable(bs))}</div>"
        for b, bs in s.get("batches", {}).items())
    rows_html = []
    for d in result["rows"]:
        ok = (d["answer_correct"] and d["citation_correct"]) if d["answerable"] else d["refused"]
        d = {**d, "question": f"[{d.get('batch', 'default')}] " + d["question"]}
        rows_html.append(
            "<tr class='{}'><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>".format(
                "ok" if ok else "bad", html.escape(d["question"]),
                "answerable" if d["answerable"] else "out of corpus",
                html.escape(str(d["expected_answer"] or "")), html.escape(d["answer"]),
                html.escape(", ".join(d["citation_sources"])), d["latency_ms"]))
    lat = s["latency_ms"]
    return f"""<!doctype html><html lang="zh"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}}table{{border-collapse:collapse;width:100%}}
td,th{{border:1px solid #ccc;padding:4px 6px;font-size:13px;vertical-align:top}}tr.bad{{background:#fdecea}}
tr.ok{{background:#f1f8e9}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>知识库 <b>{html.escape(str(result.get('kb')))}</b>，k = {result['k']}，问题 {s['questions']} 个
（可回答 {s['answerable']}，库外 {s['unanswerable']}）。</p>
<h2>指标</h2>{_bar_chart(metrics)}
<h2>各批次</h2>{per_batch}
<h2>延迟</h2><p>p50 {lat['p50']} ms · p90 {lat['p90']} ms · p95 {lat['p95']} ms · p99 {lat['p99']} ms ·
max {lat['max']} ms</p>{_latency_chart([d['latency_ms'] for d in result['rows']])}
<h2>明细</h2><table><tr><th>问题</th><th>类型</th><th>期望答案</th><th>回答</th><th>引用</th><th>ms</th></tr>
{''.join(rows_html)}</table>
<script type="application/json" id="summary">{html.escape(json.dumps({k: v for k, v in s.items() if k != "batches"},
                                                                     ensure_ascii=False))}</script>
</body></html>"""
