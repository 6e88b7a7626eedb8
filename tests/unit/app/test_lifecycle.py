"""`FixingService`: closes stored, live trades observed, events recorded once with their notices, on SQLite and
PostgreSQL. Trades are inserted as booked rows (the booking service is not needed to test the lifecycle)."""
import asyncio

import pytest
from sqlalchemy import text
from sqlmodel import select

from otcdesk.app.models import Fixing, ReviewItem, TradeEventRow, TradeRow
from otcdesk.app.repositories import transaction
from otcdesk.app.repositories.sim import SqlSimTranscript
from otcdesk.app.trading.lifecycle import FixingError, notice_id
from otcdesk.pricing_engine.products import product_from_dict
from desk_fixtures import close_desks, desk_on

SNOWBALL = {"structure": "snowball", "underlying": "000905.SH", "underlying_name": "中证500",
            "start_date": "2026-11-20", "maturity_date": "2027-11-22", "tenor": "12M", "ko_pct": 103, "ki_pct": 75,
            "coupon_pct": 15, "initial_price": 6000.0, "lockup_months": 3, "notional": 10_000_000}
KO_CASH = round(10_000_000 * 0.15 * 94 / 365, 2)  # 94 days from 20 Nov 2026 to 22 Feb 2027


@pytest.fixture
def make_desk(db_settings):
    built: list = []
    yield lambda now: desk_on(db_settings.model_copy(update={"now": now}), built,
                              price=lambda req: {"request": req, "error": "not priced here"})
    close_desks(built)


def book(engine, trade_id, product=None, *, status="live", notional=10_000_000, **columns):
    """A booked trade as the booking service leaves it: the priced product with its dates and levels fixed."""
    product = product_from_dict(product or SNOWBALL).to_dict()
    with transaction(engine) as tx:
        tx.trades.add(TradeRow(id=trade_id, order_review_id=f"O-{trade_id}", status=status,
                               institution="示例资产管理有限公司", channel="sim", chat_id="demo", sender_id="张经理",
                               client="张经理", product=product, underlying=product["underlying"],
                               structure=product["structure"], notional=notional, original_notional=notional,
                               price_pct=0.0, premium_cny=0.0, execution={"type": "market"}, booked_by="trader1",
                               **columns))


def trade(engine, trade_id):
    with transaction(engine) as tx:
        row = tx.trades.get(trade_id)
        return row, tx.trades.events(trade_id), tx.trades.transitions(trade_id)


def count(engine, model):
    with transaction(engine) as tx:
        return len(tx.session.exec(select(model)).all())


def actions(engine):
    with transaction(engine) as tx:
        return [a.action for a in tx.audit.entries()]


def test_knock_out_records_the_event_moves_the_trade_and_drafts_a_notice(make_desk):
    desk = make_desk("2027-02-22T16:00:00+08:00")
    book(desk.engine, "T1")
    book(desk.engine, "T2", {**SNOWBALL, "underlying": "000852.SH", "initial_price": 6400.0})  # another underlying
    out = desk.fixings.apply("2027-02-22", {"000905.SH": 6300.0}, "risk1", role="risk")

    [ev] = out["events"]
    assert (ev["trade_id"], ev["type"], ev["date"], ev["cash_cny"]) == ("T1", "knocked_out", "2027-02-22", KO_CASH)
    assert KO_CASH == 386301.37
    assert out["fixings"]["stored"] == {"000905.SH": 6300.0} and out["trades_observed"] == 1
    row, events, steps = trade(desk.engine, "T1")
    assert row.status == "knocked_out" and row.closed_at is not None
    assert [(e.type, e.date, e.cash_cny, e.notice_review_id) for e in events] == \
        [("knocked_out", "2027-02-22", KO_CASH, ev["notice_id"])]
    assert [(s.trigger, s.source, s.dest, s.by, s.role) for s in steps] == \
        [("knock_out", "live", "knocked_out", "risk1", "risk")]
    assert trade(desk.engine, "T2")[0].status == "live"

    [item] = desk.reviews.list("pending")
    assert (item["id"], item["kind"], item["ref_id"], item["group"], item["sender"]) == \
        (notice_id("T1", "knocked_out", "2027-02-22"), "notice", "T1", "demo", "张经理")
    assert "敲出" in item["draft_reply"] and "386,301.37" in item["draft_reply"] and "T1" in item["draft_reply"]
    assert {"market.fixing", "trade.event", "review.open", "trade.knock_out"} <= set(actions(desk.engine))


