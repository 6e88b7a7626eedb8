"""`MarketDataService`: history seeded from the checked-in snapshot, ticks, the demo random walk, the CSV feed and
`otcdesk market load`, on SQLite and PostgreSQL."""
import datetime as dt
import json
import math
import os
import subprocess
from datetime import timezone

import pytest

from otcdesk.app.clock import CN_TZ, Clock
from otcdesk.app.db import init_db, make_engine
from otcdesk.app.market import load_snapshot, market_for
from otcdesk.app.models import TradeRow
from otcdesk.app.repositories import transaction
from otcdesk.app.trading.market_data import DEMO_SOURCE, CsvFeed, FeedError, MarketDataService, Tick
from otcdesk.pricing_engine.products import product_from_dict
from desk_fixtures import OTCDESK

SNAP = load_snapshot()
TODAY = dt.date(2027, 2, 22)


@pytest.fixture
def market(db_engine):
    return MarketDataService(db_engine, Clock("2027-02-22T16:00:00+08:00"), seed=11)


def counts(engine):
    with transaction(engine) as tx:
        return tx.market.tick_count(), tx.market.fixing_count()


def test_an_empty_history_is_seeded_from_the_checked_in_snapshot(market, db_engine):
    latest = market.latest()
    assert set(latest) >= {"as_of", "source", "rate", "underlyings"}
    assert latest["as_of"] == "2026-11-20T15:00:00+08:00" and latest["source"] == SNAP["source"]
    assert latest["rate"] == SNAP["rate"] and set(latest["underlyings"]) == set(SNAP["underlyings"])
    for code, u in SNAP["underlyings"].items():
        got = latest["underlyings"][code]
        assert (got["name"], got["spot"], got["vol"], got["div"]) == (u["name"], u["spot"], u["vol"], u["div"])
    market.latest()
    assert counts(db_engine) == (len(SNAP["underlyings"]), 0)  # seeded once
    assert MarketDataService(db_engine).latest() == latest  # another process sees the same, seeds nothing
    assert counts(db_engine)[0] == len(SNAP["underlyings"])


def test_recorded_ticks_become_the_latest_and_the_history(market):
    t0 = dt.datetime(2027, 2, 22, 10, 0, tzinfo=CN_TZ)
    market.record([Tick("000905.SH", t0, 6200.0, 0.25, 0.02, 0.01, "feed-a"),
                   Tick("000905.SH", t0 + dt.timedelta(minutes=5), 6210.0, source="feed-a")])  # carries vol/rate/div
    latest = market.latest()
    u = latest["underlyings"]["000905.SH"]
    assert (u["spot"], u["vol"], u["rate"], u["div"], u["source"]) == (6210.0, 0.25, 0.02, 0.01, "feed-a")
    assert u["as_of"] == "2027-02-22T10:05:00+08:00" and latest["as_of"] == u["as_of"]
    assert latest["underlyings"]["000300.SH"]["spot"] == SNAP["underlyings"]["000300.SH"]["spot"]
    assert latest["source"].startswith("mixed: ")
    m = market_for("000905.SH", latest)
    assert (m["spot"], m["vol"], m["rate"], m["div"]) == (6210.0, 0.25, 0.02, 0.01)

    hist = market.history("000905.SH")
    assert [h["spot"] for h in hist] == [6050.0, 6200.0, 6210.0]  # oldest first, the seed included
    assert [h["spot"] for h in market.history("000905.SH", limit=2)] == [6200.0, 6210.0]
    assert [h["spot"] for h in market.history("000905.SH", since=t0 + dt.timedelta(minutes=1))] == [6210.0]
    assert market.history("600000.SH") == []


def test_a_bad_tick_records_nothing(market, db_engine):
    market.latest()
    before = counts(db_engine)
    now = dt.datetime(2027, 2, 22, 10, 0, tzinfo=timezone.utc)
    with pytest.raises(FeedError) as exc:
        market.record([Tick("000905.SH", now, 6200.0), Tick("000300.SH", now, -1.0),
                       Tick("688981.SH", now, 80.0)])  # no vol known for a new underlying
    messages = [e["error"] for e in exc.value.errors]
    assert any("spot must be above 0" in m for m in messages) and any("no vol for 688981.SH" in m for m in messages)
    assert counts(db_engine) == before


