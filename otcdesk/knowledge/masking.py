"""Personal-data masking (个人信息脱敏), applied before anything is indexed or sent to an LLM.

A miss is worse than a false alarm here, so the shape of a number decides, not its checksum alone:

- ``id_card``: 18-character resident ID numbers (17 digits + digit/X, also written 6 8 4 with spaces) whatever
  their check digit, and 15-digit first-generation IDs (region + yymmdd + 3 digits). The mapping's ``valid``
  says whether the GB 11643 check digit and the birth date hold. Kept: organisations' unified social credit
  codes (GB 32100 check) that carry no ID region and birth date, and Luhn-valid bank cards (next kind).
- ``mobile``: 11-digit mobile numbers, +86 optional.
- ``landline`` (token ``TEL``): fixed lines, area code 010 / 02x / 0xxx + 7–8 digits, with dash, space or
  brackets, +86 forms and an extension (转 / 分机 / ext / -), or a bare 7–8 digit number right after a phone
  label (电话, 座机, 传真, Tel). A kind of its own: the vault and the counts tell a desk line from a mobile.
  Public service numbers (95xxx, 96xxx, 400/800, 12345-style) stay: they belong to institutions.
- ``bank_card``: 16–19 digits with a card prefix and a valid Luhn check.
- ``email``: personal addresses; role mailboxes (webmaster@, service@, ...) stay.
- ``person``: names in labelled lists ("主要参与人员：张三、李四") and, through `NameRecogniser`, in running
  text (jieba's person tag and a surname table, with context cues; institutions, places, products and index
  names are guarded).

Each masked value becomes a stable token such as ``[PHONE_3f2a9c1d]`` (an HMAC of the value under a
per-knowledge-base key), so the same person gets the same token across documents and the app can store
token → original in its vault. Numbers are recorded in one normal form (digits; landlines as
``area-number[-extension]``), so differently written copies of one number share a token.
"""
from __future__ import annotations

import bisect
import hashlib
import hmac
import re
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

from llama_index.core.schema import BaseNode, TransformComponent
from pydantic import PrivateAttr

KINDS = ("id_card", "mobile", "landline", "bank_card", "email", "person")
_TOKEN_PREFIX = {"id_card": "ID", "mobile": "PHONE", "landline": "TEL", "bank_card": "CARD", "email": "EMAIL",
                 "person": "NAME"}
TOKEN_RE = re.compile(r"\[(?:%s)_[0-9a-f]{8}\]" % "|".join(_TOKEN_PREFIX[k] for k in KINDS))
_DATA_DIR = Path(__file__).with_name("data")

# ---- identity numbers ------------------------------------------------------------------------------------------
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
# province-level codes that open a resident ID number (GB/T 2260)
_ID_PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 61 62 63 64 65 71 81 82 83".split())


def id_check_digit(first17: str) -> str:
    """GB 11643-1999 check character for the first 17 digits of an ID number."""
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS))
    return _ID_CHECK[total % 11]


def _real_date(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return 1900 <= year <= 2099


def _id_shaped(v: str) -> bool:
    """An ID region code and a real birth date where an 18- or 15-character ID number has them."""
    if v[:2] not in _ID_PROVINCES:
        return False
    if len(v) == 15:
        return _real_date(1900 + int(v[6:8]), int(v[8:10]), int(v[10:12]))
    return _real_date(int(v[6:10]), int(v[10:12]), int(v[12:14]))


def is_valid_id_number(value: str) -> bool:
    """True for an 18-character mainland ID with a plausible birth date and correct check digit."""
    v = value.upper()
    if not re.fullmatch(r"\d{17}[\dX]", v):
        return False
    year, month, day = int(v[6:10]), int(v[10:12]), int(v[12:14])
    if not (1900 <= year <= 2100 and 1 <= month <= 12 and 1 <= day <= 31):
        return False
    return id_check_digit(v[:17]) == v[17]


_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def is_valid_uscc(value: str) -> bool:
    """Unified social credit code of an organisation (GB 32100-2015 check character)."""
    v = value.upper()
    if len(v) != 18 or any(c not in _USCC_CHARS for c in v):
        return False
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(v[:17], _USCC_WEIGHTS))
    return _USCC_CHARS[(31 - total % 31) % 31] == v[17]


