"""Chinese-aware chunking: sentence boundaries 。！？；, table rows and headings kept with their text.

Each chunk is a llama-index `TextNode` whose metadata carries ``source``, ``position`` (chunk
order in its document), ``char_start`` and ``heading`` (the heading path, " > " joined).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

from llama_index.core.schema import BaseNode, Document, TextNode, TransformComponent

from otcdesk.knowledge.text import SENTENCE_END, split_sentences

_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*$")
_CN_SECTION = re.compile(r"^[一二三四五六七八九十]+\s*[、.．]\s*\S.{0,40}$")
_CN_SUBSECTION = re.compile(r"^[（(][一二三四五六七八九十]+[)）]\s*\S.{0,40}$")
_NUM_LABEL = re.compile(r"^\*?\d+(?:\.\d+){1,3}\s*\S.{0,50}$")
_NUM_HEADING = re.compile(r"^\d+[、.．]\s*\S.{0,30}$")


@dataclass
class _Unit:
    text: str
    heading: tuple[str, ...]
    start: int
    levels: tuple[int, ...] = ()
    is_heading: bool = False
    row: bool = False

    def upto(self, level: int) -> tuple[str, ...]:
        return tuple(t for lv, t in zip(self.levels, self.heading) if lv <= level)


def _heading_level(line: str, md_shift: int = 0) -> tuple[int, str] | None:
    s = line.strip()
    m = _MD_HEADING.match(s)
    if m:
        return max(0, len(m.group(1)) - md_shift), m.group(2).strip()
    if any(p in s for p in SENTENCE_END) or len(s) > 45:
        return None
    if _CN_SECTION.match(s):
        return 1, s
    if _NUM_LABEL.match(s):
        depth = len(re.match(r"^\*?(\d+(?:\.\d+)*)", s).group(1).split("."))
        return min(depth, 4), s
    if _CN_SUBSECTION.match(s):
        return 4, s
    if _NUM_HEADING.match(s) and not s.endswith(("，", ",", "：", ":")):
        return 4, s
    return None


def _join_broken_lines(lines: list[str]) -> list[str]:
    """Re-join paragraphs a page break cut mid-sentence (a long line without end punctuation)."""
    out: list[str] = []
    for line in lines:
        s = line.strip("\t ")
        if (
            out
            and s
            and "\t" not in line.strip()
            and len(out[-1]) > 60
            and not out[-1].rstrip().endswith(tuple(SENTENCE_END + "：:>"))
            and re.match(r"[\u4e00-\u9fff，、）)]", s)
        ):
            out[-1] = out[-1].rstrip() + s
        else:
            out.append(line)
    return out


def _units(text: str) -> list[_Unit]:
    """Lines → units (paragraph sentences or table rows), each with its heading path."""
    heading: list[tuple[int, str]] = []
    units: list[_Unit] = []
    pos = 0
    raw_lines = text.split("\n")
    # a single top-level markdown heading is the document title: its sections are the next level down
    md_levels = [len(m.group(1)) for m in (_MD_HEADING.match(x.strip()) for x in raw_lines) if m]
    md_shift = 1 if md_levels.count(1) == 1 and len(md_levels) > 1 else 0
    for line in _join_broken_lines(raw_lines):
        start = pos
        pos += len(line) + 1
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split("\t") if c.strip()]
        n_cells = len(cells)
        # leading cells that are headings (一、项目概览 | 1.2 项目名称 | value)
        while cells:
            h = _heading_level(cells[0], md_shift)
            if h is None:
                break
            level, title = h
            if len(cells) == 1 and level >= 3 and len(title) > 20 and not _MD_HEADING.match(cells[0]):
                break
            heading = [x for x in heading if x[0] < level] + [(level, title)]
            cells = cells[1:]
        path = tuple(t for _, t in heading)
        levels = tuple(lv for lv, _ in heading)
        if not cells:
            # a standalone minor heading ("4、上线阶段（2021年8月至2021年10月）") often carries facts
            if heading and heading[-1][0] >= 3 and line.strip() == heading[-1][1]:
                units.append(_Unit(heading[-1][1], path, start, levels, is_heading=True))
            elif heading and line.strip() == heading[-1][1] and re.search(r"[：:]\s*\S", line):
                # a form row on its own line ("1.1 编号：HZ-2023-07") holds its value: keep it as text
                units.append(_Unit(heading[-1][1], path, start, levels, row=True, is_heading=True))
            continue
        is_row = n_cells > len(cells) or len(cells) > 1  # a label cell and its value, or a table row
        if len(cells) > 1:
            units.append(_Unit(" | ".join(cells), path, start, levels, row=True))
            continue
        body = cells[0]
        for sent in split_sentences(body):
            units.append(_Unit(sent, path, start, levels, row=is_row))
    return units


def chunk_text(text: str, source: str, max_chars: int = 360) -> list[TextNode]:
    """Split one document's text into chunks that end at sentence or row ends.

    A chunk never crosses a top-level section; consecutive short table rows of one section are
    kept together (each row with its label, "1.1 编号：AB-2024-01"), prose starts a new chunk
    at each second-level heading. The chunk's ``heading`` metadata is the heading path its units share.
    """
    nodes: list[TextNode] = []
    buf: list[_Unit] = []

    def flush():
        if not buf:
            return
        common: list[str] = []
        for parts in zip(*(u.heading for u in buf)):
            if all(p == parts[0] for p in parts):
                common.append(parts[0])
            else:
                break
        pieces: list[str] = []
        prev_extra: tuple[str, ...] | None = None
        for u in buf:
            extra = u.heading[len(common):]
            txt = u.text
            if u.is_heading:
                if pieces and not pieces[-1].endswith("\n"):
                    pieces.append("\n")
            elif extra and extra != prev_extra:
                if pieces and not pieces[-1].endswith("\n"):
                    pieces.append("\n")
                txt = f"{extra[-1]}：{txt}"
            prev_extra = extra
            pieces.append(txt if txt.endswith(tuple(SENTENCE_END)) else txt + "\n")
        body = "".join(pieces).strip()
        nodes.append(
            TextNode(
                text=body,
                metadata={"source": source, "position": len(nodes), "char_start": buf[0].start,
                          "heading": " > ".join(common), "section": " > ".join(buf[0].upto(2))},
                excluded_embed_metadata_keys=["position", "char_start", "section"],
                excluded_llm_metadata_keys=["position", "char_start", "section"],
            )
        )
        buf.clear()

    for unit in _units(text):
        if buf:
            size = sum(len(u.text) for u in buf)
            rows_only = unit.row and all(u.row for u in buf)
            prose = len(unit.text) > 60 or any(len(u.text) > 60 for u in buf) or not rows_only
            if (
                size + len(unit.text) > max_chars
                or unit.upto(1) != buf[0].upto(1)
                or (unit.upto(2) != buf[-1].upto(2) and prose)
            ):
                flush()
        buf.append(unit)
    flush()
    return nodes


class ChineseChunker(TransformComponent):
    """llama-index transform: Documents → chunk `TextNode`s (see `chunk_text`)."""

    max_chars: int = 360

    def __call__(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[BaseNode]:
        out: list[BaseNode] = []
        for doc in nodes:
            source = doc.metadata.get("source", doc.node_id)
            chunks = chunk_text(doc.get_content(), source, max_chars=self.max_chars)
            for c in chunks:
                c.metadata.update({k: v for k, v in doc.metadata.items() if k in ("format", "pages")})
                if isinstance(doc, Document):
                    c.relationships = {}
            out.extend(chunks)
        return out
