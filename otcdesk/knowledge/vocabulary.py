"""Vocabulary of a knowledge base: general synonyms (data file) plus what is LEARNED from its documents.

General data (``data/finance_synonyms.txt``, ``data/english_terms.tsv``) holds finance and securities words only.
At ingestion `learn_vocabulary` reads the chunks and keeps, per knowledge base (``vocab.json`` beside the index):

- ``terms``: headings, form field labels ("注册资本：", a label cell before a tab) and defined terms;
- ``aliases``: short name → full name, from "（以下简称“X”）", "（简称：X）", "[简称：X]", "X（ABC）" and "ABC（X）";
- ``titles``: each document's title (its first heading or line), the context every passage of it shares.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from llama_index.core.schema import TextNode

from otcdesk.knowledge.text import DATA, squash_cjk_spaces

_QUOTE = "“”\"'‘’「」『』"
# 某某衍生品签约平台（以下简称“签约平台”）, 某某通信有限公司（简称“某某通”）
_SHORT_AFTER = re.compile(
    r"([\u4e00-\u9fffA-Za-z0-9·]{2,40}?)\s*[（(\[【]\s*(?:以下)?(?:简称|下称|以下称)\s*[：:为]?\s*[" + _QUOTE + r"]?"
    r"([^" + _QUOTE + r"）)\]】，,]{1,20}?)[" + _QUOTE + r"]?\s*[）)\]】]")
# 某某分析软件 [简称：分析软件]
_ABBR_PAREN = re.compile(r"([\u4e00-\u9fff]{2,30})\s*[（(]\s*([A-Za-z][A-Za-z0-9\-]{1,15})\s*[）)]")  # 机器人流程自动化（RPA）
_PAREN_ABBR = re.compile(r"([A-Za-z][A-Za-z0-9\-]{1,15})\s*[（(]\s*([\u4e00-\u9fff]{2,30})\s*[）)]")  # RPA（机器人流程自动化）
_COMPANY = re.compile(r"([\u4e00-\u9fff]{2,20}?)(?:股份有限公司|有限责任公司|有限公司)")
_LABEL = re.compile(r"(?:^|[\n\t|>。；;！？])\s*(?:[（(]?\d{1,2}(?:\.\d+)*[)）.、]?\s*)?([\u4e00-\u9fffA-Za-z]{2,12})\s*[：:]")
_LABEL_CELL = re.compile(r"(?:^|\n)\s*\d+(?:\.\d+)+\s*([\u4e00-\u9fff]{2,14})(?=\s*(?:\t|\||：|:|\n|$))")
_HEADING_TEXT = re.compile(r"^(?:#+\s*|[一二三四五六七八九十]+[、.．]\s*|\d+(?:\.\d+)*[、.．]?\s*|[（(][一二三四五六七八九十\d]+[)）]\s*)")


def _clean(term: str) -> str:
    return re.sub(r"\s+", "", term).strip("：:，,。 ").lower()


@lru_cache(maxsize=1)
def general_synonyms() -> dict[str, frozenset[str]]:
    """word → its synonym group (the data file's groups; a word in several groups gets their union)."""
    groups: dict[str, set[str]] = {}
    for line in (DATA / "finance_synonyms.txt").read_text(encoding="utf-8").splitlines():
        words = [w.lower() for w in line.split()]
        if not words or line.lstrip().startswith("#"):
            continue
        for w in words:
            groups.setdefault(w, set()).update(words)
    return {w: frozenset(g - {w}) for w, g in groups.items()}


@lru_cache(maxsize=1)
def english_terms() -> tuple[tuple[re.Pattern, str], ...]:
    out = []
    for line in (DATA / "english_terms.tsv").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        pat, zh = line.split("\t")
        out.append((re.compile(r"(?<![a-z])" + pat.replace(" ", r"\s+") + r"(?![a-z])", re.I), zh))
    return tuple(out)


def english_to_chinese(question: str) -> str:
    """Replace general English finance words in a mixed question by the Chinese ones documents use."""
    if not re.search(r"[A-Za-z]{3,}", question):
        return question
    out = question
    for rx, zh in english_terms():
        out = rx.sub(zh, out)
    return out


@dataclass
class Vocabulary:
    """What one knowledge base learned from its documents (see the module docstring); read-only once built."""

    terms: set[str] = field(default_factory=set)
    aliases: dict[str, set[str]] = field(default_factory=dict)  # either name → the other names of the thing
    titles: dict[str, str] = field(default_factory=dict)  # source → title

    def alternatives(self, term: str) -> set[str]:
        """Other words for `term`: learned short/full names, then general synonyms."""
        alts = set(self.aliases.get(term, ()))
        alts |= set(general_synonyms().get(term, ()))
        alts.discard(term)
        return alts

    def to_json(self) -> dict:
        return {"terms": sorted(self.terms), "aliases": {k: sorted(v) for k, v in sorted(self.aliases.items())},
                "titles": self.titles}

    @classmethod
    def from_json(cls, doc: dict) -> "Vocabulary":
        return cls(set(doc.get("terms", [])), {k: set(v) for k, v in doc.get("aliases", {}).items()},
                   dict(doc.get("titles", {})))

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> "Vocabulary":
        return cls.from_json(json.loads(path.read_text(encoding="utf-8"))) if path.exists() else cls()


def _add_alias(aliases: dict[str, set[str]], a: str, b: str) -> None:
    a, b = _clean(a), _clean(b)
    if a and b and a != b and len(a) >= 2 and len(b) >= 2:
        aliases.setdefault(a, set()).add(b)
        aliases.setdefault(b, set()).add(a)


def _full_name(before: str) -> str:
    """The name just before "（简称…）": drop a leading clause ("本项目通过公司…与某某签约平台" → the last name)."""
    before = re.split(r"[，,。；;：:、\s]|与|和|及|通过|由|是|为|在|将|对|向|把|的(?=[\u4e00-\u9fff]{4,})", before)[-1]
    return before[-30:]


def learn_vocabulary(nodes: Iterable[TextNode]) -> Vocabulary:
    """Headings, labels, defined terms and short names of the documents, and each document's title."""
    vocab = Vocabulary()
    for node in nodes:
        md = node.metadata
        text = squash_cjk_spaces(node.get_content())
        src = md.get("source", "")
        if src and src not in vocab.titles:
            first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
            vocab.titles[src] = _HEADING_TEXT.sub("", (md.get("heading") or "").split(" > ")[0] or first)[:60]
        for part in (md.get("heading") or "").split(" > "):
            h = _clean(_HEADING_TEXT.sub("", part))
            named = re.fullmatch(r"(.{2,16}?)[（(]([^）)]{2,20})[）)]", h)  # 雪球（snowball）: a name and its other name
            if named:
                vocab.terms.add(named.group(1))
                _add_alias(vocab.aliases, named.group(1), named.group(2))
            elif 2 <= len(h) <= 16:
                vocab.terms.add(h)
        for m in _LABEL.finditer(text):
            vocab.terms.add(_clean(m.group(1)))
        for m in _LABEL_CELL.finditer(text):
            vocab.terms.add(_clean(m.group(1)))
        for m in _SHORT_AFTER.finditer(text):
            full, short = _full_name(m.group(1)), m.group(2)
            _add_alias(vocab.aliases, short, full)
            vocab.terms.update({_clean(short), _clean(full)})
        for m in _ABBR_PAREN.finditer(text):
            _add_alias(vocab.aliases, m.group(2), _full_name(m.group(1)))
        for m in _PAREN_ABBR.finditer(text):
            _add_alias(vocab.aliases, m.group(1), m.group(2))
        for m in _COMPANY.finditer(text):  # 某某证券股份有限公司 → 某某证券 (and without a leading 中国)
            short = _full_name(m.group(1))
            if len(short) >= 4:
                _add_alias(vocab.aliases, short, short + m.group(0)[len(m.group(1)):])
                if short.startswith("中国") and len(short) >= 6:
                    _add_alias(vocab.aliases, short[2:], short)
    vocab.terms = {t for t in vocab.terms if 2 <= len(t) <= 20 and not t.isdigit()}
    return vocab
