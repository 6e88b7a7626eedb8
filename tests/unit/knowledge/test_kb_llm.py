"""The generated-answer path: the groundedness check, and the real local LLM server (tiny Gemma)."""
import pytest

from kb_docs import kb_corpus  # noqa: F401 - fixture
from otcdesk.knowledge.answer import answer_entities, groundedness
from otcdesk.knowledge.qagen import llm_pairs, split_grounded
from otcdesk.knowledge.service import KnowledgeService

PASSAGE = "5. RPA 日均处理交易确认书 100 笔。GLEBA 由中国银河证券股份有限公司研发，预计日均处理估值请求 4000 次左右。"


def test_groundedness_accepts_supported_answers():
    ok, bad = groundedness("RPA 每天处理 100 笔交易确认书，GLEBA 日均处理 4000 次估值请求。", PASSAGE)
    assert ok and bad == []


def test_groundedness_rejects_a_number_not_in_the_passages():
    ok, bad = groundedness("RPA 每天处理 150 笔交易确认书。", PASSAGE)
    assert not ok and "150" in bad


def test_groundedness_rejects_an_entity_not_in_the_passages():
    assert any("华泰" in e for e in answer_entities("GLEBA 由华泰证券股份有限公司研发。"))
    ok, bad = groundedness("GLEBA 由华泰证券股份有限公司研发。", PASSAGE)
    assert not ok and any("华泰" in b for b in bad)
    ok, bad = groundedness("GLEBA 运行在 Kubernetes 上。", PASSAGE)
    assert not ok and "Kubernetes" in bad


@pytest.mark.llm
def test_llm_answers_are_grounded_or_fall_back(llm_server, kb_corpus, tmp_path):
    svc = KnowledgeService(tmp_path, "llm", llm=llm_server.client, llm_timeout=60)
    svc.ingest([kb_corpus])
    res = svc.ask("雪球产品的敲出价是多少？")
    assert res["refused"] is False and res["citations"]
    if res["mode"] == "generated":
        ok, bad = groundedness(res["answer"], "\n".join(c["text"] for c in res["citations"]))
        assert ok, bad
    else:  # the tiny model's answer was rejected: the extractive answer stands, with the reason
        assert res["mode"] == "extractive" and res.get("llm_rejected")
        assert "103%" in res["answer"]
    refused = svc.ask("凤凰结构的派息线是多少？")
    assert refused["refused"] and refused["citations"] == []


def test_qa_filter_keeps_grounded_pairs_and_rejects_the_rest():
    kept, rejected = split_grounded([
        {"question": "RPA 每天处理多少笔确认书？", "answer": "100 笔"},
        {"question": "RPA 每天处理多少笔确认书？", "answer": "150 笔"},
        {"question": "GLEBA 由谁研发？", "answer": "华泰证券股份有限公司"},
        {"question": "短", "answer": "100 笔"},
        {"question": "GLEBA 日均处理多少估值请求？", "answer": ""},
    ], PASSAGE)
    assert kept == [("RPA 每天处理多少笔确认书？", "100 笔")]
    assert [a for _, a in rejected] == ["150 笔", "华泰证券股份有限公司", "100 笔", ""]


@pytest.mark.llm
def test_llm_qa_generation_asks_the_model_per_passage_and_keeps_only_grounded_pairs(llm_server, kb_corpus, tmp_path):
    """Checks that the real model is asked once per passage and answers schema-valid JSON every time (no
    failure swallowed), and that every pair it proposed went through the grounding filter. The tiny model's
    pairs are rarely grounded, so how many are kept is reported, not asserted; the filter itself is checked
    deterministically in test_qa_filter_keeps_grounded_pairs_and_rejects_the_rest."""
    svc = KnowledgeService(tmp_path, "llmqa", llm=llm_server.client, llm_timeout=60)
    svc.ingest([kb_corpus / "snowball.md"])
    stats: dict = {}
    rows = llm_pairs(svc.index.nodes(), llm_server.client, timeout=60, stats=stats)
    assert stats["asked"] >= 1 and stats["failed"] == 0, stats
    assert stats["kept"] == len(rows) <= stats["proposed"]
    for r in rows:
        assert r["kind"] == "llm" and groundedness(r["answer"], r["passage"])[0]
    print(f"LLM QA pairs: {stats}")
