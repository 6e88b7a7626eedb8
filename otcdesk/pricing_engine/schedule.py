"""Dates: exchange calendars, tenors, observation schedules, ACT/365.

Calendars come from the `exchange-calendars` package (XSHG = Shanghai Stock Exchange; SZSE/XSHE and the
commodity exchanges use the same mainland holiday table, so they map to XSHG). That package records XSHG
holidays only up to the last officially announced year. For later dates (a 24M snowball struck today
observes in years not yet announced) the calendar is *extended by rule* from the package's own lunisolar
tables: New Year's Day, Spring Festival (eve through the 6th day), Qingming, 1-5 May, Dragon Boat,
Mid-Autumn and 1-7 October, weekdays only. `TradingCalendar.estimated_after` tells where the official
data stops, and schedules report it in their diagnostics. No holiday list is written by hand here.

Conventions:
- tenor `<n>D` = n calendar days, `<n>W` = 7n days, `<n>M` = n calendar months (day clamped to month
  end), `<n>Y` = 12n months; the maturity date is rolled to the next trading day.
- observation dates are rolled forward to the next trading day ("following").
- year fractions are ACT/365: (d2 - d1).days / 365.
"""
from __future__ import annotations

import calendar as _cal
import datetime as dt
import re
from functools import lru_cache

import numpy as np

from otcdesk.pricing_engine.errors import PricingError

DateLike = "dt.date | str"
_TENOR = re.compile(r"^\s*(\d+)\s*([DWMY])\s*$", re.IGNORECASE)
_MAINLAND = {"XSHG", "XSHE", "SSE", "SZSE", "SHFE", "DCE", "CZCE", "INE", "CFFEX", "XSGE"}


def to_date(v, field: str = "date") -> dt.date:
    """ISO string / date / datetime → date; PricingError on anything else."""
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    if isinstance(v, str):
        try:
            return dt.date.fromisoformat(v.strip()[:10])
        except ValueError:
            raise _not_a_date(field, v) from None
    raise _not_a_date(field, v)


def _not_a_date(field: str, v) -> PricingError:
    return PricingError(f"{field} must be an ISO date (YYYY-MM-DD), got {v!r}", {"field": field, "value": v})


def act365(d1: dt.date, d2: dt.date) -> float:
    """ACT/365 year fraction from d1 to d2 (negative if d2 < d1)."""
    return (d2 - d1).days / 365.0


def add_months(d: dt.date, n: int) -> dt.date:
    y, m = divmod(d.month - 1 + n, 12)
    year, month = d.year + y, m + 1
    return dt.date(year, month, min(d.day, _cal.monthrange(year, month)[1]))


def parse_tenor(tenor: str) -> tuple[int, str]:
    """'2W' → (2, 'W'); years become months ('1Y' → (12, 'M'))."""
    m = _TENOR.match(str(tenor or ""))
    if not m or int(m.group(1)) <= 0:
        raise PricingError(f"tenor must look like 30D, 2W, 6M or 1Y, got {tenor!r}", {"field": "tenor", "value": tenor})
    n, unit = int(m.group(1)), m.group(2).upper()
    if unit == "Y":
        return 12 * n, "M"
    return n, unit


def add_tenor(d: dt.date, tenor: str) -> dt.date:
    """Unadjusted end date of a tenor counted from d."""
    n, unit = parse_tenor(tenor)
    if unit == "D":
        return d + dt.timedelta(days=n)
    if unit == "W":
        return d + dt.timedelta(days=7 * n)
    return add_months(d, n)


def _rule_holidays(year: int) -> set[dt.date]:
    """Mainland exchange holidays of one year by rule, from exchange-calendars' lunisolar tables."""
    from exchange_calendars import lunisolar_holidays as lh

    def pick(idx):
        return [ts.date() for ts in idx if ts.year == year]

    days: set[dt.date] = {dt.date(year, 1, 1)}
    for cny in pick(lh.chinese_lunar_new_year_dates):
        days.update(cny + dt.timedelta(days=k) for k in range(-1, 7))
    for d in pick(lh.qingming_festival_dates) + pick(lh.dragon_boat_festival_dates) + pick(lh.mid_autumn_festival_dates):
        days.add(d)
    days.update(dt.date(year, 5, k) for k in range(1, 6))
    days.update(dt.date(year, 10, k) for k in range(1, 8))
    return {d for d in days if d.weekday() < 5}


