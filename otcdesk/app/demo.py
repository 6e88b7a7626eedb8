"""Embedded demo defaults for `otcdesk serve --demo`: sample institutions, simulated groups, a demo login."""
from __future__ import annotations

import secrets

from otcdesk.app.auth import upsert_user
from otcdesk.app.repositories import transaction

DEMO_INSTITUTIONS = [  # name, kyc_status, can_trade, simulated groups
    ("示例资产管理有限公司", "approved", True, ["demo"]),
    ("未准入私募基金", "screening", False, ["prospect"]),
]


def seed_demo(engine) -> None:
    """Idempotently create the sample institutions and their simulated groups."""
    with transaction(engine) as tx:
        for name, status, can_trade, groups in DEMO_INSTITUTIONS:
            inst = tx.clients.institution_named(name)
            if inst is None:
                inst = tx.clients.add_institution(name, status, can_trade)
                tx.audit.record("demo-seed", "institution.create", f"institution:{inst.id}",
                                {"name": name, "kyc_status": status})
            for g in groups:
                if tx.clients.group("sim", g) is None:
                    tx.clients.add_group("sim", g, inst.id)


def demo_logins(engine) -> dict[str, str]:
    """Fresh random passwords for the demo users (printed on start in demo mode only)."""
    logins = {}
    for username, role in (("trader", "trader"), ("compliance", "compliance"), ("risk", "risk")):
        password = secrets.token_urlsafe(9)
        upsert_user(engine, username, password, role, actor="demo-seed")
        logins[username] = password
    return logins