def luhn_ok(digits: str) -> bool:
    """Luhn (mod 10) checksum used by bank card numbers."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card_like(digits: str) -> bool:
    # UnionPay (62…) cards run 16–19 digits; other schemes issue 16 or 19
    plausible = (digits.startswith("62") and 16 <= len(digits) <= 19) or (
        len(digits) in (16, 19) and digits[0] in "3456")
    return plausible and luhn_ok(digits)


def id_number_validity(value: str) -> bool | None:
    """For an ID-shaped string (18 characters, or 15 digits): True when it is a valid ID number, False when it
    is to be masked as one all the same (wrong check digit, typo), None when it is something else: an
    organisation's credit code, a bank card, or 15 digits without an ID region and birth date."""
    v = re.sub(r"[ -]", "", value).upper()
    if not re.fullmatch(r"\d{15}|\d{17}[\dX]", v):
        return None
    if len(v) == 15:
        return True if _id_shaped(v) else None
    if _id_shaped(v):
        return id_check_digit(v[:17]) == v[17]
    if is_valid_id_number(v):
        return True
    if v.isdigit() and _card_like(v) or is_valid_uscc(v):
        return None
    return False


# ---- number, address and list patterns -------------------------------------------------------------------------
# Digits not glued to other digits/letters, so codes such as 91310000631134224W are left alone.
_ID_RE = re.compile(r"(?<![0-9A-Za-z])(\d{6} \d{8} \d{3}[\dXx]|\d{17}[\dXx]|\d{15})(?![0-9A-Za-z])")
_CARD_RE = re.compile(r"(?<![0-9A-Za-z])((?:\d[ -]?){15,18}\d)(?![0-9A-Za-z])")
_MOBILE_RE = re.compile(r"(?<![0-9A-Za-z])(?:\+?86[ -]?)?(1[3-9]\d[ -]?\d{4}[ -]?\d{4})(?![0-9A-Za-z])")
# 010 and 02x are the only 3-digit area codes; every other one has 4 digits (03xx–09xx). Local numbers
# have 7–8 digits and never start with 0, 1 or 9 (95xxx/96xxx and 400/800 numbers are service lines).
_AREA = r"010|02\d|0[3-9]\d\d"
_AREA_INTL = r"10|2\d|[3-9]\d\d"
_LOCAL = r"[2-8]\d{2,3}[ -]?\d{4}"
_EXT = r"(?:\s*(?:转|分机|ext\.?|EXT\.?|x|-)\s*(?P<ext>\d{1,5}))?"
_LANDLINE_RE = re.compile(
    rf"(?<![0-9A-Za-z+])(?:\+?86[ -]?(?:[(（]0?(?P<ai>{_AREA_INTL})[)）]|(?P<aj>{_AREA_INTL}))"
    rf"|[(（](?P<ap>{_AREA})[)）]|(?P<a>{_AREA}))[ -]?(?P<local>{_LOCAL}){_EXT}(?![0-9A-Za-z])")
_PHONE_LABEL_RE = re.compile(
    rf"((?<![\[A-Za-z])(?:电话|座机|固话|传真|联系方式|Tel|TEL|tel|Fax|FAX|fax)[^\d\n]{{0,4}}?)"
    rf"(?<![0-9A-Za-z_])(?P<local>{_LOCAL}){_EXT}(?![0-9A-Za-z])")
_EMAIL_RE = re.compile(r"(?<![A-Za-z0-9._%+-])([A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})")
_ROLE_MAILBOXES = {
    "webmaster", "service", "services", "support", "info", "kefu", "contact", "ir", "admin", "noreply",
    "no-reply", "hr", "office", "press", "media", "help", "customer", "cs", "complaint", "tousu", "investor",
}

# A label naming a group of people, then a list of short names separated by 、，,;/ or spaces.
_PEOPLE_LABEL = (
    r"(?:参与人员|主要参与人员|项目成员|团队成员|成员|人员|联系人|负责人|项目负责人|经办人|联系人员|专家|"
    r"核心团队|研发团队|项目组成员|姓名|参会人员|签字人|授权代表|经理|法定代表人(?:[（(]签字[)）])?)"
)
_NAME_ITEM = r"(?:[\u4e00-\u9fff](?: [\u4e00-\u9fff]){1,3}(?![\u4e00-\u9fff])|[\u4e00-\u9fff]{2,4}|[A-Z][a-zA-Z]+(?: [A-Z][a-zA-Z.]*){0,3})"
_PEOPLE_LIST_RE = re.compile(
    rf"({_PEOPLE_LABEL}\s*[：:]\s*)({_NAME_ITEM}(?:\s*[、，,/]\s*{_NAME_ITEM})*)"
)
_INSTITUTION_HINT = re.compile(r"(公司|银行|证券|基金|期货|集团|大学|学院|研究|中心|协会|交易所|部门|委员会|有限|科技|技术|平台|系统)")


