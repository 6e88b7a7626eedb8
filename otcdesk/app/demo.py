"""Embedded demo defaults for `otcdesk serve --demo`: sample institutions, simulated groups, a demo login."""
from __future__ import annotations

import secrets

from sqlmodel import select

from otcdesk.app.audit import record
from otcdesk.app.auth import upsert_user
from otcdesk.app.db import unit_of_work
from otcdesk.app.models import ChatGroup, Institution

DEMO_INSTITUTIONS = [  # name, kyc_status, can_trade, simulated groups
    ("示例资产管理有限公司", "approved", True, ["demo"]),
    ("未准入私募基金", "screening", False, ["prospect"]),
]


def seed_demo(engine) -> None:
    """Idempotently create the sample institutions and their simulated groups."""
    with unit_of_work(engine) as s:
        for name, status, can_trade, groups in DEMO_INSTITUTIONS:
            inst = s.exec(select(Institution).where(Institution.name == name)).first()
            if inst is None:
                inst = Institution(name=name, kyc_status=status, can_trade=can_trade)
                s.add(inst)
                s.flush()
                record(s, "demo-seed", "institution.create", f"institution:{inst.id}",
                       {"name": name, "kyc_status": status})
            for g in groups:
                if not s.exec(select(ChatGroup).where(ChatGroup.channel == "sim", ChatGroup.group_id == g)).first():
                    s.add(ChatGroup(channel="sim", group_id=g, institution_id=inst.id))


def demo_logins(engine) -> dict[str, str]:
    """Fresh random passwords for the demo users (printed on start in demo mode only)."""
    logins = {}
    for username, role in (("trader", "trader"), ("compliance", "compliance"), ("risk", "risk")):
        password = secrets.token_urlsafe(9)
        upsert_user(engine, username, password, role, actor="demo-seed")
        logins[username] = password
    return logins
