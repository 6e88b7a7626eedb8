"""RiskService on real databases: the book from the trade store, desk-side units against QuantLib, fold-in,
limits, pre-trade checks, snapshots with history, the scheduled job and `otcdesk risk refresh`."""
from __future__ import annotations

import datetime as dt
import io
import json
import math
import threading
import time
from contextlib import redirect_stdout

import numpy as np
import pytest
import QuantLib as ql

from otcdesk.app.clock import Clock
from otcdesk.app.db import init_db, make_engine
from otcdesk.app.events import EventBus
from otcdesk.app.models import TradeRow
from otcdesk.app.repositories import transaction
from otcdesk.app.trading.risk import RiskError, RiskScheduler, RiskService, read_limits_csv
from otcdesk.pricing_engine.products import product_from_dict

NOW = "2026-11-30T15:30:00+08:00"
VD = dt.date(2026, 11, 30)
MARKET = {"as_of": "2026-11-30", "source": "test market", "rate": 0.018,
          "underlyings": {"000905.SH": {"spot": 6050.0, "vol": 0.22, "div": 0.015},
                          "000852.SH": {"spot": 6400.0, "vol": 0.25, "div": 0.01},
                          "600519.SH": {"spot": 1500.0, "vol": 0.24, "div": 0.015}}}


def trade_row(tid: str, product: dict, notional: float, status: str = "live", **kw) -> TradeRow:
    return TradeRow(id=tid, order_review_id=f"O-{tid}", status=status, channel="sim", chat_id="demo",
                    sender_id="c1", client="张经理", product=product, underlying=product["underlying"],
                    structure=product["structure"], notional=notional, original_notional=notional, price_pct=1.0,
                    premium_cny=notional / 100, booked_by="trader1", **kw)


def vanilla(underlying="000905.SH", option_type="call", strike_pct=100.0, s0=6000.0, side="client_buys",
            start="2026-11-02", maturity="2027-05-31") -> dict:
    return {"structure": "vanilla", "underlying": underlying, "option_type": option_type, "strike_pct": strike_pct,
            "start_date": start, "maturity_date": maturity, "initial_price": s0, "side": side}


def snowball(underlying="000852.SH", s0=6300.0) -> dict:
    return {"structure": "snowball", "underlying": underlying, "ko_pct": 103.0, "ki_pct": 75.0, "coupon_pct": 15.0,
            "lockup_months": 3, "start_date": "2026-10-09", "maturity_date": "2027-10-11", "initial_price": s0,
            "side": "client_buys"}


def book_trades(engine, *rows: TradeRow) -> None:
    with transaction(engine) as tx:
        for r in rows:
            tx.trades.add(r)


@pytest.fixture
def engine(tmp_path):
    eng = make_engine(f"sqlite:///{tmp_path / 'desk.db'}")
    init_db(eng)
    yield eng
    eng.dispose()


def service(engine, market=MARKET, **kw) -> RiskService:
    return RiskService(engine, EventBus(), Clock(NOW), lambda: market, **kw)


# ---------------------------------------------------------------- units and signs against QuantLib

def quantlib_desk(product: dict, notional: float, market: dict) -> dict:
    """The desk's Exposure of one vanilla by QuantLib's analytic Black-Scholes (independent of our engine)."""
    u = market["underlyings"][product["underlying"]]
    spot, vol, q, r = u["spot"], u["vol"], u["div"], market["rate"]
    s0 = product["initial_price"]
    mat = product_from_dict(product).dates(VD)[1]
    ql.Settings.instance().evaluationDate = ql.Date(VD.day, VD.month, VD.year)
    today, dc = ql.Settings.instance().evaluationDate, ql.Actual365Fixed()
    proc = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(spot)), ql.YieldTermStructureHandle(ql.FlatForward(today, q, dc)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, r, dc)),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), vol, dc)))
    kind = ql.Option.Call if product["option_type"] == "call" else ql.Option.Put
    opt = ql.EuropeanOption(ql.PlainVanillaPayoff(kind, product["strike_pct"] / 100 * s0),
                            ql.EuropeanExercise(ql.Date(mat.day, mat.month, mat.year)))
    opt.setPricingEngine(ql.AnalyticEuropeanEngine(proc))
    units = notional / s0  # one unit of notional is one unit of underlying at the initial price
    desk = -1.0 if product.get("side", "client_buys") == "client_buys" else 1.0
    return {"pv_cny": desk * opt.NPV() * units, "delta_cny": desk * opt.delta() * spot * 0.01 * units,
            "gamma_cny": desk * opt.gamma() * spot * spot * 1e-4 * units, "vega_cny": desk * opt.vega() * 0.01 * units,
            "theta_cny": desk * opt.thetaPerDay() * units}


