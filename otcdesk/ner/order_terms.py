"""Order terms (下单要素): what an order, amendment or unwind message says besides "yes".

    read_order_terms("序号1，100w；序号2，市价").to_dict()
    → {"picks": [1, 2], "by_line": {"1": {"notional": 1000000}, "2": {"execution": {"type": "market", ...}}}}

The words are data (data/order_terms.csv, read with terms.csv): execution instructions (建仓/平仓指令: 市价, 限价 X,
POV X% with an optional limit — 最大跟量 is a fixed 25% —, TWAP over a window, 收盘价, VWAP/均价), size labels, line
picks (序号1, 第一笔), product-account words, 全平/一半. What the code adds is the grammar around them:

* sizes as in a quote request (200万, 2000w, 1亿, 5kw, 3000万元, 100w; "2w" alone is two weeks, not a size), a sign
  (-200万, 负200万) so a negative size is refused rather than read as positive, and a labelled size without a unit
  (名义本金0) in CNY;
* `execution` is always the five keys of CONTRACTS.md ({"type", "limit_price", "pov_pct", "start", "end"}, None
  where unstated); when several types are named the algorithm wins (POV 12% 限价6.5 is POV with a limit), and a
  limit given alone (不高于6.5) is a limit order; a TWAP/VWAP window is "HH:MM"–"HH:MM" (10:00-11:30, 10点到11点半,
  14:00到收盘);
* references: a quote id (Q + 10 hex digits, as `agents.desk.quote_id_for` makes them) and a trade id (T + 10 hex,
  or T + upper-case letters and digits such as the demo book's TDEMO00001);
* picks: 序号1, 序号1和2, 第一笔, 第2个 pick lines of a quote (or trades of a list the bot sent); 两笔都/都要 picks every
  line; a clause that says 不要 drops its lines ("第一个成交，第二个不要了" picks line 1). Terms in a clause that picks
  lines belong to those lines (`by_line`), terms elsewhere to every line;
* a product account by its number (产品2, 第2个产品) — names are matched by `pick_account` against the institution's
  accounts, which the parser does not know; a message that is only a number ("2", "选2", "第二个") is a `choice`, read
  as whatever the desk asked for.
"""
from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass, field

from .normalize import cn_to_int, normalize
from .vocabulary import Pattern, Vocabulary, default_vocabulary

EXECUTION_KEYS = ("type", "limit_price", "pov_pct", "start", "end")
EXECUTION_TYPES = ("market", "limit", "pov", "twap", "close", "vwap")
_TYPE_RANK = ("pov", "twap", "vwap", "close", "limit", "market")  # several named: the algorithm carries the limit
WINDOW_TYPES = ("twap", "vwap")

QUOTE_ID = re.compile(r"(?<![A-Za-z0-9])[Qq]([0-9A-Fa-f]{10})(?![A-Za-z0-9])")
# a trade id: T + 10 hex digits (any case), or T + 6-15 upper-case letters and digits with a digit (TDEMO00001)
TRADE_ID = re.compile(r"(?<![A-Za-z0-9])(?:[Tt]([0-9A-Fa-f]{10})|T((?=[0-9A-Z]*\d)[0-9A-Z]{6,15}))(?![A-Za-z0-9])")
_CN = "零〇一二两三四五六七八九十百"
_CN_ORDINAL = re.compile(rf"(第|序号|编号|选|[产账]户?)\s*([{_CN}]+)")
_CN_BEFORE = re.compile(rf"(?<![{_CN}])([{_CN}]+)(?=\s*(?:号|笔|个(?!月)))")
_NUM = r"(\d+(?:\.\d+)?)"
_UNIT_AHEAD = r"(?!\s*(?:{notional_unit})(?![A-Za-z]))"

_CLAUSE = Pattern(r"[;；。\n]+|\s*,\s*(?=(?:{line_label})|第\s*\d)")
_EXECUTION = Pattern(r"(?<![a-z]){execution}(?![a-z])", re.I)
_POV_FIXED = Pattern(r"{pov_fixed}")
_POV_AFTER = Pattern(r"(?<![a-z]){execution:pov}(?![a-z])\s*(?:比例)?\s*(?:{change_to})?\s*[:=为是]?\s*" + _NUM
                     + r"\s*(%)?", re.I)
_POV_BEFORE = Pattern(_NUM + r"\s*(%)\s*(?:的)?\s*(?<![a-z]){execution:pov}(?![a-z])", re.I)
_LIMIT = Pattern(r"(?:(?<![a-z]){execution:limit}(?![a-z])|{limit_word})\s*(?:价格?|价位)?\s*(?:{change_to})?\s*"
                 r"[:=为在是@]?\s*" + _NUM
                 + r"(?![\d.%])" + _UNIT_AHEAD, re.I)
