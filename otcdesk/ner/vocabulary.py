"""The parser's vocabulary as data, and the regular-expression templates it fills.

``data/terms.csv`` holds the words, one row a word: ``term, category, value, use``. The category and value say what
the word means (``敲出,field,ko``; ``看涨,option_type,call``; ``鲨鱼鳍,structure,sharkfin``; ``帮忙,filler``). ``use``:

* ``lexicon`` — the patterns, and also jieba's user dictionary, the homophone corrector (lexicon.py) and a CRF
  feature (after adding one, retrain: ``python -m otcdesk.ner.train_crf``);
* ``pattern`` — the patterns only;
* ``abbr`` — an abbreviation (参与, 锁, nc, K…), read only by patterns that ask for abbreviations, next to a value.

A space in a latin term matches any run of spaces, hyphens and underscores (``shark fin``: shark-fin, sharkfin).

``data/order_terms.csv`` holds the words of orders (execution instructions, line picks, product accounts), in the same
columns; `Vocabulary.load` reads both files.

``data/cues.csv`` holds the phrases of the conversation that intent and side rest on, one row a phrase:
``cue, phrase``; a phrase is a regular-expression fragment (the cues are read by intent.py).

Patterns in code are templates (`Pattern`) with slots that the vocabulary fills:

* ``{category}``, ``{category:value}`` — those terms, longest first; ``.cjk`` / ``.latin`` keeps only the terms with /
  without non-ASCII characters, ``+abbr`` adds the abbreviations; ``{a|b}`` is the union of classes;
* ``{cue}`` — the phrases of a cue, in file order.

So a synonym added as one row of terms.csv is read by every pattern that names its class.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .pool import DATA_DIR

USES = ("lexicon", "pattern", "abbr")
_SLOT = re.compile(r"\{([a-z_][a-z0-9_:.+|]*)\}")
_ITEM = re.compile(r"([a-z_]+)(?::([a-z0-9_]+))?(?:\.(cjk|latin))?(\+abbr)?")


@dataclass(frozen=True)
class Term:
    term: str
    category: str
    value: str
    use: str

    @property
    def latin(self) -> bool:
        return self.term.isascii()


@dataclass(frozen=True)
class Pattern:
    """A regex template over the vocabulary's classes; `Vocabulary.rx` compiles it (once per vocabulary)."""

    template: str
    flags: int = 0
    lower: bool = False  # terms lower-cased, for text that is lower-cased before matching

    def __post_init__(self):
        object.__setattr__(self, "_hash", hash((self.template, self.flags, self.lower)))

    def __hash__(self) -> int:  # looked up on every match: hash once
        return self._hash


