"""TradeService on real databases (a SQLite file, the local PostgreSQL): booking an approved order item with its
terms frozen, four eyes, idempotence and crashes between the booking's steps, the confirmation, unwinds."""
from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
import threading
from datetime import date
from pathlib import Path

import pytest
from sqlmodel import select

from otcdesk.app.clock import Clock
from otcdesk.app.demo import seed_demo
from otcdesk.app.desk.outbox import OutboxDispatcher
from otcdesk.app.events import EventBus, readable_kinds
from otcdesk.app.market import market_for
from otcdesk.app.models import AuditLog, OutboxMessage, TradeEventRow, TradeRow, TradeTransitionRow
from otcdesk.app.repositories import transaction
from otcdesk.app.trading.booking import TradeService, trade_id_for
from otcdesk.app.trading.confirmation import ConfirmationError, find_fonts, sha256
from otcdesk.pricing_engine.schedule import add_tenor, get_calendar
from otcdesk.workflows.trade import LifecycleError
from booking_fixtures import NOW, SNOWBALL, VANILLA, add_order, add_quote, add_unwind, pdf_text, priced_lines

REPO = Path(__file__).resolve().parents[3]
FOUR_EYES = 50_000_000.0


@pytest.fixture
def engine(db_engine):
    seed_demo(db_engine)
    return db_engine


@pytest.fixture
def make_service(engine, tmp_path):
    def make(now: str | None = NOW, **kw) -> TradeService:
        events = EventBus()
        kw.setdefault("four_eyes_notional", FOUR_EYES)
        kw.setdefault("quote_valid_s", 600.0)
        kw.setdefault("data_dir", tmp_path)
        return TradeService(engine, events, OutboxDispatcher(engine, events), Clock(now), **kw)

    return make


@pytest.fixture
def service(make_service):
    return make_service()


def _count(engine, model, **where) -> int:
    with transaction(engine) as tx:
        q = select(model)
        for k, v in where.items():
            q = q.where(getattr(model, k) == v)
        return len(list(tx.session.exec(q)))


def _audits(engine, action: str, subject: str | None = None) -> list[AuditLog]:
    with transaction(engine) as tx:
        q = select(AuditLog).where(AuditLog.action == action)
        if subject:
            q = q.where(AuditLog.subject == subject)
        return list(tx.session.exec(q))


# ---- booking ---------------------------------------------------------------------------------------------------
def test_an_order_below_the_limit_books_live_with_its_terms_frozen_on_the_exchange_calendar(engine, make_service):
    service = make_service(now="2027-10-01T10:00:00+08:00")  # National Day: the trade date rolls to the 8th
    quote = add_quote(engine)
    line = priced_lines()[0]
    rid = add_order(engine, quote, notional=20_000_000, account="稳健1号")
    out = service.book(rid, "trader1")

    cal = get_calendar("XSHG")
    trade_date = cal.roll_forward(date(2027, 10, 1))
    assert trade_date == date(2027, 10, 8) and not cal.is_trading_day(date(2027, 10, 1))
    assert out["status"] == "live" and out["trade_id"] == trade_id_for(rid) and len(out["trade_id"]) == 11
    trade = service.get(out["trade_id"])
    p = trade["product"]
    assert p["start_date"] == p["trade_date"] == trade_date.isoformat() == trade["trade_date"]
    assert p["maturity_date"] == cal.roll_forward(add_tenor(trade_date, "12M")).isoformat()
    assert p["initial_price"] == market_for("000905.SH")["spot"] and not trade["initial_price_pending"]
    assert p["coupon_pct"] == pytest.approx(line["solved"]["coupon_pct"])
    assert (p["ko_pct"], p["ki_pct"], p["underlying"], p["structure"]) == (103, 75, "000905.SH", "snowball")
    obs = [date.fromisoformat(d) for d in p["ko_observation_dates"]]
    assert obs[-1].isoformat() == p["maturity_date"] and len(obs) == 10  # monthly after a 3-month lock-up
    assert all(cal.is_trading_day(d) for d in obs) and obs == sorted(obs) and obs[0] >= date(2028, 1, 8)
    assert trade["notional"] == trade["original_notional"] == 20_000_000
    assert trade["premium_cny"] == round(line["price_pct"] / 100 * 20_000_000, 2)
    assert trade["price_pct"] == pytest.approx(line["price_pct"])
    assert (trade["institution"], trade["group"], trade["client"], trade["quote_id"]) == \
        ("示例资产管理有限公司", "demo", "张经理", quote)
    assert trade["account"] == "稳健1号" and trade["execution"]["type"] == "market"
    assert [(s["trigger"], s["source"], s["dest"], s["by"]) for s in trade["transitions"]] == \
        [("book", "new", "live", "trader1")]
    assert [(a["user"], a["role"]) for a in trade["approvals"]] == [("trader1", "trader")]
    assert trade["events"] == []
    assert out["message"].startswith(f"【成交确认 {out['trade_id']}】") and "2,000万元" in out["message"]
    assert "2027-10-08" in out["message"] and "6,050.00" in out["message"] and "产品户：稳健1号" in out["message"]
    assert f"{p['coupon_pct']:.2f}%" in out["message"]
    assert len(_audits(engine, "trade.book", f"trade:{out['trade_id']}")) == 1
    assert trade["confirmation"]["sha256"] == sha256((service.confirmations.path(out["trade_id"])).read_bytes())


