"""Negative-news screening: which articles of a local news corpus mention an applicant or its legal representative.

A corpus is a folder of articles (txt, md, html, pdf, docx), read with the knowledge base's readers and split into
sentences like the knowledge base's chunks (no masking: names are what we look for). `NewsIndex.hits(names)`
returns one hit per (subject, article): the article's best passage (the matched sentence and the next one in its
paragraph), its title and date, and whether the passage has adverse terms.

Institution names are matched in their full and short forms by general rules (`data/news_terms.json`): a
region prefix (北京, 深圳前海, 上海市…) or a bracketed region ((北京)) may be dropped, so may the legal form (有限公司,
股份有限公司, (有限合伙)…), and an industry phrase may take its usual abbreviation (资产管理→资管, 投资管理→投资).
Every form keeps at least a two-character distinctive core and four characters in all, and a match followed by
another industry word (星河资产 + 评估…) is a different firm. A person's name matches only as a whole name: it
may not run on into further characters of a longer name (张伟 is not 张伟明).
"""
from __future__ import annotations

import json
import logging
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from otcdesk.knowledge.index import iter_files
from otcdesk.knowledge.readers import SUPPORTED_SUFFIXES, ReadError, read_document
from otcdesk.knowledge.text import split_sentences, squash_cjk_spaces

log = logging.getLogger(__name__)

TERMS_FILE = Path(__file__).resolve().parent.parent / "data" / "news_terms.json"
SUBJECTS = ("institution", "legal_representative")
MIN_FORM_CHARS = 4
MIN_CORE_CHARS = 2
_DATE_RE = re.compile(r"(\d{4})\s*(?:年|-|/|\.)\s*(\d{1,2})\s*(?:月|-|/|\.)\s*(\d{1,2})")
_HEADER_LINES = 5
_CJK = re.compile(r"[\u3400-\u9fff]")
_BLANKS = re.compile(r"\s+")


@dataclass(frozen=True)
class Rules:
    adverse_terms: tuple[str, ...]
    legal_forms: tuple[str, ...]
    partnership_forms: tuple[str, ...]
    regions: tuple[str, ...]
    region_suffixes: tuple[str, ...]
    abbreviations: tuple[tuple[str, tuple[str, ...]], ...]
    industry_words: tuple[str, ...]
    name_followers: frozenset[str]


@lru_cache(maxsize=1)
def rules() -> Rules:
    raw = json.loads(TERMS_FILE.read_text(encoding="utf-8"))
    by_len = lambda xs: tuple(sorted({fold(x) for x in xs}, key=len, reverse=True))  # noqa: E731 longest first
    return Rules(
        adverse_terms=by_len(raw["adverse_terms"]), legal_forms=by_len(raw["legal_forms"]),
        partnership_forms=by_len(raw["partnership_forms"]), regions=by_len(raw["regions"]),
        region_suffixes=by_len(raw["region_suffixes"]),
        abbreviations=tuple(sorted(((fold(k), tuple(fold(s) for s in v)) for k, v in raw["industry_abbreviations"].items()),
                                   key=lambda kv: len(kv[0]), reverse=True)),
        industry_words=by_len(raw["industry_words"]), name_followers=frozenset(raw["name_followers"]))


def fold(text: str) -> str:
    """The form names are compared in: NFKC (full-width brackets and letters → half-width), no blanks except one
    between two Latin letters or digits (`Zhang Ming` stays two words)."""
    text = unicodedata.normalize("NFKC", text).strip()

    def gap(m: re.Match) -> str:
        before, after = text[m.start() - 1], text[m.end()]  # never at either end: the text is stripped
        return " " if before.isascii() and before.isalnum() and after.isascii() and after.isalnum() else ""

    return _BLANKS.sub(gap, text)


# ---------------------------------------------------------------------------------------------- institution names

def _strip_regions(name: str, r: Rules) -> str:
    """Drop leading region names (深圳前海…, 上海市…) as long as something remains."""
    changed = True
    while changed:
        changed = False
        for region in r.regions:
            if name.startswith(region) and len(name) > len(region):
                rest = name[len(region):]
                for suffix in r.region_suffixes:
                    if rest.startswith(suffix) and len(rest) > len(suffix):
                        rest = rest[len(suffix):]
                        break
                name, changed = rest, True
                break
    return name


def _strip_legal_form(name: str, r: Rules) -> str:
    for form in r.partnership_forms:
        name = name.replace(f"({form})", "")
    for form in r.legal_forms:
        if name.endswith(form) and len(name) > len(form):
            return name[: -len(form)]
    return name


def _strip_bracketed_regions(name: str, r: Rules) -> str:
    def drop(m: re.Match) -> str:
        inner = m.group(1)
        return "" if _strip_regions(inner + "\0", r) == "\0" or inner in r.regions else m.group(0)

    return re.sub(r"\(([^()]{1,12})\)", drop, name)


def _strip_industry(name: str, r: Rules, keep_one: bool = True) -> str:
    """Trailing industry words removed (星河资产管理 → 星河); all of them unless `keep_one` keeps something."""
    changed = True
    while changed:
        changed = False
        for word in r.industry_words:
            if name.endswith(word) and (len(name) > len(word) or not keep_one):
                name, changed = name[: -len(word)], True
                break
    return name


def core_of(form: str) -> str:
    """The distinctive core of a name: no region, legal form or industry words (may be empty)."""
    r = rules()
    bare = _strip_legal_form(_strip_bracketed_regions(fold(form), r), r)
    stripped = _strip_regions(bare, r)
    if stripped == bare and any(bare == region or bare.startswith(region) and bare[len(region):] in
                                r.region_suffixes for region in r.regions):
        return ""  # a region name alone
    return _strip_industry(stripped, r, keep_one=False)