def test_posting_the_same_fixing_twice_creates_nothing_new(make_desk):
    desk = make_desk("2027-02-22T16:00:00+08:00")
    book(desk.engine, "T1")
    first = desk.fixings.apply("2027-02-22", {"000905.SH": 6300.0}, "risk1")
    audit_rows = len(actions(desk.engine))
    again = desk.fixings.apply("2027-02-22", {"000905.SH": 6300.0}, "risk1")
    assert len(first["events"]) == 1 and again["events"] == []
    assert again["fixings"] == {"stored": {}, "unchanged": {"000905.SH": 6300.0}}
    assert count(desk.engine, TradeEventRow) == 1 and count(desk.engine, ReviewItem) == 1
    assert count(desk.engine, Fixing) == 1 and len(actions(desk.engine)) == audit_rows


def test_a_fixing_after_today_is_refused_and_nothing_is_stored(make_desk):
    desk = make_desk("2027-02-22T10:00:00+08:00")
    book(desk.engine, "T1")
    with pytest.raises(FixingError) as exc:
        desk.fixings.apply("2027-02-23", {"000905.SH": 6300.0}, "risk1")
    assert exc.value.code == "future" and exc.value.status == 422 and "after today (2027-02-22)" in exc.value.message
    assert count(desk.engine, Fixing) == 0 and count(desk.engine, TradeEventRow) == 0
    desk.fixings.apply("2027-02-22", {"000905.SH": 6300.0}, "risk1")  # today itself is allowed
    assert trade(desk.engine, "T1")[0].status == "knocked_out"


@pytest.mark.parametrize("date, closes, says", [
    ("2027/02/22", {"000905.SH": 6300.0}, "not an ISO date"),
    ("2027-02-30", {"000905.SH": 6300.0}, "not an ISO date"),
    (20270222, {"000905.SH": 6300.0}, "not an ISO date"),
    ("2027-02-22", {}, "non-empty"),
    ("2027-02-22", {"000905.SH": -1.0}, "bad close"),
    ("2027-02-22", {"000905.SH": float("nan")}, "bad close"),
    ("2027-02-22", {"000905.SH": "6300"}, "bad close"),
    ("2027-02-22", {"000905.SH": True}, "bad close"),
    ("2027-02-22", {"999999.SH": 10.0}, "unknown underlying"),
])
def test_invalid_fixings_are_refused_with_the_reason(make_desk, date, closes, says):
    desk = make_desk("2027-02-22T16:00:00+08:00")
    with pytest.raises(FixingError) as exc:
        desk.fixings.apply(date, closes, "risk1")
    assert exc.value.code == "invalid" and says in exc.value.message
    assert count(desk.engine, Fixing) == 0


def test_a_non_trading_day_is_ignored_and_says_so(make_desk):
    desk = make_desk("2027-02-22T16:00:00+08:00")
    book(desk.engine, "T1")
    out = desk.fixings.apply("2027-02-20", {"000905.SH": 6300.0}, "risk1")  # a Saturday, and a KO-level close
    assert out["events"] == [] and out["fixings"]["stored"] == {}
    reasons = {(i.get("trade_id"), i["underlying"]): i["reason"] for i in out["ignored"]}
    assert "not a trading day" in reasons[(None, "000905.SH")]
    assert "not a trading day of the trade's calendar XSHG" in reasons[("T1", "000905.SH")]
    assert trade(desk.engine, "T1")[0].status == "live" and count(desk.engine, Fixing) == 0


def test_a_different_close_for_a_stored_day_is_refused(make_desk):
    desk = make_desk("2027-02-22T16:00:00+08:00")
    book(desk.engine, "T1")
    desk.fixings.apply("2027-01-20", {"000905.SH": 6100.0}, "risk1")
    with pytest.raises(FixingError) as exc:
        desk.fixings.apply("2027-01-20", {"000905.SH": 6101.0}, "risk1")
    assert exc.value.code == "conflict" and exc.value.status == 409
    assert exc.value.detail["conflicts"]["000905.SH"]["stored"] == 6100.0
    with transaction(desk.engine) as tx:
        assert tx.market.fixing("000905.SH", "2027-01-20").close == 6100.0


