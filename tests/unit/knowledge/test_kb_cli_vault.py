"""`otcdesk kb ...` end to end on a temporary data dir, and the PII vault with audited unmasking."""
import io
import json

import pytest
from sqlmodel import Session, select

from otcdesk.app.cli import main
from kb_docs import kb_corpus  # noqa: F401 - fixture


@pytest.fixture()
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("OTCDESK_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("OTCDESK_LLM_BASE_URL", raising=False)
    monkeypatch.delenv("OTCDESK_EMBED_BASE_URL", raising=False)
    return tmp_path / "var"


def run(capsys, *argv):
    rc = main(list(argv))
    out = capsys.readouterr().out.strip().splitlines()
    return rc, [json.loads(line) for line in out]


def test_ingest_ask_jsonl_qagen_eval(kb_corpus, data_dir, capsys, monkeypatch, tmp_path):
    rc, [doc] = run(capsys, "kb", "ingest", str(kb_corpus), "--kb", "desk")
    assert rc == 0
    assert doc["kb"] == "desk" and doc["documents"] == 5 and doc["chunks"] >= 5
    assert doc["masked"] == 3 and doc["vault_stored"] == 3 and "mappings" not in doc
    assert (data_dir / "kb" / "desk" / "docstore.json").exists()

    rc, [again] = run(capsys, "kb", "ingest", str(kb_corpus), "--kb", "desk")
    assert again["kb_chunks"] == doc["kb_chunks"] and again["vault_stored"] == 0

    rc, [ans] = run(capsys, "kb", "ask", "雪球产品的敲入价是多少？", "--kb", "desk")
    assert rc == 0 and ans["refused"] is False and "75%" in ans["answer"]
    assert ans["citations"][0]["source"] == "snowball.md"
    assert {"source", "text", "score"} <= set(ans["citations"][0])

    monkeypatch.setattr("sys.stdin", io.StringIO("本月新增名义本金是多少？\n凤凰结构的派息线是多少？\n\n"
                                                  '{"question": "客户服务热线是多少？"}\n'))
    rc, lines = run(capsys, "kb", "ask", "--jsonl", "--kb", "desk")
    assert rc == 0 and len(lines) == 4
    assert "38.5 亿元" in lines[0]["answer"] and lines[1]["refused"] and lines[2]["refused"]
    assert "95553" in lines[3]["answer"]

    qa = tmp_path / "qa.jsonl"
    rc, [gen] = run(capsys, "kb", "qa-gen", "--kb", "desk", "--out", str(qa), "--no-llm")
    assert rc == 0 and gen["pairs"] == len(qa.read_text(encoding="utf-8").splitlines()) > 0

    report = tmp_path / "report.html"
    rc, [ev] = run(capsys, "kb", "eval", "--qa", str(qa), "--kb", "desk", "--html", str(report))
    assert rc == 0 and ev["summary"]["questions"] == gen["pairs"]
    assert "<svg" in report.read_text(encoding="utf-8")


def test_fresh_data_dir_and_bad_input(data_dir, capsys):
    rc, [ans] = run(capsys, "kb", "ask", "雪球的敲出价是多少？")
    assert rc == 0 and ans["refused"] is True and ans["citations"] == []
    rc, [err] = run(capsys, "kb", "ingest", "/no/such/file.txt")
    assert rc == 2 and set(err) == {"error", "detail"}
    rc, [err] = run(capsys, "kb", "ask", "问题", "--kb", "../escape")
    assert rc == 2 and err["error"] == "invalid knowledge base name"
    rc, [err] = run(capsys, "kb", "eval", "--qa", "/no/such.jsonl")
    assert rc == 2


def test_vault_unmasks_only_for_compliance_and_admin_and_audits(tmp_path):
    from otcdesk.app.db import init_db, make_engine
    from otcdesk.app.repositories import AuditRepository
    from otcdesk.app.models import PiiVault
    from otcdesk.app.vault import UnmaskDenied, store_mappings, unmask
    from otcdesk.knowledge.masking import PiiMasker

    engine = make_engine(f"sqlite:///{tmp_path / 'vault.db'}")
    init_db(engine)
    masked = PiiMasker(b"k").mask("联系人：张伟、李娜，手机 13812345678。")
    assert store_mappings(engine, "desk", masked.mappings) == 3
    assert store_mappings(engine, "desk", masked.mappings) == 0  # idempotent
    with Session(engine) as s:
        assert len(s.exec(select(PiiVault)).all()) == 3

    with pytest.raises(UnmaskDenied):
        unmask(masked.text, "trader", "alice", engine, kb="desk")
    clear = unmask(masked.text, "compliance", "carol", engine, kb="desk")
    assert clear == "联系人：张伟、李娜，手机 13812345678。"
    assert unmask(masked.text, "admin", "root", engine, kb="other") == masked.text  # other KB's vault is empty

    with Session(engine) as s:
        rows = AuditRepository(s).entries(subject="kb:desk")
    assert [r.action for r in rows] == ["pii.unmask_denied", "pii.unmask"]
    assert rows[0].actor == "alice" and rows[1].actor == "carol"
    assert sorted(rows[1].detail["kinds"]) == ["mobile", "person"]
    assert "13812345678" not in json.dumps([r.detail for r in rows], ensure_ascii=False)