def _rows(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return list(csv.DictReader(line for line in fh if not line.startswith("#")))


class Vocabulary:
    """Word classes (terms.csv) and cues (cues.csv); compiles `Pattern` templates over them, once each."""

    def __init__(self, terms: list[Term], cues: dict[str, list[str]]):
        self.terms = tuple(terms)
        self.cues = {name: list(phrases) for name, phrases in cues.items()}
        bad = [t for t in self.terms if t.use not in USES]
        if bad:
            raise ValueError(f"terms with an unknown use: {bad[:3]}")
        clash = {t.category for t in self.terms} & set(self.cues)
        if clash:
            raise ValueError(f"names that are both a term category and a cue: {sorted(clash)}")
        self._meaning: dict[str, dict[str, str]] = {}
        for t in self.terms:
            self._meaning.setdefault(t.category, {}).setdefault(word_key(t.term), t.value)
        self._compiled: dict[Pattern, re.Pattern] = {}
        self._cues: dict[str, re.Pattern] = {}
        self._words: dict[tuple, list[str]] = {}

    @classmethod
    def load(cls, terms: Path | tuple[Path, ...] = (DATA_DIR / "terms.csv", DATA_DIR / "order_terms.csv"),
             cues: Path = DATA_DIR / "cues.csv") -> Vocabulary:
        """The words of `terms` (one file or several: terms.csv, and order_terms.csv for orders) and the cues."""
        files = (terms,) if isinstance(terms, Path) else terms
        rows = [Term(r["term"], r["category"], r["value"] or "", r["use"]) for f in files for r in _rows(f)]
        phrases: dict[str, list[str]] = {}
        for r in _rows(cues):
            phrases.setdefault(r["cue"], []).append(r["phrase"])
        return cls(rows, phrases)

    def extended(self, terms: list[Term]) -> Vocabulary:
        """This vocabulary with `terms` added after its own (the structures declared at run time: `structures`)."""
        return Vocabulary(list(self.terms) + list(terms), self.cues)

    def lexicon(self) -> list[tuple[str, str, str]]:
        """(term, category, value) of the rows that jieba, the corrector and the CRF know, in table order."""
        return [(t.term, t.category, t.value) for t in self.terms if t.use == "lexicon"]

    def words(self, category: str, value: str | None = None, abbr: bool = False) -> list[str]:
        """The terms of a class, in table order, without repeats."""
        key = (category, value, abbr)
        if key not in self._words:
            self._words[key] = list(dict.fromkeys(t.term for t in self._select(category, value, None, abbr)))
        return self._words[key]

    def values(self, category: str) -> list[str]:
        """The values of a category, in table order."""
        return list(dict.fromkeys(t.value for t in self.terms if t.category == category))

    def meaning(self, category: str, word: str) -> str | None:
        """The value a matched word has in a category (case, spaces, hyphens and underscores ignored)."""
        return self._meaning.get(category, {}).get(word_key(word))

    def rx(self, pattern: Pattern) -> re.Pattern:
        """The compiled regex of a template."""
        compiled = self._compiled.get(pattern)
        if compiled is None:
            compiled = re.compile(self.expand(pattern.template, pattern.lower), pattern.flags)
            self._compiled[pattern] = compiled
        return compiled

    def cue(self, name: str) -> re.Pattern:
        """A cue's phrases as one case-insensitive regex."""
        if name not in self._cues:
            self._cues[name] = self.rx(Pattern("{%s}" % name, re.I))
        return self._cues[name]

    def expand(self, template: str, lower: bool = False, _seen: tuple = ()) -> str:
        def slot(m: re.Match) -> str:
            name = m.group(1)
            if name in self.cues:
                if name in _seen:
                    raise ValueError(f"cue {name} refers to itself")
                body = "|".join(self.expand(p, lower, _seen + (name,)) for p in self.cues[name])
                return f"(?:{body})"
            return self._alternation(name, lower)

        return _SLOT.sub(slot, template)

    def _select(self, category: str, value: str | None, script: str | None, abbr: bool) -> list[Term]:
        return [t for t in self.terms if t.category == category and (value is None or t.value == value)
                and (abbr or t.use != "abbr") and (script is None or t.latin == (script == "latin"))]

    def _alternation(self, union: str, lower: bool) -> str:
        terms: list[str] = []
        for item in union.split("|"):
            m = _ITEM.fullmatch(item)
            if not m or not any(t.category == m.group(1) for t in self.terms):
                raise ValueError(f"unknown vocabulary class {{{item}}}")
            terms += [t.term for t in self._select(m.group(1), m.group(2), m.group(3), bool(m.group(4)))]
        terms = sorted(dict.fromkeys(terms), key=len, reverse=True)  # longest first: 敲出价 before 敲出
        if not terms:
            return "(?!)"
        return "(?:" + "|".join(_term_regex(t.lower() if lower else t) for t in terms) + ")"


def word_key(word: str) -> str:
    """How words compare: case, spaces, hyphens and underscores ignored."""
    return re.sub(r"[\s_-]+", "", word.lower())



def _term_regex(term: str) -> str:
    if term.isascii():
        return r"[\s_-]*".join(re.escape(part) for part in term.split())
    return re.escape(term)


@lru_cache(maxsize=1)
def default_vocabulary() -> Vocabulary:
    return Vocabulary.load()
