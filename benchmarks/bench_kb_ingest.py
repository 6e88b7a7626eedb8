"""Knowledge-base ingestion throughput and ask latency, side by side with references in the same process.

    .venv/bin/python benchmarks/bench_kb_ingest.py [--corpus DIR] [--pdf-pages 40] [--repeat 3]

Ingestion: characters/s and pages/s of `KnowledgeService.ingest` (read + mask + chunk + BM25 tokens +
persist) on the pilot corpus (../shared/corpus when present, else the product guide) and on a
generated multi-page PDF. Reference: llama-index's stock pipeline on the same text
(SentenceSplitter + BM25Retriever over jieba tokens), and the bare jieba tokenisation floor.
Ask: latency percentiles of `ask` over the QA set, against a bare BM25 top-5 lookup.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(round(q * (len(values) - 1))))], 2)


def make_pdf(path: Path, pages: int) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=10)
    para = ("The desk hedges delta daily and vega weekly. Snowball notes knock out at 103 percent of the initial "
            "price and knock in at 75 percent. Margin calls are settled before 15:00 on the next trading day. ")
    for i in range(pages):
        pdf.add_page()
        pdf.multi_cell(0, 5, f"Section {i + 1}. " + para * 8)
    pdf.output(str(path))
    return path


def bench_ingest(files: list[Path], repeat: int) -> dict:
    from otcdesk.knowledge.readers import read_document
    from otcdesk.knowledge.service import KnowledgeService

    chars = sum(len(read_document(f).text) for f in files)
    pages = sum(read_document(f).metadata["pages"] for f in files)
    times = []
    chunks = 0
    for _ in range(repeat):
        root = Path(tempfile.mkdtemp())
        t0 = time.perf_counter()
        res = KnowledgeService(root, "bench").ingest(files)
        times.append(time.perf_counter() - t0)
        chunks = res["chunks"]
        shutil.rmtree(root, ignore_errors=True)
    best = min(times)
    return {"files": len(files), "chars": chars, "pages": pages, "chunks": chunks, "seconds": round(best, 3),
            "chars_per_s": round(chars / best), "pages_per_s": round(pages / best, 2)}


def bench_reference(files: list[Path], repeat: int) -> dict:
    """llama-index's stock pipeline on the same text, and the jieba tokenisation floor."""
    import jieba
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.schema import Document
    from llama_index.retrievers.bm25 import BM25Retriever

    from otcdesk.knowledge.readers import read_document

    texts = [read_document(f).text for f in files]
    chars = sum(len(t) for t in texts)
    jieba.initialize()
    stock, floor = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        nodes = SentenceSplitter(chunk_size=256, chunk_overlap=20).get_nodes_from_documents(
            [Document(text=t) for t in texts])
        BM25Retriever.from_defaults(nodes=nodes, similarity_top_k=5,
                                    tokenizer=lambda s: [w for w in jieba.lcut_for_search(s) if w.strip()])
        stock.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for t in texts:
            jieba.lcut_for_search(t)
        floor.append(time.perf_counter() - t0)
    return {"llama_index_stock_chars_per_s": round(chars / min(stock)),
            "jieba_tokenise_only_chars_per_s": round(chars / min(floor))}


def bench_ask(corpus_files: list[Path], questions: list[str]) -> dict:
    from otcdesk.knowledge.service import KnowledgeService

    root = Path(tempfile.mkdtemp())
    svc = KnowledgeService(root, "bench")
    svc.ingest(corpus_files)
    svc.ask(questions[0])  # warm the caches (jieba dictionary, BM25 matrix)
    lat, ret = [], []
    for q in questions:
        t0 = time.perf_counter()
        svc.ask(q)
        lat.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        svc.index.bm25_rank(q, top=5)
        ret.append((time.perf_counter() - t0) * 1000)
    shutil.rmtree(root, ignore_errors=True)
    return {"questions": len(questions), "ask_p50_ms": _pct(lat, 0.5), "ask_p95_ms": _pct(lat, 0.95),
            "ask_mean_ms": round(statistics.mean(lat), 2), "bm25_top5_p50_ms": _pct(ret, 0.5),
            "bm25_top5_p95_ms": _pct(ret, 0.95)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(REPO.parent / "shared" / "corpus"))
    ap.add_argument("--pdf-pages", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)

    corpus = Path(args.corpus)
    files = sorted(corpus.glob("*.txt")) if corpus.is_dir() else []
    label = "pilot corpus" if files else "product guide"
    files = files or [REPO / "otcdesk" / "app" / "data" / "product_guide.md"]
    tmp = Path(tempfile.mkdtemp())
    pdf = make_pdf(tmp / "bench.pdf", args.pdf_pages)

    out = {"ingest": {label: bench_ingest(files, args.repeat), "generated pdf": bench_ingest([pdf], args.repeat)},
           "reference": {label: bench_reference(files, args.repeat)}}
    qa = REPO / "tests" / "data" / "kb_qa_corpus.jsonl"
    questions = ([json.loads(line)["question"] for line in qa.read_text(encoding="utf-8").splitlines() if line.strip()]
                 if files[0].suffix == ".txt" and qa.exists() else
                 ["雪球的敲入价一般是多少？", "客户准入需要提交哪些材料？", "报价有效期是多久？", "比特币期权怎么报价？"])
    out["ask"] = bench_ask(files, questions)
    shutil.rmtree(tmp, ignore_errors=True)
    for section, rows in out.items():
        print(json.dumps({section: rows}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
