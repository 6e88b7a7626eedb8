"""The service's clock: wall time, or `OTCDESK_NOW` and running on from there (demos and tests only).

Everything that asks "what is today" for trades (booking dates, which fixings are in the future, the risk
book's valuation date) reads a `Clock`, never `datetime.now` directly.
"""
from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone

CN_TZ = timezone(timedelta(hours=8))


class Clock:
    """`now()` is aware UTC; `today()` is the trading date in Beijing time."""

    def __init__(self, start: str | datetime | None = None):
        if isinstance(start, str):
            start = datetime.fromisoformat(start)
        if start is not None and start.tzinfo is None:
            start = start.replace(tzinfo=CN_TZ)
        self._start = start
        self._t0 = time.monotonic()

    def now(self) -> datetime:
        if self._start is None:
            return datetime.now(timezone.utc)
        return (self._start + timedelta(seconds=time.monotonic() - self._t0)).astimezone(timezone.utc)

    def today(self) -> date:
        return self.now().astimezone(CN_TZ).date()
