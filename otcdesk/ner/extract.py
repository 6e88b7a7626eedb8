"""Deterministic field extraction from one normalised clause.

Every rule consumes the characters it used (replaced by a mask character) so that later, looser rules cannot
read the same digits twice: aliases and codes first, then notional, lock-up, step-down, coupons, KO/KI and
barriers, strikes, tenors, and finally bare index shorthands (300/500/1000/50/2000).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .pool import INDEX_FUTURES, SHORTHAND_INDEX, UnderlyingPool

MASK = "\x01"
NUM = r"(\d+(?:\.\d+)?)"
SEP = r"\s*[:=：为是在到]?\s*"

STRUCTURE_WORDS = [
    (r"双向鲨鱼鳍|双鲨鱼鳍|双鲨|双边鲨鱼鳍|double[\s_-]*shark[\s-]*fin", "double_sharkfin"),
    (r"鲨鱼鳍|单鲨|单向鲨鱼鳍|shark[\s-]*fin|鲨鱼", "sharkfin"),
    (r"雪球|snow[\s-]*ball|autocall|自动赎回|自动敲出", "snowball"),
    (r"凤凰|phoenix", "phoenix"),
    (r"安全气囊|气囊|air[\s-]*bag", "airbag"),
    (r"亚式|asian|均价期权", "asian"),
    (r"二元|数字期权|数字(?=看涨|看跌|认购|认沽|call|put)|digital|binary|一触即付|one[\s-]*touch", "digital"),
    (r"价差|spread|牛市价差|熊市价差", "spread"),
    (r"障碍期权|障碍|barrier|向上敲出|向下敲出|向上敲入|向下敲入|上涨敲出|下跌敲出|上涨敲入|下跌敲入|up[\s-]*(?:and[\s-]*)?out|down[\s-]*(?:and[\s-]*)?out|up[\s-]*(?:and[\s-]*)?in|down[\s-]*(?:and[\s-]*)?in|敲出期权|敲入期权", "barrier"),
    (r"香草|欧式|vanilla", "vanilla"),
]
CALL_RE = re.compile(r"看涨|看多|认购|(?<![申采收选订抢团])购(?![买物入置房])|(?<![A-Za-z])(?i:calls?)(?![A-Za-z])|牛市价差|(?<![A-Za-z])C(?![A-Za-z])|(?<=[\d\x01])c(?![a-z])|(?<=[\s\x01])c(?=\s|$)|看涨期权")
PUT_RE = re.compile(r"看跌|看空|认沽|沽|(?<![A-Za-z])(?i:puts?)(?![A-Za-z])|熊市价差|(?<![A-Za-z])P(?![A-Za-z])|(?<=[\d\x01])p(?![a-z])|(?<=[\s\x01])p(?=\s|$)|看跌期权")
ATM_RE = re.compile(r"平值|平价|(?<![a-z])atmf?(?![a-z])|at[\s-]the[\s-]money", re.I)


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
    """The clause text with consumed characters masked."""

    def __init__(self, text: str):
        self.text = text

    def consume(self, start: int, end: int) -> None:
        self.text = self.text[:start] + MASK * (end - start) + self.text[end:]

    def finditer(self, pattern, flags=0):
        rx = pattern if isinstance(pattern, re.Pattern) else re.compile(pattern, flags)
        return list(rx.finditer(self.text))


def _f(x: str) -> float:
    v = float(x)
    return int(v) if v == int(v) else v


def _in(v: float, lo: float, hi: float) -> float | None:
    return v if lo <= v <= hi else None


def _pct(x: str, had_pct: bool = False) -> float:
    """A percentage: '0.9' → 90, '95' → 95, '95%' → 95."""
    v = float(x)
    if not had_pct and 0 < v <= 2.0 and "." in x:
        v = v * 100
    v = round(v, 6)
    return int(v) if v == int(v) else v


# ---------------------------------------------------------------- notional
_NOTIONAL = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*(个亿|亿元|亿|千万|百万|万元|万|kw|KW|Kw|e|E|w|W|mm|MM|mn|million|mio)(?![A-Za-z])")
_NOTIONAL_MULT = {"个亿": 1e8, "亿元": 1e8, "亿": 1e8, "e": 1e8, "E": 1e8, "千万": 1e7, "kw": 1e7, "KW": 1e7, "Kw": 1e7,
                  "百万": 1e6, "mm": 1e6, "MM": 1e6, "mn": 1e6, "million": 1e6, "mio": 1e6, "万元": 1e4, "万": 1e4,
                  "w": 1e4, "W": 1e4}


_ONE_EACH = re.compile(r"(?:一个|一笔|一张|另一个|另一笔)\s*$")
_PREMIUM_CONTEXT = re.compile(r"(预算|期权费|权利金|费用|保证金)\s*$")
_PREMIUM_AFTER = re.compile(r"^\s*(?:的)?\s*(期权费|权利金|费用|保证金|预算)")


def extract_notional(w: Work, fr: Frame) -> None:
    for m in w.finditer(_NOTIONAL):
        if _PREMIUM_CONTEXT.search(w.text[max(0, m.start() - 6):m.start()]) or _PREMIUM_AFTER.match(w.text[m.end():]):
            w.consume(m.start(), m.end())  # a premium budget, not the notional
            continue
        unit = m.group(2)
        v = float(m.group(1))
        if unit in ("w", "W") and v < 100:
            continue  # 2w = two weeks
        if unit in ("e", "E") and v > 100:
            continue
        amount = int(round(v * _NOTIONAL_MULT[unit]))
        if "notional" in fr.scalars and _ONE_EACH.search(w.text[max(0, m.start() - 4):m.start()]):
            # '一个2000万 一个3000万': the same request at two sizes
            fr.scalars["_notionals"] = fr.scalars.get("_notionals", (fr.scalars["notional"],)) + (amount,)
        fr.scalars["notional"] = amount
        w.consume(m.start(), m.end())
    if "_notionals" in fr.scalars:
        fr.scalars["notional"] = fr.scalars["_notionals"][0]


# ---------------------------------------------------------------- snowball/phoenix/barrier terms
_LOCKUP = [
    re.compile(r"(?:锁定期|闭锁期|封闭期|锁定|闭锁|锁|不敲出期|lock[\s-]*up|lock|nc)\s*[:=：为是]?\s*(\d+)\s*(?:个)?\s*(?:月|m|M|个月)", re.I),
    re.compile(r"(\d+)\s*(?:个)?\s*(?:月|m|M)\s*(?:的)?\s*(?:锁定期|锁定|闭锁期|闭锁|锁|不观察|后开始观察|后观察|后开始敲出|不敲出|lock)", re.I),
    re.compile(r"前\s*(\d+)\s*(?:个)?\s*月\s*(?:不观察|不敲出|锁定)"),
    re.compile(r"(?<![A-Za-z])nc\s*(\d{1,2})(?![\d%])", re.I),
    re.compile(r"(?:锁定期|闭锁期|锁定|锁)\s*[:=：为是]?\s*(\d{1,2})(?![\d.%]|\s*(?:个|年|周|天|[wWyYdD](?![A-Za-z])))"),  # 锁3  # NC3: non-call (no knock-out) for 3 months
]
_STEPDOWN = [
    re.compile(r"(?:逐月|每月|每期|按月)?\s*(?:下调|递减|下降|降低|降敲|降|step[\s-]*down|stepdown|sd)\s*(?:每月|逐月|每期)?\s*[:=：]?\s*(\d+(?:\.\d+)?)\s*(%|个点|点|pt|bps?|个bp)?", re.I),
]
_CB = re.compile(r"(?:派息线|派息障碍|付息线|派息水平|派息|coupon[\s_-]*barrier|cb)\s*[:=：为是在]?\s*(\d+(?:\.\d+)?)\s*(%)?", re.I)
_COUPON = [
    re.compile(r"(?:票息|票面|coupon|年化票息|年化收益|年化|收益率|cpn)\s*[:=：为是在]?\s*(\d+(?:\.\d+)?)\s*(%)", re.I),
    re.compile(r"(?:票息|coupon|cpn)\s*[:=：为是在]?\s*(\d+(?:\.\d+)?)(?![\d%])", re.I),
    re.compile(r"(\d+(?:\.\d+)?)\s*(%)\s*(?:的)?\s*(?:年化)?\s*(?:票息|coupon|年化|收益)", re.I),
]
_KO = re.compile(r"(?:敲出价格|敲出价|敲出线|敲出水平|敲出界限|敲出障碍|敲出|ko|knock[\s-]*out)\s*[:=：为是在]?\s*(\d+(?:\.\d+)?)\s*(%)?", re.I)
_KI = re.compile(r"(?:敲入价格|敲入价|敲入线|敲入水平|敲入界限|敲入障碍|敲入|ki|knock[\s-]*in)\s*[:=：为是在]?\s*(\d+(?:\.\d+)?)\s*(%)?", re.I)
_KO_AFTER = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*(%)?\s*(?:的)?\s*(?:敲出|ko)(?![a-z])", re.I)
_KI_AFTER = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*(%)?\s*(?:的)?\s*(?:敲入|ki)(?![a-z])", re.I)
_PAIR = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*(%)?\s*(?:/|-|~|／|、|\\)\s*(\d+(?:\.\d+)?)\s*(%)?(?![\d.])")
_BARE_LEVEL = re.compile(r"(?<![\d.])(\d{2,3}(?:\.\d+)?)\s*%?(?![\d.]|\s*(?:个|月|周|年|天|万|亿|[mwydMWYD](?![A-Za-z])))")
_BARE_PAIR = re.compile(r"(?<![\d.])(\d{2,3})\s+(\d{2,3})(?![\d.%]|\s*(?:个|月|年|天|周|万|亿))")
_BARRIER = re.compile(r"(?:障碍价格|障碍价|障碍水平|障碍|barrier|触发价|触发|敲出价|敲出|敲入价|敲入线|敲入|上沿|下沿|上限|下限|ko|上方|下方|(?<!向)上(?=\s*\d{2,3}(?![\d.]|\s*(?:个|月|周|年|天)))|(?<!向)下(?=\s*\d{2,3}(?![\d.]|\s*(?:个|月|周|年|天))))\s*[:=：为是在]?\s*(\d+(?:\.\d+)?)\s*(%)?", re.I)
_REBATE = re.compile(r"(?:敲出返息|返息|敲出补偿|敲出后?返还|补偿收益|补偿|返还|rebate|敲出收益)\s*[:=：为是在]?\s*(\d+(?:\.\d+)?)\s*(%)?", re.I)
_PARTICIPATION = re.compile(r"(?:参与率|参与比例|participation|参与|pr)\s*[:=：为是在]?\s*(\d+(?:\.\d+)?)\s*(%)?", re.I)
_PARTICIPATION_AFTER = re.compile(r"(\d+(?:\.\d+)?)\s*(%)\s*(?:的)?参与(?:率|比例)?(?![率比]|\s*(?:多少|几|是多少|呢|[?？]))")
_PAYOUT = re.compile(r"(?:赔付|支付|payout|pay|收益|派息|coupon|回报)(?:率|比例)?\s*[:=：为是在]?\s*(\d+(?:\.\d+)?)\s*(%)?", re.I)
_BTYPE = [
    (re.compile(r"(?:向上|上涨|上)敲出|up[\s-]*(?:and[\s-]*)?out", re.I), "up_out"),
    (re.compile(r"(?:向下|下跌|下)敲出|down[\s-]*(?:and[\s-]*)?out", re.I), "down_out"),
    (re.compile(r"(?:向上|上涨|上)敲入|up[\s-]*(?:and[\s-]*)?in(?![a-z])", re.I), "up_in"),
    (re.compile(r"(?:向下|下跌|下)敲入|down[\s-]*(?:and[\s-]*)?in(?![a-z])", re.I), "down_in"),
]


_KOKI_PAIR = re.compile(r"(敲出|ko|敲入|ki)\s*[/、和及]?\s*(?:敲出|ko|敲入|ki)\s*(?:价|线|水平)?\s*[:=：为是]?\s*(\d+(?:\.\d+)?)\s*%?\s*[/、\-]\s*(\d+(?:\.\d+)?)\s*%?", re.I)


def _koki(fr: Frame, m: re.Match):
    a, b = _pct(m.group(2)), _pct(m.group(3))
    ko_first = m.group(1).lower() in ("敲出", "ko")
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


def extract_terms(w: Work, fr: Frame, structure: str | None) -> None:
    _first(w, _LOCKUP, fr, "lockup_months", lambda m: int(m.group(1)) if int(m.group(1)) <= 24 else None)
    _first(w, _KOKI_PAIR, fr, "_pair", lambda m: _koki(fr, m))
    fr.scalars.pop("_pair", None)
    _first(w, _STEPDOWN, fr, "ko_stepdown_pct", _stepdown)
    _first(w, _CB, fr, "coupon_barrier_pct", lambda m: _pct(m.group(1), bool(m.group(2))))
    _first(w, _COUPON, fr, "coupon_pct", lambda m: _f(m.group(1)) if float(m.group(1)) <= 60 else None)
    _first(w, _REBATE, fr, "rebate_pct", lambda m: _f(m.group(1)))
    for rx, bt in _BTYPE:
        if w.finditer(rx):
            fr.scalars.setdefault("barrier_type", bt)
    barrier_like = structure in ("sharkfin", "double_sharkfin", "barrier")
    if barrier_like:
        vals = []
        if structure == "double_sharkfin":
            for m in w.finditer(_PAIR):
                a, b = _pct(m.group(1), bool(m.group(2))), _pct(m.group(3), bool(m.group(4)))
                if 50 <= min(a, b) < 100 < max(a, b) <= 200:
                    vals += [a, b]
                    w.consume(m.start(), m.end())
                    break
        for m in w.finditer(_BARRIER):
            vals.append(_pct(m.group(1), bool(m.group(2))))
            w.consume(m.start(), m.end())
        if structure == "double_sharkfin":
            if len(vals) < 2:
                for m in w.finditer(_PAIR):
                    a, b = _pct(m.group(1), bool(m.group(2))), _pct(m.group(3), bool(m.group(4)))
                    if 50 <= min(a, b) < 100 < max(a, b) <= 200:
                        vals += [a, b]
                        w.consume(m.start(), m.end())
                        break
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
                if 50 <= v <= 200 and v != 100 and not re.search(r"(行权价?|执行价|strike|k|参与率?|补偿|返还)\s*[:=：]?\s*$", before, re.I):
                    fr.scalars["barrier_pct"] = _f(m.group(1))
                    w.consume(m.start(), m.end())
                    break
    else:
        _first(w, _KO, fr, "ko_pct", lambda m: _in(_pct(m.group(1), bool(m.group(2))), 50, 150))
        _first(w, _KI, fr, "ki_pct", lambda m: _in(_pct(m.group(1), bool(m.group(2))), 20, 100))
        _first(w, _KO_AFTER, fr, "ko_pct", lambda m: _in(_pct(m.group(1), bool(m.group(2))), 50, 150))
        _first(w, _KI_AFTER, fr, "ki_pct", lambda m: _in(_pct(m.group(1), bool(m.group(2))), 20, 100))
        if structure in ("snowball", "phoenix", "airbag") and ("ko_pct" not in fr.scalars or "ki_pct" not in fr.scalars):
            for m in w.finditer(_PAIR):
                a, b = _pct(m.group(1), bool(m.group(2))), _pct(m.group(3), bool(m.group(4)))
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
    if not _first(w, _PARTICIPATION, fr, "participation_pct", lambda m: _pct(m.group(1), bool(m.group(2)))):
        _first(w, _PARTICIPATION_AFTER, fr, "participation_pct", lambda m: _f(m.group(1)))
    if structure == "digital":
        _first(w, _PAYOUT, fr, "payout_pct", lambda m: _f(m.group(1)) if float(m.group(1)) <= 100 else None)


# ---------------------------------------------------------------- strikes
_ITM = re.compile(r"(?:实值|价内|itm|in[\s-]the[\s-]money)\s*(\d+(?:\.\d+)?(?:\s*(?:%|个点|点)?\s*[、,/和及]\s*\d+(?:\.\d+)?)*)\s*(?:%|个点|点)?|(\d+(?:\.\d+)?)\s*(?:%|个点|点)?\s*(?:的)?\s*(?:实值|价内|itm)", re.I)
_OTM = re.compile(r"(?:虚值|价外|otm|out[\s-]of[\s-]the[\s-]money|虚)\s*(\d+(?:\.\d+)?(?:\s*(?:%|个点|点)?\s*[、,/和及]\s*\d+(?:\.\d+)?)*)\s*(?:%|个点|点)?|(\d+(?:\.\d+)?)\s*(?:%|个点|点)?\s*(?:的)?\s*(?:虚值|价外|otm|虚)", re.I)
_STRIKE_KW = re.compile(
    r"(?:行权价格|行权价|行权水平|执行价格|执行价|行权|strike|K)\s*[:=：为是在]?\s*"
    r"((?:\d+(?:\.\d+)?\s*(?:%|点|元|块)?\s*(?:、|,|，|/|和|及|或|跟|与)\s*)*\d+(?:\.\d+)?\s*(?:%|点|元|块)?)(?!\s*(?:个|月|天|周|年|[mMwWyYdD](?![A-Za-z])))", re.I)
_STRIKE_BEFORE_TYPE = re.compile(
    r"(?<![\d.])((?:\d+(?:\.\d+)?\s*%?\s*(?:、|,|/|和|及|或|跟|与)\s*)*\d+(?:\.\d+)?)\s*(%)?\s*(?:的)?\s*(?:行权的?)?\s*(?=(看涨|看跌|认购|认沽|call|put|c(?![a-z])|p(?![a-z])))", re.I)
_AFTER_TYPE = re.compile(r"(?:看涨|看跌|认购|认沽|(?<![a-z])call|(?<![a-z])put)\s*(?:期权)?\s*(\d+(?:\.\d+)?)\s*(%)?(?![\d.]|\s*(?:个|月|天|周|年|万|亿|w|W|点|kw|[mMyYdD](?![A-Za-z])))", re.I)
_CHANGE_TO = re.compile(r"(?:改成|换成|改为|换为|改到|换到)\s*(\d+(?:\.\d+)?)\s*(%|点)?(?![\d.]|\s*(?:个|月|天|周|年|万|亿|w|W|kw|[mMyYdD](?![A-Za-z])))")
_TYPE_BEFORE = re.compile(r"(?:看涨|看跌|认购|认沽|(?<![a-z])call|(?<![a-z])put)\s*(?:期权)?\s*$", re.I)
_MORE_STRIKES = re.compile(r"\s*(?:、|,|，|/|和|及|或|跟|与)\s*(\d+(?:\.\d+)?)\s*(%)?(?![\d.]|\s*(?:个|月|天|周|年|万|亿|w|W|点|kw|[mMyYdD](?![A-Za-z])))")
_NUM_LIST = re.compile(r"(?<![\d.])\d+(?:\.\d+)?%?(?:\s*(?:/|、)\s*\d+(?:\.\d+)?%?)+(?![\d.])")
_ATM_OFFSET = re.compile(r"(?:平值|平价|atmf?)\s*([+\-＋－])\s*(\d+(?:\.\d+)?)\s*%", re.I)
_TYPE_NEXT = re.compile(r"\s*(?:的)?\s*(看涨|看跌|认购|认沽|call|put|c(?![a-z])|p(?![a-z]))", re.I)
_ATM_PAIR = re.compile(r"(?:平值|atm)\s*%?\s*[/\-~]\s*(\d+(?:\.\d+)?)\s*%?|(?<![\d.])(\d+(?:\.\d+)?)\s*%?\s*[/\-~]\s*(?:平值|atm)", re.I)
_BARE_MONEY = re.compile(r"虚值|实值|价外|价内|(?<![a-z])(?:otm|itm)(?![a-z])", re.I)
_LIST_BEFORE_KW = re.compile(r"(?<![\d.])((?:\d+(?:\.\d+)?%?\s*(?:、|,|/|和|及|或)\s*)*\d+(?:\.\d+)?%?)\s*(?:两个|三个|四个|几个|这几个)?\s*(?:的)?\s*(?:行权价|行权|strike|价位|档位)")
_LEVEL = re.compile(r"(?<![\d.])(\d{3,6}(?:\.\d+)?)\s*点(?!\d)")
_BARE_STRIKE = re.compile(r"(?:(?<=\s)|(?<=^)|(?<=\x01))((?:[5-9]\d|1[0-5]\d)(?:\.\d+)?)(?=\s*$|\s+\S)(?!\s*(?:个|月|周|年|天|万|亿|手|吨|点|[mwydMWYD](?![A-Za-z])))")
_PCT_LIST = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*%")


def _strike_val(tok: str, unit: str | None) -> tuple[str, float] | None:
    v = float(tok)
    if unit == "%" and not 20 <= v <= 300:
        return None
    if unit in ("点", "元", "块"):
        return ("level", _f(tok))
    if unit == "%":
        return ("pct", _f(tok))
    if v <= 2.0:
        return ("pct", _pct(tok))
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
            a, b = (100, _pct(m.group(1))) if m.group(1) else (_pct(m.group(2)), 100)
            if 40 <= a <= 200 and 40 <= b <= 200 and a != b:
                fr.scalars["strike_pct"], fr.scalars["upper_strike_pct"] = a, b
                w.consume(m.start(), m.end())
                break
    for m in w.finditer(ATM_RE):
        fr.strikes.append(("pct", 100))
        t = _TYPE_NEXT.match(w.text, m.end())  # '平值看涨 和 95看跌': the ATM strike belongs to this leg
        if t:
            fr.pairs.append((("pct", 100), "call" if t.group(1).lower() in ("看涨", "认购", "call", "c") else "put"))
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
            a, b = _pct(m.group(1), bool(m.group(2))), _pct(m.group(3), bool(m.group(4)))
            if 40 <= a <= 200 and 40 <= b <= 200 and a != b:
                fr.scalars["strike_pct"] = a
                fr.scalars["upper_strike_pct"] = b
                w.consume(m.start(), m.end())
                break
    for m in w.finditer(_STRIKE_BEFORE_TYPE):
        if _TYPE_BEFORE.search(w.text, 0, m.start(1)):
            continue  # '看涨 103 看跌 97': 103 follows its own type word (read below, after the type)
        nums = re.findall(r"\d+(?:\.\d+)?", m.group(1))
        vals = [_strike_val(t, "%" if m.group(2) else None) for t in nums]
        vals = [v for v in vals if v and (v[0] == "pct")]
        if vals and not (len(nums) == 1 and float(nums[0]) in (50, 300, 500, 1000, 2000) and not m.group(2)):
            fr.strikes.extend(vals)
            if len(vals) == 1:
                fr.pairs.append((vals[0], "call" if m.group(3).lower() in ("看涨", "认购", "call", "c") else "put"))
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
                fr.pairs.append((v, "call" if CALL_RE.match(m.group(0)) else "put"))
            w.consume(m.start(1), end)
    for m in w.finditer(_BARE_MONEY):
        if not fr.strikes:
            fr.strikes.append(("otm" if re.match(r"虚|价外|otm", m.group(0), re.I) else "itm", None))
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
        code, why = pool.resolve_code(digits, suf or pre)
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
_NUM_CONTEXT_BEFORE = re.compile(r"(行权价?|执行价|strike|k|敲出|敲入|ko|ki|障碍|本金|规模|名义|notional|size|参与率|票息|coupon|派息|补偿|赔付|=|:|：)\s*$", re.I)


_SHORTHAND_LIST = re.compile(r"(?<![\d.%A-Za-z])(?<![\u4e00-\u9fff](?<![和及与跟或的个来要报询价即]))(?:50|300|500|1000|2000)(?:\s*[/、,，和及]\s*(?:50|300|500|1000|2000))+(?![\d.%]|\s*(?:万|亿|w|W|kw|点|%|个|天|年|周))")


def extract_shorthand(w: Work, fr: Frame) -> None:
    for m in w.finditer(_SHORTHAND_LIST):
        for n in re.finditer(r"\d+", m.group(0)):
            _add_ul(fr, m.start() + n.start(), (SHORTHAND_INDEX[n.group(0)], None))
        w.consume(m.start(), m.end())
    for m in w.finditer(_SHORTHAND):
        before = w.text[max(0, m.start() - 8):m.start()].replace(MASK, "")
        if _NUM_CONTEXT_BEFORE.search(before):
            continue
        code = SHORTHAND_INDEX[m.group(1)]
        _add_ul(fr, m.start(), (code, None))
        w.consume(m.start(), m.end())


# ---------------------------------------------------------------- words
_QUOTE_VOL = re.compile(r"波动率|隐波|隐含波动|(?<![a-z])i?vol(?:atility)?(?![a-z])|(?<![a-z])iv(?![a-z])|报个?波|vol报价", re.I)
_QUOTE_COUPON = re.compile(r"票息|coupon|cpn|收益率|年化收益|年化多少|给多少收益|票面", re.I)
_QUOTE_PART = re.compile(r"参与率|participation|参与比例")
_QUOTE_PRICE = re.compile(r"期权费|权利金|premium|费率|价格|报价|多少钱|报个价|px|price", re.I)
_SIDE_SELL = re.compile(r"(?<!你们)(?<!贵司)(?<!你方)(?<!给)卖出(?!给我)|(?:我们|我方|我司)(?:是|为|做|作为)卖方|(?:we|clients?)\s*(?:wants?\s*to\s*|would\s*like\s*to\s*|are\s*looking\s*to\s*)sell|(?:我们|我方|我司|客户)(?:想|要|打算|准备)?(?:卖出|卖|出售)|卖给(?:你们|你方|贵司|你)|(?:we|client)\s*(?:want\s*to\s*)?sells?|sell\s*to\s*you", re.I)
_SIDE_BUY = re.compile(r"(?:我们|我方|我司)(?:是|为|做|作为)买方|(?:我们|我方|我司|客户)(?:想|要|打算|准备)?(?:买入|买)|卖给(?:我们|我方|我司)|(?:we|client)\s*(?:want\s*to\s*)?buys?", re.I)


def extract_words(w: Work, fr: Frame) -> None:
    t = w.text
    low = t.lower()
    for rx, st in STRUCTURE_WORDS:
        if re.search(rx, low):
            if st == "barrier" and "structure" in fr.scalars:
                continue
            fr.scalars.setdefault("structure", st)
    # bull/bear spreads fix the option type
    if "牛市价差" in t:
        fr.option_types.append("call")
    if "熊市价差" in t:
        fr.option_types.append("put")
    if fr.scalars.get("structure") == "sharkfin" and not (CALL_RE.search(t) or PUT_RE.search(t)):
        if re.search(r"向上|上涨|看多|bullish", t):
            fr.option_types.append("call")
        elif re.search(r"向下|下跌|看空|bearish", t):
            fr.option_types.append("put")
    if re.search(r"跨式|宽跨|straddle|strangle", t, re.I):  # both legs
        for ot in ("call", "put"):
            if ot not in fr.option_types:
                fr.option_types.append(ot)
        pcts = sorted({k[1] for k in fr.strikes if k[0] == "pct"})
        if re.search(r"宽跨|strangle", t, re.I) and len(pcts) == 2:  # strangle 95/105: put below, call above
            fr.pairs = [(("pct", pcts[0]), "put"), (("pct", pcts[1]), "call")]
    calls = [(m.start(), "call") for m in CALL_RE.finditer(t)]
    puts = [(m.start(), "put") for m in PUT_RE.finditer(t)]
    for _, ot in sorted(calls + puts):
        if ot not in fr.option_types:
            fr.option_types.append(ot)
    if _QUOTE_VOL.search(t):
        fr.asks.add("vol")
    if _QUOTE_PART.search(t):
        fr.asks.add("participation")
    if _QUOTE_COUPON.search(t):
        fr.asks.add("coupon")
    if _QUOTE_PRICE.search(t):
        fr.asks.add("price")
    if _SIDE_SELL.search(t):
        fr.scalars["side"] = "client_sells"
    elif _SIDE_BUY.search(t):
        fr.scalars["side"] = "client_buys"


def structure_hint(text: str) -> str | None:
    low = text.lower()
    for rx, st in STRUCTURE_WORDS:
        if re.search(rx, low):
            return st
    return None