def test_knock_in_is_recorded_once_and_the_trade_matures_with_its_loss(make_desk):
    desk = make_desk("2027-11-22T16:00:00+08:00")
    book(desk.engine, "T1")
    out = desk.fixings.apply("2026-12-15", {"000905.SH": 4400.0}, "risk1")
    assert [(e["type"], e["cash_cny"]) for e in out["events"]] == [("knocked_in", 0.0)]
    row, _, steps = trade(desk.engine, "T1")
    assert row.status == "live" and row.product["knocked_in"] is True and steps == []
    assert desk.fixings.apply("2026-12-16", {"000905.SH": 4300.0}, "risk1")["events"] == []  # once

    out = desk.fixings.apply("2027-11-22", {"000905.SH": 5400.0}, "risk1")
    [mat] = out["events"]
    assert (mat["type"], mat["cash_cny"]) == ("matured", -1_000_000.0)  # 1e7 × (5400/6000 − 1): the client pays
    row, events, steps = trade(desk.engine, "T1")
    assert row.status == "matured" and [s.trigger for s in steps] == ["mature"]
    assert [e.type for e in events] == ["knocked_in", "matured"]
    assert len(desk.reviews.list("pending")) == 2


def test_maturity_without_knock_in_pays_the_coupon(make_desk):
    desk = make_desk("2027-11-22T16:00:00+08:00")
    book(desk.engine, "T1", notional=5_000_000)
    [mat] = desk.fixings.apply("2027-11-22", {"000905.SH": 6000.0}, "risk1")["events"]
    assert mat["cash_cny"] == round(5_000_000 * 0.15 * 367 / 365, 2)


def test_a_trade_that_is_not_live_is_not_observed(make_desk):
    desk = make_desk("2027-02-22T16:00:00+08:00")
    book(desk.engine, "T1", status="closed")
    book(desk.engine, "T2", status="pending_second_approval")
    out = desk.fixings.apply("2027-02-22", {"000905.SH": 6300.0}, "risk1")
    assert out["events"] == [] and out["trades_observed"] == 0
    assert trade(desk.engine, "T1")[0].status == "closed" and trade(desk.engine, "T2")[0].status == "pending_second_approval"


def test_a_client_selling_the_option_pays_the_payoff(make_desk):
    desk = make_desk("2026-12-21T16:00:00+08:00")
    book(desk.engine, "P1", {"structure": "vanilla", "underlying": "000300.SH", "start_date": "2026-11-20",
                             "maturity_date": "2026-12-21", "option_type": "put", "strike_pct": 100,
                             "initial_price": 4000.0, "side": "client_sells"}, notional=2_000_000)
    [mat] = desk.fixings.apply("2026-12-21", {"000300.SH": 3600.0}, "risk1")["events"]
    assert (mat["type"], mat["cash_cny"]) == ("matured", -200_000.0)
    assert "贵方应付我司 200,000.00 元" in desk.reviews.list("pending")[0]["draft_reply"]


def test_phoenix_memory_coupons_through_the_service(make_desk):
    desk = make_desk("2027-01-20T16:00:00+08:00")
    book(desk.engine, "X1", {**SNOWBALL, "structure": "phoenix", "coupon_pct": 12, "coupon_barrier_pct": 80,
                             "memory": True})
    [low] = desk.fixings.apply("2026-12-21", {"000905.SH": 4700.0}, "risk1")["events"]
    assert (low["type"], low["cash_cny"]) == ("coupon", 0.0)
    assert trade(desk.engine, "X1")[0].product["unpaid_coupons"] == 1
    [paid] = desk.fixings.apply("2027-01-20", {"000905.SH": 5000.0}, "risk1")["events"]
    assert paid["cash_cny"] == round(10_000_000 * 0.12 * 61 / 365, 2)
    assert trade(desk.engine, "X1")[0].product["unpaid_coupons"] == 0


