"""The grounding check of generated text: every number and named entity must occur in the cited passages.

The answering stages themselves live in `pipeline.py`; this module keeps the check that the generator and the
QA-pair generation share.
"""
from __future__ import annotations

import re

from otcdesk.knowledge.pipeline import DEFAULT_THRESHOLD, REFUSAL  # noqa: F401 - re-exported
from otcdesk.knowledge.text import jieba_mod, numbers_in

_ENTITY_SUFFIX = re.compile(r"(公司|证券|交易所|银行|基金|期货|集团|中心|协会|研究院|大学|委员会|管理局|监管局)$")


def answer_entities(answer: str) -> list[str]:
    """Named things in an answer: Latin words/codes, institution names and 《titles》."""
    jieba_mod()  # our dictionary loaded before the POS tagger
    import jieba.posseg as pseg

    ents: list[str] = []
    ents += re.findall(r"《[^》]{1,40}》", answer)
    ents += [w for w in re.findall(r"[A-Za-z][A-Za-z0-9.\-]{1,}", answer)]
    for w, flag in pseg.cut(answer):
        if len(w) >= 2 and (flag in ("nt", "nr", "ns", "nz") or _ENTITY_SUFFIX.search(w)):
            ents.append(w)
    return list(dict.fromkeys(ents))


def groundedness(answer: str, passages: str) -> tuple[bool, list[str]]:
    """Every number and named entity in `answer` must occur in `passages`; returns (ok, unsupported)."""
    compact = re.sub(r"\s+", "", passages).replace(",", "")
    lower = compact.lower()
    unsupported = [n for n in numbers_in(answer) if n.rstrip("%") not in compact]
    for e in answer_entities(answer):
        if re.sub(r"\s+", "", e).lower() not in lower:
            unsupported.append(e)
    return (not unsupported), unsupported
