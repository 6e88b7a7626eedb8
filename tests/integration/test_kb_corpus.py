"""End-to-end evaluation over the five public pilot-project disclosures in ../shared/corpus/.

Reads the corpus from beside the repository (it is not copied in). Under CI=true a missing corpus
fails the run; elsewhere the test skips and says why.

The in-sample set (tests/data/kb_qa_corpus.jsonl) and the dev-kbgen batch (tests/data/kb_dev_kbgen.jsonl, written
before the system saw it) are scored per batch. The floors below are what the generalising pipeline of issue 13
measures today, NOT the issue's targets (0.90 answered with citation, every out-of-corpus question refused): the
old rule-based answerer scored 0.956 in-sample by naming the corpus, and 0.77 on fresh questions. Raise the floors
as the pipeline improves; never lower them to pass.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CORPUS = REPO_ROOT.parent / "shared" / "corpus"
QA_SET = REPO_ROOT / "tests" / "data" / "kb_qa_corpus.jsonl"
DEV_SET = REPO_ROOT / "tests" / "data" / "kb_dev_kbgen.jsonl"
FRESH_PILOT = REPO_ROOT / "tests" / "data" / "kb_fresh_pilot_b1.jsonl"
FRESH_CORPUS2 = REPO_ROOT / "tests" / "data" / "kb_fresh_corpus2_b1.jsonl"
CORPUS2 = REPO_ROOT / "tests" / "data" / "kb_corpus2"
FRESH_PILOT2 = REPO_ROOT / "tests" / "data" / "kb_fresh_pilot_b2.jsonl"
FRESH_CORPUS3 = REPO_ROOT / "tests" / "data" / "kb_fresh_corpus3_b1.jsonl"
CORPUS3 = REPO_ROOT / "tests" / "data" / "kb_corpus3"
FRESH_PILOT3 = REPO_ROOT / "tests" / "data" / "kb_fresh_pilot_b3.jsonl"
FRESH_CORPUS4 = REPO_ROOT / "tests" / "data" / "kb_fresh_corpus4_b1.jsonl"
CORPUS4 = REPO_ROOT / "tests" / "data" / "kb_corpus4"
FRESH_PILOT4 = REPO_ROOT / "tests" / "data" / "kb_fresh_pilot_b4.jsonl"
FRESH_CORPUS5 = REPO_ROOT / "tests" / "data" / "kb_fresh_corpus5_b1.jsonl"
CORPUS5 = REPO_ROOT / "tests" / "data" / "kb_corpus5"
FRESH_PILOT5 = REPO_ROOT / "tests" / "data" / "kb_fresh_pilot_b5.jsonl"
FRESH_CORPUS6 = REPO_ROOT / "tests" / "data" / "kb_fresh_corpus6_b1.jsonl"
CORPUS6 = REPO_ROOT / "tests" / "data" / "kb_corpus6"
GUIDE = REPO_ROOT / "otcdesk" / "app" / "data" / "product_guide.md"

# Floors per batch: measured at threshold 0.75 minus a small margin. in-sample and dev-kbgen: development data from
# the start; pilot-fresh-1 and corpus2-fresh-1: first-sight 0.133 / 0.16 answered (tests/data/README.md), now
# development data too (measured after tuning against them: 0.267 / 0.56 answered, 0.833 / 0.76 refused).
FLOORS = {  # batch: (answered correctly with the right citation, out-of-corpus refused)
    "in-sample": (0.70, 0.78),
    "dev-kbgen": (0.75, 0.9),
    "pilot-fresh-1": (0.23, 0.8),
    "corpus2-fresh-1": (0.52, 0.72),
    # second round: first-sight 0.44 / 0.88 and 0.333 / 0.833 (tests/data/README.md); floors guard against regressions
    "pilot-fresh-2": (0.40, 0.84),
    "corpus3-fresh-1": (0.29, 0.79),
    # third round (session 5): first-sight 0.40 / 0.76 and 0.32 / 0.56 (tests/data/README.md)
    "pilot-fresh-3": (0.36, 0.72),
    "corpus4-fresh-1": (0.28, 0.52),
    # fourth round (session 5, after the round-3 fixes): first-sight 0.25 / 0.90 and 0.10 / 0.85
    "pilot-fresh-4": (0.20, 0.85),
    "corpus5-fresh-1": (0.05, 0.80),
    # fifth round (session 6): first-sight 0.25 / 0.90 and 0.35 / 0.75 on main as found; 0.25 / 0.95 and 0.35 / 0.75 after
    "pilot-fresh-5": (0.20, 0.85),
    "corpus6-fresh-1": (0.30, 0.70),
}


def _rows(path: Path, batch: str | None = None) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [{**r, "batch": batch} if batch else r for r in rows]


def _check_floors(summary: dict, batches: list[str]) -> None:
    for b in batches:
        ans, ref = FLOORS[b]
        got = summary["batches"][b]
        assert got["answer_with_citation_accuracy"] >= ans, (b, got)
        assert got["refusal_rate_out_of_corpus"] >= ref, (b, got)


def _corpus_or_skip() -> Path:
    if CORPUS.is_dir() and any(CORPUS.glob("*.txt")):
        return CORPUS
    reason = f"pilot corpus not found at {CORPUS}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason + " (required under CI)")
    print(reason + "; skipping the end-to-end knowledge evaluation")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def pilot_kb(tmp_path_factory):
    from otcdesk.knowledge.service import KnowledgeService

    corpus = _corpus_or_skip()
    svc = KnowledgeService(tmp_path_factory.mktemp("kb"), "pilot")
    res = svc.ingest([corpus])
    assert res["documents"] == 5 and not res["failed"]
    return svc


def test_qa_set_meets_the_bar(pilot_kb, tmp_path):
    from otcdesk.knowledge.evaluation import html_report

    rows = [{**json.loads(line), "batch": "in-sample"} for line in QA_SET.read_text(encoding="utf-8").splitlines()
            if line.strip()]
    assert sum(1 for r in rows if r["answerable"]) >= 60 and sum(1 for r in rows if not r["answerable"]) >= 15
    rows += [r for r in map(json.loads, DEV_SET.read_text(encoding="utf-8").splitlines()) if r["corpus"] == "pilot"]
    rows += _rows(FRESH_PILOT, "pilot-fresh-1") + _rows(FRESH_PILOT2, "pilot-fresh-2") + _rows(FRESH_PILOT3, "pilot-fresh-3")
    rows += _rows(FRESH_PILOT4, "pilot-fresh-4") + _rows(FRESH_PILOT5, "pilot-fresh-5")
    result = pilot_kb.evaluate(rows, k=5)
    s = result["summary"]
    (tmp_path / "kb_report.html").write_text(html_report(result), encoding="utf-8")
    print(json.dumps(s, ensure_ascii=False))
    misses = [(r["question"], r["answer"][:80]) for r in result["rows"]
              if (r["answerable"] and not (r["answer_correct"] and r["citation_correct"]))
              or (not r["answerable"] and not r["refused"])]
    print("\n".join(f"MISS {q} -> {a}" for q, a in misses))
    _check_floors(s, ["in-sample", "dev-kbgen", "pilot-fresh-1", "pilot-fresh-2", "pilot-fresh-3", "pilot-fresh-4",
                      "pilot-fresh-5"])
    assert s["hit_rate@5"] >= 0.9 and s["context_recall"] is not None and s["refusal_precision"] is not None
    assert s["latency_ms"]["p95"] < 1000


def test_cli_contract_over_the_corpus(tmp_path):
    corpus = _corpus_or_skip()
    otcdesk = Path(sys.executable).parent / "otcdesk"
    env = {**os.environ, "OTCDESK_DATA_DIR": str(tmp_path / "var")}
    env.pop("DATABASE_URL", None)
    env.pop("OTCDESK_LLM_BASE_URL", None)
    env.pop("OTCDESK_EMBED_BASE_URL", None)
    out = subprocess.run([str(otcdesk), "kb", "ingest", str(corpus), "--kb", "pilot"], env=env,
                         capture_output=True, text=True, timeout=300, check=True)
    doc = json.loads(out.stdout)
    assert doc["kb"] == "pilot" and doc["documents"] == 5 and doc["chunks"] > 0
    assert isinstance(doc["masked"], int) and doc["masked"] > 0  # the participant list names people
    questions = ["RPA每天处理多少笔交易确认书？", "华泰证券牵头申报了什么试点项目？", "中信建投证券的注册资本是多少？"]
    out = subprocess.run([str(otcdesk), "kb", "ask", "--jsonl", "--kb", "pilot"], input="\n".join(questions) + "\n",
                         env=env, capture_output=True, text=True, timeout=300, check=True)
    answers = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(answers) == 3
    assert not answers[0]["refused"] and "100" in answers[0]["answer"]
    assert answers[0]["citations"][0]["source"] == "001_3a20c71bbbd775ee.txt"
    assert answers[1]["refused"] and answers[1]["citations"] == []
    assert "77.57" in answers[2]["answer"] and answers[2]["citations"][0]["source"] == "003_ff1fcb2e286b14e7.txt"


def test_second_corpus_fresh_batch(tmp_path):
    """The second corpus (operating manual, regulation digest, client FAQ, product guide) ships in tests/data."""
    from otcdesk.knowledge.service import KnowledgeService

    svc = KnowledgeService(tmp_path, "corpus2")
    res = svc.ingest([CORPUS2, GUIDE])
    assert res["documents"] == 4 and not res["failed"]
    result = svc.evaluate(_rows(FRESH_CORPUS2, "corpus2-fresh-1"), k=5)
    s = result["summary"]
    print(json.dumps(s["batches"], ensure_ascii=False))
    assert s["hit_rate@5"] >= 0.9
    _check_floors(s, ["corpus2-fresh-1"])


@pytest.mark.parametrize("corpus, batch_file, batch, hit_floor", [
    (CORPUS3, FRESH_CORPUS3, "corpus3-fresh-1", 0.9),  # collateral and settlement, an IT incident runbook, a compliance FAQ
    (CORPUS4, FRESH_CORPUS4, "corpus4-fresh-1", 0.9),  # counterparty credit lines, valuation and model validation, new products
    (CORPUS5, FRESH_CORPUS5, "corpus5-fresh-1", 0.85),  # total return swaps, trader conduct and mandates, reporting
    (CORPUS6, FRESH_CORPUS6, "corpus6-fresh-1", 0.9),  # market risk limits, hedging and stock borrowing, complaints
])
def test_unseen_corpus_fresh_batch(tmp_path, corpus, batch_file, batch, hit_floor):
    """Corpora no code had seen when their fresh batches were written (tests/data/README.md), three documents each."""
    from otcdesk.knowledge.service import KnowledgeService

    svc = KnowledgeService(tmp_path, batch.split("-")[0])
    res = svc.ingest([corpus])
    assert res["documents"] == 3 and not res["failed"]
    result = svc.evaluate(_rows(batch_file, batch), k=5)
    s = result["summary"]
    print(json.dumps(s["batches"], ensure_ascii=False))
    assert s["hit_rate@5"] >= hit_floor
    _check_floors(s, [batch])