_TIME = r"(\d{1,2})(?::(\d{2})|点(?:(半)|(\d{1,2})分?)?)"
_WINDOW = Pattern(_TIME + r"\s*(?:{window_to})\s*(?:" + _TIME + r"|({window_close}))", re.I)
_NOTIONAL = Pattern(r"(?<![\d.])([-−]|负)?\s*" + _NUM + r"\s*({notional_unit})(?![A-Za-z])")
_LABELLED = Pattern(r"{notional_label}\s*(?:{change_to})?\s*[:=为是]?\s*([-−]|负)?\s*" + _NUM + r"(?![\d.%])"
                    + _UNIT_AHEAD, re.I)
_PREMIUM_BEFORE = Pattern(r"{premium}\s*[:=为是]?\s*$")
_ACCOUNT_NO = Pattern(r"(?:{account_word})\s*(?:编号|序号|号)?\s*(\d{1,2})(?![\d.]|\s*号)" + _UNIT_AHEAD
                      + r"|第\s*(\d{1,2})\s*个\s*(?:{account_word})")
_PICK_NO = r"\d{1,2}(?![\d.])" + _UNIT_AHEAD
_PICK_LIST = Pattern(r"(?:{line_label})\s*(" + _PICK_NO + r"(?:\s*(?:[、/&]|和|及|以及)\s*(?:(?:{line_label})\s*)?"
                     + _PICK_NO + r")*)")
_PICK_ORDINAL = Pattern(r"第\s*(\d{1,2})\s*(?:{line_mark})")
_PICK_ALL = Pattern(r"{all_lines}")
_SKIP = Pattern(r"{skip}")
_FULL = Pattern(r"{full}")
_HALF = Pattern(r"{half}")
_PERCENT_OFF = re.compile(r"平(?:掉|仓)?\s*(\d+(?:\.\d+)?)\s*%")
_CHOICE = re.compile(r"\s*(?:选|用|要|就)?\s*(?:第)?\s*(\d{1,2})\s*(?:个|号|笔)?\s*(?:吧|的|呀|啊)?\s*[.。!！]?\s*")


def empty_execution() -> dict:
    return dict.fromkeys(EXECUTION_KEYS)


@dataclass
class OrderTerms:
    """What one message states about an order; every field is optional (see `to_dict`)."""

    quote_id: str | None = None
    trade_id: str | None = None
    notional: float | None = None
    execution: dict | None = None
    full: bool = False
    fraction: float | None = None
    account_no: int | None = None
    choice: int | None = None
    picks: list[int] = field(default_factory=list)
    pick_all: bool = False
    by_line: dict[int, dict] = field(default_factory=dict)

    @property
    def changes(self) -> bool:
        """States a size or an execution instruction (what an amendment changes)."""
        return self.notional is not None or self.execution is not None or any(self.by_line.values())

    @property
    def instructed(self) -> bool:
        """States an execution instruction, for the whole message or for a line."""
        return self.execution is not None or any(v.get("execution") for v in self.by_line.values())

    @property
    def stated(self) -> bool:
        """States anything an order reads (a reference, a size, an instruction, a pick or an account)."""
        return bool(self.quote_id or self.trade_id or self.changes or self.full or self.fraction or self.picks
                    or self.pick_all or self.account_no)

    def to_dict(self) -> dict:
        """The stated fields only: quote_id, trade_id, notional, execution (all five keys), full, fraction,
        account_no, choice, picks, pick_all, by_line ({"<line>": {notional, execution, full, fraction}})."""
        d: dict = {}
        for key in ("quote_id", "trade_id", "notional", "execution", "fraction", "account_no", "choice"):
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        if self.full:
            d["full"] = True
        if self.picks:
            d["picks"] = list(self.picks)
        if self.pick_all:
            d["pick_all"] = True
        if self.by_line:
            d["by_line"] = {str(k): v for k, v in self.by_line.items() if v}
        return d


def prepare(text: str, vocab: Vocabulary) -> str:
    """The message normalised as the quote parser does, with Chinese commas kept as clause marks (normalize would
    read "序号1，100w" as one number) and ordinals in digits (第一笔 → 第1笔, 稳健一号 → 稳健1号)."""
    t = normalize((text or "").replace("，", " , "), vocab)
    t = _CN_ORDINAL.sub(lambda m: m.group(1) + str(cn_to_int(m.group(2)) if cn_to_int(m.group(2)) is not None
                                                  else m.group(2)), t)
    return _CN_BEFORE.sub(lambda m: str(cn_to_int(m.group(1))) if cn_to_int(m.group(1)) is not None else m.group(1), t)


