"""Embedded demo defaults for `otcdesk serve --demo`: sample institutions, simulated groups, demo logins and a
sample book of live trades (generated, labelled `demo-seed`, so the risk pages have something to show).

Institutions' `kyc_status` is a state of the onboarding machine (`workflows.kyc`): the approved sample client was
onboarded before this system (no application); the prospect has a submitted application waiting for sales review,
made as the machine makes one (an invitation, the client's `submit` step), with synthetic identifiers."""
from __future__ import annotations

import datetime as dt
import hashlib
import random
import secrets

from otcdesk.app.auth import upsert_user
from otcdesk.app.repositories import transaction

DEMO_INSTITUTIONS = [  # name, kyc_status (a workflows.kyc state), can_trade, simulated groups
    ("示例资产管理有限公司", "approved", True, ["demo"]),
    ("未准入私募基金", "sales_review", False, ["prospect"]),
]
DEMO_APPLICATIONS = {  # institution: its onboarding application's form (identifiers generated below)
    "未准入私募基金": {"legal_representative": "赵示例", "registered_capital_cny": 20_000_000.0,
                 "address": "上海市浦东新区示例路1号", "contact_name": "王示例", "contact_mobile": "13900000000",
                 "investor_category": "professional"},
}
DEMO_ACCOUNTS = {  # institution: its product accounts (资管产品/产品户), which an order names when there are several
    "示例资产管理有限公司": ["示例资管稳健1号私募证券投资基金", "示例资管进取2号私募证券投资基金"],
}


def seed_demo(engine) -> None:
    """Idempotently create the sample institutions, their simulated groups and product accounts."""
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
            if name in DEMO_APPLICATIONS and not tx.kyc.applications(institution_id=inst.id):
                _seed_application(tx, inst, DEMO_APPLICATIONS[name])
            have = {a.name for a in tx.clients.accounts(inst.id, active=False)}
            for account in DEMO_ACCOUNTS.get(name, []):
                if account not in have:
                    tx.clients.add_account(inst.id, account)
                    tx.audit.record("demo-seed", "account.create", f"institution:{inst.id}", {"account": account})


def _seed_application(tx, inst, form: dict) -> None:
    """The prospect's application as the client's first `submit` leaves it (`kyc.service.submit_first`, the
    service's own code): sales_review, under an invitation whose token nobody holds."""
    from otcdesk.app.kyc.service import submit_first
    from otcdesk.app.kyc.synthetic import synthetic_id, synthetic_uscc
    from otcdesk.app.models import KycInvitation, utcnow

    rng = random.Random(f"demo:{inst.name}")
    data = {"name": inst.name, "uscc": inst.uscc or synthetic_uscc(rng), "legal_representative_id": synthetic_id(rng),
            **form}
    now = utcnow()
    inv = KycInvitation(id="INVDEMO" + secrets.token_hex(3).upper(),
                        token_sha256=hashlib.sha256(secrets.token_bytes(32)).hexdigest(),  # nobody holds it
                        institution_name=inst.name, contact_name=form["contact_name"],
                        contact_mobile=form["contact_mobile"], created_by="demo-seed", created_at=now,
                        expires_at=now + dt.timedelta(days=14))
    tx.kyc.add_invitation(inv)
    app, _ = submit_first(tx, inv, data, inst, now, comment="demo seed")
    tx.audit.record("demo-seed", "kyc.submit", f"kyc_application:{app.id}",
                    {"from": "invited", "to": app.state, "institution_id": inst.id, "seed": True})


def demo_logins(engine) -> dict[str, str]:
    """Fresh random passwords for the demo users (printed on start in demo mode only)."""
    logins = {}
    for username, role in (("trader", "trader"), ("sales", "sales"), ("compliance", "compliance"),
                           ("risk", "risk")):
        password = secrets.token_urlsafe(9)
        upsert_user(engine, username, password, role, actor="demo-seed")
        logins[username] = password
    return logins


SAMPLE_BOOK_TRADES = 24
SAMPLE_BOOKER = "demo-seed"


