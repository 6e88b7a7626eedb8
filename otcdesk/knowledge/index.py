"""A persistent, named knowledge-base index: chunk store, BM25 over jieba tokens, optional dense vectors.

Layout under ``root/``: ``docstore.json`` (llama-index `SimpleDocumentStore` with the chunk
nodes), ``manifest.json`` (source → content hash, chunk ids, pages, chars), ``tokens.json``
(cached BM25 tokens per chunk), ``vectors.npy`` + ``vector_ids.json`` when an embedder was
used. Retrieval fuses BM25 and dense rankings by reciprocal rank, then an optional reranker.
"""
from __future__ import annotations

import json
import math
import re
import os
import secrets
from collections import Counter
from pathlib import Path
from typing import Iterable

import numpy as np
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.storage.docstore import SimpleDocumentStore

from otcdesk.knowledge.protocols import Embedder, Reranker
from otcdesk.knowledge.text import squash_cjk_spaces, tokenize

RRF_K = 60
_MASK_WORDS = {"id", "phone", "card", "email", "name"}
_HEXISH = re.compile(r"^[0-9a-f]{6,}$")
DOC_KEYWORDS = 20


def _atomic_write(path: Path, data: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(data, encoding="utf-8")
    os.replace(tmp, path)


class KBIndex:
    """Chunks of one knowledge base, persisted under a directory; BM25 built lazily from cached tokens."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        ds_path = self.root / "docstore.json"
        self.docstore = SimpleDocumentStore.from_persist_path(str(ds_path)) if ds_path.exists() else SimpleDocumentStore()
        self.manifest: dict[str, dict] = self._load_json("manifest.json", {})
        self.tokens: dict[str, list[str]] = self._load_json("tokens.json", {})
        self.vector_ids: list[str] = self._load_json("vector_ids.json", [])
        vpath = self.root / "vectors.npy"
        self.vectors = np.load(vpath) if vpath.exists() and self.vector_ids else None
        self._bm25 = None
        self._order: list[str] = []
        self._lower: dict[str, str] = {}

    # ---- persistence -------------------------------------------------------------------------
    def _load_json(self, name: str, default):
        p = self.root / name
        return json.loads(p.read_text(encoding="utf-8")) if p.exists() else default

    def mask_key(self) -> bytes:
        """Per-KB secret for masking tokens (created once, kept next to the index)."""
        p = self.root / "mask.key"
        if not p.exists():
            _atomic_write(p, secrets.token_hex(32))
        return bytes.fromhex(p.read_text().strip())

    def persist(self) -> None:
        self.docstore.persist(str(self.root / "docstore.json"))
        _atomic_write(self.root / "manifest.json", json.dumps(self.manifest, ensure_ascii=False))
        _atomic_write(self.root / "tokens.json", json.dumps(self.tokens, ensure_ascii=False))
        if self.vectors is not None and self.vector_ids:
            np.save(self.root / "vectors.npy", self.vectors)
            _atomic_write(self.root / "vector_ids.json", json.dumps(self.vector_ids))
        else:
            for name in ("vectors.npy", "vector_ids.json"):
                (self.root / name).unlink(missing_ok=True)

    # ---- content -----------------------------------------------------------------------------
    def chunk_ids(self) -> list[str]:
        ids = []
        for src in sorted(self.manifest):
            ids.extend(self.manifest[src]["chunk_ids"])
        return ids

    def node(self, chunk_id: str) -> TextNode | None:
        return self.docstore.get_node(chunk_id, raise_error=False)

    def nodes(self) -> list[TextNode]:
        return [self.docstore.get_node(cid) for cid in self.chunk_ids()]

    def source_for_hash(self, digest: str) -> str | None:
        for src, info in self.manifest.items():
            if info["hash"] == digest:
                return src
        return None

    def remove_source(self, source: str) -> int:
        info = self.manifest.pop(source, None)
        if not info:
            return 0
        for cid in info["chunk_ids"]:
            self.docstore.delete_document(cid, raise_error=False)
            self.tokens.pop(cid, None)
        if self.vectors is not None:
            keep = [i for i, cid in enumerate(self.vector_ids) if cid not in set(info["chunk_ids"])]
            self.vectors = self.vectors[keep] if keep else None
            self.vector_ids = [self.vector_ids[i] for i in keep]
        self._bm25 = None
        return len(info["chunk_ids"])

    def add_source(self, source: str, digest: str, nodes: list[TextNode], pages: int, chars: int,
                   embedder: Embedder | None = None) -> None:
        """Replace `source` with `nodes` (its chunks, already masked)."""
        self.remove_source(source)
        for i, n in enumerate(nodes):
            n.id_ = f"{digest[:16]}-{i:04d}"
        self.docstore.add_documents(nodes, allow_update=True)
        for n in nodes:
            self.tokens[n.node_id] = tokenize(self._index_text(n))
        self.manifest[source] = {
            "hash": digest, "chunk_ids": [n.node_id for n in nodes], "pages": pages, "chars": chars,
        }
        self._refresh_doc_keywords()
        if embedder is not None and nodes:
            vecs = np.asarray(embedder.embed([self._index_text(n) for n in nodes]), dtype=np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True) + 1e-12
            self.vectors = vecs if self.vectors is None else np.vstack([self.vectors, vecs])
            self.vector_ids = self.vector_ids + [n.node_id for n in nodes]
        self._bm25 = None

    @staticmethod
    def _index_text(node: TextNode) -> str:
        return f"{node.metadata.get('heading', '')}\n{node.get_content()}"

    def _refresh_doc_keywords(self) -> None:
        """Top TF-IDF words of each document, added to its chunks' BM25 tokens (document context)."""
        per_doc: dict[str, Counter] = {}
        for src, info in self.manifest.items():
            c: Counter = Counter()
            for cid in info["chunk_ids"]:
                c.update(t for t in self.tokens.get(cid, []) if len(t) >= 2 and not t.isdigit() and t not in _MASK_WORDS
                         and not _HEXISH.match(t))
            per_doc[src] = c
        n_docs = len(per_doc)
        df: Counter = Counter()
        for c in per_doc.values():
            df.update(c.keys())
        for src, c in per_doc.items():
            scored = sorted(c.items(), key=lambda kv: -kv[1] * math.log(1 + n_docs / df[kv[0]]))
            self.manifest[src]["keywords"] = [t for t, _ in scored[:DOC_KEYWORDS]]

    # ---- retrieval ---------------------------------------------------------------------------
    def _ensure_bm25(self):
        if self._bm25 is not None:
            return
        import logging

        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)
        self._order = self.chunk_ids()
        corpus = []
        for src in sorted(self.manifest):
            kws = self.manifest[src].get("keywords", [])
            for cid in self.manifest[src]["chunk_ids"]:
                corpus.append(self.tokens.get(cid, []) + kws)
        self._bm25 = bm25s.BM25(k1=1.2, b=0.75)
        if corpus:
            self._bm25.index(corpus, show_progress=False)
        self._lower = {}

    def lower_text(self, chunk_id: str) -> str:
        if chunk_id not in self._lower:
            n = self.node(chunk_id)
            self._lower[chunk_id] = squash_cjk_spaces(self._index_text(n).lower()) if n else ""
        return self._lower[chunk_id]

    def bm25_rank(self, query: str, top: int = 50) -> list[tuple[str, float]]:
        self._ensure_bm25()
        toks = [t for t in tokenize(query) if t in self._bm25.vocab_dict] if self._order else []
        if not toks:
            return []
        scores = self._bm25.get_scores(toks)
        idx = np.argsort(-scores)[:top]
        return [(self._order[i], float(scores[i])) for i in idx if scores[i] > 0]

    def dense_rank(self, query: str, embedder: Embedder, top: int = 50) -> list[tuple[str, float]]:
        if self.vectors is None or not self.vector_ids:
            return []
        q = np.asarray(embedder.embed([query])[0], dtype=np.float32)
        q /= np.linalg.norm(q) + 1e-12
        sims = self.vectors @ q
        idx = np.argsort(-sims)[:top]
        return [(self.vector_ids[i], float(sims[i])) for i in idx]

    def hybrid(self, query: str, k: int = 8, embedder: Embedder | None = None,
               reranker: Reranker | None = None) -> list[NodeWithScore]:
        """BM25 (+ dense) fused by reciprocal rank; each node's score is its BM25 score when it has one."""
        bm = self.bm25_rank(query)
        rankings = [bm]
        if embedder is not None:
            rankings.append(self.dense_rank(query, embedder))
        fused: dict[str, float] = {}
        for ranking in rankings:
            for rank, (cid, _) in enumerate(ranking):
                fused[cid] = fused.get(cid, 0.0) + 1.0 / (RRF_K + rank + 1)
        bm_score = dict(bm)
        ordered = sorted(fused, key=lambda c: -fused[c])[: max(k * 3, k)]
        out = []
        for cid in ordered:
            node = self.node(cid)
            if node is None:
                continue
            nws = NodeWithScore(node=node, score=round(bm_score.get(cid, 0.0), 4))
            out.append(nws)
        if reranker is not None and out:
            out = reranker.rerank(query, out)
        return out[:k]


class HybridRetriever(BaseRetriever):
    """llama-index retriever over a `KBIndex` (BM25 + optional dense, RRF, optional reranker)."""

    def __init__(self, index: KBIndex, k: int = 8, embedder: Embedder | None = None,
                 reranker: Reranker | None = None):
        super().__init__()
        self._index, self._k, self._embedder, self._reranker = index, k, embedder, reranker

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return self._index.hybrid(query_bundle.query_str, self._k, self._embedder, self._reranker)


def iter_files(paths: Iterable[Path], suffixes: set[str]) -> list[Path]:
    """Expand folders (recursively) into supported files; plain files are kept whatever their type."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in suffixes))
        else:
            out.append(p)
    return out