@pytest.mark.parametrize("product", [vanilla(), vanilla(option_type="put", strike_pct=95.0, side="client_sells"),
                                     vanilla(underlying="600519.SH", strike_pct=105.0, s0=1450.0)],
                         ids=["client-buys-call", "client-sells-put", "stock-call-otm"])
def test_one_trade_book_matches_quantlib_from_the_desks_side(engine, product):
    notional = 25_000_000.0
    book_trades(engine, trade_row("T1", product, notional))
    svc = service(engine)
    svc.refresh("tester")
    book = svc.latest()
    ref = quantlib_desk(product, notional, MARKET)
    tol = {"pv_cny": 1e-6, "delta_cny": 1e-3, "gamma_cny": 5e-3, "vega_cny": 1e-3, "theta_cny": 2e-2}
    for key, rel in tol.items():
        got = book["totals"][key]
        assert math.isclose(got, ref[key], rel_tol=rel, abs_tol=0.02), (key, got, ref[key])
        assert book["by_underlying"][0][key] == got
    # the desk is short what the client is long: a client-bought call is negative delta and vega for the desk
    sign = -1 if product["side"] == "client_buys" else 1
    assert np.sign(book["totals"]["vega_cny"]) == sign
    assert book["live_trades"] == 1 and book["by_underlying"][0]["trades"] == 1


def test_ladder_and_grid_agree_with_delta_and_gamma(engine):
    """A move of m % changes the desk PV by about delta_cny*m + gamma_cny*m^2/2 (the ladder is 1% apart)."""
    book_trades(engine, trade_row("T1", vanilla(), 30_000_000.0))
    svc = service(engine)
    svc.refresh()
    book = svc.latest()
    lad = book["ladders"][0]
    i0 = lad["spot_shifts_pct"].index(0.0)
    pv, up, dn = lad["pv_cny"][i0], lad["pv_cny"][i0 + 1], lad["pv_cny"][i0 - 1]
    tot = book["totals"]
    assert math.isclose(pv, tot["pv_cny"], abs_tol=0.02)
    assert math.isclose((up - dn) / 2, tot["delta_cny"], rel_tol=2e-3)
    assert math.isclose(up - 2 * pv + dn, tot["gamma_cny"], rel_tol=2e-2)
    assert lad["spots"][i0 + 1] == pytest.approx(6050.0 * 1.01)
    # vol column: +2.5 vol points is about 2.5 x vega_cny
    j = book["scenario"]["vol_shifts"].index(2.5)
    assert math.isclose(book["scenario"]["pnl_cny"][i0][j], 2.5 * tot["vega_cny"], rel_tol=3e-2)


