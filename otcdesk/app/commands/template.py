"""`otcdesk template check FILE`: check a structure template before it is dropped into `$OTCDESK_DATA_DIR/templates/`
or uploaded (CONTRACTS.md "Structure templates").

Prints `{"structure", "valid": true, "names": [...], "engines": {"<engine>": {"price_pct", "stderr"}}}`: the
template's defaults (tenor 12M) priced on the demo market (the checked-in snapshot of 000905.SH, flat vol) by
every engine that supports its blocks (`stderr`: of the price, as in `otcdesk price`; null but for Monte Carlo).
Exits non-zero with `{"error", "detail": {"fields": {"<field>": "reason"}}}` when the file is refused: the checks
of an upload (`trading.templates.check`) against the parser's words and the templates this data directory holds,
and a required parameter without a default, which leaves nothing to price.
"""
from __future__ import annotations

from pathlib import Path

from otcdesk.app.commands import CommandError


def register(subparsers) -> None:
    p = subparsers.add_parser("template", help="structure templates")
    sub = p.add_subparsers(dest="template_command", required=True)
    c = sub.add_parser("check", help="validate a template file and price its defaults with every engine")
    c.add_argument("file")
    c.set_defaults(handler=check_file)


def check_file(args, settings) -> dict:
    from otcdesk.app.trading.templates import check, declare_for_command, read_template_file
    from otcdesk.pricing_engine.templates.validate import TemplateError, missing_defaults, price_defaults

    path = Path(args.file)
    if not path.is_file():
        raise CommandError(f"no template file {args.file}", {"fields": {"file": "does not exist"}})
    try:
        doc = read_template_file(path)
        declare_for_command(settings)
        from otcdesk.ner.structures import DECLARED

        t, engines = check(doc, replaceable={e.structure for e in DECLARED.entries()})
        if missing_defaults(t):
            price_defaults(t, {}, "")  # raises: names the required parameters without a default
    except TemplateError as exc:
        raise CommandError(exc.message, exc.detail) from None
    return {"structure": t.structure, "valid": True, "names": list(t.names), "engines": engines}