def mask_references(text: str) -> str:
    """The text with quote and trade ids blanked (Q12E4567890 is no size of 12e8 for the quote parser)."""
    return TRADE_ID.sub(" ", QUOTE_ID.sub(" ", text))


def read_order_terms(text: str, vocab: Vocabulary | None = None) -> OrderTerms:
    """The order terms of one message (see the module docstring)."""
    vocab = vocab or default_vocabulary()
    t = prepare(text, vocab)
    terms = OrderTerms()
    if m := QUOTE_ID.search(t):
        terms.quote_id = "Q" + m.group(1).upper()
    if m := TRADE_ID.search(t):
        terms.trade_id = "T" + (m.group(1) or m.group(2)).upper()
    t = mask_references(t)
    if m := _CHOICE.fullmatch(t):
        terms.choice = int(m.group(1))
    if m := vocab.rx(_ACCOUNT_NO).search(t):
        terms.account_no = int(m.group(1) or m.group(2))
        t = t[:m.start()] + " " * (m.end() - m.start()) + t[m.end():]
    skipped: set[int] = set()
    for clause in vocab.rx(_CLAUSE).split(t):
        if not clause or not clause.strip():
            continue
        picks = _picks(clause, vocab)
        if vocab.rx(_PICK_ALL).search(clause):
            terms.pick_all = True
        if picks and vocab.rx(_SKIP).search(clause):
            skipped.update(picks)
            continue
        said = _clause_terms(clause, vocab)
        for p in picks:
            if p not in terms.picks:
                terms.picks.append(p)
        if picks and said:
            for p in picks:
                terms.by_line[p] = merge_line(terms.by_line.get(p, {}), said)
        elif said:
            whole = merge_line(_line_of(terms), said)
            terms.notional, terms.execution = whole.get("notional"), whole.get("execution")
            terms.full = terms.full or bool(whole.get("full"))
            terms.fraction = whole.get("fraction", terms.fraction)
    terms.picks = [p for p in terms.picks if p not in skipped]
    return terms


def _line_of(terms: OrderTerms) -> dict:
    out: dict = {}
    if terms.notional is not None:
        out["notional"] = terms.notional
    if terms.execution is not None:
        out["execution"] = terms.execution
    if terms.full:
        out["full"] = True
    if terms.fraction is not None:
        out["fraction"] = terms.fraction
    return out


def _picks(clause: str, vocab: Vocabulary) -> list[int]:
    found: list[tuple[int, int]] = []
    for m in vocab.rx(_PICK_LIST).finditer(clause):
        found += [(m.start(), int(n)) for n in re.findall(r"\d+", m.group(1))]
    for m in vocab.rx(_PICK_ORDINAL).finditer(clause):
        found.append((m.start(), int(m.group(1))))
    out: list[int] = []
    for _, n in sorted(found):
        if n >= 1 and n not in out:
            out.append(n)
    return out


def _clause_terms(clause: str, vocab: Vocabulary) -> dict:
    """Size, execution, 全平/一半 of one clause."""
    out: dict = {}
    size = _size(clause, vocab)
    if size is not None:
        out["notional"] = size
    ex = read_execution(clause, vocab)
    if ex is not None:
        out["execution"] = ex
    if vocab.rx(_FULL).search(vocab.rx(_PICK_ALL).sub(" ", clause)):
        out["full"] = True
    if vocab.rx(_HALF).search(clause):
        out["fraction"] = 0.5
    elif m := _PERCENT_OFF.search(clause):
        v = float(m.group(1))
        if 0 < v <= 100:
            out["fraction"] = v / 100
    return out


def _size(clause: str, vocab: Vocabulary) -> float | None:
    """The last size in the clause ("从200万改成300万" is 300万), in CNY; None when none is stated."""
    value = None
    for m in vocab.rx(_NOTIONAL).finditer(clause):
        if vocab.rx(_PREMIUM_BEFORE).search(clause[max(0, m.start() - 6):m.start()]):
            continue  # 期权费200万 is a premium, not the size
        unit, v = m.group(3), float(m.group(2))
        if unit in ("w", "W") and v < 100:
            continue  # 2w = two weeks
        if unit in ("e", "E") and v > 100:
            continue
        v *= float(vocab.meaning("notional_unit", unit))
        value = -v if m.group(1) else v
    if value is None:
        for m in vocab.rx(_LABELLED).finditer(clause):
            v = float(m.group(2))
            value = -v if m.group(1) else v
    if value is None:
        return None
    return int(value) if value == int(value) else value