def test_the_desks_quote_is_booked_not_the_fair_value_and_unwinds_take_the_tables_unwind_margin(engine,
                                                                                                make_service):
    from otcdesk.app.quoting import quote_request
    from otcdesk.app.trading.margins import MarginPolicy
    from otcdesk.ner import parse_message

    policy = MarginPolicy(engine)  # the margin table seeded from app/data/margins.csv
    line = quote_request(parse_message(SNOWBALL).requests[0], policy, valuation_date=date(2026, 12, 1))
    assert line["solved"]["coupon_pct"] < line["fair_solved"]["coupon_pct"]  # the quote is below the fair coupon
    service = make_service(unwind_margin=policy.unwind_margin_pct)
    tid = service.book(add_order(engine, add_quote(engine), lines=[line]), "trader1")["trade_id"]
    trade = service.get(tid)
    assert trade["product"]["coupon_pct"] == pytest.approx(line["solved"]["coupon_pct"])
    assert trade["price_pct"] == pytest.approx(line["price_pct"])
    quote = service.unwind_quote(tid)
    margin = policy.unwind_margin_pct("snowball", (date.fromisoformat(trade["product"]["maturity_date"])
                                                   - date(2026, 12, 1)).days)
    assert quote["margin_pct"] == margin > 0 and quote["price_pct"] == pytest.approx(quote["fair_price_pct"] - margin)
    # the client holds a coupon below fair: on the day it was struck it is worth about the quoting margin less
    assert quote["fair_price_pct"] == pytest.approx(line["quoted_value_pct"], abs=0.05) and quote["fair_price_pct"] < 0
    no_table = make_service(unwind_margin=lambda structure, days: policy.unwind_margin_pct("nosuch", 99_999))
    assert no_table.unwind_quote(tid)["code"] == "invalid"


def test_a_vanilla_order_books_its_premium(engine, service):
    quote = add_quote(engine, VANILLA)
    line = priced_lines(VANILLA)[0]
    out = service.book(add_order(engine, quote, text=VANILLA, notional=3_000_000,
                                 execution={"type": "limit", "limit_price": 4100.0}), "trader1")
    trade = service.get(out["trade_id"])
    assert line["price_pct"] > 0.5 and trade["premium_cny"] == round(line["price_pct"] / 100 * 3_000_000, 2)
    assert f"{trade['premium_cny']:,.2f} 元" in out["message"] and "限价 4,100.00" in out["message"]
    assert trade["product"]["maturity_date"] == get_calendar().roll_forward(date(2027, 1, 1)).isoformat()