@lru_cache(maxsize=1)
def surnames() -> tuple[frozenset[str], frozenset[str]]:
    """(single-character, compound) Chinese surnames from data/surnames.txt."""
    words = [w for line in (_DATA_DIR / "surnames.txt").read_text(encoding="utf-8").splitlines()
             for w in line.split("#", 1)[0].split()]
    return frozenset(w for w in words if len(w) == 1), frozenset(w for w in words if len(w) > 1)


def _surname_at(text: str, i: int) -> str:
    """The surname that starts at text[i] (compound first), or ''."""
    single, compound = surnames()
    if text[i:i + 2] in compound:
        return text[i:i + 2]
    return text[i] if text[i] in single else ""


def _looks_like_person(item: str) -> bool:
    item = item.strip()
    if re.fullmatch(r"[\u4e00-\u9fff](?: [\u4e00-\u9fff]){1,3}", item):
        item = item.replace(" ", "")
    if _INSTITUTION_HINT.search(item):
        return False
    if re.fullmatch(r"[\u4e00-\u9fff]{2,4}", item):
        slen = len(_surname_at(item, 0))
        return bool(slen) and not any(c in _NOT_GIVEN for c in item[slen:])  # not 年 月 日
    return bool(re.fullmatch(r"[A-Z][a-zA-Z]+(?: [A-Z][a-zA-Z.]*){0,3}", item))


# ---- names in running text -------------------------------------------------------------------------------------
def _word_table(name: str) -> dict[str, tuple[str, ...]]:
    """A vocabulary file of data/: key → words ('key word word ...' lines, '#' comments)."""
    table: dict[str, list[str]] = {}
    for line in (_DATA_DIR / name).read_text(encoding="utf-8").splitlines():
        key, *words = line.split("#", 1)[0].split() or [""]
        if key:
            table.setdefault(key, []).extend(words)
    return {k: tuple(v) for k, v in table.items()}


_CUES = _word_table("person_cues.txt")
_TITLES = frozenset(_CUES["title"])
_RIGHT_VERBS = frozenset(_CUES["after"])
_LEFT_ROLES = frozenset(_CUES["role"])
_LEFT_WORDS = frozenset(_CUES["before"])
_GLUE_BEFORE = frozenset(_CUES["glue_before"])
_GLUE_AFTER = frozenset(_CUES["glue_after"])
_NOT_GIVEN = frozenset(_CUES["not_given"])
_ORG_SUFFIX = "|".join(sorted(_CUES["org_suffix"], key=len, reverse=True))
_PLACE_SUFFIX = "|".join(_CUES["place_suffix"])
_TITLE_START = re.compile("|".join(t for t in sorted(_TITLES, key=len, reverse=True) if len(t) > 1))
_ROLE_END = re.compile("(?:%s)$" % "|".join(r for r in sorted(_LEFT_ROLES, key=len, reverse=True) if len(r) > 1))
_COPULA = frozenset(("为", "是", "系", "：", ":"))  # 受益人为 + name
_SUFFIX_WORD = re.compile(f"(?:{_ORG_SUFFIX}|{_PLACE_SUFFIX})")
_SUFFIX_AT_END = re.compile(f"(?:{_ORG_SUFFIX})$")
_NOUNISH = re.compile(r"^(?:n|nr|nrt|nrfg|ns|nt|nz|j|x|s|l|an|vn|b|eng)$")
_SENTENCE_END = frozenset("。！？；：!?;:\n")
_CLAUSE_END = _SENTENCE_END | frozenset("，、,（）()")
_ITEM_EDGE = frozenset(("", "、", "：", ":", "，", ",", "/", "；", ";", "。", "|", "\t", "\n"))
_PERSON_TAGS = ("nr", "nrfg", "nrt")
# An index, product or stock name goes on with digits, a series number or a tenor: 国证2000, 安鑫一号, 隆基 三个月.
_CODE_OR_TERM_AFTER = re.compile(r"[0-9A-Za-z]| *[0-9]| *[一二三四五六七八九十两半]+个?(?:号|期|月|周|年|天|亿|万)")
_MIN_SCORE = 3.0


