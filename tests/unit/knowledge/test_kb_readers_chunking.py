"""Readers for each format (tables as rows) and Chinese-aware chunking."""
from pathlib import Path

import pytest

from kb_docs import SNOWBALL_MD, make_docx, make_pdf
from otcdesk.knowledge.chunking import chunk_text
from otcdesk.knowledge.readers import ReadError, flatten_inline_html, read_document


def test_txt_md_html_read(tmp_path):
    (tmp_path / "a.md").write_text(SNOWBALL_MD, encoding="utf-8")
    (tmp_path / "b.txt").write_bytes("第一行\n第二行".encode("gb18030"))
    (tmp_path / "c.html").write_text(
        "<html><body><h2>标题</h2><p>段落一。</p><table><tr><td>雪球</td><td>126</td></tr></table>"
        "<script>var x=1;</script></body></html>", encoding="utf-8")
    md = read_document(tmp_path / "a.md")
    assert md.metadata["source"] == "a.md" and "敲出价：期初价格的 103%" in md.text
    assert read_document(tmp_path / "b.txt").text == "第一行\n第二行"  # GB18030 decoded
    html = read_document(tmp_path / "c.html").text
    assert "## 标题" in html and "雪球\t126" in html and "var x" not in html


def test_pdf_text_layer_and_table_rows(tmp_path):
    doc = read_document(make_pdf(tmp_path / "p.pdf"))
    assert doc.metadata["pages"] == 2 and doc.metadata["format"] == "pdf"
    assert "25 million CNY" in doc.text
    assert "Snowball" in doc.text and "300 million CNY" in doc.text
    assert "within 2 hours" in doc.text


def test_docx_paragraphs_headings_and_table_rows(tmp_path):
    doc = read_document(make_docx(tmp_path / "d.docx"))
    assert "# 交易确认书要素" in doc.text
    assert "名义本金\t不低于 100 万元" in doc.text
    assert "期权费支付日\tT+2" in doc.text


@pytest.mark.parametrize("name,content,reason", [
    ("broken.pdf", b"%PDF-1.4 this is not a pdf", "PDF"),
    ("broken.docx", b"PK not really a zip", "DOCX"),
    ("data.xyz", b"whatever", "unsupported"),
])
def test_unreadable_files_raise_with_reason(tmp_path, name, content, reason):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(ReadError, match=reason):
        read_document(p)


def test_inline_html_in_text_is_flattened():
    out = flatten_inline_html("<p>一。</p> <p>二。</p><input checked type=checkbox/>科技赋能")
    assert "<p>" not in out and "一。" in out and "☑科技赋能" in out


def test_chunks_end_at_sentence_ends_and_keep_headings():
    text = "# 总则\n\n## 适用范围\n" + "本办法适用于场外期权业务。" * 40 + "\n## 附则\n本办法自发布之日起施行。"
    chunks = chunk_text(text, "rules.md", max_chars=200)
    assert len(chunks) > 3
    for c in chunks:
        assert c.get_content().endswith(("。", "\n")) or c.get_content()[-1] in "。！？；"
        assert c.metadata["source"] == "rules.md"
    assert chunks[0].metadata["heading"] == "总则 > 适用范围"
    assert chunks[-1].metadata["heading"] == "总则 > 附则"
    assert [c.metadata["position"] for c in chunks] == list(range(len(chunks)))


def test_table_rows_keep_their_labels():
    text = "一、项目概览\t1.1 项目编号\tBJ-SD-202404\n\t1.2 项目名称\t场外衍生品数字化\n\t1.3 项目类型\t科技赋能\n"
    chunks = chunk_text(text, "t.txt")
    body = chunks[0].get_content()
    assert "1.1 项目编号：BJ-SD-202404" in body and "1.3 项目类型：科技赋能" in body
    assert chunks[0].metadata["heading"] == "一、项目概览"


def test_sentence_boundaries_include_semicolon():
    from otcdesk.knowledge.text import split_sentences

    assert split_sentences("甲；乙！丙？丁。") == ["甲；", "乙！", "丙？", "丁。"]
