"""`otcdesk parse TEXT` / `otcdesk parse --jsonl`: understand chat messages (CONTRACTS.md)."""
from __future__ import annotations

import json
import sys

from otcdesk.app.commands import CommandError


def register(subparsers) -> None:
    p = subparsers.add_parser("parse", help="parse a client chat message into quote requests")
    p.add_argument("text", nargs="?", help="the message text")
    p.add_argument("--jsonl", action="store_true", help="read one message per line from stdin, print one JSON per line")
    p.add_argument("--no-llm", action="store_true",
                   help="deterministic path only, even when OTCDESK_LLM_BASE_URL is configured")
    p.set_defaults(handler=handle)


def _llm_client(args, settings):
    if getattr(args, "no_llm", False) or not settings.llm_base_url:
        return None
    from otcdesk.app.llm import build_llm_client

    return build_llm_client(settings)


def handle(args, settings):
    from otcdesk.app.trading.templates import declare_for_command
    from otcdesk.ner import parse_message

    declare_for_command(settings)  # the names of the data directory's structure templates
    llm = _llm_client(args, settings)
    if args.jsonl:
        out = sys.stdout
        for line in sys.stdin:
            line = line.rstrip("\n")
            if line.strip().startswith("{"):
                try:  # a JSON line {"text": ...} is accepted too
                    obj = json.loads(line)
                    if isinstance(obj, dict) and isinstance(obj.get("text"), str):
                        line = obj["text"]
                except ValueError:
                    pass
            doc = parse_message(line, llm=llm).to_dict()
            out.write(json.dumps(doc, ensure_ascii=False) + "\n")
        out.flush()
        return None
    if args.text is None or not args.text.strip():
        raise CommandError("no message text", "usage: otcdesk parse TEXT | otcdesk parse --jsonl < messages.txt")
    return parse_message(args.text, llm=llm).to_dict()