def test_initial_price_pending_is_fixed_by_the_start_date_close(make_desk):
    desk = make_desk("2027-02-22T16:00:00+08:00")
    pending = {k: v for k, v in SNOWBALL.items() if k != "initial_price"}
    book(desk.engine, "T9", {**pending, "start_date": "2026-12-01", "maturity_date": "2027-12-01"},
         initial_price_pending=True)
    early = desk.fixings.apply("2026-11-30", {"000905.SH": 5000.0}, "risk1")  # before its start: nothing
    assert early["initial_prices"] == [] and early["skipped"] == []
    late = desk.fixings.apply("2026-12-15", {"000905.SH": 6000.0}, "risk1")  # after its start, start close missing
    [skipped] = late["skipped"]
    assert skipped["trade_id"] == "T9" and "no close of 000905.SH is stored for its start date 2026-12-01" in \
        skipped["reason"]
    out = desk.fixings.apply("2026-12-01", {"000905.SH": 6010.0}, "risk1")
    assert out["initial_prices"] == [{"trade_id": "T9", "date": "2026-12-01", "initial_price": 6010.0}]
    row = trade(desk.engine, "T9")[0]
    assert row.product["initial_price"] == 6010.0 and row.initial_price_pending is False
    assert "trade.initial_price" in actions(desk.engine)
    # its knock-out level is now 103% of 6010 = 6190.3 (first observation 1 Mar 2027)
    assert desk.fixings.apply("2027-02-22", {"000905.SH": 6300.0}, "risk1")["events"] == []


def test_a_crash_between_event_and_notice_leaves_neither(make_desk, db_settings):
    """A real database failure (a trigger refusing the notice's insert) rolls the trade's event back with it."""
    desk = make_desk("2027-02-22T16:00:00+08:00")
    book(desk.engine, "T1")
    book(desk.engine, "T2", {**SNOWBALL, "initial_price": 5900.0})
    postgres = db_settings.is_postgres
    with desk.engine.begin() as conn:
        if postgres:
            conn.execute(text("CREATE FUNCTION refuse_notice() RETURNS trigger AS $$ BEGIN IF NEW.ref_id = 'T1' THEN "
                              "RAISE EXCEPTION 'disk full'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"))
            conn.execute(text("CREATE TRIGGER refuse_notice BEFORE INSERT ON review_item FOR EACH ROW "
                              "EXECUTE FUNCTION refuse_notice()"))
        else:
            conn.execute(text("CREATE TRIGGER refuse_notice BEFORE INSERT ON review_item WHEN NEW.ref_id = 'T1' "
                              "BEGIN SELECT RAISE(ABORT, 'disk full'); END"))
    out = desk.fixings.apply("2027-02-22", {"000905.SH": 6300.0}, "risk1")
    assert [e["trade_id"] for e in out["events"]] == ["T2"]  # the other trade is not held up
    [skipped] = out["skipped"]
    assert skipped["trade_id"] == "T1" and "disk full" in skipped["reason"]
    row, events, steps = trade(desk.engine, "T1")
    assert row.status == "live" and events == [] and steps == []
    with desk.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER refuse_notice" + (" ON review_item" if postgres else "")))
    again = desk.fixings.apply("2027-02-22", {"000905.SH": 6300.0}, "risk1")
    assert [(e["trade_id"], e["type"]) for e in again["events"]] == [("T1", "knocked_out")]
    assert trade(desk.engine, "T1")[0].status == "knocked_out" and count(desk.engine, ReviewItem) == 2


def test_an_approved_notice_is_sent_to_the_group(make_desk):
    desk = make_desk("2027-02-22T16:00:00+08:00")
    book(desk.engine, "T1")
    [ev] = desk.fixings.apply("2027-02-22", {"000905.SH": 6300.0}, "risk1")["events"]
    assert desk.reviews.approve(ev["notice_id"], "trader1")["status"] == "approved"
    assert asyncio.run(desk.outbox.dispatch()) == 1
    [msg] = [m for m in SqlSimTranscript(desk.engine).messages("demo") if m["from_bot"]]
    assert msg["text"].startswith("@张经理") and "敲出通知" in msg["text"] and "386,301.37" in msg["text"]
    assert desk.reviews.get(ev["notice_id"])["status"] == "sent"
