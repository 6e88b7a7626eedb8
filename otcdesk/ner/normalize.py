"""Text normalisation: full-width → half-width, bot mentions, Chinese numerals in numeric contexts."""
from __future__ import annotations

import re
import unicodedata

from .vocabulary import Pattern, Vocabulary, default_vocabulary

_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "俩": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_UNITS = {"十": 10, "百": 100, "千": 1000}
_CN_NUM = "零〇一二两三四五六七八九十百千"


def cn_to_int(s: str) -> int | None:
    """'三' → 3, '十五' → 15, '一百零三' → 103, '两千' → 2000, '一五' → 15 (digit by digit)."""
    if not s:
        return None
    if all(ch in _DIGITS for ch in s):
        if len(s) == 1:
            return _DIGITS[s]
        return int("".join(str(_DIGITS[ch]) for ch in s))
    total, cur = 0, 0
    for ch in s:
        if ch in _DIGITS:
            cur = _DIGITS[ch]
        elif ch in _UNITS:
            total += (cur or 1) * _UNITS[ch]
            cur = 0
        else:
            return None
    return total + cur


_MENTION_BOT = Pattern(r"@[^\s@]{0,16}?{bot_mention}[\s\u2005:：,，]*")
_MENTION = re.compile(r"@[^\s\u2005@]{1,20}[\s\u2005]+")
# numerals followed by a unit, or preceded by an index family name / 百分之
_NUM_UNIT = re.compile(
    rf"((?<![\d.])[十百千][{_CN_NUM}]*|[零〇一二两三四五六七八九][{_CN_NUM}]*)(?=\s*(?:个半月|个月|个星期|个礼拜|个工作日|个交易日|个季度|个亿|个点|月|年|周|星期|礼拜|天|日|万|亿|点|倍|%|档|期|成))")
# a label before a value: 沪深三百, 看涨一零五, 敲出价一百零三, 锁定期三 (the numerals become digits)
_LABEL = ("{option_type.cjk|moneyness:itm.cjk|moneyness:otm.cjk|field:strike.cjk|field:participation.cjk|field:coupon.cjk"
          "|field:coupon_barrier.cjk|field:stepdown.cjk+abbr|field:lockup.cjk+abbr}|{field:ko.cjk|field:ki.cjk|field:barrier.cjk}价?")
_NUM_AFTER = Pattern(r"({index_family}A?|" + _LABEL + r")\s*([" + _CN_NUM + r"]+)(?![\u4e00-\u9fff](?<![个点成%年月周天]))")
_PERCENT_CN = re.compile(rf"百分之([{_CN_NUM}]+)(?:点([{_CN_NUM[:12]}]+))?")
_DIGIT_RUN = re.compile(r"(?<![\u4e00-\u9fff\d])([零〇一二三四五六七八九]{2,3})(?![\u4e00-\u9fff\d])")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?:,\d{3})*(?:\.\d+)?\s*(?:万|亿|元|块|点|w|W|kw|mm|MM))")
_THOUSANDS_1 = re.compile(r"(?<![\d.])(\d),(\d{3})(?![\d,])")  # 3,800 (a one-digit head is never a strike list)
_MIXED = re.compile(r"(?<![\d.])(\d+)\s*([百千])(?![万亿])")  # 沪深3百 → 300, 5千 → 5000 (5千万 stays)
_ETF_GAP = re.compile(r"([A-Za-z0-9\u4e00-\u9fff])\s+(?:ETF|etf|Etf)(?![A-Za-z])")
_WS = re.compile(r"[ \t\u3000\u2005\u00a0]+")


_INDEX_FAMILY = Pattern(r"{index_family}A?")
_INDEX_NUMBERS = {50, 100, 300, 500, 800, 1000, 2000}


def _after_repl(m: re.Match, index_family: re.Pattern) -> str:
    head, run = m.group(1), m.group(2)
    if index_family.fullmatch(head):
        # 沪深三百一个月 / 中证一千三个月: the index number is the longest head of the run that names an index;
        # the rest is the next numeral (the tenor), converted by the unit rule
        for cut in range(len(run), 0, -1):
            if cn_to_int(run[:cut]) in _INDEX_NUMBERS:
                return head + str(cn_to_int(run[:cut])) + run[cut:]
    v = cn_to_int(run)
    return m.group(0) if v is None else head + str(v)


def _num_repl(m: re.Match) -> str:
    v = cn_to_int(m.group(1))
    if v is None:
        return m.group(0)
    glue = " " if m.start() > 0 and m.string[m.start() - 1].isdigit() else ""  # 500三个月 → 500 3个月
    return glue + str(v)


_CIRCLED = re.compile(r"[\u2460-\u2473\u2776-\u277f\u2780-\u2789]")
_CAPITAL = str.maketrans("壹贰貳叁參肆伍陆陸柒捌玖拾佰仟", "一二二三三四五六六七八九十百千")  # 大写 amounts


def normalize(text: str, vocab: Vocabulary | None = None) -> str:
    """Canonical form used by every later step (keeps character positions meaningful only within itself)."""
    vocab = vocab or default_vocabulary()
    t = _CIRCLED.sub("\n", text or "")  # ① 300 … ② 500 …: list marks (NFKC would make them digits)
    t = unicodedata.normalize("NFKC", t).translate(_CAPITAL)
    t = t.replace("\r\n", "\n").replace("\r", "\n")
    t = vocab.rx(_MENTION_BOT).sub(" ", t)
    t = _MENTION.sub(" ", t)
    t = t.replace("@", " ")
    t = t.replace("％", "%").replace("﹪", "%")
    t = _THOUSANDS.sub("", t)
    t = _THOUSANDS_1.sub(r"\1\2", t)
    t = _MIXED.sub(lambda m: str(int(float(m.group(1)) * (100 if m.group(2) == "百" else 1000))), t)  # 2,000万 → 2000万 (only before an amount unit, so strike lists like 95,100 stay)
    t = _PERCENT_CN.sub(lambda m: f"{cn_to_int(m.group(1))}{'.' + str(cn_to_int(m.group(2))) if m.group(2) else ''}%", t)
    family = vocab.rx(_INDEX_FAMILY)
    t = vocab.rx(_NUM_AFTER).sub(lambda m: _after_repl(m, family), t)
    # "一个半月"-style halves are left to the tenor rules; "一年半" keeps 半 after the digit
    t = _NUM_UNIT.sub(_num_repl, t)
    t = _DIGIT_RUN.sub(lambda m: "".join(str(_DIGITS[c]) for c in m.group(1)), t)  # 一零三 七五 → 103 75
    t = _WS.sub(" ", t)
    t = _ETF_GAP.sub(r"\1ETF", t)  # 'SSE50 ETF' / '300 etf' → one name
    return t.strip()