def test_the_demo_random_walk_moves_every_underlying_and_is_labelled(market, db_engine):
    before = market.latest()
    after = market.tick()
    assert after["source"] == DEMO_SOURCE and set(after["underlyings"]) == set(before["underlyings"])
    for code, u in after["underlyings"].items():
        old = before["underlyings"][code]
        move = math.log(u["spot"] / old["spot"])
        assert u["spot"] > 0 and u["spot"] != old["spot"]
        assert abs(move) < 6 * old["vol"] * math.sqrt(1 / 252)  # one simulated trading day
        assert 0.3 * old["vol"] <= u["vol"] <= 3 * old["vol"] and u["source"] == DEMO_SOURCE
    market.tick()
    assert len(market.history("000905.SH")) == 3
    assert counts(db_engine)[0] == 3 * len(SNAP["underlyings"])


CSV = """date,underlying,close,vol,rate,div
2027-02-18,000905.SH,6250.5,0.23,0.018,0.015
2027-02-18,000300.SH,4001,,,
2027-02-19,000905.SH,6270.0,,,
2027-02-19,000300.SH,4010,0.19,,
2027-02-22,000905.SH,6300.0,,,
"""


def test_a_csv_of_history_loads_ticks_and_closes(market, db_engine, tmp_path):
    path = tmp_path / "hist.csv"
    path.write_text(CSV, encoding="utf-8")
    summary = market.ingest(CsvFeed(path, today=TODAY), actor="ops1")
    assert summary["ticks"] == 5 and summary["closes"] == {"stored": 5, "unchanged": 0}
    assert summary["dates"] == ["2027-02-18", "2027-02-19", "2027-02-22"]
    assert summary["underlyings"]["000905.SH"] == {"ticks": 3, "from": "2027-02-18T15:00:00+08:00",
                                                   "to": "2027-02-22T15:00:00+08:00", "closes": 3}
    u = market.latest()["underlyings"]["000905.SH"]
    assert (u["spot"], u["vol"], u["rate"], u["div"]) == (6300.0, 0.23, 0.018, 0.015)  # carried from 18 Feb
    hs = market.latest()["underlyings"]["000300.SH"]
    assert (hs["spot"], hs["vol"], hs["div"]) == (4010.0, 0.19, SNAP["underlyings"]["000300.SH"]["div"])
    assert [c["close"] for c in market.closes("000905.SH")] == [6250.5, 6270.0, 6300.0]
    assert market.closes("000905.SH")[0]["source"] == "csv:hist.csv"
    with transaction(db_engine) as tx:
        assert [a.action for a in tx.audit.entries()] == ["market.load"]

    again = market.ingest(CsvFeed(path, today=TODAY), actor="ops1")  # the same file again changes nothing
    assert again["ticks"] == 0 and again["ticks_unchanged"] == 5 and again["closes"] == {"stored": 0, "unchanged": 5}
    assert counts(db_engine) == (len(SNAP["underlyings"]) + 5, 5)


def test_bad_rows_are_refused_with_their_line_numbers_and_nothing_is_loaded(market, db_engine):
    market.latest()
    before = counts(db_engine)
    text = ("date,underlying,close,vol\n"
            "2027-02-18,000905.SH,6250,0.23\n"      # 2 fine
            "2027-02-20,000905.SH,6260,0.23\n"      # 3 a Saturday
            "2027-02-19,000905.SH,abc,0.23\n"       # 4 not a number
            "2027-02-23,000905.SH,6280,0.23\n"      # 5 after today
            "2027-02-19,300750,250,0.35\n"          # 6 no exchange suffix
            "2027-02-19,000300.SH,4000,22\n"        # 7 vol as a percentage
            "2027-02-18,000905.SH,6251,0.23\n"      # 8 a second, different close of line 2's day
            "2027-02-19,000852.SH,6400,0.25,9\n")   # 9 a cell too many
    with pytest.raises(FeedError) as exc:
        market.ingest(CsvFeed(text=text, today=TODAY), actor="ops1")
    lines = {e["line"]: e["error"] for e in exc.value.errors}
    assert sorted(lines) == [3, 4, 5, 6, 7, 8, 9]
    assert "not a trading day" in lines[3] and "not a number" in lines[4] and "after today" in lines[5]
    assert "not a code" in lines[6] and "0.22 for 22%" in lines[7] and "line 2" in lines[8]
    assert counts(db_engine) == before


@pytest.mark.parametrize("header, says", [
    ("date,underlying,close,volume", "unknown column"),
    ("date,ts,underlying,close", "exactly one of the columns date and ts"),
    ("date,underlying,close,spot", "exactly one of the columns close and spot"),
    ("date,close", "underlying column is missing"),
])
def test_a_bad_header_is_refused(market, header, says):
    with pytest.raises(FeedError) as exc:
        market.ingest(CsvFeed(text=header + "\n2027-02-18,000905.SH,6250,1\n", today=TODAY), actor="ops1")
    assert exc.value.errors[0]["line"] == 1 and says in exc.value.errors[0]["error"]


