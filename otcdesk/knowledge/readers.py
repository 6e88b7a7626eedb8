"""Readers for txt, md, html, pdf (text layer) and docx into llama-index `Document`s.

Tables become text rows (cells joined by tabs) so that a row's label and its value stay
together; HTML fragments embedded in text files (``<p>``, ``<li>``) are flattened to lines.
"""
from __future__ import annotations

import hashlib
import html as html_lib
import re
from pathlib import Path

from llama_index.core.schema import Document

SUPPORTED_SUFFIXES = {".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx"}


class ReadError(Exception):
    """A file that cannot be read; the message says why."""


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _decode(data: bytes) -> str:
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    raise ReadError("not valid UTF-8 or GB18030 text")


_BLOCK_TAGS = re.compile(r"</?(?:p|br|li|ol|ul|div|tr|h[1-6]|table|section|article)\b[^>]*>", re.I)
_CELL_TAGS = re.compile(r"</?(?:td|th)\b[^>]*>", re.I)
_ANY_TAG = re.compile(r"<[^>]{1,300}>")


def flatten_inline_html(text: str) -> str:
    """Turn HTML fragments inside plain text into lines; checkboxes keep their state as ☑/☐."""
    if "<" not in text:
        return text
    text = re.sub(r"<input[^>]*checked[^>]*>", "☑", text, flags=re.I)
    text = re.sub(r"<input[^>]*>", "☐", text, flags=re.I)
    text = _BLOCK_TAGS.sub("\n", text)
    text = _CELL_TAGS.sub("\t", text)
    text = _ANY_TAG.sub("", text)
    return html_lib.unescape(text)


def read_text(path: Path) -> str:
    return flatten_inline_html(_decode(path.read_bytes()))


def read_html(path: Path) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(_decode(path.read_bytes()), "html.parser")
    for tag in soup(["script", "style", "noscript"]):
        tag.decompose()
    lines: list[str] = []
    title = soup.title.get_text(strip=True) if soup.title else ""
    body = soup.body or soup
    for el in body.find_all(["h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "tr", "pre", "blockquote", "dt", "dd"]):
        if el.name == "tr":
            cells = [c.get_text(" ", strip=True) for c in el.find_all(["td", "th"])]
            line = "\t".join(c for c in cells if c)
        elif el.find_parent(["tr", "li", "p"]) is not None and el.name in ("p", "li"):
            continue
        else:
            line = el.get_text(" ", strip=True)
            if el.name.startswith("h") and len(el.name) == 2:
                line = "#" * int(el.name[1]) + " " + line
        if line:
            lines.append(line)
    if not lines:
        lines = [body.get_text("\n", strip=True)]
    if title and (not lines or title not in lines[0]):
        lines.insert(0, "# " + title)
    return "\n".join(lines)


def read_pdf(path: Path) -> tuple[str, int]:
    from pypdf import PdfReader

    try:
        reader = PdfReader(str(path))
        pages = [page.extract_text() or "" for page in reader.pages]
    except Exception as exc:  # pypdf raises many types for damaged files
        raise ReadError(f"unreadable PDF: {exc.__class__.__name__}: {exc}") from exc
    text = "\n\n".join(p.strip() for p in pages)
    if not text.strip():
        raise ReadError("PDF has no text layer (scanned image?)")
    return text, len(pages)


def read_docx(path: Path) -> str:
    import docx
    from docx.document import Document as DocxDocument
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        d: DocxDocument = docx.Document(str(path))
    except Exception as exc:
        raise ReadError(f"unreadable DOCX: {exc.__class__.__name__}: {exc}") from exc
    lines: list[str] = []
    for child in d.element.body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            para = Paragraph(child, d)
            text = para.text.strip()
            if not text:
                continue
            style = (para.style.name or "").lower() if para.style is not None else ""
            m = re.match(r"heading (\d)", style)
            if m or style == "title":
                text = "#" * (int(m.group(1)) if m else 1) + " " + text
            lines.append(text)
        elif tag == "tbl":
            for row in Table(child, d).rows:
                cells: list[str] = []
                for cell in row.cells:
                    ct = cell.text.strip().replace("\n", " ")
                    if ct and (not cells or cells[-1] != ct):  # merged cells repeat
                        cells.append(ct)
                if cells:
                    lines.append("\t".join(cells))
    return "\n".join(lines)


def read_document(path: Path) -> Document:
    """Read one file into a `Document` with source, format, pages and content hash metadata."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ReadError(f"unsupported file type {suffix or '(none)'}")
    if not path.is_file():
        raise ReadError("not a readable file")
    pages = None
    if suffix in (".txt", ".md", ".markdown"):
        text = read_text(path)
    elif suffix in (".html", ".htm"):
        text = read_html(path)
    elif suffix == ".pdf":
        text, pages = read_pdf(path)
    else:
        text = read_docx(path)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u3000", " ")
    if not text.strip():
        raise ReadError("file has no text")
    meta = {"source": path.name, "path": str(path.resolve()), "format": suffix.lstrip("."), "pages": pages or 1}
    return Document(text=text, metadata=meta, id_=content_hash(text))