@pytest.mark.parametrize("kind,words", [("close", "收盘价确定"), ("vwap", "VWAP 成交量加权均价确定")])
def test_an_order_built_at_the_close_or_by_vwap_leaves_the_initial_price_pending(engine, service, kind, words):
    out = service.book(add_order(engine, add_quote(engine), execution={"type": kind}), "trader1")
    trade = service.get(out["trade_id"])
    assert trade["initial_price_pending"] and "initial_price" not in trade["product"]
    assert f"以 2026-12-01 {words}" in out["message"]
    text = pdf_text(service.confirmation_pdf(out["trade_id"], "compliance1")[0])
    assert f"待定：以 2026-12-01 {words}" in text and "103%（期初价格确定后计算）" in text


def test_a_pending_initial_price_is_filled_by_the_start_dates_close_and_the_trade_then_knocks_out(engine, service):
    from otcdesk.app.desk.reviews import ReviewOpener
    from otcdesk.app.trading.lifecycle import FixingService
    from otcdesk.app.trading.market_data import MarketDataService

    tid = service.book(add_order(engine, add_quote(engine), execution={"type": "close"}), "trader1")["trade_id"]
    clock = Clock("2027-03-01T16:00:00+08:00")  # the first knock-out observation day of the booked schedule
    fixings = FixingService(engine, ReviewOpener(engine, EventBus(), 120.0), clock, MarketDataService(engine, clock))
    filled = fixings.apply("2026-12-01", {"000905.SH": 6000.0}, "risk1")
    assert filled["initial_prices"] == [{"trade_id": tid, "date": "2026-12-01", "initial_price": 6000.0}]
    trade = service.get(tid)
    assert trade["product"]["initial_price"] == 6000.0 and not trade["initial_price_pending"]
    assert trade["product"]["ko_observation_dates"][0] == "2027-03-01"
    out = fixings.apply("2027-03-01", {"000905.SH": 6000.0 * 1.03}, "risk1")  # at the knock-out level
    assert [(e["trade_id"], e["type"]) for e in out["events"]] == [(tid, "knocked_out")]
    assert service.get(tid)["status"] == "knocked_out"


def test_booking_twice_or_concurrently_books_one_trade(engine, make_service):
    rid = add_order(engine, add_quote(engine))
    services = [make_service() for _ in range(4)]
    results, errors = [], []

    def run(s):
        try:
            results.append(s.book(rid, "trader1"))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in services]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and len(results) == 4
    assert {r["trade_id"] for r in results} == {trade_id_for(rid)} and {r["status"] for r in results} == {"live"}
    assert services[0].book(rid, "trader1") == results[0]
    assert _count(engine, TradeRow) == 1 and _count(engine, TradeTransitionRow) == 1
    assert len(_audits(engine, "trade.book")) == 1 and _count(engine, TradeEventRow, type="confirmed") == 1


