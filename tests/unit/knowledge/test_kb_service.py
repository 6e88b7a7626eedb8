"""Ingestion (formats, masking counts, failures), dedup on re-ingest, retrieval, answers and refusals."""
import shutil

from kb_docs import SNOWBALL_MD, kb_corpus, kb_service  # noqa: F401 - fixtures
from otcdesk.knowledge.service import KnowledgeService


def test_ingest_reports_documents_chunks_and_masking(kb_corpus, tmp_path):
    svc = KnowledgeService(tmp_path, "fmt")
    (kb_corpus.parent / "bad").mkdir(exist_ok=True)
    bad = kb_corpus.parent / "bad" / "scan.pdf"
    bad.write_bytes(b"%PDF-1.4 broken")
    res = svc.ingest([kb_corpus, bad])
    assert res["kb"] == "fmt" and res["documents"] == 5 and res["chunks"] >= 5
    assert res["failed"] == [{"source": "scan.pdf", "reason": res["failed"][0]["reason"]}]
    assert "PDF" in res["failed"][0]["reason"]
    # the docx lists two contacts and a mobile number
    assert res["masked_by_kind"]["person"] == 2 and res["masked_by_kind"]["mobile"] == 1
    assert res["masked"] == sum(res["masked_by_kind"].values())
    originals = {m["original"] for m in res["mappings"]}
    assert {"张伟", "李娜", "13812345678"} <= originals
    stored = "\n".join(n.get_content() for n in svc.index.nodes())
    assert "13812345678" not in stored and "张伟" not in stored  # nothing personal is indexed


def test_reingest_replaces_never_duplicates(tmp_path):
    src = tmp_path / "docs"
    src.mkdir()
    f = src / "snowball.md"
    f.write_text(SNOWBALL_MD, encoding="utf-8")
    svc = KnowledgeService(tmp_path / "kb", "dedup")
    first = svc.ingest([f])
    n = first["kb_chunks"]
    again = svc.ingest([f])
    assert again["unchanged"] == ["snowball.md"] and again["kb_chunks"] == n
    f.write_text(SNOWBALL_MD.replace("15.2%", "18.8%"), encoding="utf-8")
    changed = svc.ingest([f])
    assert changed["replaced"] == ["snowball.md"] and changed["kb_chunks"] == n
    assert "18.8%" in svc.ask("雪球的票息是多少？")["answer"]
    shutil.copy(f, src / "copy.md")
    dup = svc.ingest([src / "copy.md"])
    assert dup["duplicates"] == [{"source": "copy.md", "duplicate_of": "snowball.md"}]
    assert dup["kb_documents"] == 1
    # a fresh instance sees the persisted index
    assert KnowledgeService(tmp_path / "kb", "dedup").stats()["chunks"] == n


def test_retrieval_ranks_the_right_document_first(kb_service):
    assert kb_service.retrieve("敲入价是期初价格的多少", k=3)[0]["source"] == "snowball.md"
    assert kb_service.retrieve("反洗钱筛查需要几个工作日", k=3)[0]["source"] == "onboarding.txt"
    assert kb_service.retrieve("delta limit per underlying", k=3)[0]["source"] == "hedging.pdf"


def test_extractive_answers_keep_numbers_and_units(kb_service):
    cases = [
        ("雪球产品的敲出价是多少？", "103%", "snowball.md"),
        ("合规部门完成反洗钱筛查需要多久？", "3 个工作日", "onboarding.txt"),
        ("本月新增名义本金是多少？", "38.5 亿元", "report.html"),
        ("鲨鱼鳍本月有多少笔？", "48", "report.html"),
        ("交易确认书须在成交后多久签署？", "1 个交易日", "confirmation.docx"),
        ("What is the delta limit per underlying?", "25 million CNY", "hedging.pdf"),
    ]
    for question, expected, source in cases:
        res = kb_service.ask(question)
        assert not res["refused"], question
        assert expected in res["answer"], (question, res["answer"])
        assert res["citations"][0]["source"] == source
        assert set(res["citations"][0]) >= {"source", "text", "score", "chunk_id"}


def test_out_of_corpus_and_near_miss_questions_are_refused(kb_service):
    for q in ["凤凰结构的派息线一般是多少？",          # the corpus never mentions 凤凰
              "雪球产品的管理费率是多少？",            # near miss: shares 雪球/产品 with the corpus
              "开户需要提交哪些税务登记证明？",        # near miss on the onboarding text
              "鲨鱼鳍的参与率是多少？",
              "What is the vega limit in 2019?"]:
        res = kb_service.ask(q)
        assert res["refused"], (q, res["answer"])
        assert res["citations"] == [] and "无法回答" in res["answer"]


def test_masked_personal_data_is_not_an_answer(kb_service):
    res = kb_service.ask("交易确认书的联系人是谁？")
    assert res["refused"] or "[NAME_" not in res["answer"]


def test_passage_opens_the_cited_chunk_with_neighbours(kb_service):
    res = kb_service.ask("雪球产品的敲入价是多少？")
    p = kb_service.passage(res["citations"][0]["chunk_id"])
    assert p["source"] == "snowball.md" and "75%" in p["text"]
    assert kb_service.passage("no-such-chunk") is None


class CharNgramEmbedder:
    """A real (if simple) embedding model: hashed character bigrams, L2-normalised by the index."""

    def __init__(self, dim: int = 256):
        self.dim = dim
        self.calls = 0

    def embed(self, texts):
        self.calls += 1
        out = []
        for t in texts:
            v = [0.0] * self.dim
            for a, b in zip(t, t[1:]):
                v[hash(a + b) % self.dim] += 1.0
            out.append(v)
        return out


def test_dense_vectors_are_stored_and_fused(kb_corpus, tmp_path):
    emb = CharNgramEmbedder()
    svc = KnowledgeService(tmp_path, "dense", embedder=emb)
    svc.ingest([kb_corpus])
    assert svc.index.vectors is not None and len(svc.index.vector_ids) == svc.stats()["chunks"]
    hits = svc.index.dense_rank("敲入价 期初价格", emb, top=3)
    assert hits and svc.index.node(hits[0][0]).metadata["source"] == "snowball.md"
    res = svc.ask("雪球产品的敲入价是多少？")
    assert "75%" in res["answer"] and emb.calls >= 2
    reloaded = KnowledgeService(tmp_path, "dense", embedder=emb)
    assert reloaded.index.vectors.shape[0] == len(reloaded.index.vector_ids)


def test_knowledge_bases_are_separate(kb_corpus, tmp_path):
    a = KnowledgeService(tmp_path, "a")
    a.ingest([kb_corpus / "snowball.md"])
    b = KnowledgeService(tmp_path, "b")
    assert b.ask("雪球产品的敲出价是多少？")["refused"]
    assert not a.ask("雪球产品的敲出价是多少？")["refused"]