def seed_sample_book(engine, valuation_date: dt.date, snapshot: dict, n: int = SAMPLE_BOOK_TRADES) -> int:
    """Once, book `n` generated live trades (`pricing_engine.book.sample_book`) for the approved sample institution
    in the `demo` group, their initial prices moved onto `snapshot`'s spots; returns how many were added."""
    from otcdesk.app.models import TradeRow
    from otcdesk.pricing_engine.book import UNDERLYINGS, sample_book

    name = DEMO_INSTITUTIONS[0][0]
    with transaction(engine) as tx:
        if tx.trades.count() or tx.clients.institution_named(name) is None:
            return 0
        trades, _ = sample_book(n, valuation_date=valuation_date)
        for t in trades:
            product = t.product.to_dict()
            code = product["underlying"]
            spot = snapshot["underlyings"].get(code, {}).get("spot")
            if spot:
                product["initial_price"] = round(product["initial_price"] * spot / UNDERLYINGS[code][0], 2)
            trade_id = f"TDEMO{t.trade_id[1:]}"
            tx.trades.add(TradeRow(
                id=trade_id, order_review_id=f"{SAMPLE_BOOKER}:{trade_id}", status="live", institution=name,
                channel="sim", chat_id="demo", sender_id="demo-client", client="示例客户", quote_id=None,
                product=product, underlying=code, structure=product["structure"], notional=t.notional,
                original_notional=t.notional, price_pct=0.0, premium_cny=0.0, execution={"type": "market"},
                booked_by=SAMPLE_BOOKER))
            tx.trades.record_step(trade_id, "book", "new", "live", SAMPLE_BOOKER, detail={"sample": True})
        tx.audit.record(SAMPLE_BOOKER, "trade.sample_book", "book", {"trades": len(trades)})
        return len(trades)


SURVEILLANCE_SPEC = {"seed": 20261120, "accounts": 300, "orders": 30_000}
SURVEILLANCE_README = """模拟数据（SIMULATED DATA）— 非真实客户、非真实委托或成交。

otcdesk serve --demo 在未设置 OTCDESK_SURVEILLANCE_DIR 时，用监察库的生成器
(otcdesk.workflows.surveillance.generate, seed {seed}, {accounts} 个账户, 约 {orders} 条委托事件)
生成本目录的 orders.csv、trades.csv、accounts.csv，并注入了幌骗、对倒与实际控制关系账户组，
供合规演示「市场监察」页面。姓名、身份证号、手机号、银行账户等均为随机合成。truth.json 是注入的标签。

Generated once by `otcdesk serve --demo` (the surveillance library's generator, seed {seed}); synthetic
accounts and order flow with injected spoofing, wash trades and control groups. Delete this folder to regenerate.
"""


def surveillance_sample(folder) -> "Path":
    """Once, write a small seeded surveillance set (orders, trades, accounts, truth, README.txt saying it is
    simulated) into `folder`; returns the folder. Kept as it is when its orders.csv exists."""
    import json
    from pathlib import Path

    from otcdesk.workflows.surveillance.generate import GenSpec, generate
    from otcdesk.workflows.surveillance.io import write_accounts, write_orders, write_trades

    folder = Path(folder)
    if (folder / "orders.csv").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    g = generate(GenSpec(**SURVEILLANCE_SPEC))
    write_accounts(folder / "accounts.csv", g.account_rows)
    write_trades(folder / "trades.csv", g.trades)
    (folder / "truth.json").write_text(json.dumps(g.truth, ensure_ascii=False), encoding="utf-8")
    (folder / "README.txt").write_text(SURVEILLANCE_README.format(**SURVEILLANCE_SPEC), encoding="utf-8")
    tmp = folder / "orders.csv.tmp"  # orders.csv last: its presence says the set is complete
    write_orders(tmp, g.orders)
    tmp.replace(folder / "orders.csv")
    return folder


def seed_surveillance(service) -> dict | None:
    """Once (while no alert is stored), run surveillance as `demo-seed` so the page has alerts to show."""
    with transaction(service.engine) as tx:
        if tx.surveillance.count():
            return None
    return service.run(SAMPLE_BOOKER)
