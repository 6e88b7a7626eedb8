"""Negative-news matching (otcdesk.app.kyc.news): full and short institution names, whole person names, no silly hits."""
from __future__ import annotations

import docx
import pytest

from otcdesk.app.kyc.news import NewsIndex, adverse_terms_in, institution_forms, rules
from otcdesk.app.kyc.screening import SAMPLE_NEWS_DIR


def _index(tmp_path, articles: dict[str, str]) -> NewsIndex:
    for name, text in articles.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return NewsIndex.from_dir(tmp_path)


@pytest.mark.parametrize("full,short", [
    ("深圳前海云栖星澜资产管理有限公司", "云栖星澜资管"),
    ("上海市鹤鸣远山投资管理有限公司", "鹤鸣远山投资"),
    ("北京青梧桐私募基金管理有限公司", "青梧桐私募"),
    ("青梧桐（北京）资产管理合伙企业（有限合伙）", "青梧桐资产管理"),
    ("杭州松间明月股份有限公司", "松间明月"),
])
def test_short_forms_follow_general_rules(full, short):
    assert short in institution_forms(full)
    assert institution_forms(full)[0] == full.replace("（", "(").replace("）", ")")


def test_forms_never_reduce_to_a_region_or_industry_or_a_two_character_core():
    assert institution_forms("北京资产管理有限公司") == ["北京资产管理有限公司"]
    forms = institution_forms("上海星河资产管理有限公司")
    assert "星河" not in forms and "资产管理" not in forms and "上海" not in forms
    assert all(len(f) >= 4 for f in forms)


def test_sample_corpus_full_name_short_name_adverse_and_neutral():
    index = NewsIndex.from_dir(SAMPLE_NEWS_DIR)
    assert "README.md" not in {a.source for a in index.articles}
    hits = index.hits({"institution": "深圳前海云栖星澜资产管理有限公司", "legal_representative": "柯望舒"})
    assert {(h["subject"], h["source"]) for h in hits} == {("institution", "01_warning_letter.md"),
                                                           ("legal_representative", "01_warning_letter.md")}
    inst = next(h for h in hits if h["subject"] == "institution")
    assert inst["negative"] and "警示函" in inst["adverse_terms"] and inst["date"] == "2025-03-18"
    assert inst["title"] == "深圳前海云栖星澜资产管理有限公司收到警示函" and "警示函" in inst["passage"]
    person = next(h for h in hits if h["subject"] == "legal_representative")
    assert person["name"] == "柯望舒" and "柯望舒" in person["passage"] and person["negative"]

    short = index.hits({"institution": "上海鹤鸣远山投资管理有限公司"})
    by_source = {h["source"]: h for h in short}
    assert set(by_source) == {"02_dishonest_debtor.txt", "05_award.md"}
    assert by_source["02_dishonest_debtor.txt"]["name"] == "鹤鸣远山投资"  # only the short name is in that article
    assert by_source["02_dishonest_debtor.txt"]["negative"] and not by_source["05_award.md"]["negative"]
    assert short[0]["source"] == "02_dishonest_debtor.txt"  # adverse hits first

    neutral = index.hits({"institution": "北京青梧桐私募基金管理有限公司"})
    assert [(h["source"], h["negative"]) for h in neutral] == [("03_industry_forum.md", False)]


def test_a_different_firm_sharing_the_core_word_is_not_a_hit(tmp_path):
    index = _index(tmp_path, {
        "a.md": "# 星河科技股份有限公司被罚款\n\n星河科技股份有限公司因虚假宣传被罚款。",
        "b.md": "# 评估机构受处罚\n\n上海星河资产评估有限公司因违规出具报告被立案调查。",
        "c.txt": "夜空中璀璨星河，资产管理行业迎来新规。星河投资控股有限公司被诉讼。",
        "d.txt": "银星河资管？不，本文只谈星河。",
    })
    hits = index.hits({"institution": "上海星河资产管理有限公司"})
    assert [h["source"] for h in hits] == ["d.txt"]  # "星河资管" stands as a name there; nothing else matches
    assert index.hits({"institution": "上海星河投资管理有限公司"}) == []


def test_person_names_match_as_whole_names(tmp_path):
    index = _index(tmp_path, {
        "a.md": "法定代表人张明远因违规被罚款。",
        "b.md": "董事长张明，女，曾任某公司总经理。",
        "c.md": "Zhang Ming joined the board; Zhang Mingyu did not.",
    })
    assert [h["source"] for h in index.hits({"legal_representative": "张明远"})] == ["a.md"]
    assert [h["source"] for h in index.hits({"legal_representative": "张明"})] == ["b.md"]  # not 张明远 in a.md
    assert [h["name"] for h in index.hits({"legal_representative": "Zhang Ming"})] == ["Zhang Ming"]
    assert index.hits({"legal_representative": "张"}) == []


def test_docx_and_html_articles_and_full_width_brackets(tmp_path):
    d = docx.Document()
    d.add_heading("松间明月（杭州）投资管理有限公司涉诉", level=1)
    d.add_paragraph("2025年1月5日")
    d.add_paragraph("松间明月（杭州）投资管理有限公司因合同纠纷被起诉。")
    d.save(tmp_path / "a.docx")
    (tmp_path / "b.html").write_text("<html><body><p>松间明月投资获得奖项。</p></body></html>", encoding="utf-8")
    hits = NewsIndex.from_dir(tmp_path).hits({"institution": "杭州松间明月投资管理有限公司"})
    assert {h["source"]: h["negative"] for h in hits} == {"a.docx": True, "b.html": False}
    assert next(h for h in hits if h["source"] == "a.docx")["date"] == "2025-01-05"


def test_adverse_terms_come_from_the_data_file():
    assert "警示函" in rules().adverse_terms and "失信被执行人" in rules().adverse_terms
    assert adverse_terms_in("公司被立案调查并收到警示函") == ["立案调查", "警示函"]
    assert adverse_terms_in("公司获评优秀") == []


def test_missing_folder_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        NewsIndex.from_dir(tmp_path / "nope")
