"""Question–answer pair generation from ingested chunks (for review, then evaluation).

Without an LLM the pairs are deterministic, built from units that state facts: table rows
("注册资本：77.57亿元"), sentences with figures, dates and lists. With an LLM, each passage is sent
with a request for pairs and only pairs whose answer passes the groundedness check are kept.
Pairs are de-duplicated by normalised question and by (passage, answer).
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterable

from llama_index.core.schema import TextNode

from otcdesk.knowledge.answer import groundedness
from otcdesk.knowledge.masking import TOKEN_RE
from otcdesk.knowledge.text import split_sentences

_LABEL_NUM = re.compile(r"^[\s*]*(?:\d+(?:\.\d+)*|[（(]?\d+[)）]|[一二三四五六七八九十]+[、.])\s*")
_NUMBER = re.compile(
    r"(?:约|近|超过|超|逾)?\d+(?:[.,]\d+)*\s*(%|亿元|万元|元|万亿元|万亿|亿|万|笔|次|人|名|家|个|项|篇|年|个月|天|分钟|小时|倍|条|张|台|笔/日)"
)
_DATE = re.compile(r"\d{4}\s*年\s*\d{1,2}\s*月(?:\s*\d{1,2}\s*日)?")
_LIST = re.compile(r"^(.{2,40}?)(包括|包含|分为|涵盖)[：:]?(.+、.+)$")


def _norm(s: str) -> str:
    return re.sub(r"[\W_]+", "", s).lower()


def doc_subjects(nodes: Iterable[TextNode]) -> dict[str, str]:
    """A short subject per source: its 项目名称 / 名称 row, else its first heading, else the file stem."""
    subjects: dict[str, str] = {}
    for n in nodes:
        src = n.metadata.get("source", "")
        if src in subjects and not subjects[src].startswith("《"):
            continue
        for line in n.get_content().split("\n"):
            m = re.match(r"^.{0,12}?(?:项目名称|产品名称|名称)[：:]\s*(.{4,60})$", line.strip())
            if m:
                subjects[src] = "“" + m.group(1).strip() + "”"
                break
        if src not in subjects:
            heading = n.metadata.get("heading", "")
            if heading:
                subjects[src] = "《" + heading.split(" > ")[0].lstrip("# ").strip() + "》"
    for n in nodes:
        src = n.metadata.get("source", "")
        subjects.setdefault(src, "《" + Path(src).stem + "》")
    return subjects


def _row_pair(line: str, subject: str) -> tuple[str, str] | None:
    if "：" not in line[:30]:
        return None
    label, value = line.split("：", 1)
    label = _LABEL_NUM.sub("", label).strip(" :：|")
    value = value.strip()
    if not (2 <= len(label) <= 16) or not (2 <= len(value) <= 80) or TOKEN_RE.search(value):
        return None
    if re.search(r"[。！？；]", label) or value.endswith(("：", ":")):
        return None
    return f"{subject}的{label}是什么？", f"{label}：{value}"


def _fact_pairs(sentence: str, subject: str) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    if TOKEN_RE.search(sentence) or len(sentence) < 8:
        return out
    clauses = [c for c in re.split(r"[，,；;。]", sentence) if c.strip()]
    for clause in clauses:
        clause = _LABEL_NUM.sub("", clause.strip())
        m = _DATE.search(clause)
        if m and len(clause) >= 8:
            q = clause[: m.start()] + "何时" + clause[m.end():]
            out.append((f"据{subject}，{q.strip()}？", sentence, "date"))
            break
        m = _NUMBER.search(clause)
        if m and len(clause) >= 8:
            q = clause[: m.start()] + "多少" + m.group(1) + clause[m.end():]
            out.append((f"据{subject}，{q.strip()}？", sentence, "number"))
            break
    m = _LIST.match(sentence.rstrip("。；;"))
    if m and not out:
        out.append((f"据{subject}，{m.group(1).strip()}{m.group(2)}哪些？", sentence, "list"))
    return out


def deterministic_pairs(nodes: list[TextNode]) -> list[dict]:
    subjects = doc_subjects(nodes)
    rows: list[dict] = []
    for n in nodes:
        src = n.metadata.get("source", "")
        subject = subjects.get(src, src)
        for line in n.get_content().split("\n"):
            line = line.strip()
            if not line:
                continue
            rp = _row_pair(line, subject)
            if rp:
                rows.append({"question": rp[0], "answer": rp[1], "kind": "row", "source": src,
                             "chunk_id": n.node_id, "passage": n.get_content()})
                continue
            for sent in split_sentences(line):
                for q, a, kind in _fact_pairs(sent, subject):
                    rows.append({"question": q, "answer": a, "kind": kind, "source": src,
                                 "chunk_id": n.node_id, "passage": n.get_content()})
    return rows


_QA_SCHEMA = {
    "type": "object",
    "properties": {"pairs": {"type": "array", "items": {
        "type": "object",
        "properties": {"question": {"type": "string"}, "answer": {"type": "string"}},
        "required": ["question", "answer"]}}},
    "required": ["pairs"],
}


def split_grounded(pairs: list[dict], passage: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(kept, rejected) question-answer pairs: kept answers have every number and entity in the passage."""
    kept, rejected = [], []
    for p in pairs:
        q, a = str(p.get("question", "")).strip(), str(p.get("answer", "")).strip()
        if len(q) < 4 or not a:
            rejected.append((q, a))
        elif groundedness(a, passage)[0]:
            kept.append((q, a))
        else:
            rejected.append((q, a))
    return kept, rejected


