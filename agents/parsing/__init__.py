"""Quote-request understanding: free-text client messages → QuoteRequest dicts (see CONTRACTS.md `otcdesk parse`)."""
from __future__ import annotations

from .api import complete_followup, parse_message
from .parser import ParseResult

__all__ = ["ParseResult", "complete_followup", "parse_message"]