def test_orders_that_must_not_be_booked_are_refused_with_the_reason(engine, make_service):
    service = make_service(quote_valid_s=600)
    q = add_quote(engine)
    cases = {
        "not approved": (add_order(engine, q, approve=False), "conflict", "approved"),
        "a quote item": (q, "conflict", "not an order"),
        "zero notional": (add_order(engine, q, notional=0), "invalid", "notional"),
        "negative notional": (add_order(engine, q, notional=-5e6), "invalid", "notional"),
        "no execution": (add_order(engine, q, execution={"type": None}), "invalid", "execution"),
        "stale quote": (add_order(engine, add_quote(engine, age_s=700)), "conflict", "reprice"),
        "no quote": (add_order(engine, "QNOSUCHQUOTE"), "invalid", "no priced quote"),
        "not onboarded": (add_order(engine, add_quote(engine, chat_id="prospect"), chat_id="prospect"),
                          "forbidden", "KYC"),
        "another group's quote": (add_order(engine, add_quote(engine, chat_id="elsewhere")), "forbidden", "group"),
        "two lines": (add_order(engine, q, lines=priced_lines() + priced_lines(VANILLA)), "invalid", "order.line"),
        "unknown": ("QNOSUCH", "not_found", "no review item"),
    }
    for name, (rid, code, words) in cases.items():
        with pytest.raises(LifecycleError) as exc:
            service.book_or_raise(rid, "trader1")
        assert exc.value.code == code and words in exc.value.message, name
        answer = service.book(rid, "trader1")  # what the desk graph gets: an answer, audited
        assert (answer["trade_id"], answer["code"], answer["error"]) == (None, code, exc.value.message), name
        refused = _audits(engine, "trade.book_refused", f"review:{rid}")
        assert refused and refused[-1].detail == {"code": code, "reason": exc.value.message}, name
    assert _count(engine, TradeRow) == 0 and not _audits(engine, "trade.book")
    two = add_order(engine, q, lines=priced_lines() + priced_lines(VANILLA), order={
        "quote_id": q, "notional": 1e6, "line": 2, "execution": {"type": "market"}, "account": None})
    assert service.get(service.book(two, "trader1")["trade_id"])["structure"] == "vanilla"
    one = add_order(engine, q, order={  # the desk graph's item: the one line ordered, numbered as in the quote
        "quote_id": q, "notional": 1e6, "line": 2, "execution": {"type": "market"}, "account": None})
    assert service.get(service.book(one, "trader1")["trade_id"])["structure"] == "snowball"


# ---- crashes ---------------------------------------------------------------------------------------------------
class Crash(Exception):
    pass


@pytest.mark.parametrize("step", ["trade.added", "transition.recorded", "audited"])
def test_a_failure_between_the_booking_steps_leaves_no_trade_and_a_retry_books_one(engine, make_service, step):
    rid = add_order(engine, add_quote(engine))

    def fault(at):
        if at == step:
            raise Crash(at)

    with pytest.raises(Crash):
        make_service(fault=fault).book(rid, "trader1")
    assert _count(engine, TradeRow) == 0 and _count(engine, TradeTransitionRow) == 0
    assert not _audits(engine, "trade.book")
    out = make_service().book(rid, "trader1")
    assert out["status"] == "live" and _count(engine, TradeRow) == 1 and _count(engine, TradeTransitionRow) == 1


KILLER = textwrap.dedent("""
    import os, signal, sys
    from otcdesk.app.clock import Clock
    from otcdesk.app.db import make_engine
    from otcdesk.app.desk.outbox import OutboxDispatcher
    from otcdesk.app.events import EventBus
    from otcdesk.app.trading.booking import TradeService

    url, data_dir, review_id, step = sys.argv[1:5]
    engine = make_engine(url)
    bus = EventBus()

    def fault(at):
        if at == step:
            os.kill(os.getpid(), signal.SIGKILL)

    TradeService(engine, bus, OutboxDispatcher(engine, bus), Clock(%r), four_eyes_notional=5e7, quote_valid_s=600,
                 data_dir=data_dir, fault=fault).book(review_id, "trader1")
    print("not killed")
""" % NOW)


@pytest.mark.parametrize("step", ["transition.recorded", "audited", "committed"])
def test_a_process_killed_during_booking_leaves_no_trade_or_one_whole_trade(engine, make_service, db_settings,
                                                                           tmp_path, step):
    rid = add_order(engine, add_quote(engine))
    script = tmp_path / "killer.py"
    script.write_text(KILLER, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, str(script), db_settings.db_url, str(tmp_path), rid, step], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stdout + proc.stderr
    engine.dispose()  # the killed process's connections are gone; start from fresh ones
    tid = trade_id_for(rid)
    if step == "committed":  # the trade is whole; its confirmation (an effect after the commit) was not made
        assert _count(engine, TradeRow) == 1 and _count(engine, TradeTransitionRow) == 1
        assert len(_audits(engine, "trade.book")) == 1 and _count(engine, TradeEventRow, type="confirmed") == 0
    else:
        assert _count(engine, TradeRow) == 0 and _count(engine, TradeTransitionRow) == 0
        assert not _audits(engine, "trade.book")
    service = make_service()
    assert service.book(rid, "trader1")["trade_id"] == tid  # the retry (a resumed graph) finishes the booking
    assert _count(engine, TradeRow) == 1 and _count(engine, TradeTransitionRow) == 1
    assert len(_audits(engine, "trade.book")) == 1 and _count(engine, TradeEventRow, type="confirmed") == 1
    assert service.get(tid)["confirmation"] is not None


