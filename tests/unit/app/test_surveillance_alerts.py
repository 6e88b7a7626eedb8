"""Persisted surveillance alerts on SQLite and PostgreSQL: the repository (upsert keeps triage state, filters,
conditional moves) and `SurveillanceService.run/list/detail/triage` over a generated CSV folder."""
import pytest

from otcdesk.app.models import SurveillanceAlert
from otcdesk.app.repositories import transaction
from otcdesk.app.surveillance import SurveillanceService, alert_id
from otcdesk.workflows.surveillance.generate import GenSpec, generate
from otcdesk.workflows.surveillance.io import write_accounts, write_orders, write_trades
from otcdesk.workflows.surveillance.triage import TriageError


def alert(type_="wash_trade", accounts=("A1", "A2"), trades=("T2", "T1"), score=0.5):
    return {"type": type_, "accounts": list(accounts), "order_ids": [], "trade_ids": list(trades), "score": score,
            "evidence": {"instrument": "600000.SH"}}


def test_alert_id_is_stable_and_order_free():
    a, b = alert(), alert(accounts=("A2", "A1"), trades=("T1", "T2"), score=0.9)
    assert alert_id(a) == alert_id(b) and alert_id(a).startswith("SA") and len(alert_id(a)) == 22
    assert alert_id(a) != alert_id(alert(type_="spoofing")) != alert_id(alert(trades=("T1",)))


def test_upsert_keeps_the_triage_state_and_moves_are_version_checked(db_engine):
    first, other = alert(), alert(accounts=("A_%1", "B"), trades=("T9",), score=0.7)
    with transaction(db_engine) as tx:
        new, seen = tx.surveillance.upsert({alert_id(first): first, alert_id(other): other})
        assert sorted(new) == sorted([alert_id(first), alert_id(other)]) and seen == []
    with transaction(db_engine) as tx:
        row = tx.surveillance.get(alert_id(first))
        assert row.status == "open" and row.version == 1
        assert tx.surveillance.move(row, "investigating", "comp1", None, 1)
        stale = tx.surveillance.get(alert_id(other))
    with transaction(db_engine) as tx:
        row = tx.surveillance.get(alert_id(first))
        assert not tx.surveillance.move(row, "escalated", "comp2", "late", 1)  # version 2 now
    with transaction(db_engine) as tx:
        again = {**first, "score": 0.8, "evidence": {"instrument": "600000.SH", "trades": 3}}
        new, seen = tx.surveillance.upsert({alert_id(again): again})
        assert new == [] and seen == [alert_id(first)]
    with transaction(db_engine) as tx:
        row = tx.surveillance.get(alert_id(first))
        assert (row.status, row.version, row.updated_by, row.score, row.evidence["trades"]) == (
            "investigating", 2, "comp1", 0.8, 3)
        assert row.last_seen_at >= row.first_seen_at
        assert tx.surveillance.count() == 2
        # account lookup is exact: LIKE wildcards in an account id match only themselves
        assert [a.id for a in tx.surveillance.list(account="A_%1")] == [stale.id]
        assert tx.surveillance.list(account="A_") == [] and tx.surveillance.list(account="A") == []
        assert [a.id for a in tx.surveillance.list(account="A1", status="investigating")] == [alert_id(first)]
        assert tx.surveillance.counts() == {"wash_trade": {"investigating": 1, "open": 1}}
        # highest score first among alerts first seen together
        assert [a.score for a in tx.surveillance.list()] == [0.8, 0.7]


@pytest.fixture
def folder(tmp_path):
    g = generate(GenSpec(seed=11, accounts=200, orders=5000))
    out = tmp_path / "surv"
    out.mkdir()
    write_orders(out / "orders.csv", g.orders)
    write_trades(out / "trades.csv", g.trades)
    write_accounts(out / "accounts.csv", g.account_rows)
    return out


def test_service_run_twice_is_one_row_per_alert_with_its_status_kept(db_engine, folder):
    service = SurveillanceService(db_engine, folder)
    first = service.run("comp1")
    assert first["new"] == first["found"] > 0 and first["seen_again"] == 0 and first["by_type"]["spoofing"] >= 1
    spoof = service.list(type="spoofing")["alerts"][0]
    detail = service.detail(spoof["id"])
    assert {r["event"] for r in detail["timeline"]} >= {"new", "cancel", "fill"}
    assert all(r["lifetime_ms"] <= 5000 for r in detail["timeline"] if r["event"] == "cancel")
    service.triage(spoof["id"], "investigate", None, 1, "comp1")
    with pytest.raises(TriageError) as exc:
        service.triage(spoof["id"], "escalate", "", 2, "comp1")
    assert exc.value.code == "invalid"
    with pytest.raises(TriageError) as exc:
        service.triage(spoof["id"], "escalate", "why", 1, "comp1")
    assert exc.value.code == "conflict"
    done = service.triage(spoof["id"], "escalate", "移交调查", 2, "comp2")
    assert (done["status"], done["version"], done["note"], done["updated_by"]) == ("escalated", 3, "移交调查", "comp2")
    assert [(s["action"], s["by"], s["note"]) for s in done["steps"]] == [
        ("investigate", "comp1", None), ("escalate", "comp2", "移交调查")]

    second = service.run("comp1")
    assert second["new"] == 0 and second["seen_again"] == second["found"] == first["found"]
    assert second["total"] == first["found"]
    again = service.detail(spoof["id"])
    assert again["status"] == "escalated" and again["version"] == 3
    with transaction(db_engine) as tx:
        assert tx.session.get(SurveillanceAlert, spoof["id"]).status == "escalated"
        runs = tx.audit.entries(action="surveillance.run")
        assert [r.detail["new"] for r in runs] == [first["found"], 0] and runs[0].actor == "comp1"
        assert "path" not in runs[0].detail["source"]