def test_book_sums_by_underlying_and_lists_what_it_cannot_value(engine):
    book_trades(engine,
                trade_row("T1", vanilla(), 10_000_000.0),
                trade_row("T2", vanilla(option_type="put", strike_pct=90.0), 20_000_000.0),
                trade_row("T3", snowball(), 30_000_000.0),
                trade_row("T4", vanilla(underlying="688981.SH"), 5_000_000.0),  # not in the market snapshot
                trade_row("T5", vanilla(maturity="2026-11-27"), 5_000_000.0),  # matured, lifecycle not run yet
                trade_row("T6", vanilla(), 7_000_000.0, status="knocked_out"),
                trade_row("T7", vanilla(), 9_000_000.0, status="pending_second_approval"))
    svc = service(engine)
    summary = svc.refresh("tester")
    book = svc.latest()
    assert summary == RiskService.summary(book)
    assert summary["live_trades"] == 3 and summary["unvalued_trades"] == 2 and summary["scenario_points"] == 205
    assert {u["trade_id"]: u["reason"].split()[0] for u in book["unvalued"]} == {"T4": "no", "T5": "maturity"}
    assert [e["underlying"] for e in book["by_underlying"]] == ["000852.SH", "000905.SH"]
    assert [e["trades"] for e in book["by_underlying"]] == [1, 2]
    for key in ("pv_cny", "delta_cny", "gamma_cny", "vega_cny", "theta_cny"):
        assert book["totals"][key] == pytest.approx(sum(e[key] for e in book["by_underlying"]), abs=0.05)
    grid = np.array(book["scenario"]["pnl_cny"])
    assert grid.shape == (41, 5)
    parts = sum(np.array(e["scenario_pnl_cny"]) for e in book["by_underlying"])
    assert np.allclose(grid, parts, atol=0.1)
    assert grid[20, 2] == pytest.approx(0.0, abs=0.01)  # no shift, no change
    with transaction(engine) as tx:
        stored = tx.risk.latest()
    assert [t["trade_id"] for t in stored.trades] == ["T1", "T2", "T3"]
    assert sum(t["delta_cny"] for t in stored.trades) == pytest.approx(book["totals"]["delta_cny"], abs=0.05)
    # a snowball's desk PV change is not linear in spot: the ladder is the grid's zero-vol column plus the PV
    lad = next(l for l in book["ladders"] if l["underlying"] == "000852.SH")
    e = book["by_underlying"][0]
    assert lad["pv_cny"] == pytest.approx([e["pv_cny"] + row[2] for row in e["scenario_pnl_cny"]], abs=0.05)


def test_snapshots_keep_their_history_and_refreshes_are_audited(engine):
    book_trades(engine, trade_row("T1", vanilla(), 10_000_000.0))
    svc = service(engine)
    first = svc.refresh("risk1")
    book_trades(engine, trade_row("T2", vanilla(option_type="put"), 10_000_000.0))
    second = svc.refresh("scheduler")
    assert second["snapshot_id"] > first["snapshot_id"] and (first["live_trades"], second["live_trades"]) == (1, 2)
    assert [h["snapshot_id"] for h in svc.history()] == [second["snapshot_id"], first["snapshot_id"]]
    with transaction(engine) as tx:
        assert tx.risk.get(first["snapshot_id"]).book["live_trades"] == 1  # the old one is kept as it was
        entries = [(a.actor, a.subject, a.detail["live_trades"]) for a in tx.audit.entries(action="risk.refreshed")]
        seeded = tx.audit.entries(action="risk.limits_seeded")
    assert entries == [("risk1", f"risk_snapshot:{first['snapshot_id']}", 1),
                       ("scheduler", f"risk_snapshot:{second['snapshot_id']}", 2)]
    assert len(seeded) == 1


def test_empty_book_and_no_snapshot(engine):
    svc = service(engine)
    assert svc.latest() is None
    summary = svc.refresh("cli")
    assert summary["live_trades"] == 0 and summary["snapshot_id"] == 1
    book = svc.latest()
    assert book["totals"] == {"pv_cny": 0.0, "delta_cny": 0.0, "gamma_cny": 0.0, "vega_cny": 0.0, "theta_cny": 0.0}
    assert book["by_underlying"] == [] and book["scenario"]["pnl_cny"][0] == [0.0] * 5


# ---------------------------------------------------------------- fold-in of a booked trade

