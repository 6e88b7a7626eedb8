"""The internal assistant's knowledge side: named knowledge bases under the data dir, shared by the console.

A knowledge base exists once its directory does: `create` (admin) or `ingest` (the CLI, demo mode) make it;
asking or reading an unknown one raises `UnknownKnowledgeBase` and creates nothing, on disk or in memory.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path

from otcdesk.app.settings import Settings

log = logging.getLogger(__name__)
PRODUCT_GUIDE = Path(__file__).resolve().parent / "data" / "product_guide.md"
DEMO_KB = "default"


class UnknownKnowledgeBase(LookupError):
    """No knowledge base of that name (HTTP 404)."""

    def __str__(self) -> str:
        return f"no knowledge base {self.args[0]!r}"


class KnowledgeHub:
    """One `KnowledgeService` per knowledge base name, loaded once. The hub's lock guards only its table of
    services; questions run concurrently (each service answers from an immutable snapshot and serialises only
    its own ingestion)."""

    def __init__(self, settings: Settings, engine, llm=None, embedder=None):
        self.engine = engine
        self.root = settings.data_dir / "kb"
        self.llm, self.embedder = llm, embedder
        self.llm_timeout = settings.llm_timeout_s
        self.semantic = settings.kb_word_vectors  # general word vectors in every service's matching
        self._services: dict = {}
        self._lock = threading.Lock()

    def service(self, name: str, *, create: bool = False):
        """The knowledge base's service, loaded once; ValueError for an invalid name, `UnknownKnowledgeBase` for
        one that does not exist unless `create`."""
        with self._lock:
            return self._service(name, create)

    def create(self, name: str, actor: str) -> bool:
        """Make an empty knowledge base (audited); False when it exists."""
        from otcdesk.app.repositories import transaction

        with self._lock:
            if self._exists(name):
                return False
            self._service(name, create=True)
        with transaction(self.engine) as tx:
            tx.audit.record(actor, "kb.create", f"kb:{name}", {})
        return True

    def _service(self, name: str, create: bool):
        from otcdesk.knowledge.service import KnowledgeService

        if name not in self._services:
            if not self._exists(name) and not create:
                raise UnknownKnowledgeBase(name)
            self._services[name] = KnowledgeService(self.root, name, embedder=self.embedder, llm=self.llm,
                                                    llm_timeout=self.llm_timeout, semantic=self.semantic)
        return self._services[name]

    def _exists(self, name: str) -> bool:
        from otcdesk.knowledge.service import valid_kb_name

        if not valid_kb_name(name):
            raise ValueError(f"invalid knowledge base name {name!r}")
        return (self.root / name).is_dir()

    def ask(self, name: str, question: str) -> dict:
        return self.service(name).ask(question)

    def passage(self, name: str, chunk_id: str) -> dict | None:
        return self.service(name).passage(chunk_id)

    def load_product_guide(self) -> dict | None:
        """Demo mode: index the desk's product guide into the default knowledge base (no-op when unchanged)."""
        if not PRODUCT_GUIDE.exists():
            log.warning("product guide %s missing; the demo knowledge base stays empty", PRODUCT_GUIDE)
            return None
        return self.ingest(DEMO_KB, [PRODUCT_GUIDE])

    def ingest(self, name: str, paths: list[Path]) -> dict:
        """Ingest into a knowledge base; masked originals go to the vault, never into the result."""
        from otcdesk.app.vault import store_mappings

        result = self.service(name, create=True).ingest(paths)
        mappings = result.pop("mappings", [])
        if mappings:
            result["vault_stored"] = store_mappings(self.engine, name, mappings)
        return result

    def unmask(self, name: str, text: str, role: str, user: str) -> str:
        """Originals of masked tokens for roles that may see them (audited either way)."""
        from otcdesk.app.vault import unmask

        return unmask(text, role, user, self.engine, kb=name)
