"""The surveillance API on a real server over a generated CSV folder: compliance only (401 without a session, 403
for every other role on every route), a run persisting alerts, triage with its refusals (state unchanged), a
second run finding the same alerts (one row each, status kept), and evidence without raw personal identifiers."""
import csv
import json

import pytest

from assistant_fixtures import write_surveillance_folder
from desk_fixtures import RunningDesk
from otcdesk.app.auth import upsert_user
from otcdesk.app.db import init_db, make_engine
from otcdesk.app.repositories import transaction
from otcdesk.app.server import DESK
from otcdesk.app.settings import load_settings
from otcdesk.workflows.surveillance.model import Account

USERS = {"comp1": "compliance", "trader1": "trader", "risk1": "risk", "sales1": "sales", "admin1": "admin"}
PASSWORD = "surveillance-password-1"
ROUTES = [("GET", "/api/surveillance/alerts", None), ("GET", "/api/surveillance/alerts/SA0", None),
          ("POST", "/api/surveillance/run", {}),
          ("POST", "/api/surveillance/alerts/SA0/triage", {"action": "investigate", "version": 1}),
          ("GET", "/api/surveillance/control-groups", None)]


@pytest.fixture
async def desk(tmp_path):
    folder = tmp_path / "surveillance"
    write_surveillance_folder(folder, seed=5)
    settings = load_settings(data_dir=tmp_path, DATABASE_URL=None, surveillance_dir=str(folder), risk_refresh_s=0,
                             risk_worker_process=False)
    engine = make_engine(settings.db_url)
    init_db(engine)
    for user, role in USERS.items():
        upsert_user(engine, user, PASSWORD, role=role)
    engine.dispose()
    running = await RunningDesk(settings, demo=False).start()
    running.folder = folder
    yield running
    await running.stop()


async def call(session, method, path, body=None):
    r = await session.request(method, path, json=body if body is not None or method == "GET" else {})
    return r.status, await r.json()


async def test_every_route_is_compliance_only(desk):
    async with desk.session() as anonymous:
        for method, path, body in ROUTES:
            assert (await call(anonymous, method, path, body))[0] == 401, path
    for user in ("trader1", "risk1", "sales1", "admin1"):
        async with await desk.login(user, PASSWORD) as s:
            for method, path, body in ROUTES:
                status, answer = await call(s, method, path, body)
                assert status == 403 and answer["detail"]["allowed"] == ["compliance"], (user, path)
    with transaction(desk.app[DESK].engine) as tx:
        assert tx.surveillance.count() == 0 and tx.audit.entries(action="surveillance.run") == []


