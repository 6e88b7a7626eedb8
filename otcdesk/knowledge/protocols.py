"""Duck-typed collaborators the knowledge package accepts (the app builds the real ones)."""
from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

from llama_index.core.schema import NodeWithScore


@runtime_checkable
class Embedder(Protocol):
    """Text embedding model, e.g. an OpenAI-compatible endpoint serving bge-m3."""

    def embed(self, texts: list[str]) -> list[list[float]]: ...


@runtime_checkable
class LLMClient(Protocol):
    """Chat completion client (see app.llm)."""

    def complete_text(self, messages: list[dict], timeout: float | None = None) -> str: ...


@runtime_checkable
class Reranker(Protocol):
    """Re-orders retrieved passages for a query (e.g. a cross-encoder); returns the new order."""

    def rerank(self, query: str, nodes: Sequence[NodeWithScore]) -> list[NodeWithScore]: ...