# ---- four eyes -------------------------------------------------------------------------------------------------
def test_above_the_limit_the_trade_waits_for_a_risk_user_who_did_not_book_it(engine, service):
    rid = add_order(engine, add_quote(engine), notional=80_000_000)
    out = service.book(rid, "trader1")
    tid = out["trade_id"]
    assert out["status"] == "pending_second_approval" and out["message"] is None
    assert _count(engine, OutboxMessage, review_id=rid) == 0  # the client hears nothing
    assert service.get(tid)["confirmation"] is None
    with pytest.raises(LifecycleError) as exc:
        service.confirmation_pdf(tid, "compliance1")
    assert exc.value.code == "conflict"
    for user, role in (("trader1", "risk"), ("trader2", "trader"), ("comp1", "compliance")):
        with pytest.raises(LifecycleError) as exc:
            service.approve_second(tid, user, role)
        assert exc.value.code == "forbidden", (user, role)
    assert service.get(tid)["status"] == "pending_second_approval"

    trade = service.approve_second(tid, "risk1", "risk")
    assert trade["status"] == "live"
    assert [(a["user"], a["role"]) for a in trade["approvals"]] == [("trader1", "trader"), ("risk1", "risk")]
    assert [(s["source"], s["dest"]) for s in trade["transitions"]] == \
        [("new", "pending_second_approval"), ("pending_second_approval", "live")]
    with transaction(engine) as tx:
        rows = list(tx.session.exec(select(OutboxMessage).where(OutboxMessage.review_id == rid)))
    assert len(rows) == 1 and rows[0].text.startswith(f"【成交确认 {tid}】") and "8,000万元" in rows[0].text
    assert rows[0].chat_id == "demo" and rows[0].mention_name == "张经理"
    assert service.book(rid, "trader1") == {"trade_id": tid, "status": "live", "message": rows[0].text}
    assert len(_audits(engine, "trade.approve_second", f"trade:{tid}")) == 1
    assert len(_audits(engine, "outbox.enqueue", f"review:{rid}")) == 1
    assert trade["confirmation"]["sha256"] == sha256(service.confirmation_pdf(tid, "compliance1")[0])
    with pytest.raises(LifecycleError) as exc:
        service.approve_second(tid, "risk2", "risk")
    assert exc.value.code == "conflict"


def test_at_the_limit_exactly_no_second_approval_is_needed(engine, service):
    out = service.book(add_order(engine, add_quote(engine), notional=FOUR_EYES), "trader1")
    assert out["status"] == "live" and out["message"]


