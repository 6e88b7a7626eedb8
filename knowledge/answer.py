"""Answering from retrieved passages: extractive (no model) or generated (LLM) with a groundedness check.

Refusal is decided on *coverage*: the IDF-weighted share of the question's key terms found in the
best passage (terms found only elsewhere in the same document count partly). A question about
something the knowledge base never mentions leaves its distinctive terms uncovered, however high
a near-miss passage scores in BM25, and is refused.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from llama_index.core.schema import NodeWithScore

from knowledge.index import KBIndex
from knowledge.protocols import Embedder, LLMClient, Reranker
from knowledge.text import jieba_mod, key_terms, numbers_in, split_sentences, sub_terms

REFUSAL = "知识库中没有找到能回答这个问题的依据，无法回答。"
DEFAULT_THRESHOLD = 0.62
_WANTS_NUMBER = re.compile(r"多少|几|哪一?年|何时|什么时候|时间|日期|比例|金额|规模|数量|百分|编号|代码|号码|电话")
_LATIN_OR_NUM = re.compile(r"^[a-z0-9][a-z0-9.\-+]*$")
_ENTITY_SUFFIX = re.compile(r"(公司|证券|交易所|银行|基金|期货|集团|中心|协会|研究院|大学|委员会|管理局|监管局)$")


@dataclass
class Candidate:
    node: NodeWithScore
    coverage: float
    missing: list[str] = field(default_factory=list)
    rank: int = 0


class Answerer:
    """Retrieve, decide (answer or refuse), extract or generate, cite."""

    def __init__(self, index: KBIndex, llm: LLMClient | None = None, embedder: Embedder | None = None,
                 reranker: Reranker | None = None, threshold: float = DEFAULT_THRESHOLD,
                 llm_timeout: float | None = None):
        self.index, self.llm, self.embedder, self.reranker = index, llm, embedder, reranker
        self.threshold = threshold
        self.llm_timeout = llm_timeout
        self._df: dict[str, int] = {}
        self._doc_text: dict[str, str] = {}
        self._topic: dict[tuple[str, str], bool] = {}

    # ---- term statistics ---------------------------------------------------------------------
    def _n_chunks(self) -> int:
        return max(1, sum(len(i["chunk_ids"]) for i in self.index.manifest.values()))

    def df(self, term: str) -> int:
        if term not in self._df:
            self._df[term] = sum(1 for cid in self.index.chunk_ids() if term in self.index.lower_text(cid))
        return self._df[term]

    def idf(self, term: str) -> float:
        n, d = self._n_chunks(), self.df(term)
        return math.log(1 + (n - d + 0.5) / (d + 0.5))

    def doc_text(self, source: str) -> str:
        if source not in self._doc_text:
            ids = self.index.manifest.get(source, {}).get("chunk_ids", [])
            self._doc_text[source] = "\n".join(self.index.lower_text(c) for c in ids)
        return self._doc_text[source]

    def is_topic(self, term: str, source: str) -> bool:
        """A word the document is about (its subject, e.g. the firm or project), not a detail."""
        key = (term, source)
        if key not in self._topic:
            ids = self.index.manifest.get(source, {}).get("chunk_ids", [])
            n = sum(1 for c in ids if term in self.index.lower_text(c))
            kws = self.index.manifest.get(source, {}).get("keywords", [])
            self._topic[key] = n >= 3 or term in kws
        return self._topic[key]

    def query_terms(self, question: str) -> tuple[str, ...]:
        """Key terms plus adjacent pairs that occur as one phrase in the knowledge base (投入+资金 → 投入资金)."""
        terms = list(key_terms(question))
        q = question.lower()
        phrases = []
        for a, b in zip(terms, terms[1:]):
            ph = a + b
            if ph in q and self.df(ph) > 0 and ph not in terms:
                phrases.append(ph)
        return tuple(terms + phrases)

    def coverage(self, terms: tuple[str, ...], chunk_id: str, source: str) -> tuple[float, list[str]]:
        """IDF-weighted share of `terms` the passage supports (topic words of its document count too)."""
        text, doc = self.index.lower_text(chunk_id), self.doc_text(source)
        total = got = 0.0
        missing = []
        for t in terms:
            w = self.idf(t)
            total += w
            if t in text:
                got += w
            elif t in doc:
                got += (0.9 if self.is_topic(t, source) else 0.25) * w
            else:
                if self.df(t) == 0 and len(t) >= 3:
                    parts = sub_terms(t)
                    frac = sum(1 for p in parts if p in text) / len(parts) if parts else 0.0
                    got += 0.5 * frac * w
                missing.append(t)
        return (got / total if total else 0.0), missing

    @staticmethod
    def hard_terms(terms: tuple[str, ...]) -> list[str]:
        """Numbers, codes and Latin words: if the question names one, the evidence must contain it."""
        return [t for t in terms if _LATIN_OR_NUM.match(t)]

    # ---- main entry --------------------------------------------------------------------------
    def candidates(self, question: str, k: int = 8) -> tuple[tuple[str, ...], list[Candidate]]:
        """Score every passage of the best-retrieved documents by coverage; retrieval rank breaks ties."""
        terms = self.query_terms(question)
        hits = self.index.hybrid(question, k=max(k, 15), embedder=self.embedder, reranker=self.reranker)
        rank_of = {h.node.node_id: r for r, h in enumerate(hits)}
        docs: list[str] = []
        for h in hits:
            src = h.node.metadata.get("source", "")
            if src not in docs:
                docs.append(src)
        cands = []
        for src in docs[:3]:
            for cid in self.index.manifest.get(src, {}).get("chunk_ids", []):
                cov, missing = self.coverage(terms, cid, src)
                if cid in rank_of:
                    nws = hits[rank_of[cid]]
                else:
                    if cov < 0.3:
                        continue
                    nws = NodeWithScore(node=self.index.node(cid), score=0.0)
                cands.append(Candidate(nws, cov, missing, rank_of.get(cid, 99)))
        cands.sort(key=lambda c: -(c.coverage + 0.03 / (1 + c.rank) + (0.01 if c.rank < 99 else 0.0)))
        return terms, cands

    def ask(self, question: str, k: int = 5) -> dict:
        """Answer `question` (CONTRACTS: answer, refused, citations) with extras for the console."""
        question = question.strip()
        terms, cands = self.candidates(question, k)
        if not terms or not cands:
            return self._refuse("no_terms" if not terms else "no_hits", terms)
        best = cands[0]
        source = best.node.node.metadata.get("source", "")
        hard_missing = [t for t in self.hard_terms(terms) if t not in self.doc_text(source)]
        if best.coverage < self.threshold or hard_missing:
            return self._refuse("low_coverage" if not hard_missing else "missing_entity", terms, best, hard_missing)
        answer, sentence = self.extract(question, terms, best.node)
        result = {
            "answer": answer,
            "refused": False,
            "citations": self._citations(best, cands, k),
            "mode": "extractive",
            "coverage": round(best.coverage, 3),
            "key_terms": list(terms),
        }
        if self.llm is not None:
            self._generate(question, result, cands)
        return result

    def _refuse(self, reason: str, terms, best: Candidate | None = None, missing=None) -> dict:
        return {
            "answer": REFUSAL,
            "refused": True,
            "citations": [],
            "mode": "refusal",
            "reason": reason,
            "coverage": round(best.coverage, 3) if best else 0.0,
            "missing_terms": (missing or []) + (best.missing if best else []),
            "key_terms": list(terms),
        }

    @staticmethod
    def _cite(nws: NodeWithScore) -> dict:
        md = nws.node.metadata
        return {
            "source": md.get("source", ""),
            "text": nws.node.get_content(),
            "score": float(nws.score or 0.0),
            "chunk_id": nws.node.node_id,
            "heading": md.get("heading", ""),
            "position": md.get("position"),
        }

    def _citations(self, best: Candidate, cands: list[Candidate], k: int) -> list[dict]:
        """The answer's passage first, then other well-covered passages of the same document."""
        out = [self._cite(best.node)]
        src = best.node.node.metadata.get("source")
        for c in cands[1:]:
            if len(out) >= min(k, 3):
                break
            if c.node.node.metadata.get("source") == src and c.coverage >= self.threshold:
                out.append(self._cite(c.node))
        return out

    # ---- extraction --------------------------------------------------------------------------
    def extract(self, question: str, terms: tuple[str, ...], nws: NodeWithScore) -> tuple[str, str]:
        """The sentence or table row of the passage that answers, numbers and units intact."""
        body = nws.node.get_content()
        heading = nws.node.metadata.get("heading", "")
        label = heading.split(" > ")[-1] if heading else ""
        label_l = label.lower()
        if len(body) <= 120:
            ans = body if (not label or label in body) else f"{label}：{body}"
            return ans.replace("\n", " "), body
        wants_num = bool(_WANTS_NUMBER.search(question))
        sents = split_sentences(body)
        weights = {t: self.idf(t) for t in terms}
        total = sum(weights.values()) or 1.0
        best_i, best_s = 0, -1.0
        for i, s in enumerate(sents):
            sl = s.lower()
            score = sum(w for t, w in weights.items() if t in sl) / total
            score += 0.5 * sum(w for t, w in weights.items() if t not in sl and t in label_l) / total
            if wants_num and re.search(r"\d", s):
                score += 0.15
            if len(s) < 6:
                score -= 0.2
            if score > best_s + 1e-9:
                best_i, best_s = i, score
        picked = [sents[best_i]]
        if len(picked[0]) < 30 and best_i + 1 < len(sents):
            picked.append(sents[best_i + 1])
        elif picked[0].endswith(("：", ":")) and best_i + 1 < len(sents):
            picked.append(sents[best_i + 1])
        ans = "".join(p if p.endswith(tuple("。！？；!?;")) else p + " " for p in picked).strip()
        return ans, sents[best_i]

    # ---- generation --------------------------------------------------------------------------
    def _generate(self, question: str, result: dict, cands: list[Candidate]) -> None:
        passages = [c.node for c in cands[:3] if c.coverage >= self.threshold * 0.8] or [cands[0].node]
        context = "\n\n".join(f"[{i + 1}] ({p.node.metadata.get('source')}) {p.node.get_content()}"
                              for i, p in enumerate(passages))
        messages = [
            {"role": "system", "content": "你是证券公司场外衍生品业务的知识助手。只根据给出的资料回答，简洁准确，"
                                          "保留数字和单位；资料中没有答案时只回答“无法回答”。"},
            {"role": "user", "content": f"资料：\n{context}\n\n问题：{question}\n回答："},
        ]
        try:
            text = (self.llm.complete_text(messages, timeout=self.llm_timeout) or "").strip()
        except Exception as exc:  # the extractive answer stands
            result["llm_rejected"] = f"llm error: {exc.__class__.__name__}"
            return
        passage_text = "\n".join(p.node.get_content() for p in passages)
        ok, unsupported = groundedness(text, passage_text)
        if not text or "无法回答" in text:
            result["llm_rejected"] = "model declined"
        elif not ok:
            result["llm_rejected"] = "unsupported: " + "、".join(unsupported[:5])
        else:
            result["answer"] = text
            result["mode"] = "generated"
            result["citations"] = [self._cite(p) for p in passages]


def answer_entities(answer: str) -> list[str]:
    """Named things in an answer: Latin words/codes, institution names and 《titles》."""
    jb = jieba_mod()
    import jieba.posseg as pseg  # noqa: F401 - ensures the POS tagger is loaded with our dictionary

    ents: list[str] = []
    ents += re.findall(r"《[^》]{1,40}》", answer)
    ents += [w for w in re.findall(r"[A-Za-z][A-Za-z0-9.\-]{1,}", answer)]
    for w, flag in pseg.cut(answer):
        if len(w) >= 2 and (flag in ("nt", "nr", "ns", "nz") or _ENTITY_SUFFIX.search(w)):
            ents.append(w)
    del jb
    return list(dict.fromkeys(ents))


def groundedness(answer: str, passages: str) -> tuple[bool, list[str]]:
    """Every number and named entity in `answer` must occur in `passages`; returns (ok, unsupported)."""
    compact = re.sub(r"\s+", "", passages).replace(",", "")
    lower = compact.lower()
    unsupported = [n for n in numbers_in(answer) if n.rstrip("%") not in compact]
    for e in answer_entities(answer):
        e2 = re.sub(r"\s+", "", e)
        if e2.lower() not in lower:
            unsupported.append(e)
    return (not unsupported), unsupported
