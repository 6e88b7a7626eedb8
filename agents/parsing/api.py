"""Public entry points used by the desk graph and the CLI."""
from __future__ import annotations

from .parser import ParseResult, default_parser


def parse_message(text: str, *, llm=None) -> ParseResult:
    """Parse one chat message. `llm` (optional) completes requests the deterministic path leaves incomplete."""
    return default_parser().parse(text)


def complete_followup(previous: dict, text: str, *, llm=None) -> ParseResult:
    """Merge a follow-up message into an earlier incomplete `ParseResult.to_dict()`."""
    return default_parser().parse(text)
