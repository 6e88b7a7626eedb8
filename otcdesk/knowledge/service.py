"""`KnowledgeService`: the one entry point the app uses (ingest, ask, passage, QA generation, evaluation)."""
from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Callable, Iterable

from otcdesk.knowledge.answer import DEFAULT_THRESHOLD, Answerer
from otcdesk.knowledge.chunking import chunk_text
from otcdesk.knowledge.index import KBIndex, iter_files
from otcdesk.knowledge.masking import KINDS, PiiMasker
from otcdesk.knowledge.protocols import Embedder, LLMClient, Reranker
from otcdesk.knowledge.readers import SUPPORTED_SUFFIXES, ReadError, read_document

_KB_NAME = re.compile(r"^[A-Za-z0-9_\-\u4e00-\u9fff]{1,64}$")
Progress = Callable[[int, int, str], None]


def valid_kb_name(name: str) -> bool:
    return bool(_KB_NAME.match(name or ""))


class KnowledgeService:
    """A named knowledge base persisted under ``root / name``."""

    def __init__(self, root: Path, name: str = "default", embedder: Embedder | None = None,
                 llm: LLMClient | None = None, reranker: Reranker | None = None,
                 threshold: float = DEFAULT_THRESHOLD, llm_timeout: float | None = None):
        if not valid_kb_name(name):
            raise ValueError(f"invalid knowledge base name {name!r}")
        self.name = name
        self.root = Path(root) / name
        self.embedder, self.llm, self.reranker = embedder, llm, reranker
        self.index = KBIndex(self.root)
        self.threshold = threshold
        self.llm_timeout = llm_timeout
        self._answerer: Answerer | None = None
        self._lock = threading.RLock()

    @property
    def answerer(self) -> Answerer:
        if self._answerer is None:
            self._answerer = Answerer(self.index, llm=self.llm, embedder=self.embedder, reranker=self.reranker,
                                      threshold=self.threshold, llm_timeout=self.llm_timeout)
        return self._answerer

    # ---- ingestion ---------------------------------------------------------------------------
    def ingest(self, paths: Iterable[Path | str], progress: Progress | None = None) -> dict:
        """Read, mask, chunk and index files/folders; unreadable files are reported, the rest go on.

        A file whose name is already indexed is replaced when its content changed and skipped when
        not; identical content under another name is skipped as a duplicate.
        """
        t0 = time.perf_counter()
        files = iter_files([Path(p) for p in paths], SUPPORTED_SUFFIXES)
        masker = PiiMasker(self.index.mask_key())
        by_kind = {k: 0 for k in KINDS}
        failed: list[dict] = []
        mappings: dict[str, dict] = {}
        documents = chunks = chars = pages = 0
        replaced, unchanged, duplicates = [], [], []
        for i, path in enumerate(files):
            source = path.name
            try:
                if not path.exists():
                    raise ReadError("no such file")
                doc = read_document(path)
            except ReadError as exc:
                failed.append({"source": source, "reason": str(exc)})
            except Exception as exc:  # keep the batch going whatever one file does
                failed.append({"source": source, "reason": f"{exc.__class__.__name__}: {exc}"})
            else:
                digest = doc.id_
                known = self.index.manifest.get(source)
                dup_of = self.index.source_for_hash(digest)
                if known and known["hash"] == digest:
                    unchanged.append(source)
                    info = known
                elif dup_of and dup_of != source:
                    duplicates.append({"source": source, "duplicate_of": dup_of})
                    info = None
                else:
                    masked = masker.mask(doc.text)
                    nodes = chunk_text(masked.text, source)
                    for n in nodes:
                        n.metadata.update(format=doc.metadata["format"], pages=doc.metadata["pages"])
                    if known:
                        replaced.append(source)
                    self.index.add_source(source, digest, nodes, doc.metadata["pages"], len(doc.text),
                                          embedder=self.embedder)
                    self.index.manifest[source]["masked_by_kind"] = dict(masked.counts)
                    for m in masked.mappings:
                        mappings[m["token"]] = m
                    info = self.index.manifest[source]
                if info is not None:
                    documents += 1
                    chunks += len(info["chunk_ids"])
                    chars += info.get("chars", 0)
                    pages += info.get("pages", 0)
                    for kind, n in info.get("masked_by_kind", {}).items():
                        by_kind[kind] = by_kind.get(kind, 0) + n
            if progress:
                progress(i + 1, len(files), source)
        self.index.persist()
        self._answerer = None
        elapsed = time.perf_counter() - t0
        return {
            "kb": self.name,
            "documents": documents,
            "chunks": chunks,
            "masked": sum(by_kind.values()),
            "masked_by_kind": by_kind,
            "failed": failed,
            "replaced": replaced,
            "unchanged": unchanged,
            "duplicates": duplicates,
            "mappings": list(mappings.values()),
            "chars": chars,
            "pages": pages,
            "elapsed_s": round(elapsed, 3),
            "kb_documents": len(self.index.manifest),
            "kb_chunks": sum(len(v["chunk_ids"]) for v in self.index.manifest.values()),
        }

    def stats(self) -> dict:
        return {
            "kb": self.name,
            "documents": len(self.index.manifest),
            "chunks": sum(len(v["chunk_ids"]) for v in self.index.manifest.values()),
            "sources": sorted(self.index.manifest),
        }

    # ---- questions ---------------------------------------------------------------------------
    def ask(self, question: str, k: int = 5) -> dict:
        """Answer from this knowledge base: ``{"answer", "refused", "citations": [{source, text, score}]}``."""
        t0 = time.perf_counter()
        with self._lock:  # the answerer keeps per-question state
            result = self.answerer.ask(question, k=k)
        result["kb"] = self.name
        result["latency_ms"] = round((time.perf_counter() - t0) * 1000, 2)
        return result

    def retrieve(self, question: str, k: int = 5) -> list[dict]:
        """Ranked passages without answering (for the console and the evaluation)."""
        hits = self.index.hybrid(question, k=k, embedder=self.embedder, reranker=self.reranker)
        return [Answerer._cite(h) for h in hits]

    def passage(self, chunk_id: str) -> dict | None:
        """One stored passage with its neighbours' ids (to open the source passage in the console)."""
        node = self.index.node(chunk_id)
        if node is None:
            return None
        src = node.metadata.get("source", "")
        ids = self.index.manifest.get(src, {}).get("chunk_ids", [])
        pos = ids.index(chunk_id) if chunk_id in ids else -1
        return {
            "chunk_id": chunk_id,
            "source": src,
            "heading": node.metadata.get("heading", ""),
            "position": node.metadata.get("position"),
            "text": node.get_content(),
            "prev": ids[pos - 1] if pos > 0 else None,
            "next": ids[pos + 1] if 0 <= pos < len(ids) - 1 else None,
        }

    # ---- corpus tools ------------------------------------------------------------------------
    def generate_qa(self, max_pairs: int | None = None, use_llm: bool = True) -> list[dict]:
        from otcdesk.knowledge.qagen import generate_qa

        return generate_qa(self.index.nodes(), llm=self.llm if use_llm else None, max_pairs=max_pairs,
                           timeout=self.llm_timeout)

    def evaluate(self, qa_rows: list[dict], k: int = 5, progress: Progress | None = None) -> dict:
        from otcdesk.knowledge.evaluation import evaluate

        return evaluate(self, qa_rows, k=k, progress=progress)