def test_fold_in_adds_only_the_new_trade_and_matches_a_full_refresh(engine):
    book_trades(engine, trade_row("T1", vanilla(), 10_000_000.0), trade_row("T2", snowball(), 20_000_000.0))
    svc = service(engine)
    base = svc.refresh()
    book_trades(engine, trade_row("T3", vanilla(option_type="put", strike_pct=95.0, start="2026-11-30",
                                                maturity="2027-02-26", s0=6050.0), 50_000_000.0))
    folded = svc.fold_in("T3")
    assert folded["snapshot_id"] == base["snapshot_id"] + 1 and folded["live_trades"] == 3
    assert folded["kind"] == "fold_in"
    book = svc.latest()
    assert book["base_snapshot_id"] == base["snapshot_id"] and book["folded_trades"] == ["T3"]
    with transaction(engine) as tx:
        t3 = next(t for t in tx.risk.latest().trades if t["trade_id"] == "T3")
        audit = [(a.actor, a.detail["trade_id"]) for a in tx.audit.entries(action="risk.folded_in")]
    assert audit == [("booking", "T3")]
    assert svc.fold_in("T3")["snapshot_id"] == folded["snapshot_id"]  # folding it again changes nothing
    before = {e["underlying"]: e for e in svc.latest()["by_underlying"]}
    # the same book revalued in full gives the same figures (T3 is a closed-form vanilla; T1, T2 unchanged)
    full_svc = service(engine)
    full_svc.refresh()
    full = full_svc.latest()
    for key in ("pv_cny", "delta_cny", "gamma_cny", "vega_cny", "theta_cny"):
        assert book["totals"][key] == pytest.approx(full["totals"][key], abs=0.1), key
    assert before["000905.SH"]["trades"] == 2
    assert t3["delta_cny"] > 0  # the client bought a put: the desk is short it, so long delta
    assert np.allclose(book["scenario"]["pnl_cny"], full["scenario"]["pnl_cny"], atol=0.5)
    # folding a trade the latest snapshot has changes nothing
    assert svc.fold_in("T3")["snapshot_id"] == full["snapshot_id"]


def test_fold_in_refuses_a_trade_not_live_and_refreshes_when_no_snapshot(engine):
    book_trades(engine, trade_row("T1", vanilla(), 10_000_000.0),
                trade_row("T2", vanilla(), 60_000_000.0, status="pending_second_approval"))
    svc = service(engine)
    with pytest.raises(RiskError, match="pending_second_approval"):
        svc.fold_in("T2")
    with pytest.raises(RiskError, match="no trade"):
        svc.fold_in("NOPE")
    summary = svc.fold_in("T1")  # no snapshot yet: the whole book is revalued
    assert summary["kind"] == "refresh" and summary["live_trades"] == 1


def test_a_trade_that_leaves_the_book_is_revalued_out_on_the_books_own_thread(engine):
    book_trades(engine, trade_row("T1", vanilla(), 10_000_000.0),
                trade_row("T2", vanilla(option_type="put", strike_pct=95.0), 20_000_000.0))
    svc = service(engine)
    svc.refresh_soon()
    svc.stop()  # waits for the queued request: before any snapshot it revalues nothing
    assert svc.latest() is None
    base = svc.refresh()
    with transaction(engine) as tx:  # T2 knocked out / unwound: it leaves the live book
        assert tx.trades.move(tx.trades.get("T2"), "close", "closed", "t1")
    for _ in range(3):  # several changes at once: coalesced into the refreshes already queued
        svc.refresh_soon()
    svc.stop()
    with transaction(engine) as tx:
        snapshots = tx.risk.history()
        valued = {t["trade_id"] for t in tx.risk.latest().trades}
    assert 1 <= len(snapshots) - 1 <= 2 and snapshots[0]["snapshot_id"] > base["snapshot_id"]
    assert svc.latest()["live_trades"] == 1 and valued == {"T1"}


def test_a_trade_booked_while_a_refresh_runs_is_not_dropped(engine):
    """The refresh read the live trades before T2 was booked and folded in; it stores after the fold-in and
    still has T2 (it checks the trade store again when it stores)."""
    book_trades(engine, trade_row("T1", vanilla(), 10_000_000.0))
    booked = []

    def market_during_refresh():
        if len(booked) == 1 and not booked[0]:  # the second refresh is running: a booking arrives now
            booked[0] = True
            book_trades(engine, trade_row("T2", vanilla(option_type="put"), 10_000_000.0))
            booked.append(svc.fold_in("T2"))
        return MARKET

    svc = service(engine, market=None)
    svc.market_snapshot = market_during_refresh
    svc.refresh()
    booked.append(False)
    summary = svc.refresh()
    folded = booked[1]
    assert folded["live_trades"] == 2 and summary["snapshot_id"] == folded["snapshot_id"] + 1
    book = svc.latest()
    assert book["live_trades"] == 2 and book["late_trades"] == ["T2"]


# ---------------------------------------------------------------- limits and pre-trade checks

