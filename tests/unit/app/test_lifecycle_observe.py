"""`trading.lifecycle.observe`: one close on one booked product, on the pricing engine's own schedule.

Amounts are per unit of notional to the holder; the expected values are computed by hand from the term sheet
(days counted on the calendar, ACT/365) rather than by the code under test.
"""
import datetime as dt

import pytest

from otcdesk.app.trading.lifecycle import CannotObserve, NotObserved, TradeState, observe
from otcdesk.pricing_engine.products import product_from_dict

D = dt.date
S0 = 6000.0
SNOWBALL = {"structure": "snowball", "underlying": "000905.SH", "start_date": "2026-11-20", "tenor": "12M",
            "ko_pct": 103, "ki_pct": 75, "coupon_pct": 15, "initial_price": S0, "lockup_months": 3}


def spec(**changes):
    return product_from_dict({**SNOWBALL, **changes})


def types(events):
    return [e.type for e in events]


# ---- snowball ---------------------------------------------------------------------------------
def test_knock_out_pays_the_coupon_accrued_from_the_start():
    [ev] = observe(spec(), D(2027, 2, 22), 6300.0)
    days = 10 + 31 + 31 + 22  # 20 Nov 2026 → 22 Feb 2027 (20 Feb is a Saturday: the observation rolls to Monday)
    assert ev.type == "knocked_out"
    assert ev.amount == pytest.approx(0.15 * days / 365, abs=1e-15)
    assert ev.detail["level"] == pytest.approx(6180.0) and ev.detail["accrual_days"] == 94
    assert (ev.detail["observation"], ev.detail["observations"]) == (1, 10)


def test_knock_out_is_at_or_above_the_level_only():
    assert types(observe(spec(), D(2027, 2, 22), 6180.0)) == ["knocked_out"]
    assert observe(spec(), D(2027, 2, 22), 6179.99) == []


def test_no_knock_out_inside_the_lock_up_or_between_observation_dates():
    assert observe(spec(), D(2027, 1, 20), 7000.0) == []  # month 2 of a 3-month lock-up
    assert observe(spec(), D(2027, 2, 23), 7000.0) == []  # the day after an observation date


def test_knock_in_is_observed_daily_and_recorded_once():
    [ev] = observe(spec(), D(2026, 12, 15), 4400.0)
    assert ev.type == "knocked_in" and ev.amount == 0 and ev.detail["level"] == pytest.approx(4500.0)
    assert types(observe(spec(), D(2026, 12, 16), 4500.0)) == ["knocked_in"]  # at the level counts
    assert observe(spec(), D(2026, 12, 16), 4500.01) == []
    assert observe(spec(), D(2026, 12, 16), 4000.0, TradeState(knocked_in=True)) == []
    assert observe(spec(knocked_in=True), D(2026, 12, 16), 4000.0) == []


def test_a_knock_in_at_maturity_only_is_not_observed_before():
    european = spec(ki_observation="maturity")
    assert observe(european, D(2026, 12, 15), 4000.0) == []
    [ki, mat] = observe(european, D(2027, 11, 22), 4200.0)
    assert (ki.type, mat.type) == ("knocked_in", "matured")
    assert mat.amount == pytest.approx(4200 / 6000 - 1)


def test_step_down_levels_follow_the_product():
    stepped = spec(ko_stepdown_pct=1.0)
    assert observe(stepped, D(2027, 2, 22), 6125.0) == []  # first observation: 103%
    [ev] = observe(stepped, D(2027, 3, 22), 6125.0)  # second: 102% = 6120
    assert ev.type == "knocked_out" and ev.detail["level"] == pytest.approx(6120.0)
    assert ev.amount == pytest.approx(0.15 * 122 / 365)  # 94 days + 28 in February 2027


def test_template_step_down_snowball_observes_like_the_built_in():
    tpl = product_from_dict({"structure": "stepdown_snowball", "underlying": "000905.SH", "start_date": "2026-11-20",
                             "tenor": "12M", "ko_pct": 103, "ko_stepdown_pct": 1.0, "ki_pct": 75, "coupon_pct": 15,
                             "initial_price": S0})
    assert observe(tpl, D(2027, 2, 22), 6125.0) == []
    [ev] = observe(tpl, D(2027, 3, 22), 6125.0)
    assert ev.type == "knocked_out" and ev.amount == pytest.approx(0.15 * 122 / 365)
    assert types(observe(tpl, D(2026, 12, 15), 4400.0)) == ["knocked_in"]


def test_maturity_pays_the_full_coupon_without_knock_in_and_the_loss_after_one():
    days = 365 + 2  # 20 Nov 2026 → 22 Nov 2027 (the 20th is a Saturday)
    [mat] = observe(spec(), D(2027, 11, 22), 6000.0)
    assert mat.type == "matured" and mat.amount == pytest.approx(0.15 * days / 365)
    [mat] = observe(spec(), D(2027, 11, 22), 5400.0, TradeState(knocked_in=True))
    assert mat.amount == pytest.approx(-0.10) and mat.detail["knocked_in"] is True
    [mat] = observe(spec(), D(2027, 11, 22), 6100.0, TradeState(knocked_in=True))
    assert mat.amount == 0.0  # knocked in but back above the initial price: no loss, no coupon
    [ki, mat] = observe(spec(), D(2027, 11, 22), 4000.0)  # knocked in on the last day
    assert (ki.type, mat.type) == ("knocked_in", "matured") and mat.amount == pytest.approx(4000 / 6000 - 1)


