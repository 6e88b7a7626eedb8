"""`KnowledgeService`: the one entry point the app uses (ingest, ask, passage, QA generation, evaluation)."""
from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Callable, Iterable

from otcdesk.knowledge.chunking import chunk_text
from otcdesk.knowledge.index import KBIndex, iter_files
from otcdesk.knowledge.masking import KINDS, PiiMasker
from otcdesk.knowledge.pipeline import AnswerPipeline, Snapshot, cite
from otcdesk.knowledge.protocols import Embedder, LLMClient, Reranker
from otcdesk.knowledge.semantic import WordVectors
from otcdesk.knowledge.readers import SUPPORTED_SUFFIXES, ReadError, read_document
from otcdesk.knowledge.vocabulary import Vocabulary, learn_vocabulary

_KB_NAME = re.compile(r"^[A-Za-z0-9_\-\u4e00-\u9fff]{1,64}$")
Progress = Callable[[int, int, str], None]


def valid_kb_name(name: str) -> bool:
    return bool(_KB_NAME.match(name or ""))


class KnowledgeService:
    """A named knowledge base persisted under ``root / name``.

    Questions read an immutable `Snapshot` (built once, swapped after each ingestion) through a stateless
    `AnswerPipeline`, so concurrent questions never wait for each other, LLM calls included; the lock serialises
    only ingestion and the snapshot's first build.
    """

    def __init__(self, root: Path, name: str = "default", embedder: Embedder | None = None,
                 llm: LLMClient | None = None, reranker: Reranker | None = None,
                 threshold: float | None = None, llm_timeout: float | None = None, llm_judge: bool = False,
                 semantic: bool = False):
        if not valid_kb_name(name):
            raise ValueError(f"invalid knowledge base name {name!r}")
        self.name = name
        self.root = Path(root) / name
        self.embedder, self.llm, self.reranker = embedder, llm, reranker
        self.index = KBIndex(self.root)
        self.threshold = threshold
        self.llm_timeout = llm_timeout
        self.pipeline = AnswerPipeline(embedder=embedder, llm=llm, threshold=threshold, llm_timeout=llm_timeout,
                                       judge=llm_judge)
        self._snapshot: Snapshot | None = None
        self._lock = threading.RLock()
        self.semantic = semantic

    @property
    def word_vectors(self) -> WordVectors | None:
        """General Chinese word vectors (`knowledge.semantic`) when installed and not switched off."""
        return WordVectors.load() if self.semantic else None

    @property
    def vocab_path(self) -> Path:
        return self.root / "vocab.json"

    def snapshot(self) -> Snapshot:
        """The read state questions use; built on first use and after each ingestion."""
        snap = self._snapshot
        if snap is None:
            with self._lock:
                if self._snapshot is None:
                    vocab = Vocabulary.load(self.vocab_path)
                    if not self.vocab_path.exists() and self.index.manifest:
                        vocab = learn_vocabulary(self.index.nodes())  # an index from before vocabularies
                    self._snapshot = Snapshot(self.index, vocab, self.word_vectors)
                snap = self._snapshot
        return snap

    # ---- ingestion ---------------------------------------------------------------------------
    def ingest(self, paths: Iterable[Path | str], progress: Progress | None = None) -> dict:
        """Read, mask, chunk and index files/folders; unreadable files are reported, the rest go on.

        A file whose name is already indexed is replaced when its content changed and skipped when
        not; identical content under another name is skipped as a duplicate.
        """
        with self._lock:
            return self._ingest(paths, progress)

    def _ingest(self, paths: Iterable[Path | str], progress: Progress | None) -> dict:
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
        vocab = learn_vocabulary(self.index.nodes())
        vocab.save(self.vocab_path)
        self._snapshot = Snapshot(self.index, vocab, self.word_vectors)
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
        result = self.pipeline.run(question, self.snapshot(), k=k)
        result["kb"] = self.name
        result["latency_ms"] = round((time.perf_counter() - t0) * 1000, 2)
        return result

    def retrieve(self, question: str, k: int = 5) -> list[dict]:
        """Ranked passages without answering (for the console and the evaluation)."""
        snap = self.snapshot()
        _, ranked = self.pipeline.evidence(question, snap)
        return [cite(snap, ev.chunk_id, ev.coverage) for ev in ranked[:k]]

    def passage(self, chunk_id: str) -> dict | None:
        """One stored passage with its neighbours' ids (to open the source passage in the console)."""
        snap = self.snapshot()
        node = snap.nodes.get(chunk_id)
        if node is None:
            return None
        src = node.metadata.get("source", "")
        ids = snap.doc_ids.get(src, [])
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

        return generate_qa(list(self.snapshot().nodes.values()), llm=self.llm if use_llm else None, max_pairs=max_pairs,
                           timeout=self.llm_timeout)

    def evaluate(self, qa_rows: list[dict], k: int = 5, progress: Progress | None = None) -> dict:
        from otcdesk.knowledge.evaluation import evaluate

        return evaluate(self, qa_rows, k=k, progress=progress)