def test_limits_seeded_from_csv_default_row_and_breach(engine, tmp_path):
    limits = tmp_path / "limits.csv"
    limits.write_text("underlying,measure,limit,note\n*,delta_cny,1e9,default\n*,vega_cny,1e9,default\n"
                      "000905.SH,delta_cny,50000,tight\n", encoding="utf-8")
    book_trades(engine, trade_row("T1", vanilla(), 10_000_000.0), trade_row("T2", snowball(), 10_000_000.0))
    svc = service(engine, limits=limits)
    summary = svc.refresh()
    book = svc.latest()
    by = {(lim["underlying"], lim["measure"]): lim for lim in book["limits"]}
    d905 = by[("000905.SH", "delta_cny")]
    assert d905["limit"] == 50000 and abs(d905["value"]) > 50000 and d905["breached"] is True
    assert by[("000905.SH", "vega_cny")]["limit"] == 1e9 and not by[("000905.SH", "vega_cny")]["breached"]
    assert by[("000852.SH", "delta_cny")]["limit"] == 1e9  # the "*" row
    assert summary["breaches"] == 1
    # the table is seeded once; a changed limit is kept when the service starts again
    with transaction(engine) as tx:
        tx.risk.set_limit("000905.SH", "delta_cny", 1e8, "admin1")
    again = service(engine, limits=limits)
    again.refresh()
    assert not {(lim["underlying"], lim["measure"]): lim for lim in again.latest()["limits"]}[
        ("000905.SH", "delta_cny")]["breached"]
    assert len(again.limits()) == 3


def test_shipped_limits_file_is_valid():
    rows = read_limits_csv()
    assert ("*", "delta_cny") in {(u, m) for u, m, _ in rows} and ("*", "vega_cny") in {(u, m) for u, m, _ in rows}
    assert all(v > 0 for _, _, v in rows)


def test_pretrade_on_a_real_priced_line_matches_booking_it(engine):
    """The check's "after" is what the book shows once the quoted trade is booked and folded in."""
    from otcdesk.app.market import load_snapshot
    from otcdesk.app.quoting import price_request

    book_trades(engine, trade_row("T1", vanilla(start="2026-11-02", maturity="2027-12-31"), 20_000_000.0))
    svc = RiskService(engine, EventBus(), Clock(), load_snapshot)  # the real market snapshot, today
    svc.refresh()
    req = {"underlying": "000905.SH", "structure": "vanilla", "option_type": "call", "tenor": "3M",
           "strike_pct": 100, "notional": 100_000_000.0, "side": "client_buys"}
    line = price_request(req, valuation_date=Clock().today())
    check = svc.pretrade(line)
    assert check["underlying"] == "000905.SH" and not check["notional_assumed"]
    delta = next(c for c in check["checks"] if c["measure"] == "delta_cny")
    before = next(e for e in svc.latest()["by_underlying"] if e["underlying"] == "000905.SH")["delta_cny"]
    assert delta["before"] == pytest.approx(before)
    assert delta["after"] - delta["before"] == pytest.approx(-line["greeks"]["delta"] * 1e8 * 0.01, rel=1e-6)
    assert delta["after"] < delta["before"]  # selling a call makes the desk shorter delta
    assert delta["limit"] == 30_000_000 and "from" in delta["text"] and "000905.SH" in delta["text"]
    product = dict(line["product"])
    book_trades(engine, trade_row("T2", product, 100_000_000.0))
    svc.fold_in("T2")
    after = next(e for e in svc.latest()["by_underlying"] if e["underlying"] == "000905.SH")
    assert after["delta_cny"] == pytest.approx(delta["after"], rel=1e-3)
    vega = next(c for c in check["checks"] if c["measure"] == "vega_cny")
    assert after["vega_cny"] == pytest.approx(vega["after"], rel=1e-3)