def read_execution(text: str, vocab: Vocabulary | None = None) -> dict | None:
    """The execution instruction a text states (the five keys), or None when it states none."""
    vocab = vocab or default_vocabulary()
    kinds = {vocab.meaning("execution", m.group(0)) for m in vocab.rx(_EXECUTION).finditer(text)}
    fixed = vocab.rx(_POV_FIXED).search(text)
    if fixed:
        kinds.add("pov")
    ex = empty_execution()
    for kind in _TYPE_RANK:
        if kind in kinds:
            ex["type"] = kind
            break
    limits = [m for m in vocab.rx(_LIMIT).finditer(text)]
    if limits:
        ex["limit_price"] = _number(limits[-1].group(1))
    if ex["type"] == "pov" or fixed:
        m = vocab.rx(_POV_AFTER).search(text) or vocab.rx(_POV_BEFORE).search(text)
        if m:
            pct = float(m.group(1))
            if not m.group(2) and pct <= 1 and "." in m.group(1):
                pct *= 100
            if 0 < pct <= 100:
                ex["pov_pct"] = _number(pct)
        elif fixed:
            ex["pov_pct"] = _number(float(vocab.meaning("pov_fixed", fixed.group(0))))
    window = vocab.rx(_WINDOW).search(text)
    if window and (ex["type"] in WINDOW_TYPES or ex["type"] is None):
        start = _clock(window.group(1), window.group(2), window.group(3), window.group(4))
        end = (vocab.meaning("window_close", window.group(9)) if window.group(9)
               else _clock(window.group(5), window.group(6), window.group(7), window.group(8)))
        if start and end and start < end:
            ex["start"], ex["end"] = start, end
            ex["type"] = ex["type"] or "twap"
    if ex["type"] is None and ex["limit_price"] is not None:
        ex["type"] = "limit"
    if ex["type"] is None:
        return None
    return ex


def _clock(h: str | None, mm: str | None, half: str | None, minutes: str | None) -> str | None:
    if h is None:
        return None
    hour, minute = int(h), int(mm or minutes or (30 if half else 0))
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        return None
    return f"{hour:02d}:{minute:02d}"


def _number(v) -> float | int:
    v = round(float(v), 6)
    return int(v) if v == int(v) else v


# ---------------------------------------------------------------- merging what several messages say

def merge_execution(old: dict | None, new: dict | None) -> dict | None:
    """`new` applied over `old`: a limit price alone (改限价10, 不高于6.5) keeps a POV or TWAP and sets its limit;
    a new POV or TWAP keeps the old limit price (and window or rate when it restates the same algorithm);
    any other new type replaces the old instruction."""
    if not new:
        return dict(old) if old else None
    if not old or not old.get("type"):
        return finish_execution(new)
    new_type = new.get("type")
    limit_only = new.get("limit_price") is not None and new_type in (None, "limit") and not new.get("pov_pct") \
        and not new.get("start")
    if limit_only and old["type"] in ("pov", "twap", "limit"):
        return {**old, "limit_price": new["limit_price"]}
    out = dict(new)
    if new_type in ("pov", "twap") and out.get("limit_price") is None:
        out["limit_price"] = old.get("limit_price")
    if new_type == old["type"]:
        for key in ("pov_pct", "start", "end"):
            if out.get(key) is None:
                out[key] = old.get(key)
    return finish_execution(out)


def finish_execution(ex: dict | None) -> dict | None:
    if not ex:
        return None
    out = {k: ex.get(k) for k in EXECUTION_KEYS}
    if out["type"] is None and out["limit_price"] is not None:
        out["type"] = "limit"
    return out if out["type"] else None


def execution_missing(ex: dict | None) -> list[str]:
    """What an execution instruction still lacks: execution (none given), limit_price, pov_pct or window."""
    if not ex or not ex.get("type"):
        return ["execution"]
    if ex["type"] == "limit" and ex.get("limit_price") is None:
        return ["limit_price"]
    if ex["type"] == "pov" and ex.get("pov_pct") is None:
        return ["pov_pct"]
    if ex["type"] == "twap" and not (ex.get("start") and ex.get("end")):
        return ["window"]
    return []