# ---- confirmation ----------------------------------------------------------------------------------------------
def test_the_confirmation_is_a_chinese_pdf_of_the_frozen_terms_with_a_stable_hash(engine, service):
    quote = add_quote(engine)
    out = service.book(add_order(engine, quote, notional=20_000_000, account="稳健1号",
                                 execution={"type": "pov", "pov_pct": 25, "limit_price": 6100}), "trader1")
    tid = out["trade_id"]
    trade = service.get(tid)
    data, digest = service.confirmation_pdf(tid, "compliance1")
    assert data[:5] == b"%PDF-" and digest == sha256(data) == trade["confirmation"]["sha256"]
    text = pdf_text(data)
    p = trade["product"]
    for expected in ("场外衍生品交易确认书", tid, quote, "示例资产管理有限公司", "稳健1号", "张经理", "中证500（000905.SH）",
                     "雪球", "20,000,000.00 元", p["start_date"], p["maturity_date"], "6,050.00",
                     f"103%（{6050 * 1.03:,.2f}）", f"75%（{6050 * 0.75:,.2f}）", f"{p['coupon_pct']:.2f}%",
                     "POV 跟量 25%（限价 6,100.00）", "乙方买入期权", "敲出观察日（10 个）", p["ko_observation_dates"][0]):
        assert expected in text, expected
    path = service.confirmations.path(tid)
    path.unlink()  # the file is gone: redrawn from the stored terms, byte for byte
    assert service.confirmation_pdf(tid, "compliance1") == (data, digest) and path.read_bytes() == data
    path.write_bytes(data[:-10] + b"tampered!\n")
    assert service.confirmation_pdf(tid, "risk1")[0] == data
    assert len(_audits(engine, "trade.confirmation", f"trade:{tid}")) == 1
    downloads = _audits(engine, "trade.confirmation.download", f"trade:{tid}")
    assert [a.actor for a in downloads] == ["compliance1", "compliance1", "risk1"]


def test_without_a_cjk_font_the_trade_still_books_and_the_confirmation_fails_clearly(engine, make_service, tmp_path):
    with pytest.raises(ConfirmationError, match="OTCDESK_CJK_FONT"):
        find_fonts(str(tmp_path / "no-such-font.ttf"))
    latin_only = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
    if not Path(latin_only).is_file():
        pytest.skip("DejaVuSans (fonts-dejavu-core) is not installed")
    broken = make_service(cjk_font=latin_only)
    out = broken.book(add_order(engine, add_quote(engine)), "trader1")
    assert out["status"] == "live" and broken.get(out["trade_id"])["confirmation"] is None
    failed = _audits(engine, "trade.confirmation_failed", f"trade:{out['trade_id']}")
    assert len(failed) == 1 and "no Chinese glyphs" in failed[0].detail["error"]
    with pytest.raises(ConfirmationError, match="fonts-droid-fallback"):
        broken.confirmation_pdf(out["trade_id"], "compliance1")
    data, digest = make_service().confirmation_pdf(out["trade_id"], "compliance1")  # a font now: generated
    assert "场外衍生品交易确认书" in pdf_text(data) and broken.get(out["trade_id"])["confirmation"]["sha256"] == digest


# ---- unwinds ---------------------------------------------------------------------------------------------------
def test_an_unwind_is_priced_on_todays_market_minus_the_unwind_margin(engine, make_service):
    moved = {"spot": 6050.0}
    service = make_service(market=lambda u: {**market_for(u), "spot": moved["spot"]},
                           unwind_margin=lambda structure, days: 0.5 if structure == "snowball" else 0.0)
    tid = service.book(add_order(engine, add_quote(engine), notional=20_000_000), "trader1")["trade_id"]
    booked = service.get(tid)
    flat = service.unwind_quote(tid)
    assert flat["fair_price_pct"] == pytest.approx(booked["price_pct"], abs=0.05)  # same day, same market
    assert flat["margin_pct"] == 0.5 and flat["price_pct"] == pytest.approx(flat["fair_price_pct"] - 0.5)
    assert flat["value_cny"] == pytest.approx(flat["price_pct"] / 100 * 20_000_000, abs=0.01)
    moved["spot"] = 6050.0 * 1.05
    up = service.unwind_quote(tid, 5_000_000)
    assert up["fair_price_pct"] > flat["fair_price_pct"] + 0.5  # the client is long the snowball: spot up, worth more
    assert up["notional"] == 5_000_000 and up["market"]["spot"] == pytest.approx(6352.5)
    for bad in (0, -1, 30_000_000):
        with pytest.raises(LifecycleError) as exc:
            service.unwind_quote_or_raise(tid, bad)
        assert exc.value.code == "invalid"
        assert service.unwind_quote(tid, bad) == {"error": exc.value.message, "code": "invalid", "trade_id": tid}


