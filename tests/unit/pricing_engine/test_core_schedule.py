"""Exchange calendar (XSHG from exchange-calendars), tenors, observation schedules, ACT/365."""
from __future__ import annotations

import datetime as dt

import pytest

from otcdesk.pricing_engine.errors import PricingError
from otcdesk.pricing_engine.models import GBMModel
from otcdesk.pricing_engine.products import product_from_dict
from otcdesk.pricing_engine.schedule import (act365, add_months, add_tenor, get_calendar, monthly_observation_dates,
                                     parse_tenor)

D = dt.date


def test_2026_spring_festival_and_national_day_roll_forward():
    cal = get_calendar("XSHG")
    # Spring Festival 2026: SSE closed 16-23 Feb (Mon-Mon); National Day: closed 1-7 Oct
    for d in (D(2026, 2, 16), D(2026, 2, 18), D(2026, 2, 20), D(2026, 2, 23)):
        assert not cal.is_trading_day(d)
        assert cal.roll_forward(d) == D(2026, 2, 24)
    for d in (D(2026, 10, 1), D(2026, 10, 5), D(2026, 10, 7)):
        assert cal.roll_forward(d) == D(2026, 10, 8)
    assert cal.is_trading_day(D(2026, 2, 13)) and cal.is_trading_day(D(2026, 10, 9))
    assert cal.roll_forward(D(2026, 11, 21)) == D(2026, 11, 23)  # Saturday → Monday


def test_snowball_schedule_rolls_over_holidays():
    """A 12M snowball struck 2025-11-16 observes monthly from month 3; Feb 16 2026 rolls to Feb 24."""
    p = product_from_dict({"structure": "snowball", "start_date": "2025-11-16", "tenor": "12M", "ko_pct": 103,
                           "ki_pct": 75, "coupon_pct": 10, "lockup_months": 3})
    res = p.resolve(D(2025, 11, 17), GBMModel(100.0, 0.2, 0.02, 0.0))
    dates = res.knock_outs[0].dates
    assert res.maturity_date == D(2026, 11, 16)
    assert dates[0] == D(2026, 2, 24)  # 2026-02-16 is in the Spring Festival closure
    assert D(2026, 10, 16) in dates and dates[-1] == D(2026, 11, 16)
    assert len(dates) == 10
    # coupon on knock-out accrues ACT/365 from the start date
    assert res.knock_outs[0].rebates[0] == pytest.approx(0.10 * (D(2026, 2, 24) - D(2025, 11, 16)).days / 365)
    # daily knock-in: every XSHG trading day after the valuation date, none in the holidays
    ki_dates = res.knock_in.dates
    assert D(2026, 2, 18) not in ki_dates and D(2026, 10, 2) not in ki_dates
    assert D(2026, 2, 24) in ki_dates
    assert res.ki_times[0] == pytest.approx(act365(D(2025, 11, 17), ki_dates[0]))


def test_monthly_dates_with_lockup_and_month_end_clamp():
    cal = get_calendar("XSHG")
    ds = monthly_observation_dates(D(2026, 1, 30), cal.roll_forward(add_months(D(2026, 1, 30), 6)), 1, cal)
    assert ds[0] == D(2026, 3, 2)  # Feb 28 2026 is a Saturday → Mon Mar 2
    assert add_months(D(2026, 1, 31), 1) == D(2026, 2, 28)


def test_tenors():
    assert parse_tenor("1Y") == (12, "M")
    assert add_tenor(D(2026, 11, 20), "2W") == D(2026, 12, 4)
    assert add_tenor(D(2026, 11, 20), "30D") == D(2026, 12, 20)
    assert add_tenor(D(2026, 11, 20), "12M") == D(2027, 11, 20)
    with pytest.raises(PricingError):
        parse_tenor("3X")
    assert act365(D(2026, 1, 1), D(2027, 1, 1)) == 1.0


def test_calendar_is_extended_past_recorded_years_by_rule():
    cal = get_calendar("XSHG")
    assert cal.estimated_after is not None and cal.estimated_after.year >= 2026
    # 2027 Spring Festival (lunar new year 6 Feb 2027) and National Day are closed by rule
    assert not cal.is_trading_day(D(2027, 2, 8))
    assert not cal.is_trading_day(D(2027, 10, 4))
    assert cal.is_trading_day(D(2027, 3, 1))
    assert get_calendar("SSE") is not None and get_calendar("XSHE").name == "XSHG"
