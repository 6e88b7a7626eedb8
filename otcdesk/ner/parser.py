"""Message → ParseResult: clauses, groups of clauses, the cartesian expansion into QuoteRequests; `parse_message`."""
from __future__ import annotations

import itertools
import re
import threading
from functools import lru_cache

from .fields import (Frame, Work, extract_aliases, extract_codes, extract_notional, extract_shorthand, extract_strikes,
                     extract_tenors, extract_terms, extract_words, structure_hint)
from .intent import Facts, Rule, decide
from .lexicon import Corrector, default_corrector
from .llm_fill import llm_complete
from .normalize import normalize
from .order_terms import OrderTerms, mask_references, read_order_terms
from .pool import UnderlyingPool, default_pool
from .structures import DECLARED, reading_of
from .quote_request import ParseResult, clarification_for, finish_request, strike_from_moneyness
from .vocabulary import Pattern, Vocabulary

# two-letter product codes that are safe to read standalone (upper case); others need a contract month (rb2510)
SAFE_LATIN_CODES = {"AU", "AG", "CU", "AL", "ZN", "NI", "RB", "HC", "RU", "JM", "CF", "SR", "TA", "MA", "SA", "FG", "SC",
                    "PP", "EG", "UR", "LC", "IF", "IC", "IH", "IM"}
LIST_MARK = re.compile(r"(?m)^\s*(?:\d{1,2}\s*[.、)）](?!\d)|[①-⑳]|[-*•·>]+)\s*")
# clause breaks: sentence marks, ' and ' (not 'and call'), commas not inside a number list, before 另外/还有/also…
_SEGMENT_SPLIT = Pattern(r"[;；。\n!?！？&]+|\s+and\s+(?!(?:{option_type.latin}s?|[cp])(?![a-z]))|(?<!\d)[,，]\s*|"
                         r"[,，](?!\s*\d)\s*|(?={new_request.cjk}|{new_request.latin}\b)")
_NEW_GROUP_MARK = Pattern(r"^\s*{new_request}")
_TENOR_TERM = r"\d+\s*(?:个月|月|周|年|天|[mwyd](?![a-z]))"
_TYPE_TOKEN = Pattern(r"{option_type.cjk}|(?<![a-z]){option_type.latin}s?(?![a-z])", re.I)
_TERMS_BETWEEN = Pattern(r"{option_type.cjk|moneyness|structure.cjk}|(?<![a-z]){option_type.latin}|%|" + _TENOR_TERM, re.I)
_LEG_TYPE = Pattern(r"{option_type.cjk|structure.cjk}|(?<![a-z]){option_type.latin}s?(?![a-z])|(?<![a-z])(?:\d+\s*)?[cp](?![a-z])",
                    re.I)
_SPACED_SLASH = re.compile(r"\s+[/|｜]\s+")
_TENOR_TOKEN = re.compile(r"(?<![\d.])\d+(?:\.\d+)?\s*(?:个月|个星期|周|年|天|[mwyd](?![a-z]))|半年", re.I)
_COMPANY_LIKE = Pattern(r"([\u4e00-\u9fff]{1,6}(?:({name_suffix:strong})|{name_suffix:company}))")
_LEFTOVER = re.compile(r"[\u4e00-\u9fffA-Z]{2,}")
_GAPS = r"\x01\s,，。.:：;；!！?？()（）\[\]【】<>《》\"'“”‘’、/|*#+=~\-"
_BETWEEN_WORDS = re.compile(f"[{_GAPS}]+")  # masks, spaces and punctuation
_BETWEEN_WORDS_OR_DIGITS = re.compile(f"[{_GAPS}\\d]+")
_CJK_WORD = re.compile(r"[\u4e00-\u9fff]+")
_LATIN_WORD = re.compile(r"[a-z]+")
ORDER_INTENTS = ("order", "amend", "cancel", "order_status", "holdings", "unwind")  # intents that carry "order" terms


