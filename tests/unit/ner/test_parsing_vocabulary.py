"""The vocabulary is data: one row of terms.csv reaches every pattern that names its class, and jieba."""
from __future__ import annotations

import re
import shutil

import pytest

from otcdesk.ner import crf, fields, followup, intent, normalize, parser
from otcdesk.ner.fields import structure_hint
from otcdesk.ner.lexicon import Corrector, default_corrector
from otcdesk.ner.normalize import normalize as normalize_text
from otcdesk.ner.parser import MessageParser, default_parser
from otcdesk.ner.pool import default_pool
from otcdesk.ner.vocabulary import DATA_DIR, Pattern, Term, Vocabulary, default_vocabulary

NEW_ROWS = "买权,option_type,call,lexicon\n卖权,option_type,put,lexicon\n早赎,field,ko,lexicon\n"


@pytest.fixture(scope="module")
def extended(tmp_path_factory) -> MessageParser:
    """A parser built from a copy of the tables with three synonym rows added; no code changes."""
    d = tmp_path_factory.mktemp("vocabulary")
    shutil.copy(DATA_DIR / "cues.csv", d / "cues.csv")
    shutil.copy(DATA_DIR / "order_terms.csv", d / "order_terms.csv")
    (d / "terms.csv").write_text((DATA_DIR / "terms.csv").read_text(encoding="utf-8") + NEW_ROWS, encoding="utf-8")
    vocab = Vocabulary.load((d / "terms.csv", d / "order_terms.csv"), d / "cues.csv")
    return MessageParser(corrector=Corrector(default_pool(), vocab))


def legs(p: MessageParser, text: str) -> set[tuple]:
    return {(r.get("option_type"), r.get("strike_pct")) for r in p.parse(text).requests}


@pytest.mark.parametrize("text,expected", [
    ("沪深300 1个月 买权 105 卖权 95", {("call", 105), ("put", 95)}),  # a strike after its type word: legs pair up
    ("沪深300 1个月 95卖权 和 平值买权", {("put", 95), ("call", 100)}),  # a strike before it; an ATM leg
])
def test_a_new_option_type_row_is_read_wherever_call_and_put_are(extended, text, expected):
    assert {ot for ot, _k in legs(default_parser(), text)} == {None}  # the shipped table does not know the words
    assert legs(extended, text) == expected


def test_a_new_row_reaches_normalisation(extended):
    assert normalize_text("买权一百零五", extended.vocab) == "买权105"  # Chinese numerals after a type word


def test_a_new_row_reaches_jieba_the_corrector_and_the_crf_features(extended):
    assert "买权" in extended.corrector.cut("平值买权看看") and "买权" in extended.corrector.words
    assert ("买权", "option_type", "call") in extended.corrector.terms  # crf.vocab_tags reads these
    assert "买权" not in default_corrector().words


@pytest.mark.parametrize("text", ["中证500 雪球 两年 早赎103 敲入75", "中证500 雪球 两年 早赎价103 敲入75",
                                  "中证500 雪球 两年 敲入75 103早赎", "中证500 两年 敲入/早赎 75/103"])
def test_a_new_knock_out_row_is_read_before_and_after_its_level_and_in_pairs(extended, text):
    assert all("ko_pct" not in r for r in default_parser().parse(text).requests)
    assert [(r["ko_pct"], r["ki_pct"]) for r in extended.parse(text).requests] == [(103, 75)]


def test_pattern_rows_reach_the_patterns_but_not_jieba():
    assert structure_hint("双边鲨鱼鳍 3个月", default_vocabulary()) == "double_sharkfin"
    assert "双边鲨鱼鳍" not in default_corrector().words
    assert Term("双边鲨鱼鳍", "structure", "double_sharkfin", "pattern") in default_vocabulary().terms


def _patterns(module) -> list[Pattern]:
    out = []
    for value in vars(module).values():
        items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else [value]
        for item in items:
            out += [x for x in (item if isinstance(item, tuple) else (item,)) if isinstance(x, Pattern)]
    return out


def test_every_template_and_cue_compiles_against_the_shipped_tables():
    vocab = default_vocabulary()
    patterns = [p for m in (fields, parser, normalize, intent, followup, crf) for p in _patterns(m)]
    assert len(patterns) > 50
    for p in patterns:
        assert isinstance(vocab.rx(p), re.Pattern), p.template
    for name in vocab.cues:
        vocab.cue(name)


def _vocab(*rows: tuple[str, str, str, str], cues: dict | None = None) -> Vocabulary:
    return Vocabulary([Term(*r) for r in rows], cues or {})


def test_classes_latin_gaps_abbreviations_and_meanings():
    v = _vocab(("敲出", "field", "ko", "lexicon"), ("knock out", "field", "ko", "pattern"),
               ("ko", "field", "ko", "abbr"), ("敲入", "field", "ki", "lexicon"))
    rx = v.rx(Pattern("^{field:ko}$", re.I))
    assert all(rx.match(t) for t in ("敲出", "knock out", "Knock-Out", "knockout", "knock_out"))
    assert not rx.match("ko") and v.rx(Pattern("^{field:ko+abbr}$")).match("ko")  # abbreviations only on request
    assert v.rx(Pattern("^{field.cjk}$")).pattern == "^(?:敲出|敲入)$"
    assert v.meaning("field", "KNOCK-OUT") == "ko" and v.meaning("field", "敲入") == "ki"
    assert v.meaning("field", "敲") is None
    assert [t for t, _c, _v in v.lexicon()] == ["敲出", "敲入"]


def test_cues_refer_to_term_classes_and_to_other_cues():
    v = _vocab(("看涨", "option_type", "call", "lexicon"),
               cues={"question": ["多少", "{ends_with_ma}"], "ends_with_ma": [r"吗\s*$"], "own": ["我们的{option_type}"]})
    assert v.cue("question").search("能做吗") and v.cue("question").search("多少钱")
    assert v.cue("own").search("我们的看涨") and not v.cue("own").search("我们的看跌")


def test_the_tables_are_checked():
    with pytest.raises(ValueError, match="unknown use"):
        _vocab(("敲出", "field", "ko", "jieba"))
    with pytest.raises(ValueError, match="both a term category and a cue"):
        _vocab(("敲出", "field", "ko", "lexicon"), cues={"field": ["x"]})
    with pytest.raises(ValueError, match="unknown vocabulary class"):
        _vocab(("敲出", "field", "ko", "lexicon")).rx(Pattern("{feild:ko}"))
    with pytest.raises(ValueError, match="refers to itself"):
        _vocab(cues={"a": ["{b}"], "b": ["{a}"]}).cue("a")
