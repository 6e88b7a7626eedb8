"""Chinese text helpers: jieba tokenisation for BM25, key terms of a question, sentence splitting."""
from __future__ import annotations

import logging
import re
import threading
from functools import lru_cache
from pathlib import Path

_jieba_lock = threading.Lock()
_jieba_ready = False

DATA = Path(__file__).resolve().parent / "data"


def _data_words(name: str) -> list[str]:
    """Whitespace-separated words of a data file, `#` comments skipped."""
    out: list[str] = []
    for line in (DATA / name).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            out.extend(line.split())
    return out


# General domain words jieba would otherwise split (data/domain_words.txt: no firm or document names)
DOMAIN_WORDS = _data_words("domain_words.txt")

# The reader's asking words (data/function_words.txt): no weight in coverage
FUNCTION_WORDS = frozenset(w.lower() for w in _data_words("function_words.txt"))

STOPWORDS = set(
    """的 了 是 在 和 与 及 或 等 对 为 以 于 将 把 被 从 中 上 下 由 其 之 也 而 并 且 就 都 该 此 这 那 这个 那个 这些 那些
    什么 哪些 哪个 哪里 哪 多少 几 几个 如何 怎么 怎样 怎么样 为什么 是否 有没有 有无 吗 呢 吧 啊 请问 请 问 一下
    谁 何 何时 何种 哪种 哪家 哪一 哪一年 哪年 多久 多长 多大 有 有哪些 包括 包含 主要 分别 具体 通过 进行 可以 能够 能
    会 要 需要 一个 一种 各 每 个 所 其中 相关 关于 方面 情况 内容 介绍 说明 描述 如下 以下 以上 我们 你们 他们 它 其他
    本项目 该项目 及其 以及 还 又 还有 用 使用 采用 基于 the a an of to in and or is are what which
    how who when where does do did 时候 哪天 哪月 哪日 哪一天 叫 名为 是指 指 多长时间 多大 几年
    一般 通常 大约 大概 一般来说 通常情况 目前 现在 当前 几项 几家 几种 几篇 几次 几部分 几个月 多少次 多少家 多少个 多少人 多少笔 是什么 有多少 达到 为多少 一共 总共 共计 总计 合计""".split()
)

_QUESTION_WORD = re.compile(r"^(?:哪|几|多少|什么|怎|如何|是否)")
_PUNCT_RE = re.compile(r"^[\W_]+$", re.U)
SENTENCE_END = "。！？；!?;"
_SENT_SPLIT_RE = re.compile(r"(?<=[。！？；!?;])|\n+")


def _ensure_jieba():
    global _jieba_ready
    if _jieba_ready:
        return
    with _jieba_lock:
        if _jieba_ready:
            return
        import jieba

        jieba.setLogLevel(logging.WARNING)
        for w in DOMAIN_WORDS:
            jieba.add_word(w, freq=200000)
        _jieba_ready = True


def jieba_mod():
    _ensure_jieba()
    import jieba

    return jieba


def _keep(tok: str) -> bool:
    tok = tok.strip()
    return bool(tok) and not _PUNCT_RE.match(tok)


def tokenize(text: str) -> list[str]:
    """BM25 tokens: jieba search-mode words (long words plus their parts), lower-cased, stopwords dropped."""
    jb = jieba_mod()
    out = []
    for tok in jb.cut_for_search(text):
        tok = tok.strip().lower()
        if _keep(tok) and tok not in STOPWORDS:
            out.append(tok)
    return out


@lru_cache(maxsize=4096)
def key_terms(question: str) -> tuple[str, ...]:
    """Content words of a question (jieba precise mode, stopwords and single characters dropped)."""
    jb = jieba_mod()
    terms: list[str] = []
    for tok in jb.cut(question):
        t = tok.strip().lower()
        if not _keep(t) or t in STOPWORDS:
            continue
        if len(t) == 1 and not t.isdigit():
            continue
        if _QUESTION_WORD.match(t):
            continue
        if t not in terms:
            terms.append(t)
    return tuple(terms)


def sub_terms(term: str) -> list[str]:
    """Search-mode parts of a long word (场外期权 → 场外, 期权)."""
    jb = jieba_mod()
    parts = [p.lower() for p in jb.cut_for_search(term) if p != term and len(p) >= 2]
    return parts


def split_sentences(text: str) -> list[str]:
    """Split at 。！？；(and !?;) and line breaks, keeping the punctuation with its sentence."""
    return [s.strip() for s in _SENT_SPLIT_RE.split(text) if s and s.strip()]


NUMBER_RE = re.compile(r"\d+(?:[.,]\d+)*%?")


def numbers_in(text: str) -> set[str]:
    return {n.replace(",", "") for n in NUMBER_RE.findall(text)}


_CJK_GAP = re.compile(r"(?<=[\u4e00-\u9fff])[ \t\u3000]+(?=[\u4e00-\u9fff])")


def squash_cjk_spaces(text: str) -> str:
    """Drop spaces between two Chinese characters (PDF/table extraction artefacts: "注册 地址")."""
    return _CJK_GAP.sub("", text)
