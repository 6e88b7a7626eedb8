"""`otcdesk surveil` as an operator runs it: a real process over generated CSV files, bad files, the desk's tables."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from otcdesk.app.db import init_db, make_engine
from otcdesk.app.models import ReviewItem, TradeRow
from otcdesk.app.repositories import transaction
from otcdesk.app.settings import load_settings
from otcdesk.workflows.surveillance.evaluate import evaluate

ROOT = Path(__file__).resolve().parents[2]


def run_cli(args, data_dir):
    env = {**os.environ, "OTCDESK_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)}
    env.pop("DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "otcdesk.app.cli", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_generate_then_surveil_prints_the_contract_document(tmp_path):
    out = tmp_path / "set"
    gen = run_cli(["surveil", "generate", "--seed", "31", "--accounts", "400", "--orders", "15000", "--out", str(out)],
                  tmp_path)
    assert gen.returncode == 0, gen.stderr
    summary = json.loads(gen.stdout)
    assert summary["counts"]["order_events"] >= 15000 and summary["truth"]["spoofing"] >= 3
    assert sorted(p.name for p in out.iterdir()) == ["accounts.csv", "orders.csv", "trades.csv", "truth.json"]
    assert (out / "orders.csv").read_text().splitlines()[0] == "order_id,account_id,ts,instrument,side,price,qty,event"

    res = run_cli(["surveil", "--orders", str(out / "orders.csv"), "--trades", str(out / "trades.csv"),
                   "--accounts", str(out / "accounts.csv")], tmp_path)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert set(doc) >= {"alerts", "control_groups"}
    assert all(isinstance(g, list) and len(g) >= 2 and all(isinstance(a, str) for a in g)
               for g in doc["control_groups"])
    for alert in doc["alerts"]:
        assert set(alert) >= {"type", "accounts", "order_ids", "trade_ids", "score", "evidence"}
        assert alert["type"] in ("spoofing", "wash_trade", "control_group") and 0 <= alert["score"] <= 1
    assert {a["type"] for a in doc["alerts"]} == {"spoofing", "wash_trade", "control_group"}
    truth = json.loads((out / "truth.json").read_text())
    scored = evaluate(doc, truth)
    assert scored["control_group"]["recall"] == 1.0 and scored["wash_trade"]["recall"] == 1.0
    assert scored["near_misses"]["fired"] == 0
    # no raw identifier leaves the process: every account's mobile is absent from the output
    mobiles = [line.split(",")[3] for line in (out / "accounts.csv").read_text().splitlines()[1:]]
    assert not any(m and m in res.stdout for m in mobiles if m.isdigit() and len(m) == 11)


def test_bad_csv_exits_non_zero_naming_file_line_and_column(tmp_path):
    orders = tmp_path / "orders.csv"
    orders.write_text("order_id,account_id,ts,instrument,side,price,qty,event\n"
                      "O1,A1,2026-11-20T10:00:00.000,600519.SH,B,10,100,new\n"
                      "O2,A1,2026-11-20 10:00,600519.SH,Q,10,100,new\n")
    trades = tmp_path / "trades.csv"
    trades.write_text("trade_id,ts,instrument,price,qty,buy_account,sell_account\n")
    accounts = tmp_path / "accounts.csv"
    accounts.write_text("account_id,name,id_number,mobile,address,bank_account,ip,device_id\n")
    res = run_cli(["surveil", "--orders", str(orders), "--trades", str(trades), "--accounts", str(accounts)], tmp_path)
    assert res.returncode == 2
    doc = json.loads(res.stdout)
    assert "orders.csv, line 3, column side" in doc["error"]
    assert doc["detail"]["errors"][0] == {"file": str(orders), "line": 3, "column": "side",
                                          "reason": "must be B or S, got 'Q'"}
    missing = run_cli(["surveil", "--orders", str(orders)], tmp_path)
    assert missing.returncode == 2 and "--trades" in json.loads(missing.stdout)["error"]


def _order_item(item_id, sender, at, underlying, side, notional, status, decided_at=None, account=None):
    return ReviewItem(id=item_id, thread_id=f"th-{item_id}", kind="order", channel="sim", chat_id="g1",
                      sender_id=sender, sender_name=sender, text="下单", draft_reply="ok", status=status,
                      created_at=at, expires_at=at + timedelta(minutes=10), decided_at=decided_at,
                      lines=[{"request": {"underlying": underlying, "side": side, "structure": "vanilla"},
                              "price_pct": 5.0}],
                      order={"quote_id": "Q1", "notional": notional, "account": account})


def test_from_desk_maps_orders_withdrawals_and_bookings(tmp_path):
    settings = load_settings(data_dir=tmp_path, DATABASE_URL=None)
    engine = make_engine(settings.db_url)
    init_db(engine)
    t0 = datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)
    with transaction(engine) as tx:
        alpha = tx.clients.add_institution("甲资管", "approved", True)
        tx.clients.add_contact("sim", "wx-zhang", "张经理", alpha.id)
        tx.clients.add_contact("sim", "wx-li", "李经理", None)
        for i in range(40):  # the underlying's ordinary order sizes: 1,000万 each, from an unrelated client
            at = t0 + timedelta(minutes=i)
            tx.reviews.add_once(_order_item(f"N{i:03d}", "wx-li", at, "000905.SH", "client_buys", 10_000_000,
                                            "rejected", at + timedelta(seconds=30)))
        for k, start in enumerate((t0 + timedelta(hours=1), t0 + timedelta(hours=2))):
            # 甲: a 5亿 buy withdrawn after 3 s, while a sell of 甲's is booked
            tx.reviews.add_once(_order_item(f"S{k}", "wx-zhang", start, "000905.SH", "client_buys", 500_000_000,
                                            "withdrawn", start + timedelta(seconds=3), account="一号产品"))
            tx.reviews.add_once(_order_item(f"F{k}", "wx-zhang", start + timedelta(seconds=1), "000905.SH",
                                            "client_sells", 10_000_000, "sent", start + timedelta(seconds=2),
                                            account="一号产品"))
            tx.trades.add(TradeRow(id=f"T{k}", order_review_id=f"F{k}", status="live", institution="甲资管",
                                   channel="sim", chat_id="g1", sender_id="wx-zhang", client="张经理",
                                   account="一号产品", product={"structure": "vanilla", "side": "client_sells"},
                                   underlying="000905.SH", structure="vanilla", notional=10_000_000,
                                   original_notional=10_000_000, price_pct=5.0, premium_cny=500_000.0,
                                   booked_by="trader1", booked_at=start + timedelta(seconds=2)))
        # the same chat user also orders for another product account: one person behind both accounts
        tx.reviews.add_once(_order_item("X1", "wx-zhang", t0 + timedelta(hours=3), "000300.SH", "client_buys",
                                        20_000_000, "pending", account="乙产品"))
    engine.dispose()

    res = run_cli(["surveil", "--from-desk"], tmp_path)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["source"]["orders"] == 45 and doc["source"]["trades"] == 2
    [spoof] = [a for a in doc["alerts"] if a["type"] == "spoofing"]
    assert spoof["evidence"]["account"] == "甲资管/一号产品" and spoof["evidence"]["instrument"] == "000905.SH"
    assert [o["order_id"] for o in spoof["evidence"]["orders"]] == ["S0", "S1"]
    assert [o["lifetime_ms"] for o in spoof["evidence"]["orders"]] == [3000, 3000]
    assert sorted(spoof["trade_ids"]) == ["T0", "T1"]
    assert doc["control_groups"] == [["甲资管/一号产品", "甲资管/乙产品"]]
    assert not [a for a in doc["alerts"] if a["type"] == "wash_trade"]  # one side of every desk trade is the desk