def test_pretrade_breach_no_notional_and_error_lines(engine, tmp_path):
    limits = tmp_path / "limits.csv"
    limits.write_text("underlying,measure,limit\n*,delta_cny,100000\n*,vega_cny,1e9\n", encoding="utf-8")
    svc = service(engine, limits=limits)
    line = {"request": {"underlying": "000852.SH", "structure": "vanilla", "notional": 50_000_000.0},
            "price": 0.05, "greeks": {"delta": 0.5, "gamma": 2.0, "vega": 0.002, "theta": -0.0003},
            "product": {"initial_price": 6400.0}, "market": {"spot": 6400.0}}
    check = svc.pretrade(line)  # no snapshot yet: the desk is flat
    delta = check["checks"][0]
    assert (delta["before"], delta["after"], delta["breached"]) == (0.0, -250_000.0, True)
    assert check["breached"] and "LIMIT BREACHED" in check["text"] and check["snapshot_id"] is None
    line["request"].pop("notional")
    per_ref = svc.pretrade(line)
    assert per_ref["notional_assumed"] and per_ref["notional"] == 10_000_000.0
    assert per_ref["checks"][0]["after"] == -50_000.0 and not per_ref["checks"][0]["breached"]
    assert "none given" in per_ref["text"]
    assert svc.pretrade({"request": {"underlying": "000852.SH"}, "error": "标的不在报价标的池"}) is None
    assert svc.pretrade({"request": {}, "greeks": {"delta": 1.0}}) is None


# ---------------------------------------------------------------- the scheduled job

def test_scheduler_refreshes_on_its_own_thread_and_stops(engine):
    book_trades(engine, trade_row("T1", vanilla(), 10_000_000.0))
    svc = service(engine)
    main = threading.get_ident()
    threads = []
    original = svc._refresh

    def on_which_thread(actor):
        threads.append(threading.get_ident())
        return original(actor)

    svc._refresh = on_which_thread
    sched = svc.start(0.5)
    assert isinstance(sched, RiskScheduler) and svc.start(0.5) is sched
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(svc.history()) < 2:
        time.sleep(0.1)
    svc.stop()
    n = len(svc.history())
    assert n >= 2 and main not in threads
    time.sleep(1.2)
    assert len(svc.history()) == n  # stopped: no more snapshots
    with transaction(engine) as tx:
        assert {a.actor for a in tx.audit.entries(action="risk.refreshed")} == {"scheduler"}


def test_scheduled_run_skips_while_a_refresh_runs(engine):
    svc = service(engine)
    with svc._refresh_lock:
        assert svc.scheduled_refresh() is None
    assert svc.scheduled_refresh()["snapshot_id"] == 1


def test_first_scheduled_run(engine):
    svc = service(engine)
    sched = RiskScheduler(svc, 600)
    t = sched.first_run()
    assert t - dt.datetime.now(dt.timezone.utc) > dt.timedelta(seconds=590)  # empty book: one period on
    book_trades(engine, trade_row("T1", vanilla(), 10_000_000.0))
    assert sched.first_run() - dt.datetime.now(dt.timezone.utc) < dt.timedelta(seconds=5)  # trades, no snapshot
    svc.refresh()
    # one period after the latest snapshot, its age measured on the service's (OTCDESK_NOW) clock
    due = sched.first_run() - dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(seconds=590) < due <= dt.timedelta(seconds=600)
    with pytest.raises(ValueError):
        RiskScheduler(svc, 0)


# ---------------------------------------------------------------- PostgreSQL and the CLI

def test_refresh_and_fold_in_on_sqlite_and_postgres(db_engine):
    book_trades(db_engine, trade_row("T1", vanilla(), 10_000_000.0), trade_row("T2", snowball(), 10_000_000.0))
    svc = service(db_engine)
    first = svc.refresh("risk1")
    book_trades(db_engine, trade_row("T3", vanilla(option_type="put"), 10_000_000.0))
    folded = svc.fold_in("T3")
    assert (first["live_trades"], folded["live_trades"]) == (2, 3)
    fresh = service(db_engine)  # another process's view: read back from the database
    book = fresh.latest()
    assert book["snapshot_id"] == folded["snapshot_id"] and len(book["by_underlying"]) == 2
    assert fresh.trade_risk("T3")["structure"] == "vanilla" and fresh.trade_risk("T9") is None
    assert [h["live_trades"] for h in fresh.history()] == [3, 2]
    with transaction(db_engine) as tx:
        assert [a.action for a in tx.audit.entries() if a.action.startswith("risk.")] == \
            ["risk.limits_seeded", "risk.refreshed", "risk.folded_in"]