def llm_pairs(nodes: list[TextNode], llm, timeout: float | None = None, per_chunk: int = 2,
              stats: dict | None = None) -> list[dict]:
    """Ask the model for pairs per passage; keep only grounded ones. `stats` (if given) counts
    passages asked, model failures, pairs proposed and pairs kept."""
    rows: list[dict] = []
    counts = stats if stats is not None else {}
    for key in ("asked", "failed", "proposed", "kept"):
        counts.setdefault(key, 0)
    for n in nodes:
        text = n.get_content()
        if len(text) < 40:
            continue
        messages = [
            {"role": "system", "content": "你为证券公司的知识库生成问答对。只用给出的段落，答案必须能在段落中找到。"},
            {"role": "user", "content": f"段落：\n{text}\n\n请生成{per_chunk}个问答对，输出 JSON："
                                        '{"pairs": [{"question": "...", "answer": "..."}]}'},
        ]
        counts["asked"] += 1
        try:
            if hasattr(llm, "complete_json"):
                doc = llm.complete_json(messages, _QA_SCHEMA, timeout=timeout)
            else:
                doc = json.loads(llm.complete_text(messages, timeout=timeout))
        except Exception:  # a model that fails on one passage does not stop the batch
            counts["failed"] += 1
            continue
        pairs = (doc or {}).get("pairs", [])[:per_chunk]
        kept, _ = split_grounded(pairs, text)
        counts["proposed"] += len(pairs)
        counts["kept"] += len(kept)
        rows += [{"question": q, "answer": a, "kind": "llm", "source": n.metadata.get("source", ""),
                  "chunk_id": n.node_id, "passage": text} for q, a in kept]
    return rows


def dedupe(rows: list[dict]) -> list[dict]:
    seen_q: set[str] = set()
    seen_a: set[tuple[str, str]] = set()
    out = []
    for r in rows:
        kq, ka = _norm(r["question"]), (r["chunk_id"], _norm(r["answer"]))
        if kq in seen_q or ka in seen_a:
            continue
        seen_q.add(kq)
        seen_a.add(ka)
        out.append(r)
    return out


def generate_qa(nodes: list[TextNode], llm=None, max_pairs: int | None = None,
                timeout: float | None = None) -> list[dict]:
    """De-duplicated QA pairs (``question, answer, kind, source, chunk_id, passage, answerable``)."""
    rows = llm_pairs(nodes, llm, timeout=timeout) if llm is not None else []
    rows += deterministic_pairs(nodes)
    rows = dedupe(rows)
    for r in rows:
        r["answerable"] = True
    return rows[:max_pairs] if max_pairs else rows


def write_jsonl(rows: list[dict], path: Path) -> int:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return len(rows)