def merge_line(old: dict, new: dict) -> dict:
    """Per-line terms: a new size, 全平 or fraction replaces the old; executions merge (`merge_execution`)."""
    out = dict(old)
    for key in ("notional", "full", "fraction"):
        if new.get(key) is not None:
            out[key] = new[key]
    if new.get("execution"):
        out["execution"] = merge_execution(old.get("execution"), new["execution"])
    return out


def merge_terms(old: dict, new: dict) -> dict:
    """A follow-up's terms (`OrderTerms.to_dict()`) over the remembered ones: stated fields replace, executions and
    per-line terms merge; a bare `choice` answers what the desk asked for (`awaiting`: account, line or trade)."""
    out = {k: v for k, v in (old or {}).items() if k != "awaiting"}
    awaiting = (old or {}).get("awaiting") or []
    new = dict(new or {})
    choice = new.pop("choice", None)
    if choice is not None and not new.get("picks") and not new.get("account_no"):
        if "account" in awaiting and not {"line", "trade"} & set(awaiting):
            new["account_no"] = choice
        elif {"line", "trade"} & set(awaiting):
            new["picks"] = [choice]
    for key in ("quote_id", "trade_id", "account_no", "account", "picks", "pick_all"):
        if new.get(key):
            out[key] = new[key]
    whole = merge_line(out, new)
    for key in ("notional", "full", "fraction", "execution"):
        if whole.get(key) is not None:
            out[key] = whole[key]
    lines = {k: dict(v) for k, v in (out.get("by_line") or {}).items()}
    for k, v in (new.get("by_line") or {}).items():
        lines[k] = merge_line(lines.get(k, {}), v)
    if lines:
        out["by_line"] = lines
    return out


def line_terms(terms: dict, line: int) -> dict:
    """The terms that apply to quoted line `line`: the message-wide ones, then that line's own."""
    return merge_line(merge_line({}, terms), (terms.get("by_line") or {}).get(str(line), {}))


# ---------------------------------------------------------------- product accounts

_FOLD_CN = re.compile(rf"([{_CN}]+)(?=号)")


def _fold(s: str) -> str:
    s = unicodedata.normalize("NFKC", s or "").lower()
    s = _FOLD_CN.sub(lambda m: str(cn_to_int(m.group(1))) if cn_to_int(m.group(1)) is not None else m.group(1), s)
    return re.sub(r"[\s()（）·\-_]+", "", s)


def account_cores(accounts: list[str], vocab: Vocabulary | None = None) -> list[str]:
    """What tells the accounts apart: each name without the prefix and suffix they all share and without generic
    suffixes (私募证券投资基金, 资产管理计划…): 示例资管稳健1号私募证券投资基金 → 稳健1."""
    vocab = vocab or default_vocabulary()
    names = [_fold(a) for a in accounts]
    suffixes = sorted((_fold(w) for w in vocab.words("account_suffix")), key=len, reverse=True)
    cores = []
    for n in names:
        for s in suffixes:
            if n.endswith(s) and len(n) > len(s):
                n = n[:-len(s)]
                break
        cores.append(n)
    if len(cores) >= 2:
        head = len(os.path.commonprefix(cores))
        tail = len(os.path.commonprefix([c[::-1] for c in cores]))
        trimmed = [c[head:len(c) - tail] if len(c) - tail > head else c[head:] for c in cores]
        if all(len(c) >= 1 for c in trimmed):
            cores = trimmed
    return cores


def pick_account(text: str, accounts: list[str], number: int | None = None,
                 vocab: Vocabulary | None = None) -> str | None:
    """The account of `accounts` the text names: by its number in the list, its full name, what sets it apart
    from the others (稳健一号 for 示例资管稳健1号私募证券投资基金), or a near miss of that (稳建1号); None when no
    account or more than one fits."""
    if not accounts:
        return None
    if number is not None:
        return accounts[number - 1] if 1 <= number <= len(accounts) else None
    t = _fold(text)
    whole = [a for a in accounts if _fold(a) and _fold(a) in t]
    if len(whole) == 1:
        return whole[0]
    cores = account_cores(accounts, vocab)
    hits = [a for a, c in zip(accounts, cores) if c and c in t]
    if len(hits) == 1:
        return hits[0]
    if len(re.findall(r"[\u4e00-\u9fff]", t)) < 2:
        return None
    from rapidfuzz import fuzz

    scored = sorted(((fuzz.partial_ratio(c, t), a) for a, c in zip(accounts, cores) if len(c) >= 2), reverse=True)
    if not scored or scored[0][0] < 60:
        return None
    if len(scored) > 1 and scored[0][0] - scored[1][0] < 20:
        return None
    return scored[0][1]
