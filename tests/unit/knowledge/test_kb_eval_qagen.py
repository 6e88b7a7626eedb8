"""QA generation (deterministic, de-duplicated, JSONL) and the evaluation report (JSON + HTML chart)."""
import json

from kb_docs import kb_corpus, kb_service  # noqa: F401 - fixtures
from otcdesk.knowledge.evaluation import answer_correct, evaluate, html_report
from otcdesk.knowledge.qagen import dedupe, write_jsonl


def test_generated_pairs_are_grounded_deduplicated_and_exported(kb_service, tmp_path):
    rows = kb_service.generate_qa()
    assert len(rows) >= 5
    kinds = {r["kind"] for r in rows}
    assert {"row", "number"} <= kinds
    for r in rows:
        assert r["answerable"] is True and r["source"] and r["chunk_id"]
        # the answer is quoted from its passage, so a reviewer can check it at a glance
        assert r["answer"].split("：")[-1].strip()[:6] in r["passage"]
        assert "[NAME_" not in r["answer"] and "[PHONE_" not in r["answer"]
    qs = [r["question"] for r in rows]
    assert len(qs) == len(set(qs))
    assert dedupe(rows + rows) == rows
    out = tmp_path / "qa.jsonl"
    assert write_jsonl(rows, out) == len(rows)
    assert [json.loads(line)["question"] for line in out.read_text(encoding="utf-8").splitlines()] == qs


def test_generated_pairs_are_answered_by_the_desk(kb_service):
    rows = [r for r in kb_service.generate_qa() if r["kind"] in ("row", "number")]
    res = evaluate(kb_service, rows, k=5)
    assert res["summary"]["hit_rate@5"] >= 0.9
    assert res["summary"]["answer_accuracy"] >= 0.7


def test_evaluation_metrics_and_html_report(kb_service):
    qa = [
        {"question": "雪球产品的敲入价是多少？", "answer": "75%", "source": "snowball.md", "keywords": ["75%"]},
        {"question": "客户服务热线是多少？", "answer": "95553", "source": "onboarding.txt"},
        {"question": "本月鲨鱼鳍的名义本金是多少？", "answer": "9.7 亿元", "source": "report.html"},
        {"question": "凤凰结构的派息线是多少？", "answer": None, "answerable": False},
        {"question": "雪球产品的管理费率是多少？", "answerable": False},
    ]
    res = evaluate(kb_service, qa, k=3)
    s = res["summary"]
    assert s["questions"] == 5 and s["answerable"] == 3 and s["unanswerable"] == 2
    assert s["hit_rate@3"] == 1.0 and s["mrr@3"] > 0.6
    assert s["answer_accuracy"] == 1.0 and s["citation_accuracy"] == 1.0
    assert s["refusal_rate_out_of_corpus"] == 1.0 and s["false_refusal_rate"] == 0.0
    assert set(s["latency_ms"]) >= {"p50", "p90", "p95", "p99"}
    html = html_report(res)
    assert html.startswith("<!doctype html>") and "<svg" in html and "answer_accuracy" in html
    # self-contained: no external scripts, styles or images
    assert 'src="http' not in html and "<link" not in html and "url(http" not in html
    assert "凤凰结构的派息线是多少？" in html


def test_answer_correctness_rules():
    assert answer_correct("注册资本 77.57 亿元。", "77.57亿元", ["77.57亿元"])
    assert not answer_correct("注册资本 77.5 亿元。", "77.57亿元", ["77.57亿元"])
    assert answer_correct("牵头单位是海通证券股份有限公司", "海通证券股份有限公司")


def test_keyword_match_ignores_spaces_and_character_width():
    assert answer_correct("市场大幅波动的日子可超过800笔。", None, ["800 笔"])
    assert answer_correct("比例为１０％，上限 ５０００ 万元", None, ["10%", "5000万元"])
    assert answer_correct("ＲＰＡ 每天处理", None, ["rpa"])
    assert not answer_correct("可超过 80 笔", None, ["800 笔"])