def test_knock_out_on_the_maturity_date_is_a_knock_out():
    [ev] = observe(spec(), D(2027, 11, 22), 6200.0, TradeState(knocked_in=True))
    assert ev.type == "knocked_out" and ev.amount == pytest.approx(0.15 * 367 / 365)


def test_dates_outside_the_life_of_the_trade():
    assert observe(spec(), D(2026, 11, 20), 1.0) == []  # the start date observes nothing
    with pytest.raises(NotObserved, match="after the trade's maturity"):
        observe(spec(), D(2027, 11, 23), 6000.0)
    with pytest.raises(CannotObserve, match="initial_price"):
        observe(spec(initial_price=None), D(2027, 2, 22), 6300.0)


# ---- phoenix ----------------------------------------------------------------------------------
PHOENIX = {**SNOWBALL, "structure": "phoenix", "coupon_pct": 12, "coupon_barrier_pct": 80}


def test_phoenix_coupon_above_the_barrier_and_none_below():
    ph = product_from_dict(PHOENIX)
    [low] = observe(ph, D(2026, 12, 21), 4700.0)  # 20 Dec is a Sunday; barrier 4800
    assert low.type == "coupon" and low.amount == 0 and low.detail["paid"] is False
    [paid] = observe(ph, D(2027, 1, 20), 5000.0)  # no memory: only this period, 21 Dec → 20 Jan
    assert paid.amount == pytest.approx(0.12 * 30 / 365) and paid.detail["covers"] == ["2027-01-20"]


def test_phoenix_memory_pays_the_missed_coupons_once():
    ph = product_from_dict({**PHOENIX, "memory": True})
    [paid] = observe(ph, D(2027, 1, 20), 5000.0)
    assert paid.amount == pytest.approx(0.12 * (31 + 30) / 365)  # 20 Nov → 21 Dec → 20 Jan
    assert paid.detail["covers"] == ["2026-12-21", "2027-01-20"] and paid.detail["memory_periods"] == 1
    [again] = observe(ph, D(2027, 1, 20), 5000.0, TradeState(covered_coupons=frozenset({"2026-12-21"})))
    assert again.amount == pytest.approx(0.12 * 30 / 365)


def test_phoenix_coupon_then_knock_out_on_one_date():
    ph = product_from_dict(PHOENIX)
    coupon, ko = observe(ph, D(2027, 2, 22), 6300.0)
    assert (coupon.type, ko.type) == ("coupon", "knocked_out")
    assert coupon.amount == pytest.approx(0.12 * 33 / 365)  # 20 Jan → 22 Feb
    assert ko.amount == 0.0  # a phoenix knock-out pays nothing beyond that date's coupon


# ---- options ----------------------------------------------------------------------------------
SHARKFIN = {"structure": "sharkfin", "underlying": "000300.SH", "start_date": "2026-11-20",
            "maturity_date": "2027-05-20", "option_type": "call", "strike_pct": 100, "barrier_pct": 120,
            "rebate_pct": 2, "participation_pct": 100, "initial_price": 4000.0}


def test_sharkfin_watched_at_maturity_pays_the_call_or_the_rebate():
    sf = product_from_dict(SHARKFIN)
    assert observe(sf, D(2027, 3, 1), 5000.0) == []  # not an observation
    [mat] = observe(sf, D(2027, 5, 20), 4400.0)
    assert mat.type == "matured" and mat.amount == pytest.approx(0.10)
    [mat] = observe(sf, D(2027, 5, 20), 5000.0)
    assert mat.type == "matured" and mat.amount == pytest.approx(0.02) and mat.detail["knocked_out"] is True


def test_sharkfin_watched_daily_knocks_out_with_the_rebate_paid_at_maturity():
    sf = product_from_dict({**SHARKFIN, "barrier_monitoring": "daily"})
    [ko] = observe(sf, D(2027, 3, 1), 4800.0)
    assert ko.type == "knocked_out" and ko.amount == pytest.approx(0.02) and ko.detail["pay_date"] == "2027-05-20"


def test_vanilla_put_pays_at_maturity():
    put = product_from_dict({"structure": "vanilla", "underlying": "000300.SH", "start_date": "2026-11-20",
                             "maturity_date": "2026-12-21", "option_type": "put", "strike_pct": 100,
                             "initial_price": 4000.0})
    [mat] = observe(put, D(2026, 12, 21), 3600.0)
    assert mat.amount == pytest.approx(0.10)
    [mat] = observe(put, D(2026, 12, 21), 4100.0)
    assert mat.amount == 0.0


def test_asian_averages_the_stored_closes_and_says_what_is_missing():
    asian = product_from_dict({"structure": "asian", "underlying": "000300.SH", "start_date": "2026-11-20",
                               "maturity_date": "2027-02-22", "option_type": "call", "strike_pct": 100,
                               "fixings": "monthly", "initial_price": 4000.0})
    closes = {D(2026, 12, 21): 4100.0, D(2027, 1, 20): 4300.0}
    [mat] = observe(asian, D(2027, 2, 22), 4600.0, close_on=closes.get)
    assert mat.amount == pytest.approx((4100 + 4300 + 4600) / 3 / 4000 - 1)
    with pytest.raises(CannotObserve, match="1 averaging close"):
        observe(asian, D(2027, 2, 22), 4600.0, close_on={D(2026, 12, 21): 4100.0}.get)