class MessageParser:
    """Deterministic parser; the pool, vocabulary, jieba and CRF are loaded once. The vocabulary is the corrector's."""

    def __init__(self, pool: UnderlyingPool | None = None, corrector: Corrector | None = None, tagger=None):
        self.pool = pool or default_pool()
        self.corrector = corrector or default_corrector()
        self._base: Vocabulary = self.corrector.vocabulary
        self._vocab, self._declared = self._base, 0
        self._lock = threading.Lock()
        self.filler = set(self.vocab.words("filler"))
        self.cn_aliases = self.pool.chinese_aliases()
        latin = sorted(self.pool.latin_aliases(), key=len, reverse=True)
        latin = [a for a in latin if len(a) >= 3 or a in SAFE_LATIN_CODES]
        self.latin_rx = re.compile(r"(?<![A-Za-z0-9])(" + "|".join(re.escape(a) for a in latin) + r")(?![A-Za-z0-9])", re.I)
        self.tagger = tagger

    @property
    def vocab(self) -> Vocabulary:
        """The vocabulary with the structures declared so far (`structures.DECLARED`), rebuilt when that changes."""
        if DECLARED.version != self._declared:
            with self._lock:
                seen = DECLARED.version
                if seen != self._declared:
                    terms = DECLARED.terms()
                    self.corrector.add_words(t.term for t in terms)
                    self._vocab, self._declared = self._base.extended(terms), seen
        return self._vocab

    # ------------------------------------------------------------------ public
    def parse(self, text: str) -> ParseResult:
        groups, unknown, rule, terms = self._read(text)
        intent = rule.intent
        res = ParseResult(intent=intent)
        if intent != "quote":
            if intent in ORDER_INTENTS or (intent == "other" and terms.changes):
                res.extra["order"] = terms.to_dict()  # "other": a bare size the desk may read after a quote
            return res
        res.unrecognized = list(dict.fromkeys(unknown))
        res.requests = self._expand(groups)
        if not res.requests:
            res.requests = [finish_request({})]
        res.clarification = clarification_for(res.requests, res.unrecognized)
        return res

    def intent_rule(self, text: str) -> Rule:
        """The rule of `intent.RULES` that decides the intent of `text` (to explain a result)."""
        return self._read(text)[2]

    # ------------------------------------------------------------------ internals
    def _read(self, text: str) -> tuple[list[Frame], list[str], Rule, OrderTerms]:
        terms = read_order_terms(text, self.vocab)
        fixed, _fixes = self.corrector.correct(mask_references(normalize(text, self.vocab)))
        fixed = LIST_MARK.sub("", fixed)
        groups, unknown, clauses = self._groups(fixed)
        return groups, unknown, decide(Facts(fixed, groups, clauses, self.vocab, terms)), terms

    def _segment_frame(self, seg: str, hint: str | None, unknown: list) -> Frame:
        fr = Frame()
        w = Work(seg, self.vocab)
        extract_codes(w, fr, self.pool, unknown)
        extract_aliases(w, fr, self.pool, self.cn_aliases, self.latin_rx, self.corrector.token_bounds(seg))
        own = structure_hint(seg, self.vocab)
        if own:
            fr.scalars["structure"] = own
        structure = reading_of(own or hint)  # a declared structure is read like a built-in one
        extract_notional(w, fr)
        extract_terms(w, fr, structure)
        extract_strikes(w, fr, structure)
        extract_tenors(w, fr)
        extract_shorthand(w, fr)
        extract_words(w, fr)
        leftover = _LEFTOVER.search(w.text) is not None  # the CRF only matters where no rule consumed the text
        spans = self.tagger.unknown_spans(w.text, seg) if self.tagger is not None and leftover else []
        if not spans:
            spans = [m.group(1) for m in w.finditer(_COMPANY_LIKE)
                     if m.group(1) not in self.corrector.words and (not fr.underlyings or m.group(2))]
        fr.leftover = self._leftover_names(w.text) if not spans and not fr.underlyings else []
        fr.chat_words = self._chat_words(w.text)
        for span in spans:
            fr.underlyings.append((seg.find(span), ("?", span)))
            unknown.append(span)
        fr.underlyings.sort(key=lambda x: x[0])
        seen, uls = set(), []
        for _, (code, name) in fr.underlyings:
            key = code if code != "?" else "?" + name
            if key not in seen:
                seen.add(key)
                uls.append((code, name))
        fr.underlyings = uls
        fr.strikes = list(dict.fromkeys(fr.strikes))
        fr.option_types = list(dict.fromkeys(fr.option_types))
        if self.vocab.cue("ask").search(seg):
            fr.asks.add("ask")
        return fr

    def _chat_words(self, masked: str) -> list[str]:
        """Words no rule consumed that are neither request filler nor desk terms (开会, 讨论, 到账, 紧张…)."""
        text = _BETWEEN_WORDS_OR_DIGITS.sub(" ", masked)
        return [t for t in self.corrector.cut(text) if len(t) >= 2 and _CJK_WORD.fullmatch(t)
                and t not in self.filler and t not in self.corrector.words]

    def _leftover_names(self, masked: str) -> list[tuple[str, bool]]:
        """Text no rule consumed, minus request filler words: in a clause with request terms and no known
        underlying, what is left is most likely the name of an underlying the pool does not know."""
        from .crf import looks_like_name

        text = _BETWEEN_WORDS.sub(" ", masked)
        chunks, cur = [], []
        for tok in self.corrector.cut(text):
            if tok.strip() == "" or tok in self.filler or tok in self.corrector.words or _LATIN_WORD.fullmatch(tok):
                if cur:
                    chunks.append("".join(cur))
                    cur = []
                continue
            cur.append(tok)
        if cur:
            chunks.append("".join(cur))
        chunks = [c for c in chunks if len(c) >= 2 and re.search(r"[\u4e00-\u9fffA-Z]", c)]
        named = [c for c in chunks if looks_like_name(c, self.corrector)]
        return [(c, c in named) for c in chunks]

    def _split_by_underlyings(self, seg: str) -> list[str]:
        """'茅台 1M 平值call 宁德 1M 平值put' → two segments: cut before an underlying that follows request terms."""
        legs = _SPACED_SLASH.split(seg)
        leg_type = self.vocab.rx(_LEG_TYPE)
        if len(legs) > 1 and all(leg_type.search(x) and _TENOR_TOKEN.search(x) for x in legs):
            return [q for x in legs for q in self._split_by_underlyings(x)]  # '300 1M ATM P / 500 2W 105C'
        fr = Frame()
        w = Work(seg, self.vocab)
        extract_codes(w, fr, self.pool, [])
        extract_aliases(w, fr, self.pool, self.cn_aliases, self.latin_rx, None)
        if len(fr.underlyings) < 2:
            return self._split_by_tenor_type(seg)
        starts = sorted(p for p, _ in fr.underlyings)
        terms = self.vocab.rx(_TERMS_BETWEEN)
        cuts = [0]
        for a, b in zip(starts, starts[1:]):
            if terms.search(seg[a:b]) and terms.search(seg[b:]):
                cuts.append(b)
        cuts.append(len(seg))
        parts = [seg[x:y] for x, y in zip(cuts, cuts[1:]) if seg[x:y].strip()]
        return [q for p in parts for q in self._split_by_tenor_type(p)]

    def _split_by_tenor_type(self, seg: str) -> list[str]:
        """'1个月 平值看涨 3个月 平值看跌' → two clauses, when tenors and call/put words alternate."""
        tenors = [m.start() for m in _TENOR_TOKEN.finditer(seg)]
        types = [m.start() for m in self.vocab.rx(_TYPE_TOKEN).finditer(seg)]
        if len(tenors) < 2 or len(types) < 2:
            return [seg]
        events = sorted([(p, "t") for p in tenors] + [(p, "o") for p in types])
        kinds = "".join(k for _, k in events)
        if kinds not in ("to" * (len(kinds) // 2), "ot" * (len(kinds) // 2)) or len(kinds) % 2:
            return [seg]
        starts = [p for i, (p, _) in enumerate(events) if i % 2 == 0][1:]
        cuts = [0] + starts + [len(seg)]
        return [seg[x:y] for x, y in zip(cuts, cuts[1:]) if seg[x:y].strip()]

    def _groups(self, text: str) -> tuple[list[Frame], list[str], dict]:
        """Clauses read and grouped into requests; the names not recognised; what the clauses hold (for intent)."""
        unknown: list[str] = []
        hint = structure_hint(text, self.vocab)
        groups: list[Frame] = []
        clauses = {"tenor": False, "numbers": False}
        segments = []
        for s in self.vocab.rx(_SEGMENT_SPLIT).split(text):
            if s and s.strip():
                segments.extend(self._split_by_underlyings(s))
        frames = []
        for seg in segments:
            prev_struct = next((f.scalars["structure"] for f in reversed(frames) if "structure" in f.scalars), None)
            frames.append(self._segment_frame(seg, prev_struct or hint, unknown))
        if not any(u for f in frames for u in f.underlyings):
            # no underlying named anywhere: words left over around the request terms name one the pool lacks —
            # a name-like chunk (proper noun, unknown word, company suffix), or the only chunk of a clear request
            cands = [(f, c, named) for f in frames for c, named in f.leftover]
            clear = any(f.tenors for f in frames) and any(f.option_types or "structure" in f.scalars for f in frames)
            pick = next(((f, c) for f, c, named in cands if named), None)
            if pick is None and clear and len(cands) == 1:
                pick = cands[0][:2]
            if pick:
                pick[0].underlyings.append(("?", pick[1]))
                unknown.append(pick[1])
        clauses["chat"] = sum(len(f.chat_words) for f in frames)
        for seg, fr in zip(segments, frames):
            d = fr.defines()
            if fr.tenors:
                clauses["tenor"] = True
            if any(k in fr.scalars for k in ("notional", "ko_pct", "ki_pct", "coupon_pct", "barrier_pct")) or \
                    [k for k in fr.strikes if k != ("pct", 100) and k[1] is not None]:
                clauses["numbers"] = True
            if not d and not fr.asks:
                continue
            cur = groups[-1] if groups else None
            forced = bool(self.vocab.rx(_NEW_GROUP_MARK).match(seg))
            if cur is None:
                groups.append(fr)
                continue
            cd = cur.defines() - cur.inherited
            # a forced break ('以及', '还有') after a clause that only named underlyings continues the list
            conflict = forced and bool(cd - {"underlying"})
            if "underlying" in d and "underlying" in cd and (cd - {"underlying", "notional", "side", "quote"}):
                conflict = True
            for k in ("tenor", "option_type", "strike", "structure"):
                if k in d and k in cd:
                    conflict = True
            if not conflict:
                _merge_into(cur, fr)
            else:
                groups.append(_inherit(cur, fr))
        # message-wide scalars (notional, side) reach every group that lacks them
        for key in ("notional", "side"):
            vals = {g.scalars[key] for g in groups if key in g.scalars}
            if len(vals) == 1:
                v = vals.pop()
                for g in groups:
                    g.scalars.setdefault(key, v)
        return groups, unknown, clauses

    def _expand(self, groups: list[Frame]) -> list[dict]:
        out = []
        for g in groups:
            if not (g.has_request_content() or g.tenors or "ask" in g.asks):
                continue
            uls = g.underlyings or [None]
            tenors = g.tenors or [None]
            strikes = g.strikes or [None]
            ots = g.option_types or [None]
            if len(g.pairs) >= 2 and len({o for _, o in g.pairs}) >= 2:  # '95 put 和 105 call': pairs, not a product
                combos = [(u, t, k, o) for u in uls for t in tenors for k, o in g.pairs]
            else:
                combos = list(itertools.product(uls, tenors, strikes, ots))
            sizes = g.scalars.get("_notionals")
            if sizes:
                combos = [c for c in combos for _ in sizes]
            for i, (u, t, k, o) in enumerate(combos):
                req = dict(g.scalars)
                req.pop("_notionals", None)
                if sizes:
                    req["notional"] = sizes[i % len(sizes)]
                if u is not None:
                    code, name = u
                    if code == "?":
                        req["_unknown"] = name
                    else:
                        req["underlying"] = code
                        nm = name or self.pool.name_of(code)
                        if nm:
                            req["underlying_name"] = nm
                if t:
                    req["tenor"] = t
                if o:
                    req["option_type"] = o
                if k:
                    kind, v = k
                    if kind == "pct":
                        req["strike_pct"] = v
                    elif kind == "level":
                        req["strike_level"] = v
                    elif o and v is not None:
                        req["strike_pct"] = strike_from_moneyness(kind, v, o)
                    else:
                        req["_moneyness"] = (kind, v)
                req["_asks"] = set(g.asks)
                fin = finish_request(req)
                if fin not in out:  # the same request written twice is one request
                    out.append(fin)
        return out

def _merge_into(cur: Frame, fr: Frame) -> None:
    for key, attr in (("underlying", "underlyings"), ("tenor", "tenors"), ("strike", "strikes"), ("option_type", "option_types")):
        if key in cur.inherited and getattr(fr, attr):
            setattr(cur, attr, [])
            cur.inherited.discard(key)
    for k in list(fr.scalars):
        if k in cur.inherited:
            cur.scalars.pop(k, None)
            cur.inherited.discard(k)
    cur.underlyings += [u for u in fr.underlyings if u not in cur.underlyings]
    cur.tenors += [t for t in fr.tenors if t not in cur.tenors]
    cur.strikes += [k for k in fr.strikes if k not in cur.strikes]
    cur.option_types += [o for o in fr.option_types if o not in cur.option_types]
    for k, v in fr.scalars.items():
        cur.scalars.setdefault(k, v)
    cur.asks |= fr.asks
    cur.pairs += fr.pairs


def _inherit(prev: Frame, fr: Frame) -> Frame:
    new = Frame(list(fr.underlyings), list(fr.tenors), list(fr.strikes), list(fr.option_types), dict(fr.scalars),
                set(fr.asks), list(fr.pairs))
    same_structure = fr.scalars.get("structure", prev.scalars.get("structure")) == prev.scalars.get("structure")
    inh = new.inherited
    if not new.underlyings and prev.underlyings:
        new.underlyings = list(prev.underlyings)
        inh.add("underlying")
    if same_structure:
        for key, attr in (("tenor", "tenors"), ("strike", "strikes"), ("option_type", "option_types")):
            if not getattr(new, attr) and getattr(prev, attr):
                setattr(new, attr, list(getattr(prev, attr)))
                inh.add(key)
        for k, v in prev.scalars.items():
            if k not in new.scalars:
                new.scalars[k] = v
                inh.add(k)
        new.asks |= prev.asks
    else:
        for k in ("notional", "side"):
            if k in prev.scalars and k not in new.scalars:
                new.scalars[k] = prev.scalars[k]
                inh.add(k)
    return new


@lru_cache(maxsize=1)
def default_parser() -> MessageParser:
    from .crf import load_default_tagger

    return MessageParser(tagger=load_default_tagger())


def parse_message(text: str, *, llm=None) -> ParseResult:
    """Parse one chat message into intent, QuoteRequests and a clarification question.

    `llm` (optional, duck-typed `complete_json(messages, schema, timeout=None) -> dict`) is consulted only when
    the deterministic result has requests with missing fields; its answer is validated field by field.
    """
    result = default_parser().parse(text)
    if llm is not None and result.intent == "quote" and not result.complete:
        result = llm_complete(result, text, llm)
    return result