def test_a_partial_then_a_full_unwind(engine, make_service):
    service = make_service()
    tid = service.book(add_order(engine, add_quote(engine), notional=20_000_000), "trader1")["trade_id"]
    shown = {"price_pct": -1.25, "fair_price_pct": -0.75, "margin_pct": 0.5}
    part = add_unwind(engine, tid, notional=5_000_000, detail={"unwind_quote": shown})
    out = service.unwind(part, "trader1")
    assert out["status"] == "live" and out["cash_cny"] == round(-1.25 / 100 * 5_000_000, 2)
    assert "已部分平仓" in out["message"] and "1,500万元" in out["message"] and "贵司支付我司" in out["message"]
    assert service.unwind(part, "trader1") == out  # idempotent per item
    trade = service.get(tid)
    assert trade["notional"] == 15_000_000 and trade["original_notional"] == 20_000_000
    assert [(e["type"], e["cash_cny"], e["detail"]["notional"]) for e in trade["events"]] == \
        [("unwound", out["cash_cny"], 5_000_000)]
    assert len(_audits(engine, "trade.unwind", f"trade:{tid}")) == 1
    with pytest.raises(LifecycleError) as exc:  # more than is live
        service.unwind_or_raise(add_unwind(engine, tid, notional=16_000_000), "trader1")
    assert exc.value.code == "invalid"
    with pytest.raises(LifecycleError) as exc:  # another group's client cannot unwind this group's trade
        service.unwind_or_raise(add_unwind(engine, tid, notional=1_000_000, chat_id="elsewhere"), "trader1")
    assert exc.value.code == "forbidden"

    later = make_service(now="2026-12-02T10:00:00+08:00")  # the next trading day: the rest, priced from the book
    full = later.unwind(add_unwind(engine, tid, notional=None), "trader1")
    trade = later.get(tid)
    assert full["status"] == "closed" == trade["status"] and trade["closed_at"] and "已全部平仓" in full["message"]
    assert trade["transitions"][-1]["trigger"] == "close" and trade["transitions"][-1]["dest"] == "closed"
    assert [e["date"] for e in trade["events"]] == ["2026-12-01", "2026-12-02"]
    assert trade["events"][-1]["detail"]["full"] and trade["events"][-1]["detail"]["notional"] == 15_000_000
    assert math.isfinite(full["cash_cny"])
    assert later.unwind_quote(tid)["code"] == "conflict"
    again = later.unwind(add_unwind(engine, tid, notional=None), "trader1")
    assert again["code"] == "conflict" and again["message"] is None and later.get(tid)["status"] == "closed"


# ---- views -----------------------------------------------------------------------------------------------------
def test_listing_filters_by_status_newest_first_and_holdings_list_the_groups_live_trades(engine, service):
    q = add_quote(engine)
    first = service.book(add_order(engine, q, notional=1e7), "trader1")["trade_id"]
    big = service.book(add_order(engine, q, notional=9e7), "trader1")["trade_id"]
    last = service.book(add_order(engine, q, notional=2e7), "trader1")["trade_id"]
    assert [t["id"] for t in service.list()] == [last, big, first]
    assert [t["id"] for t in service.list("pending_second_approval")] == [big]
    assert [t["id"] for t in service.list("live", limit=1)] == [last]
    assert [t["id"] for t in service.holdings("sim", "demo")] == [first, last]
    assert service.holdings("sim", "elsewhere") == []
    with pytest.raises(LifecycleError) as exc:
        service.list("alive")
    assert exc.value.code == "invalid"
    with pytest.raises(LifecycleError) as exc:
        service.get("TNOSUCH")
    assert exc.value.code == "not_found"


def test_trade_events_reach_trader_risk_and_compliance_only():
    for role in ("trader", "risk", "compliance"):
        assert "trade" in readable_kinds(role, demo=False)
    for role in ("sales", "admin"):
        assert "trade" not in readable_kinds(role, demo=False)
