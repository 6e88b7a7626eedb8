"""jieba with the desk's lexicon (the `lexicon` rows of terms.csv and the pool's names) and the correction of typos.

Typos clients make with a pinyin IME are mostly homophones (雪毬 → 雪球, 鲨鱼旗 → 鲨鱼鳍, 看帐 → 看涨,
创业版指 → 创业板指). `Corrector.correct` slides over CJK runs and replaces a window whose toneless pinyin equals
that of exactly one known term or pool name, provided the window shares at least one character with it, lies on
jieba token boundaries, and is not itself a common word in jieba's general dictionary (市值 must not become 实值,
中心 must not become 中信). Longer names also accept a near-miss (rapidfuzz ratio on pinyin ≥ 90).
"""
from __future__ import annotations

import logging
import re
from functools import lru_cache

import jieba
from pypinyin import Style, lazy_pinyin, pinyin
from rapidfuzz import fuzz

from .pool import UnderlyingPool, default_pool
from .vocabulary import Vocabulary, default_vocabulary

jieba.setLogLevel(logging.WARNING)
_CJK = re.compile(r"[\u4e00-\u9fff]+")
COMMON_WORD_FREQ = 30


@lru_cache(maxsize=8192)
def char_pinyin(ch: str) -> str:
    return lazy_pinyin(ch, style=Style.NORMAL)[0]


def pinyin_of(s: str) -> tuple[str, ...]:
    return tuple(char_pinyin(c) for c in s)


@lru_cache(maxsize=8192)
def char_readings(ch: str) -> tuple[str, ...]:
    """All toneless readings of a character (行 → xing, hang), default reading first."""
    rs = pinyin(ch, style=Style.NORMAL, heteronym=True)[0]
    return tuple(dict.fromkeys([char_pinyin(ch)] + list(rs)))


def pinyin_variants(s: str, cap: int = 16) -> list[tuple[str, ...]]:
    out = [()]
    for ch in s:
        out = [o + (r,) for o in out for r in char_readings(ch)][:cap]
    return out