def test_cli_risk_refresh_prints_the_summary(tmp_path, monkeypatch):
    from otcdesk.app.cli import main

    monkeypatch.setenv("OTCDESK_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("OTCDESK_NOW", NOW)

    def run() -> dict:
        out = io.StringIO()
        with redirect_stdout(out):
            assert main(["risk", "refresh"]) == 0
        return json.loads(out.getvalue())

    empty = run()  # a fresh, empty data directory works
    assert empty["live_trades"] == 0 and empty["snapshot_id"] == 1
    assert set(empty) >= {"snapshot_id", "as_of", "live_trades", "elapsed_s", "scenario_points"}
    eng = make_engine(f"sqlite:///{(tmp_path / 'var' / 'otcdesk.db').resolve()}")
    book_trades(eng, trade_row("T1", vanilla(), 10_000_000.0), trade_row("T2", snowball(), 10_000_000.0))
    doc = run()
    assert doc["live_trades"] == 2 and doc["snapshot_id"] == 2 and doc["scenario_points"] == 205
    with transaction(eng) as tx:
        assert [a.actor for a in tx.audit.entries(action="risk.refreshed")] == ["cli", "cli"]
    eng.dispose()


# ---------------------------------------------------------------- the low-priority worker process

def test_worker_process_gives_the_same_book_and_runs_niced(engine):
    import os

    from otcdesk.pricing_engine.registry import get_structure
    from otcdesk.pricing_engine.templates import register_template

    # a structure declared at run time (as an admin upload would): the worker learns it from the parent
    doc = {"structure": "rt_ki_put", "description": "run-time knock-in put",
           "params": {"strike_pct": {"default": 100}, "ki_pct": {"required": True}},
           "constraints": [{"less": ["ki_pct", "strike_pct"]}],
           "blocks": [{"block": "knock_in", "direction": "down", "level_pct": "$ki_pct", "observation": "daily"},
                      {"block": "payoff", "state": "knocked_in",
                       "legs": [{"kind": "put", "strike_pct": "$strike_pct", "weight": -1}]}]}
    if get_structure("rt_ki_put") is None:
        register_template(doc)
    rt = {"structure": "rt_ki_put", "underlying": "000905.SH", "ki_pct": 75.0, "start_date": "2026-11-02",
          "maturity_date": "2027-11-02", "initial_price": 6000.0, "side": "client_sells"}
    book_trades(engine, trade_row("T1", vanilla(), 10_000_000.0), trade_row("T2", snowball(), 20_000_000.0),
                trade_row("T3", rt, 10_000_000.0))
    isolated = service(engine, worker_process=True)
    try:
        isolated.refresh()
        pids = list(isolated._worker._pool._processes)
        assert len(pids) == 1 and pids[0] != os.getpid()
        assert os.getpriority(os.PRIO_PROCESS, pids[0]) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 10)
        book_isolated = isolated.latest()
    finally:
        isolated.stop()
    assert isolated._worker._pool is None
    assert book_isolated["timings"]["worker_process"] is True and book_isolated["unvalued"] == []
    in_thread = service(engine)
    in_thread.refresh()
    book = in_thread.latest()
    assert book["timings"]["worker_process"] is False
    assert book["totals"] == book_isolated["totals"]  # same engine, same seeds: the same figures
    assert book["scenario"] == book_isolated["scenario"]


def test_pretrade_on_the_desks_own_quote_line(desk_core):
    """Wired as the server wires it: the desk's quote (fair value through the margin table) of a request, checked
    against the desk's book (no snapshot yet: before is 0) on the market store's newest data."""
    req = {"underlying": "000905.SH", "structure": "vanilla", "option_type": "put", "tenor": "3M",
           "strike_pct": 95, "notional": 200_000_000.0, "side": "client_buys"}
    line = desk_core.price(req)
    assert "error" not in line and "fair_price_pct" in line
    check = desk_core.risk.pretrade(line)
    delta, vega = check["checks"]
    assert (delta["measure"], vega["measure"]) == ("delta_cny", "vega_cny")
    assert delta["before"] == 0.0 and delta["after"] == pytest.approx(-line["greeks"]["delta"] * 2e8 * 0.01, rel=1e-6)
    assert delta["after"] > 0 and vega["after"] < 0  # the desk sells a put: long delta, short vega
    assert check["snapshot_id"] is None and not check["notional_assumed"]