def institution_forms(full_name: str) -> list[str]:
    """The forms under which an institution may be named, longest first (see the module docstring)."""
    r = rules()
    full = fold(full_name)
    bases = {full, _strip_bracketed_regions(full, r)}
    bases |= {_strip_legal_form(b, r) for b in bases}
    bases |= {_strip_regions(b, r) for b in bases}
    forms = set(bases)
    for base in bases:
        for long, shorts in r.abbreviations:
            if long in base:
                forms |= {base.replace(long, short, 1) for short in shorts}
                break
    forms |= {_strip_industry(f, r) for f in list(forms)}
    keep = [f for f in forms if len(f) >= MIN_FORM_CHARS and len(core_of(f)) >= MIN_CORE_CHARS]
    if not keep and len(full) >= MIN_CORE_CHARS:
        keep = [full]
    return sorted(keep, key=lambda f: (-len(f), f))


def _institution_ends_here(text: str, end: int, r: Rules) -> bool:
    """False when the name runs on into another firm's name (another industry word follows)."""
    rest = text[end:end + 8]
    if not rest or rest.startswith("("):
        return True
    if any(rest.startswith(form) for form in r.legal_forms):
        return True
    return not any(rest.startswith(word) for word in r.industry_words)


def _person_ends_here(text: str, start: int, end: int, r: Rules) -> bool:
    """A whole name: not run on into a longer name, nor (for Latin names) part of a longer word."""
    after = text[end:end + 1]
    before = text[start - 1:start] if start else ""
    if after and _CJK.match(after) and after not in r.name_followers:
        return False
    if after.isascii() and after.isalnum() and text[end - 1].isascii():
        return False
    if before.isascii() and before.isalnum() and text[start].isascii():
        return False
    return True


def _find(subject: str, forms: list[str], text: str) -> str | None:
    """The first form found in `text` as a whole name (longest form first at each position)."""
    r = rules()
    for start in range(len(text)):
        for form in forms:
            if text.startswith(form, start):
                end = start + len(form)
                ok = (_institution_ends_here(text, end, r) if subject == "institution"
                      else _person_ends_here(text, start, end, r))
                if ok:
                    return form
    return None


# --------------------------------------------------------------------------------------------------- the corpus

@dataclass
class Article:
    source: str
    title: str
    date: str | None
    paragraphs: list[list[str]]  # sentences, original text


def _title_and_date(text: str) -> tuple[str, str | None]:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    title = lines[0].lstrip("#").strip() if lines else ""
    date = None
    for line in lines[:_HEADER_LINES]:
        m = _DATE_RE.search(line)
        if m:
            y, mo, d = (int(g) for g in m.groups())
            if 1 <= mo <= 12 and 1 <= d <= 31:
                date = f"{y:04d}-{mo:02d}-{d:02d}"
                break
    return title, date


def adverse_terms_in(text: str) -> list[str]:
    """The adverse terms in `text`, a term inside a longer found one not repeated (立案 in 立案调查)."""
    folded = fold(text)
    found: list[str] = []
    for term in rules().adverse_terms:  # longest first
        if term in folded and not any(term in longer for longer in found):
            found.append(term)
    return found


class NewsIndex:
    """The articles of a news folder, sentence-split, searched by name."""

    def __init__(self, articles: list[Article]):
        self.articles = articles

    @classmethod
    def from_dir(cls, path: Path | str) -> "NewsIndex":
        path = Path(path)
        if not path.is_dir():
            raise FileNotFoundError(f"news folder not found: {path}")
        articles = []
        for file in iter_files([path], SUPPORTED_SUFFIXES):
            if file.stem.upper() == "README":  # the folder's own description, not an article
                continue
            try:
                doc = read_document(file)
            except ReadError as exc:
                log.warning("news article %s skipped: %s", file.name, exc)
                continue
            text = squash_cjk_spaces(doc.text)
            title, date = _title_and_date(text)
            paragraphs = [split_sentences(p.lstrip("#").strip()) for p in text.split("\n") if p.strip()]
            articles.append(Article(file.name, title, date, [p for p in paragraphs if p]))
        return cls(articles)

    def hits(self, names: dict[str, str]) -> list[dict]:
        """One hit per (subject, article) that names the subject; adverse hits first."""
        out = []
        for subject in SUBJECTS:
            name = (names.get(subject) or "").strip()
            if not name:
                continue
            forms = institution_forms(name) if subject == "institution" else [fold(name)]
            if not forms or (subject == "legal_representative" and len(forms[0]) < 2):
                continue
            for article in self.articles:
                hit = self._best(subject, forms, article)
                if hit:
                    out.append(hit)
        return sorted(out, key=lambda h: (not h["negative"], -h["score"], h["subject"], h["source"]))

    @staticmethod
    def _best(subject: str, forms: list[str], article: Article) -> dict | None:
        best, mentions = None, 0
        for sentences in article.paragraphs:
            for i, sentence in enumerate(sentences):
                matched = _find(subject, forms, fold(sentence))
                if matched is None:
                    continue
                mentions += 1
                passage = "".join(sentences[i:i + 2])
                terms = adverse_terms_in(passage)
                if best is None or len(terms) > best["score"]:
                    best = {"subject": subject, "name": matched, "source": article.source, "title": article.title,
                            "date": article.date, "passage": passage, "negative": bool(terms),
                            "adverse_terms": terms, "score": len(terms)}
        if best is not None:
            best["mentions"] = mentions
        return best