class Corrector:
    """jieba tokenizer with the pool and lexicon loaded, plus homophone/near-miss correction."""

    def __init__(self, pool: UnderlyingPool | None = None, vocabulary: Vocabulary | None = None):
        self.pool = pool or default_pool()
        self.vocabulary = vocabulary or default_vocabulary()
        self.terms = self.vocabulary.lexicon()
        self.index_families = set(self.vocabulary.words("index_family"))
        self.tokenizer = jieba.Tokenizer()
        self.tokenizer.initialize()
        self.general_freq = dict(self.tokenizer.FREQ)
        self.words: set[str] = set()  # the Chinese words added to jieba: lexicon terms and pool names
        for term, _cat, _val in self.terms:
            if _CJK.search(term):
                self.words.add(term)
        for alias in self.pool.chinese_aliases():
            self.words.add(alias)
        # the words by every pinyin reading, and (the longer ones) by character for near misses
        self.by_pinyin: dict[tuple[str, ...], set[str]] = {}
        self.by_char: dict[str, set[str]] = {}
        self._index(self.words)

    def _index(self, words) -> None:
        for w in words:
            self.tokenizer.add_word(w, freq=max(2000, self.general_freq.get(w, 0) * 2))
            if not _CJK.fullmatch(w):
                continue
            for var in pinyin_variants(w):
                self.by_pinyin.setdefault(var, set()).add(w)
            if len(w) >= 4:
                for ch in set(w):
                    self.by_char.setdefault(ch, set()).add(w)

    def add_words(self, words) -> None:
        """Know more words (a structure declared at run time, `structures`): jieba cuts them whole, the corrector
        leaves them alone and corrects near misses to them."""
        new = [w for w in words if _CJK.search(w) and w not in self.words]
        self.words.update(new)
        self._index(new)

    def cut(self, text: str) -> list[str]:
        return list(self.tokenizer.cut(text, HMM=False))

    def token_bounds(self, text: str) -> set[int]:
        """Offsets where jieba's tokens of `text` start or end."""
        return _bounds(self.cut(text))

    def _is_common(self, word: str) -> bool:
        return word not in self.words and self.general_freq.get(word, 0) >= COMMON_WORD_FREQ

    def correct(self, text: str) -> tuple[str, list[tuple[str, str]]]:
        """Return the text with homophone typos replaced, and the (wrong, right) pairs applied."""
        fixes: list[tuple[str, str]] = []
        out = []
        pos = 0
        for m in _CJK.finditer(text):
            out.append(text[pos:m.start()])
            digit_next = m.end() < len(text) and text[m.end()].isdigit()
            out.append(self._correct_run(m.group(0), fixes, digit_next))
            pos = m.end()
        out.append(text[pos:])
        return "".join(out), fixes

    def _correct_run(self, run: str, fixes: list, digit_next: bool = False) -> str:
        if len(run) < 2:
            return run
        tokens = self.cut(run)
        bounds = _bounds(tokens)
        exact = [False] * len(run)
        acc = 0
        for t in tokens:
            if t in self.words:
                for k in range(acc, acc + len(t)):
                    exact[k] = True
            acc += len(t)
        res = list(run)
        i = 0
        n = len(run)
        while i < n:
            done = False
            if i in bounds and not exact[i]:
                for L in range(min(7, n - i), 1, -1):
                    if i + L not in bounds:
                        continue
                    win = run[i:i + L]
                    if win in self.words or any(exact[i:i + L]):
                        continue
                    family = digit_next and i + L == n and L == 2  # 中正1000: an index family before digits
                    if self._is_common(win) and not family:
                        continue
                    cand = self._match(win)
                    if family and cand not in self.index_families and self._is_common(win):
                        continue
                    if cand:
                        res[i:i + L] = list(cand) + [""] * (L - len(cand)) if len(cand) <= L else [cand] + [""] * (L - 1)
                        fixes.append((win, cand))
                        i += L
                        done = True
                        break
            if not done:
                i += 1
        return "".join(res)

    def _match(self, win: str) -> str | None:
        py = pinyin_of(win)
        # the vocabulary is indexed under every reading of its characters (招行: zhao xing / zhao hang); the window
        # is read with its default reading only, so a function word's rare reading (和 → hu) matches nothing
        found: set[str] = set(self.by_pinyin.get(py, set()))
        cands = [w for w in found if len(w) == len(win) and any(a == b for a, b in zip(w, win))]
        codes = {self._entity(w) for w in cands}
        if len(codes) == 1 and cands:
            return max(cands, key=lambda w: (len(w), w))  # deterministic, whatever the hash seed
        if len(cands) > 1:
            return None
        if len(win) >= 4:
            pys = "".join(py)
            best, best_score, second = None, 0.0, 0.0
            pool: set[str] = set()
            for ch in set(win):
                pool |= self.by_char.get(ch, set())
            for w in sorted(pool):
                if abs(len(w) - len(win)) > 1:
                    continue
                same = sum(1 for a in set(win) if a in w)
                if same * 2 < len(win):
                    continue
                s = fuzz.ratio(pys, "".join(pinyin_of(w)))
                if s > best_score:
                    best, best_score, second = w, s, best_score
                elif s > second:
                    second = s
            if best and best_score >= 90 and best_score - second >= 3:
                return best
        return None

    def _entity(self, word: str) -> str:
        code = self.pool.aliases.get(word)
        if code:
            return code
        for term, cat, val in self.terms:
            if term == word:
                return f"{cat}:{val}"
        return word


def _bounds(tokens: list[str]) -> set[int]:
    bounds, acc = {0}, 0
    for t in tokens:
        acc += len(t)
        bounds.add(acc)
    return bounds


@lru_cache(maxsize=1)
def default_corrector() -> Corrector:
    return Corrector()