def _is_cjk(word: str) -> bool:
    return bool(re.fullmatch(r"[\u4e00-\u9fff]+", word))


@dataclass(frozen=True)
class _Tok:
    start: int
    end: int
    word: str
    flag: str


class NameRecogniser:
    """Finds personal names (人名) in running Chinese text.

    A candidate is a surname of data/surnames.txt (compound first) where a word of jieba's POS segmentation
    starts (or right after a function character glued to it: 和 + 夏澜), plus one or two given-name characters,
    or a bare surname before a title (王总, 张先生). Each candidate is scored and the best non-overlapping ones
    scoring at least `_MIN_SCORE` (3) are names. Evidence, in the order `_score` adds it:

    - the tagger: jieba tags it a person (nr) as a word it did not know (+2, +2.5 for three or four characters;
      a dictionary word tagged nr, such as 卓越 or 许可, counts nothing), or tags part of it (+1 to +2);
    - a list: a whole item between 、，/ or a colon (+1), beside another name-shaped item (+1);
    - the shape: made of no common word (+0.5); a compound surname that is no ordinary word (欧阳, not 东方: +1);
      a common word (方案, 高级: −3), a dictionary word (−1), a given name that is a common word (和 + 客户:
      −2), a surname + first character that is a very common word (谢谢: −2), a last character that usually
      follows a name (上官朋 + 曾: −1);
    - context cues (data/person_cues.txt): after it a title (先生, 经理, 总: +3), a bracketed role (+2), a verb
      or particle (负责, 表示, 尚未, 在: +1), a clause end (+0.5), more of the same word (爱尔 + 眼科: −1); before
      it a role (联系人, 客户, 受益人为, 致: +2), a preposition or verb that takes a person (由, 与, 听: +1), an
      institution's 的 (华泰证券的: +1), a sentence start (+0.5); a weak cue on each side adds 0.5.

    Never a name: a span followed by an institution, place, product or index word (data/person_cues.txt
    org_suffix and place_suffix: 公司, 证券, 基金, 指数, 市, 路), possibly after one or two more name words
    (景顺 + 长城 + 基金), or by digits, a series number or a tenor (国证2000, 安鑫一号, 隆基 三个月); a span found
    in front of such a word anywhere in the same text (易方达 once 易方达基金 appears); a word jieba tags as an
    organisation (nt); a given name with a character names never have (data/person_cues.txt not_given).
    """

    def __init__(self):
        from otcdesk.knowledge.text import jieba_mod

        jieba_mod()  # the shared dictionary with the desk vocabulary, as the answer pipeline sees it
        self._pseg = _name_tagger()
        self._freq = self._pseg.tokenizer.FREQ
        self._tags = self._pseg.word_tag_tab

    def spans(self, text: str) -> list[tuple[int, int]]:
        """(start, end) of each name found, in order, not overlapping."""
        lines, offset = [], 0
        for line in text.splitlines(keepends=True):
            if re.search(r"[\u4e00-\u9fff]", line):
                lines.append((offset, line, self._tokens(line)))
            offset += len(line)
        stems = {stem for _, _, toks in lines for stem in _institution_stems(toks)}
        out: list[tuple[int, int]] = []
        for offset, line, toks in lines:
            chosen: list[tuple[int, int]] = []
            for score, _, s, e in sorted(self.candidates(line, toks, stems), key=lambda c: (-c[0], -c[1], c[2])):
                if score >= _MIN_SCORE and all(e <= cs or s >= ce for cs, ce in chosen):
                    chosen.append((s, e))
            out += sorted((offset + s, offset + e) for s, e in chosen)
        return out

    def _tokens(self, line: str) -> list[_Tok]:
        toks, pos = [], 0
        for word, flag in self._pseg.cut(line):
            toks.append(_Tok(pos, pos + len(word), word, flag))
            pos += len(word)
        return toks

    def candidates(self, line: str, toks: list[_Tok], stems: set[str]) -> list[tuple[float, int, int, int]]:
        """(score, length, start, end) of every span of `line` that could be a name."""
        ctx = _LineContext(line, toks, stems)
        out = []
        for tok in toks:
            for p in (tok.start, tok.start + 1):
                if p > tok.start and not (tok.word[0] in _GLUE_BEFORE and self._freq.get(tok.word, 0) == 0):
                    continue
                surname = _surname_at(line, p)
                for given in (1, 2, 0) if surname else ():
                    end = p + len(surname) + given
                    if end <= len(line) and len(surname) + given <= 4:
                        score = self._score(_Span(ctx, p, end, len(surname)))
                        if score is not None:
                            out.append((score, end - p, p, end))
        return out

    def _score(self, c: _Span) -> float | None:
        """Evidence that the span names a person (see the class docstring); None when it cannot."""
        if not _is_cjk(c.text) or any(ch in _NOT_GIVEN for ch in c.given) or c.given[:1] in _TITLES \
                or c.text in c.ctx.stems:  # 王总 + 早; 易方达 of 易方达基金
            return None
        if _CODE_OR_TERM_AFTER.match(c.ctx.line, c.end) or c.tok is not None and c.tok.flag == "nt":
            return None
        if c.glued_after and not c.title_inside and c.ctx.line[c.end] not in _GLUE_AFTER:
            return None  # the span ends inside a word
        if c.next_i is not None and _institution_follows(c.ctx.toks, c.next_i):
            return None
        if c.slen == 1 and c.text[0] in _GLUE_BEFORE and len(c.given) == 2 and self._common(c.given, 20):
            return None  # 负责人和 + 合规总监: a conjunction before a word, not the surname 和 before a given name
        if not c.given:  # a bare surname only before a title: 王总, 张先生
            nxt, tok, prev = c.next_tok, c.tok, c.prev_tok
            if nxt is None or nxt.word not in _TITLES or tok is None or tok.end != c.end:
                return None
            by_tagger = tok.flag in _PERSON_TAGS
            by_address = nxt.word in ("先生", "女士", "小姐") and tok.word not in _GLUE_BEFORE
            after_measure = prev is not None and prev.flag in ("m", "q")  # 一张 + 先生…
            return _MIN_SCORE if (by_tagger or by_address) and not after_measure else None
        return self._tagger_evidence(c) + self._shape_evidence(c) + _cue_evidence(c)

    def _tagger_evidence(self, c: _Span) -> float:
        """jieba's person tag (nr) on the span, on its given name, or on a shorter or longer cut of it."""
        tok, g = c.tok, c.ctx.token_starting(c.p + c.slen)
        if tok is not None and tok.flag in _PERSON_TAGS and _is_cjk(tok.word) and (
                tok.word == c.text[:c.slen] or self._freq.get(tok.word, 0) == 0):  # not 谢谢/nr
            rest = [t for t in c.ctx.toks if tok.end <= t.start < c.end]
            if tok.end == c.end or rest and rest[-1].end == c.end and all(t.flag in _PERSON_TAGS for t in rest):
                # 段博/nr + 睿/nrt is one name; a dictionary word tagged nr (卓越, 许可) says nothing
                return 0 if self._freq.get(c.text, 0) > 0 else 2 if len(c.text) == 2 else 2.5
            if tok.end == c.end + 1 and c.glued_after:
                return 2
            if tok.end - tok.start == c.slen:
                return 1.5
            return 1 if tok.end < c.end else 0
        if g is not None and g.flag in _PERSON_TAGS and (g.end == c.end or g.end == c.end + 1 and c.glued_after):
            return 2
        return 0

    def _shape_evidence(self, c: _Span) -> float:
        """A list of names around it; what jieba's dictionary says of the span and its parts."""
        text, given, slen = c.text, c.given, c.slen
        beside_name = any(self._name_shaped(item) for item in _neighbour_items(c.ctx.line, c.p, c.end))
        listed = c.whole_item and beside_name
        score = (1 if c.whole_item else 0) + (1 if beside_name else 0)
        if self._freq.get(text[:slen + 1], 0) >= 1000:
            score -= 2  # 谢谢 + 王, 高明 + …
        if self._common(text):
            score -= 1.5 if listed else 3
        elif self._freq.get(text, 0) > 0 and not listed:
            score -= 1  # a dictionary word jieba tags as a person is mostly a word (卓越, 许可, 安抚)
        if len(given) == 2 and self._common(given, 300):
            score -= 2  # 云 + 计算, 和 + 客户
        elif self._freq.get(text, 0) == 0 and not (len(given) == 2 and self._common(given, 50)
                                                  or self._common(text[:slen + 1], 50)):
            score += 0.5
        if slen == 2 and not self._common(text[:2], 400):
            score += 1  # 欧阳, 上官; not 东方, 第五
        if given[-1] in _GLUE_AFTER and not c.whole_item:
            score -= 1  # 上官朋 + 曾 rather than 上官朋曾
        return score

    def _name_shaped(self, item: str) -> bool:
        """Surname + one or two characters that make no dictionary word (a list item that could be a name)."""
        slen = len(_surname_at(item, 0)) if item else 0
        return bool(slen) and 1 <= len(item) - slen <= 2 and _is_cjk(item) and self._freq.get(item, 0) == 0 \
            and not any(ch in _NOT_GIVEN for ch in item[slen:])

    def _common(self, word: str, min_freq: int = 1) -> bool:
        """A dictionary word at least this frequent that jieba does not tag as a person."""
        return self._freq.get(word, 0) >= min_freq and not (self._tags.get(word) or "").startswith("nr")