async def test_run_triage_and_a_second_run(desk):
    async with await desk.login("comp1", PASSWORD) as s:
        status, empty = await call(s, "GET", "/api/surveillance/alerts")
        assert status == 200 and empty["alerts"] == [] and empty["total"] == 0 and empty["last_run"] is None
        status, run = await call(s, "POST", "/api/surveillance/run")
        assert status == 200 and run["new"] == run["found"] == run["total"] > 0 and run["by_type"]["spoofing"] >= 1

        status, listed = await call(s, "GET", "/api/surveillance/alerts?type=spoofing")
        assert status == 200 and listed["total"] == run["by_type"]["spoofing"]
        assert listed["counts"]["spoofing"] == {"open": listed["total"]}
        scores = [a["score"] for a in listed["alerts"]]
        assert scores == sorted(scores, reverse=True) and "evidence" not in listed["alerts"][0]
        spoof = listed["alerts"][0]
        status, by_account = await call(s, "GET", f"/api/surveillance/alerts?account={spoof['account']}")
        assert spoof["id"] in [a["id"] for a in by_account["alerts"]]
        assert all(spoof["account"] in a["accounts"] for a in by_account["alerts"])
        for bad in ("type=bogus", "status=closed", "limit=0", "limit=x"):
            assert (await call(s, "GET", f"/api/surveillance/alerts?{bad}"))[0] == 400, bad

        status, detail = await call(s, "GET", f"/api/surveillance/alerts/{spoof['id']}")
        assert status == 200 and detail["status"] == "open" and detail["allowed"] == ["investigate"]
        assert detail["evidence"]["orders"] and all(o["lifetime_ms"] <= 5000 for o in detail["evidence"]["orders"])
        events = {r["event"] for r in detail["timeline"]}
        assert events >= {"new", "cancel", "fill"}
        fills = {(r["order_id"], r["side"]) for r in detail["timeline"] if r["event"] == "fill"}
        opposite = {"B": "S", "S": "B"}
        assert all((f["order_id"], opposite[o["side"]]) in fills
                   for o in detail["evidence"]["orders"] for f in o["opposite_fills"])
        assert (await call(s, "GET", "/api/surveillance/alerts/SA_NOPE"))[0] == 404

        path = f"/api/surveillance/alerts/{spoof['id']}/triage"
        refusals = [({"action": "escalate", "note": "x", "version": 1}, 409),  # open cannot escalate
                    ({"action": "close", "version": 1}, 422),
                    ({"action": "investigate"}, 422),  # no version
                    ({"action": "investigate", "version": 7}, 409)]  # stale version
        for body, code in refusals:
            status, answer = await call(s, "POST", path, body)
            assert status == code and answer["error"], body
        assert (await call(s, "POST", "/api/surveillance/alerts/SA_NOPE/triage",
                           {"action": "investigate", "version": 1}))[0] == 404
        assert (await call(s, "GET", f"/api/surveillance/alerts/{spoof['id']}"))[1]["version"] == 1  # unchanged

        status, moved = await call(s, "POST", path, {"action": "investigate", "version": 1})
        assert status == 200 and moved["status"] == "investigating" and moved["version"] == 2
        status, answer = await call(s, "POST", path, {"action": "dismiss", "note": "  ", "version": 2})
        assert status == 422 and "note" in answer["error"]
        note = "反向成交吻合，持有人身份证 110101199003074258、手机 13812345678 与对手方相同，移交调查"
        status, done = await call(s, "POST", path, {"action": "escalate", "note": note, "version": 2})
        assert status == 200 and done["status"] == "escalated" and done["allowed"] == []
        assert [(st["action"], st["by"], st["to"]) for st in done["steps"]] == [
            ("investigate", "comp1", "investigating"), ("escalate", "comp1", "escalated")]
        with transaction(desk.app[DESK].engine) as tx:  # the audit log keeps the why, not the personal data
            audited = json.dumps([e.detail for e in tx.audit.entries(action="surveillance.triage")], ensure_ascii=False)
        assert "移交调查" in audited and "110101199003074258" not in audited and "13812345678" not in audited
        assert "110101199003074258" not in done["steps"][-1]["note"]

        status, again = await call(s, "POST", "/api/surveillance/run")
        assert status == 200 and again["new"] == 0 and again["seen_again"] == again["total"] == run["found"]
        status, after = await call(s, "GET", f"/api/surveillance/alerts/{spoof['id']}")
        assert after["status"] == "escalated" and after["note"] == note  # the case file itself keeps it
        status, listed = await call(s, "GET", "/api/surveillance/alerts?status=escalated")
        assert [a["id"] for a in listed["alerts"]] == [spoof["id"]]

        status, groups = await call(s, "GET", "/api/surveillance/control-groups")
        assert status == 200 and len(groups["groups"]) == run["by_type"]["control_group"]
        assert all(len(g["accounts"]) >= 2 and g["links"] for g in groups["groups"])
        # no raw identifier reaches compliance's screens: only the masked forms the library writes
        raw = set()
        with (desk.folder / "accounts.csv").open(encoding="utf-8") as f:
            for row in csv.DictReader(f):
                acc = Account.of(**row)
                raw |= {v for v in (acc.id_number, acc.mobile, acc.bank_account) if v}
        texts = [json.dumps(groups, ensure_ascii=False)]
        for a in (await call(s, "GET", "/api/surveillance/alerts?limit=1000"))[1]["alerts"]:
            texts.append(json.dumps((await call(s, "GET", f"/api/surveillance/alerts/{a['id']}"))[1],
                                    ensure_ascii=False))
        assert raw and not [v for v in raw if any(v in t for t in texts)]
        assert any("*" in link["value"] for g in groups["groups"] for link in g["links"])


async def test_demo_mode_generates_a_labelled_sample_once_and_shows_its_alerts(tmp_path):
    settings = load_settings(data_dir=tmp_path, DATABASE_URL=None, risk_refresh_s=0, risk_worker_process=False)
    assert settings.surveillance_dir is None
    engine = make_engine(settings.db_url)
    init_db(engine)
    upsert_user(engine, "comp1", PASSWORD, role="compliance")
    engine.dispose()
    running = await RunningDesk(settings, demo=True).start()
    try:
        folder = tmp_path / "surveillance_demo"
        assert sorted(p.name for p in folder.iterdir()) == ["README.txt", "accounts.csv", "orders.csv", "trades.csv",
                                                            "truth.json"]
        assert "模拟数据" in (folder / "README.txt").read_text(encoding="utf-8")
        stamp = (folder / "orders.csv").stat().st_mtime_ns
        async with await running.login("comp1", PASSWORD) as s:
            status, listed = await call(s, "GET", "/api/surveillance/alerts")
            assert status == 200 and {a["type"] for a in listed["alerts"]} == {"spoofing", "wash_trade",
                                                                              "control_group"}
        await running.restart()  # neither generated nor run again
        assert (folder / "orders.csv").stat().st_mtime_ns == stamp
        with transaction(running.app[DESK].engine) as tx:
            runs = tx.audit.entries(action="surveillance.run")
            assert [r.actor for r in runs] == ["demo-seed"] and tx.surveillance.count() == listed["total"]
    finally:
        await running.stop()