class TradingCalendar:
    """Trading days of one exchange as a sorted numpy datetime64[D] array (fast roll/search)."""

    def __init__(self, name: str, sessions: np.ndarray, estimated_after: dt.date | None):
        self.name = name
        self.sessions = sessions
        self.estimated_after = estimated_after
        self._first = sessions[0].astype(object)
        self._last = sessions[-1].astype(object)

    def _check(self, d: dt.date):
        if d < self._first or d > self._last:
            raise PricingError(f"date {d} is outside the {self.name} calendar range {self._first}..{self._last}",
                               {"field": "date", "value": str(d)})

    def is_trading_day(self, d: dt.date) -> bool:
        self._check(d)
        i = np.searchsorted(self.sessions, np.datetime64(d, "D"))
        return i < len(self.sessions) and self.sessions[i] == np.datetime64(d, "D")

    def roll_forward(self, d: dt.date) -> dt.date:
        """d if it is a trading day, else the next trading day."""
        self._check(d)
        i = np.searchsorted(self.sessions, np.datetime64(d, "D"))
        return self.sessions[i].astype(object)

    def trading_days(self, after: dt.date, through: dt.date) -> list[dt.date]:
        """Trading days d with after < d <= through."""
        lo = np.searchsorted(self.sessions, np.datetime64(after, "D"), side="right")
        hi = np.searchsorted(self.sessions, np.datetime64(through, "D"), side="right")
        return [x.astype(object) for x in self.sessions[lo:hi]]


@lru_cache(maxsize=8)
def get_calendar(name: str = "XSHG", extend_to_year: int = 2060) -> TradingCalendar:
    """The trading calendar `name` (XSHG default; mainland codes map to XSHG), extended by rule past the recorded years."""
    import exchange_calendars as xcals
    import pandas as pd

    key = (name or "XSHG").upper()
    code = "XSHG" if key in _MAINLAND else key
    try:
        cal = xcals.get_calendar(code, start="2006-01-04")
    except Exception as exc:  # unknown code or out-of-range data
        raise PricingError(f"unknown exchange calendar {name!r}", {"field": "calendar", "value": name}) from exc
    try:
        bound = cal.bound_max()  # last date the package knows holidays for
    except Exception:
        bound = None
    last_year = (bound.year if bound is not None else cal.last_session.year)
    if bound is not None:
        cal = xcals.get_calendar(code, start="2006-01-04", end=f"{last_year}-12-31")
    sessions = [ts.date() for ts in cal.sessions]
    estimated_after = None
    if code == "XSHG":
        estimated_after = dt.date(last_year, 12, 31)
        extra = []
        for year in range(last_year + 1, extend_to_year + 1):
            hol = _rule_holidays(year)
            for d in pd.bdate_range(f"{year}-01-01", f"{year}-12-31"):
                dd = d.date()
                if dd not in hol:
                    extra.append(dd)
        sessions += extra
    arr = np.array(sessions, dtype="datetime64[D]")
    return TradingCalendar(code, arr, estimated_after)


def monthly_observation_dates(start: dt.date, maturity: dt.date, first_month: int, cal: TradingCalendar) -> list[dt.date]:
    """Monthly observation dates start+k months (k >= first_month), each rolled forward, through maturity.

    The last observation is the maturity date itself (also when the final month rolls past it).
    """
    out: list[dt.date] = []
    k = max(first_month, 1)
    while True:
        raw = add_months(start, k)
        if raw > maturity:
            break
        d = cal.roll_forward(raw)
        if d > maturity:
            d = maturity
        if not out or d > out[-1]:
            out.append(d)
        k += 1
    if out and out[-1] != maturity and add_months(start, k - 1) >= maturity - dt.timedelta(days=3):
        out[-1] = maturity
    return out