def _cue_evidence(c: _Span) -> float:
    """Context cues on either side (data/person_cues.txt); a weak one on each side counts half again."""
    toks, nxt, prev = c.ctx.toks, c.next_tok, c.prev_tok
    right = left = penalty = 0.0
    if c.title_inside:
        right = 3
    elif c.glued_after:
        right = 1
    elif nxt is not None:
        if nxt.word in _TITLES or _TITLE_START.match(nxt.word):
            right = 3
        elif nxt.word in _RIGHT_VERBS:
            right = 0.5 if nxt.word == "的" else 1
        elif nxt.word in "（(" and c.next_i + 1 < len(toks) and _is_role(toks[c.next_i + 1].word):
            right = 2  # 张三（财务负责人）
        elif nxt.word in _CLAUSE_END:
            right = 0.5
        elif _is_cjk(nxt.word) and nxt.flag[0] not in "upcdrqfym":
            # the word goes on: 崔馨 + 凝 (a longer name), 爱尔 + 眼科, 隆基绿 + 能 (a company)
            penalty = 1.5 if len(nxt.word) == 1 and len(c.text) < 2 + c.slen else 1
    if prev is not None:
        before = c.ctx.token_ending(prev.start)
        split_role = before is not None and len(prev.word) == 1 and _is_role(before.word + prev.word)  # 对接/人
        if _is_role(prev.word) or split_role or before is not None and prev.word in _COPULA and _is_role(before.word):
            left = 2  # 联系人张伟, 受益人为张伟, 对接人江淑
        elif prev.word in _LEFT_WORDS:
            left = 1
        elif prev.word == "的" and _is_org(before):
            left = 1  # 华泰证券的 …
        elif prev.word in _SENTENCE_END:
            left = 0.5  # the subject of a sentence
        if c.tok is not None and c.tok.word in _GLUE_BEFORE and prev.flag.startswith("v"):
            penalty += 1  # 面谈 + 时: "when", not the surname 时
    elif c.p == 0:
        left = 0.5
    elif c.ctx.line[c.p - 1] in _GLUE_BEFORE:
        left = 2 if c.ctx.line[c.p - 1] in _LEFT_ROLES else 1  # 致程 + 信唯
    return left + right + (0.5 if left and right else 0) - penalty


