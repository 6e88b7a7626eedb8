"""Sub-commands of the `otcdesk` CLI.

Each module here defines `register(subparsers)`: it adds its parser(s) and sets
`handler=<callable(args, settings) -> dict>` via `set_defaults`. The handler
returns the one JSON document the command prints, or raises `CommandError`
for bad input (printed as `{"error", "detail"}` with a non-zero exit).
Handlers that stream JSON lines (``--jsonl``) print them themselves and return None.
"""
from __future__ import annotations

import importlib
import pkgutil


class CommandError(Exception):
    """Bad input to a command: becomes `{"error": message, "detail": detail}`, exit 2."""

    def __init__(self, message: str, detail=None):
        super().__init__(message)
        self.message = message
        self.detail = detail


def command_modules():
    """All modules in this package that define `register`, in name order."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        mod = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(mod, "register"):
            yield mod
