"""Helpers for the assistant's tests: a desk with a small live book, a risk snapshot, the product guide in the
knowledge base, a surveillance folder with generated order flow (spoofing and wash trades injected), and the
contract's role table written out as the tests' reference (not imported from the code under test)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from otcdesk.app.assistant import KnowledgeHub
from otcdesk.app.demo import seed_sample_book
from otcdesk.app.repositories import transaction

DATA = Path(__file__).parent / "data"
INSTITUTION = "示例资产管理有限公司"

# CONTRACTS.md Part 2, "The internal assistant"
CONTRACT_ROLES = {
    "kb_search": {"trader", "sales", "risk", "compliance", "admin"},
    "price": {"trader", "sales", "risk"},
    "kyc_status": {"sales", "compliance", "risk"},
    "book_exposure": {"trader", "risk"},
    "trade_lookup": {"trader", "risk", "compliance"},
    "surveillance_alerts": {"compliance"},
}
ROLES = ("trader", "sales", "risk", "compliance", "admin")

# one question per tool, each of which the deterministic router sends to that tool
QUESTIONS = {
    "kb_search": "雪球的敲入是怎么观察的？",
    "price": "沪深300 3个月 平值看涨 试算一下",
    "kyc_status": "示例资产管理的KYC状态",
    "book_exposure": "中证500的敞口多少",
    "trade_lookup": "查一下示例资产管理的交易",
    "surveillance_alerts": "有没有幌骗预警",
}


def injection_set() -> list[dict]:
    return [json.loads(line) for line in (DATA / "assistant_injection.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()]


def write_surveillance_folder(folder: Path, seed: int = 3) -> dict:
    """Generated orders/trades/accounts CSVs (the contract's columns) with injected manipulation; the truth."""
    from otcdesk.workflows.surveillance.generate import GenSpec, generate
    from otcdesk.workflows.surveillance.io import write_accounts, write_orders, write_trades

    folder.mkdir(parents=True, exist_ok=True)
    g = generate(GenSpec(seed=seed, accounts=200, orders=4000))
    write_orders(folder / "orders.csv", g.orders)
    write_trades(folder / "trades.csv", g.trades)
    write_accounts(folder / "accounts.csv", g.account_rows)
    return g.truth


@dataclass
class World:
    desk: object
    hub: KnowledgeHub
    settings: object

    @property
    def engine(self):
        return self.desk.engine


def build_world(make_desk_core, tmp_path: Path, *, passages: list[dict] = ()) -> World:
    """The desk core (SQLite) with six live sample trades revalued into a snapshot, the product guide (and any
    `passages`, as documents of their own) in the `default` knowledge base, and a surveillance folder."""
    folder = tmp_path / "surveillance"
    write_surveillance_folder(folder)
    desk = make_desk_core(risk_worker_process=False, surveillance_dir=str(folder))
    seed_sample_book(desk.engine, desk.clock.today(), desk.market.latest(), n=6)
    desk.risk.refresh("test")
    hub = KnowledgeHub(desk_settings_of(tmp_path, folder), desk.engine)
    hub.load_product_guide()
    docs = []
    for p in passages:
        doc = tmp_path / f"{p['id']}.md"
        doc.write_text(p["text"], encoding="utf-8")
        docs.append(doc)
    if docs:
        hub.ingest("default", docs)
    return World(desk=desk, hub=hub, settings=desk_settings_of(tmp_path, folder))


def desk_settings_of(tmp_path: Path, folder: Path):
    from otcdesk.app.settings import load_settings

    return load_settings(data_dir=tmp_path, DATABASE_URL=None, risk_worker_process=False, surveillance_dir=str(folder))


def tool_audit(engine) -> list[dict]:
    """The `assistant.tool` audit entries, oldest first: {"actor", "tool", "role", "allowed", "args", "reason"}."""
    with transaction(engine) as tx:
        rows = tx.audit.entries(action="assistant.tool", limit=10_000)
        out = [{"actor": r.actor, "tool": r.subject.removeprefix("tool:"), "id": r.id, **r.detail} for r in rows]
    return sorted(out, key=lambda r: r["id"])