class _LineContext:
    """One line's tokens, indexed by start and end offset, and the text's institution stems."""

    def __init__(self, line: str, toks: list[_Tok], stems: set[str]):
        self.line, self.toks = line, toks
        self.stems = "\n".join(stems)  # `span in stems` finds a span inside any of them
        self.starts = {t.start: i for i, t in enumerate(toks)}
        self.ends = {t.end: i for i, t in enumerate(toks)}

    def token_starting(self, offset: int) -> _Tok | None:
        return self.toks[self.starts[offset]] if offset in self.starts else None

    def token_ending(self, offset: int) -> _Tok | None:
        return self.toks[self.ends[offset]] if offset in self.ends else None


class _Span:
    """A candidate line[p:end]: a surname of `slen` characters and its given name, with the tokens around it."""

    def __init__(self, ctx: _LineContext, p: int, end: int, slen: int):
        line, toks = ctx.line, ctx.toks
        self.ctx, self.p, self.end, self.slen = ctx, p, end, slen
        self.text, self.given = line[p:end], line[p + slen:end]
        self.tok = ctx.token_starting(p)
        glued = ctx.token_starting(p - 1)
        if self.tok is None and glued is not None and glued.flag in _PERSON_TAGS:
            self.tok = _Tok(p, glued.end, glued.word[1:], glued.flag)  # 由向芬/nr without the glued 由
        self.next_i = ctx.starts.get(end)
        self.next_tok = toks[self.next_i] if self.next_i is not None else None
        self.prev_tok = ctx.token_ending(p)
        self.glued_after = end < len(line) and self.next_i is None  # 利怡 + 曾 in one word
        self.title_inside = False  # 郑梦 + 叶先生: the tagger glued the last given character to the title
        if self.glued_after:
            inner = toks[bisect.bisect_right([t.start for t in toks], end) - 1]
            rest = line[end:inner.end]
            self.title_inside = len(rest) > 1 and rest in _TITLES and end - inner.start == 1
        self.whole_item = line[:p].rstrip(" \u3000")[-1:] in _ITEM_EDGE and \
            line[end:].lstrip(" \u3000")[:1] in _ITEM_EDGE


