"""The `otcdesk` command line: one JSON document on stdout per command (see CONTRACTS.md)."""
from __future__ import annotations

import argparse
import json
import sys

from otcdesk.app.commands import CommandError, command_modules
from otcdesk.app.logs import configure_logging
from otcdesk.app.settings import load_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="otcdesk", description="OTC derivatives desk bot and agents")
    sub = parser.add_subparsers(dest="command", required=True)
    for mod in command_modules():
        mod.register(sub)
    return parser


def emit(doc) -> None:
    """Print one JSON document (UTF-8, no ASCII escaping) on stdout."""
    sys.stdout.write(json.dumps(doc, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    configure_logging("text")  # logs go to stderr; stdout carries the command's one JSON document
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed usage on stderr
        if exc.code not in (0, None):
            emit({"error": "bad arguments", "detail": " ".join(argv or sys.argv[1:])})
        return int(exc.code or 0)
    settings = load_settings()
    if settings.log_format:  # `serve` chooses its own default (json)
        configure_logging(settings.log_format)
    try:
        result = args.handler(args, settings)
    except CommandError as exc:
        emit({"error": exc.message, "detail": exc.detail})
        return 2
    except KeyboardInterrupt:
        return 130
    if result is not None:
        emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
