"""Field extraction from one normalised clause: `Frame` (what the clause says) and the rules that fill it.

Every rule consumes the characters it used (replaced by a mask character) so that later, looser rules cannot
read the same digits twice: aliases and codes first, then notional, lock-up, step-down, coupons, KO/KI and
barriers, strikes, tenors, and finally bare index shorthands (300/500/1000/50/2000). The patterns are templates
whose word classes come from the vocabulary (vocabulary.py); single-letter and single-character abbreviations
(c/p, K, 购/沽, 上/下) stay in the patterns with the guards that make them safe.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .pool import INDEX_FUTURES, SHORTHAND_INDEX, UnderlyingPool
from .vocabulary import Pattern, Vocabulary

MASK = "\x01"

# precedence: the first structure named wins (双鲨鱼鳍 also contains 鲨鱼鳍; a barrier word yields to any other)
STRUCTURE_ORDER = ("double_sharkfin", "sharkfin", "snowball", "phoenix", "airbag", "asian", "digital", "spread", "barrier",
                   "vanilla")
STRUCTURES = {st: Pattern("{structure:%s}" % st + ("|数字(?={option_type})" if st == "digital" else ""), lower=True)
              for st in STRUCTURE_ORDER}  # 数字看涨: a digital
CALL = Pattern(r"{option_type:call.cjk|view:call|spread_type:call}|(?<![申采收选订抢团])购(?![买物入置房])"
               r"|(?<![A-Za-z])(?i:{option_type:call.latin}s?)(?![A-Za-z])"
               r"|(?<![A-Za-z])C(?![A-Za-z])|(?<=[\d\x01])c(?![a-z])|(?<=[\s\x01])c(?=\s|$)")
PUT = Pattern(r"{option_type:put.cjk|view:put|spread_type:put}|沽"
              r"|(?<![A-Za-z])(?i:{option_type:put.latin}s?)(?![A-Za-z])"
              r"|(?<![A-Za-z])P(?![A-Za-z])|(?<=[\d\x01])p(?![a-z])|(?<=[\s\x01])p(?=\s|$)")
ATM = Pattern(r"{moneyness:atm.cjk}|(?<![a-z]){moneyness:atm.latin}(?![a-z])", re.I)


@dataclass
class Frame:
    """What one clause says. List fields multiply (cartesian), scalars apply to every request."""

    underlyings: list = field(default_factory=list)  # (code, name) or ("?", raw_text)
    tenors: list = field(default_factory=list)
    strikes: list = field(default_factory=list)  # ("pct", v) | ("level", v) | ("itm"/"otm", x)
    option_types: list = field(default_factory=list)
    scalars: dict = field(default_factory=dict)
    asks: set = field(default_factory=set)  # price/vol/coupon/participation words without values
    pairs: list = field(default_factory=list)  # (strike, option_type) written together: '95 put 和 105 call'
    leftover: list = field(default_factory=list)  # unconsumed words that may name an unknown underlying
    chat_words: list = field(default_factory=list)  # unconsumed words that are neither filler nor desk terms
    inherited: set = field(default_factory=set)  # fields copied from an earlier clause (a later clause may override)

    def has_request_content(self) -> bool:
        s = self.scalars
        return bool(self.underlyings or self.option_types or "structure" in s or self.strikes
                    or any(k in s for k in ("ko_pct", "ki_pct", "barrier_pct", "upper_strike_pct")))

    def defines(self) -> set[str]:
        d = set()
        if self.underlyings:
            d.add("underlying")
        if self.tenors:
            d.add("tenor")
        if self.strikes:
            d.add("strike")
        if self.option_types:
            d.add("option_type")
        d.update(self.scalars)
        return d


class Work:
    """The clause text with consumed characters masked, and the vocabulary its patterns are read with."""

    def __init__(self, text: str, vocab: Vocabulary):
        self.text = text
        self.vocab = vocab

    def consume(self, start: int, end: int) -> None:
        self.text = self.text[:start] + MASK * (end - start) + self.text[end:]

    def rx(self, pattern: Pattern | re.Pattern) -> re.Pattern:
        return self.vocab.rx(pattern) if isinstance(pattern, Pattern) else pattern

    def finditer(self, pattern: Pattern | re.Pattern) -> list[re.Match]:
        return list(self.rx(pattern).finditer(self.text))


def _f(x: str) -> float:
    v = float(x)
    return int(v) if v == int(v) else v


def _in(v: float, lo: float, hi: float) -> float | None:
    return v if lo <= v <= hi else None


def percent(x: str, had_pct: bool = False) -> float:
    """A percentage: '0.9' → 90, '95' → 95, '95%' → 95."""
    v = float(x)
    if not had_pct and 0 < v <= 2.0 and "." in x:
        v = v * 100
    v = round(v, 6)
    return int(v) if v == int(v) else v


# ---------------------------------------------------------------- notional
_NOTIONAL = Pattern(r"(?<![\d.])(\d+(?:\.\d+)?)\s*({notional_unit})(?![A-Za-z])")
_ONE_EACH = Pattern(r"{one_each}\s*$")
_PREMIUM_CONTEXT = Pattern(r"{premium}\s*$")
_PREMIUM_AFTER = Pattern(r"^\s*(?:的)?\s*{premium}")


def extract_notional(w: Work, fr: Frame) -> None:
    for m in w.finditer(_NOTIONAL):
        if w.rx(_PREMIUM_CONTEXT).search(w.text[max(0, m.start() - 6):m.start()]) or w.rx(_PREMIUM_AFTER).match(w.text[m.end():]):
            w.consume(m.start(), m.end())  # a premium budget, not the notional
            continue
        unit = m.group(2)
        v = float(m.group(1))
        if unit in ("w", "W") and v < 100:
            continue  # 2w = two weeks
        if unit in ("e", "E") and v > 100:
            continue
        amount = int(round(v * float(w.vocab.meaning("notional_unit", unit))))
        if "notional" in fr.scalars and w.rx(_ONE_EACH).search(w.text[max(0, m.start() - 4):m.start()]):
            # '一个2000万 一个3000万': the same request at two sizes
            fr.scalars["_notionals"] = fr.scalars.get("_notionals", (fr.scalars["notional"],)) + (amount,)
        fr.scalars["notional"] = amount
        w.consume(m.start(), m.end())
    if "_notionals" in fr.scalars:
        fr.scalars["notional"] = fr.scalars["_notionals"][0]


# ---------------------------------------------------------------- snowball/phoenix/barrier terms
_VALUE = r"\s*[:=：为是在]?\s*(\d+(?:\.\d+)?)\s*(%)?"  # the value after a label: '敲出: 103%', '票息为5'
_LEVEL_NOUN = r"(?:价格|价|线|水平|界限|障碍)?"  # 敲出价, 敲入线, 障碍水平
_LOCKUP = [
    Pattern(r"{field:lockup+abbr}\s*[:=：为是]?\s*(\d+)\s*(?:个)?\s*(?:月|m|M|个月)", re.I),
    Pattern(r"(\d+)\s*(?:个)?\s*(?:月|m|M)\s*(?:的)?\s*{field:lockup|field:lockup.cjk+abbr}", re.I),
    Pattern(r"前\s*(\d+)\s*(?:个)?\s*月\s*{field:lockup+abbr}"),
    Pattern(r"(?<![A-Za-z]){field:lockup.latin+abbr}\s*(\d{1,2})(?![\d%])", re.I),  # NC3: non-call (no knock-out) for 3 months
    Pattern(r"{field:lockup.cjk+abbr}\s*[:=：为是]?\s*(\d{1,2})(?![\d.%]|\s*(?:个|年|周|天|[wWyYdD](?![A-Za-z])))"),  # 锁3
]
_STEPDOWN = [
    Pattern(r"(?:逐月|每月|每期|按月)?\s*{field:stepdown+abbr}\s*(?:每月|逐月|每期)?\s*[:=：]?\s*(\d+(?:\.\d+)?)\s*(%|个点|点|pt|bps?|个bp)?", re.I),
]
_CB = Pattern(r"{field:coupon_barrier+abbr}" + _VALUE, re.I)
_COUPON = [
    Pattern(r"{field:coupon|yield:label}\s*[:=：为是在]?\s*(\d+(?:\.\d+)?)\s*(%)", re.I),
    Pattern(r"{field:coupon}\s*[:=：为是在]?\s*(\d+(?:\.\d+)?)(?![\d%])", re.I),
    Pattern(r"(\d+(?:\.\d+)?)\s*(%)\s*(?:的)?\s*(?:年化)?\s*{field:coupon|yield:suffix}", re.I),
]
_KO = Pattern(r"{field:ko}" + _LEVEL_NOUN + _VALUE, re.I)
_KI = Pattern(r"{field:ki}" + _LEVEL_NOUN + _VALUE, re.I)
_KO_AFTER = Pattern(r"(?<![\d.])(\d+(?:\.\d+)?)\s*(%)?\s*(?:的)?\s*{field:ko}(?![a-z])", re.I)
_KI_AFTER = Pattern(r"(?<![\d.])(\d+(?:\.\d+)?)\s*(%)?\s*(?:的)?\s*{field:ki}(?![a-z])", re.I)
_PAIR = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*(%)?\s*(?:/|-|~|／|、|\\)\s*(\d+(?:\.\d+)?)\s*(%)?(?![\d.])")
_BARE_LEVEL = re.compile(r"(?<![\d.])(\d{2,3}(?:\.\d+)?)\s*%?(?![\d.]|\s*(?:个|月|周|年|天|万|亿|[mwydMWYD](?![A-Za-z])))")
_BARE_PAIR = re.compile(r"(?<![\d.])(\d{2,3})\s+(\d{2,3})(?![\d.%]|\s*(?:个|月|年|天|周|万|亿))")
_SIDE_LEVEL = r"(?=\s*\d{2,3}(?![\d.]|\s*(?:个|月|周|年|天)))"  # '上110 下90': 上/下 right before a level
_BARRIER = Pattern(r"(?:{field:barrier}(?:价格|价|水平)?|{field:ko|field:ki}(?:价|线)?|(?<!向)上" + _SIDE_LEVEL
                   + r"|(?<!向)下" + _SIDE_LEVEL + ")" + _VALUE, re.I)
_NOT_A_BARRIER = Pattern(r"{field:strike+abbr|field:participation+abbr|field:rebate}\s*[:=：]?\s*$", re.I)
_REBATE = Pattern(r"{field:rebate}" + _VALUE, re.I)
_PARTICIPATION = Pattern(r"{field:participation+abbr}" + _VALUE, re.I)
_PARTICIPATION_AFTER = Pattern(r"(\d+(?:\.\d+)?)\s*(%)\s*(?:的)?{field:participation.cjk+abbr}(?![率比]|\s*(?:多少|几|是多少|呢|[?？]))")
_PAYOUT = Pattern(r"{field:payout}(?:率|比例)?" + _VALUE, re.I)
BARRIER_TYPES = ("up_out", "down_out", "up_in", "down_in")
_BTYPE = [(Pattern("{barrier_type:%s.cjk}|{barrier_type:%s.latin}(?![a-z])" % (bt, bt), re.I), bt) for bt in BARRIER_TYPES]
_KOKI_PAIR = Pattern(r"({field:ko|field:ki})\s*[/、和及]?\s*{field:ko|field:ki}\s*(?:价|线|水平)?\s*[:=：为是]?\s*"
                     r"(\d+(?:\.\d+)?)\s*%?\s*[/、\-]\s*(\d+(?:\.\d+)?)\s*%?", re.I)


def _koki(w: Work, fr: Frame, m: re.Match):
    a, b = percent(m.group(2)), percent(m.group(3))
    ko_first = w.vocab.meaning("field", m.group(1)) == "ko"
    fr.scalars.setdefault("ko_pct", a if ko_first else b)
    fr.scalars.setdefault("ki_pct", b if ko_first else a)
    return True


def _stepdown(m: re.Match):
    v = float(m.group(1))
    unit = (m.group(2) or "").lower()
    if "bp" in unit:
        v = v / 100
    if v > 5:
        return None
    return _f(str(round(v, 6)))


def _first(w: Work, rxs, fr: Frame, key: str, conv) -> bool:
    for rx in rxs if isinstance(rxs, (list, tuple)) else [rxs]:
        for m in w.finditer(rx):
            val = conv(m)
            if val is None:
                continue
            fr.scalars.setdefault(key, val)
            w.consume(m.start(), m.end())
            return True
    return False


def _double_barrier(w: Work) -> list:
    """'双鲨 90/110': the first pair with one level below 100 and one above (consumed), or []."""
    for m in w.finditer(_PAIR):
        a, b = percent(m.group(1), bool(m.group(2))), percent(m.group(3), bool(m.group(4)))
        if 50 <= min(a, b) < 100 < max(a, b) <= 200:
            w.consume(m.start(), m.end())
            return [a, b]
    return []


def extract_terms(w: Work, fr: Frame, structure: str | None) -> None:
    _first(w, _LOCKUP, fr, "lockup_months", lambda m: int(m.group(1)) if int(m.group(1)) <= 24 else None)
    _first(w, _KOKI_PAIR, fr, "_pair", lambda m: _koki(w, fr, m))
    fr.scalars.pop("_pair", None)
    _first(w, _STEPDOWN, fr, "ko_stepdown_pct", _stepdown)
    _first(w, _CB, fr, "coupon_barrier_pct", lambda m: percent(m.group(1), bool(m.group(2))))
    _first(w, _COUPON, fr, "coupon_pct", lambda m: _f(m.group(1)) if float(m.group(1)) <= 60 else None)
    _first(w, _REBATE, fr, "rebate_pct", lambda m: _f(m.group(1)))
    for rx, bt in _BTYPE:
        if w.rx(rx).search(w.text):
            fr.scalars.setdefault("barrier_type", bt)
    barrier_like = structure in ("sharkfin", "double_sharkfin", "barrier")
    if barrier_like:
        vals = _double_barrier(w) if structure == "double_sharkfin" else []
        for m in w.finditer(_BARRIER):
            vals.append(percent(m.group(1), bool(m.group(2))))
            w.consume(m.start(), m.end())
        if structure == "double_sharkfin":
            if len(vals) < 2:
                vals += _double_barrier(w)
            if vals:
                hi, lo = max(vals), min(vals)
                if hi > 100:
                    fr.scalars["barrier_pct"] = hi
                if lo < 100:
                    fr.scalars["lower_barrier_pct"] = lo
        elif vals:
            fr.scalars["barrier_pct"] = vals[0]
        elif structure == "sharkfin":  # '鲨鱼鳍 3个月 110 看涨': a bare level is the knock-out barrier
            for m in w.finditer(_BARE_LEVEL):
                before = w.text[max(0, m.start() - 8):m.start()].replace(MASK, "")
                v = float(m.group(1))
                if 50 <= v <= 200 and v != 100 and not w.rx(_NOT_A_BARRIER).search(before):
                    fr.scalars["barrier_pct"] = _f(m.group(1))
                    w.consume(m.start(), m.end())
                    break
    else:
        _first(w, _KO, fr, "ko_pct", lambda m: _in(percent(m.group(1), bool(m.group(2))), 50, 150))
        _first(w, _KI, fr, "ki_pct", lambda m: _in(percent(m.group(1), bool(m.group(2))), 20, 100))
        _first(w, _KO_AFTER, fr, "ko_pct", lambda m: _in(percent(m.group(1), bool(m.group(2))), 50, 150))
        _first(w, _KI_AFTER, fr, "ki_pct", lambda m: _in(percent(m.group(1), bool(m.group(2))), 20, 100))
        if structure in ("snowball", "phoenix", "airbag") and ("ko_pct" not in fr.scalars or "ki_pct" not in fr.scalars):
            for m in w.finditer(_PAIR):
                a, b = percent(m.group(1), bool(m.group(2))), percent(m.group(3), bool(m.group(4)))
                hi, lo = max(a, b), min(a, b)
                if 40 <= lo < hi <= 130 and hi >= 90:
                    if structure == "airbag":
                        fr.scalars.setdefault("ki_pct", lo)
                    else:
                        fr.scalars.setdefault("ko_pct", hi)
                        fr.scalars.setdefault("ki_pct", lo)
                    w.consume(m.start(), m.end())
                    break
        if structure in ("snowball", "phoenix") and "ko_pct" not in fr.scalars and "ki_pct" not in fr.scalars:
            for m in w.finditer(_BARE_PAIR):  # '103 75' after a snowball
                a, b = float(m.group(1)), float(m.group(2))
                hi, lo = max(a, b), min(a, b)
                if 40 <= lo < hi <= 130 and hi >= 90:
                    fr.scalars["ko_pct"], fr.scalars["ki_pct"] = _f(str(hi)), _f(str(lo))
                    w.consume(m.start(), m.end())
                    break
    if not _first(w, _PARTICIPATION, fr, "participation_pct", lambda m: percent(m.group(1), bool(m.group(2)))):
        _first(w, _PARTICIPATION_AFTER, fr, "participation_pct", lambda m: _f(m.group(1)))
    if structure == "digital":
        _first(w, _PAYOUT, fr, "payout_pct", lambda m: _f(m.group(1)) if float(m.group(1)) <= 100 else None)


# ---------------------------------------------------------------- strikes
_SIZE_LIST = r"(\d+(?:\.\d+)?(?:\s*(?:%|个点|点)?\s*[、,/和及]\s*\d+(?:\.\d+)?)*)\s*(?:%|个点|点)?"  # '5%', '5、10个点'
_SIZE_BEFORE = r"(\d+(?:\.\d+)?)\s*(?:%|个点|点)?\s*(?:的)?\s*"
_ITM = Pattern(r"{moneyness:itm}\s*" + _SIZE_LIST + "|" + _SIZE_BEFORE + "{moneyness:itm}", re.I)  # 实 alone: 其实, 落实
_OTM = Pattern(r"{moneyness:otm+abbr}\s*" + _SIZE_LIST + "|" + _SIZE_BEFORE + "{moneyness:otm+abbr}", re.I)
_STRIKE_KW = Pattern(
    r"{field:strike+abbr}\s*[:=：为是在]?\s*"
    r"((?:\d+(?:\.\d+)?\s*(?:%|点|元|块)?\s*(?:、|,|，|/|和|及|或|跟|与)\s*)*\d+(?:\.\d+)?\s*(?:%|点|元|块)?)(?!\s*(?:个|月|天|周|年|[mMwWyYdD](?![A-Za-z])))", re.I)
_TYPE_WORD = r"(?:{option_type.cjk}|(?<![a-z]){option_type.latin})"  # 看涨, call (not recall)
_TYPE_OR_LETTER = r"{option_type}|c(?![a-z])|p(?![a-z])"  # 看涨, call, c
_STRIKE_BEFORE_TYPE = Pattern(
    r"(?<![\d.])((?:\d+(?:\.\d+)?\s*%?\s*(?:、|,|/|和|及|或|跟|与)\s*)*\d+(?:\.\d+)?)\s*(%)?\s*(?:的)?\s*(?:行权的?)?\s*(?=(" + _TYPE_OR_LETTER + "))", re.I)
_NOT_A_STRIKE = r"(?![\d.]|\s*(?:个|月|天|周|年|万|亿|w|W|点|kw|[mMyYdD](?![A-Za-z])))"  # a tenor, size or level follows
_AFTER_TYPE = Pattern(_TYPE_WORD + r"\s*(?:期权)?\s*(\d+(?:\.\d+)?)\s*(%)?" + _NOT_A_STRIKE, re.I)
_CHANGE_TO = Pattern(r"{change_to}\s*(\d+(?:\.\d+)?)\s*(%|点)?(?![\d.]|\s*(?:个|月|天|周|年|万|亿|w|W|kw|[mMyYdD](?![A-Za-z])))")
_TYPE_BEFORE = Pattern(_TYPE_WORD + r"\s*(?:期权)?\s*$", re.I)
_MORE_STRIKES = re.compile(r"\s*(?:、|,|，|/|和|及|或|跟|与)\s*(\d+(?:\.\d+)?)\s*(%)?" + _NOT_A_STRIKE)
_NUM_LIST = re.compile(r"(?<![\d.])\d+(?:\.\d+)?%?(?:\s*(?:/|、)\s*\d+(?:\.\d+)?%?)+(?![\d.])")
_ATM_OFFSET = Pattern(r"{moneyness:atm}\s*([+\-＋－])\s*(\d+(?:\.\d+)?)\s*%", re.I)
_TYPE_NEXT = Pattern(r"\s*(?:的)?\s*(" + _TYPE_OR_LETTER + ")", re.I)
_ATM_PAIR = Pattern(r"{moneyness:atm}\s*%?\s*[/\-~]\s*(\d+(?:\.\d+)?)\s*%?|(?<![\d.])(\d+(?:\.\d+)?)\s*%?\s*[/\-~]\s*{moneyness:atm}", re.I)
_BARE_MONEY = Pattern(r"{moneyness:itm.cjk|moneyness:otm.cjk}|(?<![a-z]){moneyness:itm.latin|moneyness:otm.latin}(?![a-z])", re.I)
_LIST_BEFORE_KW = Pattern(r"(?<![\d.])((?:\d+(?:\.\d+)?%?\s*(?:、|,|/|和|及|或)\s*)*\d+(?:\.\d+)?%?)\s*(?:两个|三个|四个|几个|这几个)?\s*(?:的)?\s*{field:strike}")
_LEVEL = re.compile(r"(?<![\d.])(\d{3,6}(?:\.\d+)?)\s*点(?!\d)")
_BARE_STRIKE = re.compile(r"(?:(?<=\s)|(?<=^)|(?<=\x01))((?:[5-9]\d|1[0-5]\d)(?:\.\d+)?)(?=\s*$|\s+\S)(?!\s*(?:个|月|周|年|天|万|亿|手|吨|点|[mwydMWYD](?![A-Za-z])))")
_PCT_LIST = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*%")


def option_type_of(w: Work, word: str) -> str:
    """call/put of a type word the patterns matched (看涨, call, c…)."""
    return "call" if word == "c" or w.rx(CALL).match(word) else "put"


def _strike_val(tok: str, unit: str | None) -> tuple[str, float] | None:
    v = float(tok)
    if unit == "%" and not 20 <= v <= 300:
        return None
    if unit in ("点", "元", "块"):
        return ("level", _f(tok))
    if unit == "%":
        return ("pct", _f(tok))
    if v <= 2.0:
        return ("pct", percent(tok))
    if 40 <= v <= 160:
        return ("pct", _f(tok))
    if v > 160:
        return ("level", _f(tok))
    return None


def extract_strikes(w: Work, fr: Frame, structure: str | None) -> None:
    spread = structure == "spread"
    for m in w.finditer(_ITM):
        for x in re.findall(r"\d+(?:\.\d+)?", m.group(1) or m.group(2)):
            if float(x) <= 50:
                fr.strikes.append(("itm", _f(x)))
        w.consume(m.start(), m.end())
    for m in w.finditer(_OTM):
        xs = [x for x in re.findall(r"\d+(?:\.\d+)?", m.group(1) or m.group(2)) if float(x) <= 50]
        if not xs:
            continue
        fr.strikes.extend(("otm", _f(x)) for x in xs)
        w.consume(m.start(), m.end())
    for m in w.finditer(_ATM_OFFSET):
        x = float(m.group(2))
        v = 100 + x if m.group(1) in "+＋" else 100 - x
        fr.strikes.append(("pct", _f(str(v))))
        w.consume(m.start(), m.end())
    if spread and "strike_pct" not in fr.scalars:  # 看涨价差 平值/105
        for m in w.finditer(_ATM_PAIR):
            a, b = (100, percent(m.group(1))) if m.group(1) else (percent(m.group(2)), 100)
            if 40 <= a <= 200 and 40 <= b <= 200 and a != b:
                fr.scalars["strike_pct"], fr.scalars["upper_strike_pct"] = a, b
                w.consume(m.start(), m.end())
                break
    for m in w.finditer(ATM):
        fr.strikes.append(("pct", 100))
        t = w.rx(_TYPE_NEXT).match(w.text, m.end())  # '平值看涨 和 95看跌': the ATM strike belongs to this leg
        if t:
            fr.pairs.append((("pct", 100), option_type_of(w, t.group(1))))
        w.consume(m.start(), m.end())
    for m in w.finditer(_STRIKE_KW):
        parts = re.findall(r"(\d+(?:\.\d+)?)\s*(%|点|元|块)?", m.group(1))
        vals = [_strike_val(t, u or None) for t, u in parts]
        vals = [v for v in vals if v]
        if not vals:
            continue
        if spread and len(vals) >= 2:
            fr.scalars.setdefault("strike_pct", vals[0][1])
            fr.scalars.setdefault("upper_strike_pct", vals[1][1])
        else:
            fr.strikes.extend(vals)
        w.consume(m.start(), m.end())
    if spread and "strike_pct" not in fr.scalars:
        for m in w.finditer(_PAIR):
            a, b = percent(m.group(1), bool(m.group(2))), percent(m.group(3), bool(m.group(4)))
            if 40 <= a <= 200 and 40 <= b <= 200 and a != b:
                fr.scalars["strike_pct"] = a
                fr.scalars["upper_strike_pct"] = b
                w.consume(m.start(), m.end())
                break
    for m in w.finditer(_STRIKE_BEFORE_TYPE):
        if w.rx(_TYPE_BEFORE).search(w.text, 0, m.start(1)):
            continue  # '看涨 103 看跌 97': 103 follows its own type word (read below, after the type)
        nums = re.findall(r"\d+(?:\.\d+)?", m.group(1))
        vals = [_strike_val(t, "%" if m.group(2) else None) for t in nums]
        vals = [v for v in vals if v and (v[0] == "pct")]
        if vals and not (len(nums) == 1 and float(nums[0]) in (50, 300, 500, 1000, 2000) and not m.group(2)):
            fr.strikes.extend(vals)
            if len(vals) == 1:
                fr.pairs.append((vals[0], option_type_of(w, m.group(3))))
            w.consume(m.start(1), m.end(1) + (1 if m.group(2) else 0))
    for m in w.finditer(_LIST_BEFORE_KW):
        nums = re.findall(r"\d+(?:\.\d+)?", m.group(1))
        vals = [v for v in (_strike_val(t, "%" if "%" in m.group(1) else None) for t in nums) if v]
        if vals:
            fr.strikes.extend(vals)
            w.consume(m.start(), m.end())
    for m in w.finditer(_CHANGE_TO):
        v = _strike_val(m.group(1), m.group(2))
        if v:
            fr.strikes.append(v)
            w.consume(m.start(), m.end())
    for m in w.finditer(_LEVEL):
        fr.strikes.append(("level", _f(m.group(1))))
        w.consume(m.start(), m.end())
    if not fr.strikes and structure in (None, "vanilla", "digital", "asian", "barrier"):
        for m in w.finditer(_NUM_LIST):
            nums = re.findall(r"\d+(?:\.\d+)?", m.group(0))
            vals = [float(x) for x in nums]
            if all(40 <= v <= 160 for v in vals) and not all(v in (50.0, 300.0, 500.0, 1000.0, 2000.0) for v in vals):
                fr.strikes.extend(("pct", _f(x)) for x in nums)
                w.consume(m.start(), m.end())
                break
    for m in w.finditer(_AFTER_TYPE):
        v = _strike_val(m.group(1), "%" if m.group(2) else None)
        if v and not (not m.group(2) and float(m.group(1)) in (50, 300, 500, 1000, 2000)):
            fr.strikes.append(v)
            end = m.end()
            first = len(fr.strikes) - 1
            for more in _MORE_STRIKES.finditer(w.text, end):  # '看跌 95 和 100'
                if more.start() != end:
                    break
                nxt = _strike_val(more.group(1), "%" if more.group(2) else None)
                if not nxt or nxt[0] != v[0]:
                    break
                fr.strikes.append(nxt)
                end = more.end()
            if len(fr.strikes) - 1 == first:  # '看涨 103 看跌 97': this strike belongs to this leg
                fr.pairs.append((v, option_type_of(w, m.group(0))))
            w.consume(m.start(1), end)
    for m in w.finditer(_BARE_MONEY):
        if not fr.strikes:
            fr.strikes.append((w.vocab.meaning("moneyness", m.group(0)), None))
        w.consume(m.start(), m.end())
    if "strike_pct" not in fr.scalars and structure not in ("snowball", "phoenix", "airbag", "sharkfin", "double_sharkfin"):
        # bare percentages left over: '95%的' / '100% 105% 110%'
        for m in w.finditer(_PCT_LIST):
            v = float(m.group(1))
            if 50 <= v <= 150:
                fr.strikes.append(("pct", _f(m.group(1))))
                w.consume(m.start(), m.end())
    if structure in (None, "vanilla", "digital", "asian") and not fr.strikes:
        for m in w.finditer(_BARE_STRIKE):  # '500 p 3m 95': a lone number next to the terms
            fr.strikes.append(("pct", _f(m.group(1))))
            w.consume(m.start(), m.end())
            break
    if spread and "strike_pct" not in fr.scalars and len([k for k in fr.strikes if k[0] == "pct"]) >= 2:
        ps = [k[1] for k in fr.strikes if k[0] == "pct"]
        fr.scalars["strike_pct"], fr.scalars["upper_strike_pct"] = ps[0], ps[1]
        fr.strikes = [k for k in fr.strikes if k[0] != "pct"]


# ---------------------------------------------------------------- tenors
_TENOR_RULES = [
    (re.compile(r"(?<![\d.])(\d+)\s*年半"), lambda m: f"{int(m.group(1)) * 12 + 6}M"),
    (re.compile(r"(?<![\d.])(\d+)\s*个半月"), lambda m: f"{int(m.group(1)) * 30 + 15}D"),
    (re.compile(r"(?<![\d.去近])(\d+(?:\.\d+)?)\s*(?:个)?\s*(?:自然)?(?:月|月份)(?!份|底|末|初|中旬|\d+\s*[日号])"),
     lambda m: _months(float(m.group(1)))),
    (re.compile(r"(?<![\d.去近])(\d+(?:\.\d+)?)\s*(?:个)?\s*年(?:期)?"), lambda m: _months(float(m.group(1)) * 12) if float(m.group(1)) <= 10 else None),
    (re.compile(r"(?<![\d.这那近去])(\d+)\s*(?:个)?\s*(?:周|星期|礼拜)"), lambda m: f"{int(m.group(1))}W"),
    (re.compile(r"(?<![\d.月这那近去前几])(\d+)\s*(?:个)?\s*(?:交易日|工作日|自然日|天|日)"), lambda m: f"{int(m.group(1))}D"),
    (re.compile(r"(?<![\d.])(\d+)\s*(?:个)?\s*季度"), lambda m: f"{int(m.group(1)) * 3}M"),
    (re.compile(r"半年"), lambda m: "6M"),
    (re.compile(r"(?<!\d)季度|一季"), lambda m: "3M"),
    (re.compile(r"半个?月"), lambda m: "2W"),
    (re.compile(r"(?<![A-Za-z0-9.])(\d+(?:\.\d+)?)\s*(m|mo|mos|mth|mths|months?)(?![A-Za-z])", re.I), lambda m: _months(float(m.group(1)))),
    (re.compile(r"(?<![A-Za-z0-9.])(\d+)\s*(w|wk|wks|weeks?)(?![A-Za-z])", re.I), lambda m: f"{int(m.group(1))}W" if int(m.group(1)) <= 52 else None),
    (re.compile(r"(?<![A-Za-z0-9.])(\d+(?:\.\d+)?)\s*(y|yr|yrs|years?)(?![A-Za-z])", re.I), lambda m: _months(float(m.group(1)) * 12)),
    (re.compile(r"(?<![A-Za-z0-9.])(\d+)\s*(d|days?)(?![A-Za-z])", re.I), lambda m: f"{int(m.group(1))}D"),
]
_TENOR_LIST = re.compile(r"(?<![\d.%])((?:\d+\s*(?:、|,|，|/|和|及|或|跟|与|-|~)\s*)+)(\d+)\s*(个月|个星期|周|年|天|[mMwWyY](?![A-Za-z]))")


def _months(v: float) -> str | None:
    if v <= 0 or v > 120:
        return None
    if v == int(v):
        return f"{int(v)}M"
    days = int(round(v * 30))
    return f"{days}D"


def extract_tenors(w: Work, fr: Frame) -> None:
    for m in w.finditer(_TENOR_LIST):
        unit = m.group(3)
        heads = re.findall(r"\d+", m.group(1))
        if "-" in m.group(1) or "~" in m.group(1):
            continue
        for h in heads:
            if int(h) > 60:
                break
        else:
            u = unit.lower()
            for h in heads:
                n = int(h)
                t = {"个月": f"{n}M", "m": f"{n}M", "个星期": f"{n}W", "周": f"{n}W", "w": f"{n}W",
                     "年": f"{n * 12}M", "y": f"{n * 12}M", "天": f"{n}D"}.get(u)
                if t:
                    fr.tenors.append((m.start(), t))
            w.consume(m.start(1), m.end(1))
    for rx, conv in _TENOR_RULES:
        for m in w.finditer(rx):
            t = conv(m)
            if t:
                fr.tenors.append((m.start(), t))
                w.consume(m.start(), m.end())
    fr.tenors.sort()
    seen, out = set(), []
    for _, t in fr.tenors:
        if t not in seen:
            seen.add(t)
            out.append(t)
    fr.tenors = out


# ---------------------------------------------------------------- underlyings
_CODE = re.compile(r"(?<![0-9A-Za-z])(?:(sh|sz|bj)\s*)?(\d{6})(?:\s*\.?\s*(sh|sz|bj|ss|csi)(?![a-z]))?(?![0-9])", re.I)
_IDX_FUT = re.compile(r"(?<![A-Za-z])(IH|IF|IC|IM)(?:\s*\d{4})?(?![A-Za-z])")
_CMDTY = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]{1,2})(\d{3,4})(?![\d%])")
_CMDTY_SUFFIX = re.compile(r"(?<![A-Za-z])([A-Za-z]{1,2})\.(SHF|DCE|CZC|INE|GFE)(?![A-Za-z])", re.I)


def _add_ul(fr: Frame, pos: int, item) -> None:
    fr.underlyings.append((pos, item))


def extract_codes(w: Work, fr: Frame, pool: UnderlyingPool, unknown: list) -> None:
    for m in w.finditer(_CMDTY_SUFFIX):
        code = f"{m.group(1).upper()}.{m.group(2).upper()}"
        _add_ul(fr, m.start(), (code, pool.name_of(code)))
        w.consume(m.start(), m.end())
    for m in w.finditer(_CODE):
        pre, digits, suf = m.group(1), m.group(2), m.group(3)
        code, _why = pool.resolve_code(digits, suf or pre)
        if code:
            _add_ul(fr, m.start(), (code, pool.name_of(code)))
        else:
            _add_ul(fr, m.start(), ("?", m.group(0).strip()))
            unknown.append(m.group(0).strip())
        w.consume(m.start(), m.end())
    for m in w.finditer(_IDX_FUT):
        code = INDEX_FUTURES[m.group(1)]
        _add_ul(fr, m.start(), (code, pool.name_of(code)))
        w.consume(m.start(), m.end())


def extract_aliases(w: Work, fr: Frame, pool: UnderlyingPool, cn_aliases: dict, latin_rx: re.Pattern,
                    token_bounds: set[int] | None) -> None:
    text = w.text
    n = len(text)
    maxlen = 10
    i = 0
    while i < n:
        hit = None
        for L in range(min(maxlen, n - i), 0, -1):
            s = text[i:i + L]
            code = cn_aliases.get(s)
            if code:
                if L <= 2 and token_bounds is not None and not (i in token_bounds and i + L in token_bounds):
                    continue
                hit = (L, code)
                break
        if hit:
            L, code = hit
            _add_ul(fr, i, (code, pool.name_of(code)))
            w.consume(i, i + L)
            i += L
        else:
            i += 1
    for m in w.finditer(latin_rx):
        tok = m.group(1)
        key = tok.upper()
        code = pool.aliases.get(key)
        if not code:
            continue
        if len(key) <= 2 and tok != key:  # short product codes only in upper case
            continue
        _add_ul(fr, m.start(), (code, pool.name_of(code)))
        w.consume(m.start(), m.end())
    for m in w.finditer(_CMDTY):  # contract codes: rb2510, i2601, AU2606
        code = pool.commodity_products.get(m.group(1).upper())
        if code:
            _add_ul(fr, m.start(), (code, pool.name_of(code)))
            w.consume(m.start(), m.end())


_SHORTHAND = re.compile(r"(?<![\d.%/\-A-Za-z])(?<![\u4e00-\u9fff](?<![和及与跟或的个来要报询价即笔买卖做有]))(50|300|500|1000|2000)(?![\d.%]|\s*(?:[万亿点个天年周元块吨手股张份克次倍月日号]|w|W|kw|kg|e(?![a-z])|/\s*\d|-\s*\d|bp))")
# '行权价 300', 'ko: 50': a field's value, not an index
_NUM_CONTEXT_BEFORE = Pattern(r"(?:{field:strike+abbr|field:ko|field:ki|field:notional|field:participation|field:coupon"
                              r"|field:coupon_barrier|field:rebate|field:payout}|障碍|=|:|：)\s*$", re.I)


_SHORTHAND_LIST = re.compile(r"(?<![\d.%A-Za-z])(?<![\u4e00-\u9fff](?<![和及与跟或的个来要报询价即]))(?:50|300|500|1000|2000)(?:\s*[/、,，和及]\s*(?:50|300|500|1000|2000))+(?![\d.%]|\s*(?:万|亿|w|W|kw|点|%|个|天|年|周))")


def extract_shorthand(w: Work, fr: Frame) -> None:
    for m in w.finditer(_SHORTHAND_LIST):
        for n in re.finditer(r"\d+", m.group(0)):
            _add_ul(fr, m.start() + n.start(), (SHORTHAND_INDEX[n.group(0)], None))
        w.consume(m.start(), m.end())
    for m in w.finditer(_SHORTHAND):
        before = w.text[max(0, m.start() - 8):m.start()].replace(MASK, "")
        if w.rx(_NUM_CONTEXT_BEFORE).search(before):
            continue
        code = SHORTHAND_INDEX[m.group(1)]
        _add_ul(fr, m.start(), (code, None))
        w.consume(m.start(), m.end())


# ---------------------------------------------------------------- words
_QUOTE_VOL = Pattern(r"{quote:vol.cjk}|(?<![a-z]){quote:vol.latin}(?![a-z])", re.I)
_QUOTE_COUPON = Pattern(r"{field:coupon|yield:label|quote:coupon}", re.I)
_QUOTE_PART = Pattern(r"{field:participation}")
_QUOTE_PRICE = Pattern(r"{quote:price}", re.I)
_DIRECTION = {ot: Pattern("{direction:%s}" % ot) for ot in ("call", "put")}  # a sharkfin's direction: 向上 → call
_BOTH_LEGS = Pattern(r"{combination}", re.I)
_STRANGLE = Pattern(r"{combination:strangle}", re.I)


def structure_order(vocab: Vocabulary) -> list[tuple[str, Pattern]]:
    """(structure, pattern) in precedence order: structures declared at run time (`structures`), longest name
    first, before the built-in ones (`STRUCTURE_ORDER`)."""
    declared = [v for v in vocab.values("structure") if v not in STRUCTURES]
    declared.sort(key=lambda v: -max(len(x) for x in vocab.words("structure", v)))
    return [(v, Pattern("{structure:%s}" % v, lower=True)) for v in declared] + list(STRUCTURES.items())


def extract_words(w: Work, fr: Frame) -> None:
    t = w.text
    low = t.lower()
    for st, pattern in structure_order(w.vocab):
        if w.rx(pattern).search(low):
            if st == "barrier" and "structure" in fr.scalars:
                continue
            fr.scalars.setdefault("structure", st)
    for word in w.vocab.words("spread_type"):  # bull/bear spreads fix the option type
        if word in t:
            fr.option_types.append(w.vocab.meaning("spread_type", word))
    if fr.scalars.get("structure") == "sharkfin" and not (w.rx(CALL).search(t) or w.rx(PUT).search(t)):
        if w.rx(_DIRECTION["call"]).search(t):
            fr.option_types.append("call")
        elif w.rx(_DIRECTION["put"]).search(t):
            fr.option_types.append("put")
    if w.rx(_BOTH_LEGS).search(t):  # straddle/strangle: both legs
        for ot in ("call", "put"):
            if ot not in fr.option_types:
                fr.option_types.append(ot)
        pcts = sorted({k[1] for k in fr.strikes if k[0] == "pct"})
        if w.rx(_STRANGLE).search(t) and len(pcts) == 2:  # strangle 95/105: put below, call above
            fr.pairs = [(("pct", pcts[0]), "put"), (("pct", pcts[1]), "call")]
    calls = [(m.start(), "call") for m in w.finditer(CALL)]
    puts = [(m.start(), "put") for m in w.finditer(PUT)]
    for _, ot in sorted(calls + puts):
        if ot not in fr.option_types:
            fr.option_types.append(ot)
    if w.rx(_QUOTE_VOL).search(t):
        fr.asks.add("vol")
    if w.rx(_QUOTE_PART).search(t):
        fr.asks.add("participation")
    if w.rx(_QUOTE_COUPON).search(t):
        fr.asks.add("coupon")
    if w.rx(_QUOTE_PRICE).search(t):
        fr.asks.add("price")
    if w.vocab.cue("side_sell").search(t):
        fr.scalars["side"] = "client_sells"
    elif w.vocab.cue("side_buy").search(t):
        fr.scalars["side"] = "client_buys"


def structure_hint(text: str, vocab: Vocabulary) -> str | None:
    """The structure a text names, if any (precedence as in `STRUCTURE_ORDER`)."""
    low = text.lower()
    for st, pattern in structure_order(vocab):
        if vocab.rx(pattern).search(low):
            return st
    return None