def _is_role(word: str) -> bool:
    """联系人, 客户经理, 审批人, 值班人员: a word that names a person's role."""
    return word in _LEFT_ROLES or bool(_ROLE_END.search(word)) or len(word) > 1 and word[-1] in "人员者"


def _is_org(tok: _Tok | None) -> bool:
    return tok is not None and (tok.flag == "nt" or bool(_SUFFIX_AT_END.search(tok.word)))


def _neighbour_items(line: str, p: int, end: int) -> list[str]:
    """The list items right before and after line[p:end], across one separator (、，, or /)."""
    before = re.search(r"([\u4e00-\u9fff]{2,4})\s*[、，,/]\s*$", line[max(0, p - 8):p])
    after = re.match(r"\s*[、，,/]\s*([\u4e00-\u9fff]{2,4})(?![\u4e00-\u9fff])", line[end:])
    return [m.group(1) for m in (before, after) if m]


def _institution_follows(toks: list[_Tok], j: int) -> bool:
    """An institution/place word at toks[j], or after up to two more name words (长城 of 景顺长城基金)."""
    for k in range(j, min(j + 3, len(toks))):
        w = toks[k]
        if _SUFFIX_WORD.fullmatch(w.word) or (_NOUNISH.match(w.flag) and _SUFFIX_AT_END.search(w.word)):
            return True
        if not (_NOUNISH.match(w.flag) and _is_cjk(w.word)) or w.flag in _PERSON_TAGS or w.word in _TITLES:
            return False
    return False


def _institution_stems(toks: list[_Tok]) -> list[str]:
    """Words in front of an institution/place suffix (景顺长城 of 景顺长城基金, 某某 of 某某证券)."""
    stems = []
    for i, tok in enumerate(toks):
        m = _SUFFIX_AT_END.search(tok.word)
        if not m:
            continue
        parts, j = [tok.word[:m.start()]], i - 1
        while j >= 0 and i - j <= 3 and _is_cjk(toks[j].word) and _NOUNISH.match(toks[j].flag) and \
                toks[j].flag not in _PERSON_TAGS:
            parts.insert(0, toks[j].word)
            j -= 1
        stem = "".join(parts)
        if len(stem) >= 2:
            stems.append(stem)
    return stems


def _name_tagger():
    """jieba's POS tagger, running its HMM (which finds unknown words such as names, and is most of its cost)
    only on runs of unknown characters that hold a surname: elsewhere a name cannot start."""
    import jieba.posseg as pseg

    class NameTagger(pseg.POSTokenizer):
        def __init__(self, base: pseg.POSTokenizer):  # share the loaded dictionary and tag table
            base.tokenizer.check_initialized()
            self.tokenizer, self.word_tag_tab = base.tokenizer, base.word_tag_tab

        def _POSTokenizer__cut_detail(self, sentence):  # the HMM step of POSTokenizer.__cut_DAG
            single, compound = surnames()
            if any(c in single for c in sentence[:-1]) or any(sentence[i:i + 2] in compound
                                                              for i in range(len(sentence) - 2)):
                yield from super()._POSTokenizer__cut_detail(sentence)
            else:
                for ch in sentence:
                    yield pseg.pair(ch, self.word_tag_tab.get(ch, "x"))

    return NameTagger(pseg.dt)


@lru_cache(maxsize=1)
def _recogniser() -> NameRecogniser:
    return NameRecogniser()


# ---- the masker ------------------------------------------------------------------------------------------------
@dataclass
class MaskResult:
    """Masked text, the token → original mappings (id_card ones also carry ``valid``) and counts per kind."""

    text: str
    mappings: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: {k: 0 for k in KINDS})