def test_a_close_that_differs_from_the_stored_one_is_refused(market, db_engine):
    market.ingest(CsvFeed(text="date,underlying,close\n2027-02-18,000905.SH,6250\n", today=TODAY), actor="ops1")
    before = counts(db_engine)
    with pytest.raises(FeedError) as exc:
        market.ingest(CsvFeed(text="date,underlying,close\n2027-02-19,000905.SH,6260\n2027-02-18,000905.SH,6255\n",
                              today=TODAY), actor="ops1")
    [err] = exc.value.errors
    assert err["line"] == 3 and "stored close 6250" in err["error"]
    assert counts(db_engine) == before


def test_intraday_spot_rows_are_ticks_only(market, db_engine):
    text = "ts,underlying,spot\n2027-02-22T10:30:00,000905.SH,6222\n2027-02-22 14:00:00+08:00,000905.SH,6233\n"
    summary = market.ingest(CsvFeed(text=text, today=TODAY), actor="ops1")
    assert summary["ticks"] == 2 and summary["closes"]["stored"] == 0
    assert [h["as_of"] for h in market.history("000905.SH", limit=2)] == \
        ["2027-02-22T10:30:00+08:00", "2027-02-22T14:00:00+08:00"]


def _cli(data_dir, *args, now="2027-02-22T16:00:00+08:00"):
    env = {**os.environ, "OTCDESK_DATA_DIR": str(data_dir), "OTCDESK_NOW": now}
    env.pop("DATABASE_URL", None)
    proc = subprocess.run([OTCDESK, "market", *args], env=env, capture_output=True, text=True, timeout=300)
    return proc.returncode, json.loads(proc.stdout)


def test_otcdesk_market_load_stores_history_and_applies_the_closes(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'otcdesk.db'}")
    init_db(engine)
    product = product_from_dict({"structure": "snowball", "underlying": "000905.SH", "start_date": "2026-11-20",
                                 "maturity_date": "2027-11-22", "ko_pct": 103, "ki_pct": 75, "coupon_pct": 15,
                                 "initial_price": 6000.0}).to_dict()
    with transaction(engine) as tx:
        tx.trades.add(TradeRow(id="T1", order_review_id="O1", status="live", channel="sim", chat_id="demo",
                               sender_id="张经理", client="张经理", product=product, underlying="000905.SH",
                               structure="snowball", notional=10_000_000, original_notional=10_000_000,
                               price_pct=0.0, premium_cny=0.0, booked_by="trader1"))
    engine.dispose()
    path = tmp_path / "hist.csv"
    path.write_text(CSV, encoding="utf-8")
    rc, out = _cli(tmp_path, "load", str(path))
    assert rc == 0, out
    assert (out["rows"], out["ticks"], out["closes"]["stored"]) == (5, 5, 5)
    assert [(e["trade_id"], e["type"], e["date"], e["cash_cny"]) for e in out["events"]] == \
        [("T1", "knocked_out", "2027-02-22", 386301.37)]  # 18/19 Feb are no observation dates
    rc, again = _cli(tmp_path, "load", str(path))
    assert rc == 0 and again["events"] == [] and again["closes"]["unchanged"] == 5

    bad = tmp_path / "bad.csv"
    bad.write_text("date,underlying,close\n2027-02-23,000905.SH,6400\n2027-02-22,000905.SH,x\n", encoding="utf-8")
    rc, err = _cli(tmp_path, "load", str(bad))
    assert rc == 2 and "nothing was loaded" in err["error"]
    assert [e["line"] for e in err["detail"]["errors"]] == [2, 3]
    rc, snap = _cli(tmp_path, "snapshot")
    assert rc == 0 and snap["underlyings"]["000905.SH"]["spot"] == 6300.0
    engine = make_engine(f"sqlite:///{tmp_path / 'otcdesk.db'}")
    with transaction(engine) as tx:
        assert tx.trades.get("T1").status == "knocked_out"
        assert tx.market.fixing_count() == 5
    engine.dispose()


def test_the_desk_quotes_on_the_newest_market(make_desk_core):
    desk = make_desk_core()
    req = {"underlying": "000905.SH", "structure": "vanilla", "option_type": "put", "tenor": "1M", "strike_pct": 100}
    assert desk.price(req)["market"]["spot"] == SNAP["underlyings"]["000905.SH"]["spot"]
    desk.market.record([Tick("000905.SH", dt.datetime(2027, 2, 22, 7, 0, tzinfo=timezone.utc), 6500.0, 0.3)])
    line = desk.price(req)
    assert (line["market"]["spot"], line["market"]["vol"]) == (6500.0, 0.3) and line["price_pct"] > 0
    assert desk.fixings.market is desk.market
