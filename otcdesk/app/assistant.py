"""The internal assistant's knowledge side: named knowledge bases under the data dir, shared by the console."""
from __future__ import annotations

import logging
import threading
from pathlib import Path

from otcdesk.app.settings import Settings

log = logging.getLogger(__name__)
PRODUCT_GUIDE = Path(__file__).resolve().parent / "data" / "product_guide.md"
DEMO_KB = "default"


class KnowledgeHub:
    """One `KnowledgeService` per knowledge base name, loaded once and used under a lock."""

    def __init__(self, settings: Settings, engine, llm=None, embedder=None):
        self.engine = engine
        self.root = settings.data_dir / "kb"
        self.llm, self.embedder = llm, embedder
        self.llm_timeout = settings.llm_timeout_s
        self._services: dict = {}
        self._lock = threading.Lock()

    def service(self, name: str):
        from otcdesk.knowledge.service import KnowledgeService

        with self._lock:
            if name not in self._services:
                self._services[name] = KnowledgeService(self.root, name, embedder=self.embedder, llm=self.llm,
                                                        llm_timeout=self.llm_timeout)
            return self._services[name]

    def ask(self, name: str, question: str) -> dict:
        svc = self.service(name)
        with self._lock:
            return svc.ask(question)

    def passage(self, name: str, chunk_id: str) -> dict | None:
        svc = self.service(name)
        with self._lock:
            return svc.passage(chunk_id)

    def load_product_guide(self) -> dict | None:
        """Demo mode: index the desk's product guide into the default knowledge base (no-op when unchanged)."""
        if not PRODUCT_GUIDE.exists():
            log.warning("product guide %s missing; the demo knowledge base stays empty", PRODUCT_GUIDE)
            return None
        return self.ingest(DEMO_KB, [PRODUCT_GUIDE])

    def ingest(self, name: str, paths: list[Path]) -> dict:
        """Ingest into a knowledge base; masked originals go to the vault, never into the result."""
        from otcdesk.app.vault import store_mappings

        svc = self.service(name)
        with self._lock:
            result = svc.ingest(paths)
        mappings = result.pop("mappings", [])
        if mappings:
            result["vault_stored"] = store_mappings(self.engine, name, mappings)
        return result

    def unmask(self, name: str, text: str, role: str, user: str) -> str:
        """Originals of masked tokens for roles that may see them (audited either way)."""
        from otcdesk.app.vault import unmask

        return unmask(text, role, user, self.engine, kb=name)