class PiiMasker:
    """Masks personal data in text; deterministic for a given key."""

    def __init__(self, key: bytes = b"otcdesk-default-mask-key"):
        self._key = key

    def token(self, kind: str, original: str) -> str:
        digest = hmac.new(self._key, f"{kind}:{original}".encode(), hashlib.sha256).hexdigest()[:8]
        return f"[{_TOKEN_PREFIX[kind]}_{digest}]"

    def mask(self, text: str) -> MaskResult:
        """Return the masked text plus mappings (token, kind, original) and per-kind counts."""
        result = MaskResult(text=text)
        seen: dict[str, dict[str, Any]] = {}

        def sub(kind: str, original: str, **extra: Any) -> str:
            tok = self.token(kind, original)
            result.counts[kind] += 1
            if tok not in seen:
                seen[tok] = {"token": tok, "kind": kind, "original": original, **extra}
                result.mappings.append(seen[tok])
            return tok

        def id_repl(m: re.Match) -> str:
            v = m.group(1)
            valid = id_number_validity(v)
            return v if valid is None else sub("id_card", re.sub(r"[ -]", "", v).upper(), valid=valid)

        def card_repl(m: re.Match) -> str:
            raw = m.group(1)
            digits = re.sub(r"[ -]", "", raw)
            return sub("bank_card", digits) if _card_like(digits) and id_number_validity(digits) is None else raw

        def mobile_repl(m: re.Match) -> str:
            return m.group(0).replace(m.group(1), sub("mobile", re.sub(r"[ -]", "", m.group(1))))

        def landline_repl(m: re.Match) -> str:
            area = m.group("a") or m.group("ap") or "0" + (m.group("ai") or m.group("aj"))
            number = f"{area}-{re.sub(r'[ -]', '', m.group('local'))}"
            return sub("landline", number + (f"-{m.group('ext')}" if m.group("ext") else ""))

        def labelled_local_repl(m: re.Match) -> str:
            number = re.sub(r"[ -]", "", m.group("local")) + (f"-{m.group('ext')}" if m.group("ext") else "")
            return m.group(1) + sub("landline", number)

        def email_repl(m: re.Match) -> str:
            addr = m.group(1)
            local = addr.split("@", 1)[0].lower()
            if local in _ROLE_MAILBOXES:
                return addr
            return sub("email", addr)

        def people_repl(m: re.Match) -> str:
            label, items = m.group(1), m.group(2)
            parts = re.split(r"(\s*[、，,/]\s*)", items)
            out = []
            for part in parts:
                if re.fullmatch(r"\s*[、，,/]\s*", part) or not part:
                    out.append(part)
                elif _looks_like_person(part):
                    out.append(sub("person", part))
                else:
                    out.append(part)
            return label + "".join(out)

        t = _ID_RE.sub(id_repl, text)
        t = _CARD_RE.sub(card_repl, t)
        t = _MOBILE_RE.sub(mobile_repl, t)
        t = _LANDLINE_RE.sub(landline_repl, t)
        t = _PHONE_LABEL_RE.sub(labelled_local_repl, t)
        t = _EMAIL_RE.sub(email_repl, t)
        t = _PEOPLE_LIST_RE.sub(people_repl, t)
        spans = _recogniser().spans(t) if re.search(r"[\u4e00-\u9fff]", t) else []
        for s, e in reversed(spans):
            t = t[:s] + sub("person", t[s:e]) + t[e:]
        result.text = t
        return result


class PiiMaskTransform(TransformComponent):
    """llama-index transform: masks node text in place and collects the mappings and counts."""

    _masker: PiiMasker = PrivateAttr()
    _mappings: dict = PrivateAttr(default_factory=dict)
    _counts: dict = PrivateAttr(default_factory=dict)

    def __init__(self, masker: PiiMasker | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self._masker = masker or PiiMasker()
        self._mappings = {}
        self._counts = {k: 0 for k in KINDS}

    @property
    def mappings(self) -> list[dict[str, Any]]:
        return list(self._mappings.values())

    @property
    def counts(self) -> dict[str, int]:
        return dict(self._counts)

    def __call__(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[BaseNode]:
        for node in nodes:
            res = self._masker.mask(node.get_content())
            node.set_content(res.text)
            for m in res.mappings:
                self._mappings[m["token"]] = m
            for k, v in res.counts.items():
                self._counts[k] += v
            node.metadata["masked"] = sum(res.counts.values())
        return list(nodes)
