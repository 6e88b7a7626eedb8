"""Market data: history of spot, vol, rate and dividend yield per underlying, official closes, feeds.

`MarketDataService` keeps the history in `market_tick` (one row per underlying per time) and the official
closes in `fixing`. `latest()` is the newest tick of every underlying in the shape of the checked-in snapshot
(`app.market.load_snapshot`: `{"as_of", "source", "rate", "underlyings": {code: {"name", "spot", "vol",
"div"}}}`, plus each underlying's own `rate`, `as_of` and `source`), so quoting and the risk book read one
model; an empty history is seeded from the checked-in snapshot (labelled SIMULATED). Each underlying with a stored
vol surface (`trading.vol_surfaces.VolSurfaceStore`: loaded from option quotes, else the SIMULATED demo one) also
carries it as `vol_surface` (the stored document; `app.market.market_for(..., with_surface=True)` reads it).

A feed adapter (`MarketFeed`) yields ticks and closes; `ingest` writes one feed in one transaction, so a
feed with one bad row writes nothing. `CsvFeed` is the first adapter (`otcdesk market load FILE`):

    date,underlying,close,vol,rate,div          (or ts instead of date, spot instead of close)
    2027-02-22,000905.SH,6300.0,0.22,0.018,0.015

- `date` (YYYY-MM-DD, YYYY/MM/DD or YYYYMMDD) is a day's close at 15:00 Beijing time; `ts` an ISO time
  (Beijing time when it has no offset). Every row becomes a tick.
- A `close` column makes each row also an official close (收盘价, a `fixing` row); its day must be a
  trading day of the desk's calendar (XSHG) and not after today. `spot` rows are ticks only.
- `vol` (annualised, 0.22 for 22%), `rate` and `div` (continuous, 0.018 for 1.8%) are optional: a missing one
  is carried from the underlying's row before in the file, else from its latest stored tick (rate: the
  snapshot's rate; div: 0). `name` and `source` columns are accepted; any other column is refused.
- A close that differs from a close already stored for that day is refused (a correction is not silently
  taken: fix the stored close deliberately); the same close again is accepted and changes nothing.

Demo mode ticks the market with a random walk labelled `DEMO_SOURCE`: each `tick()` moves every underlying by
one simulated trading day (GBM at its own vol; vol itself wanders around its snapshot level), not by the
wall-clock interval between ticks, so the book visibly moves.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Protocol

import numpy as np
from sqlalchemy.engine import Engine

from otcdesk.app.clock import CN_TZ, Clock
from otcdesk.app.market import load_snapshot
from otcdesk.app.models import MarketTick
from otcdesk.app.repositories import transaction
from otcdesk.app.repositories.market import as_utc

DEMO_SOURCE = "simulated (demo random walk)"
DESK_CALENDAR = "XSHG"  # closes are stored for trading days of this calendar
CLOSE_TIME = dt.time(15, 0)  # the official close, Beijing time
DEMO_STEP_YEARS = 1.0 / 252.0  # one simulated trading day per demo tick
CODE = re.compile(r"^[0-9A-Z]{1,12}\.[A-Z]{2,4}$")
CSV_COLUMNS = {"date", "ts", "underlying", "close", "spot", "vol", "rate", "div", "name", "source"}
MAX_VOL, RATE_RANGE = 3.0, (-0.2, 0.5)


# ---- the model a feed writes ---------------------------------------------------------------------
@dataclass(frozen=True)
class Tick:
    """Spot, vol, rate and dividend yield of one underlying at one time (vol/rate/div None: carry forward)."""

    underlying: str
    as_of: datetime
    spot: float
    vol: float | None = None
    rate: float | None = None
    div: float | None = None
    source: str = ""
    line: int | None = None  # where a feed read it (for error messages)


@dataclass(frozen=True)
class Close:
    """The official close (收盘价) of one underlying on one trading day."""

    underlying: str
    date: dt.date
    close: float
    source: str = ""
    line: int | None = None


class MarketFeed(Protocol):
    """A market data source: what it read, as ticks and official closes (`MarketDataService.ingest`)."""

    source: str

    def ticks(self) -> Iterable[Tick]: ...

    def closes(self) -> Iterable[Close]: ...


class FeedError(ValueError):
    """Bad market data; `errors` lists `{"line", "error"}` (line None when not from a file)."""

    def __init__(self, message: str, errors: list[dict]):
        super().__init__(message)
        self.message = message
        self.errors = errors


def close_time(day: dt.date) -> datetime:
    """The official close of `day` (15:00 Beijing) as aware UTC."""
    return datetime.combine(day, CLOSE_TIME, tzinfo=CN_TZ).astimezone(timezone.utc)


def cn_iso(ts: datetime) -> str:
    """An ISO time in Beijing time (what the API shows)."""
    return as_utc(ts).astimezone(CN_TZ).isoformat()


def parse_day(text: str) -> dt.date:
    """YYYY-MM-DD, YYYY/MM/DD or YYYYMMDD; ValueError otherwise."""
    s = text.strip()
    if re.fullmatch(r"\d{8}", s):
        s = f"{s[:4]}-{s[4:6]}-{s[6:]}"
    if not re.fullmatch(r"\d{4}[-/]\d{2}[-/]\d{2}", s):
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD)")
    return dt.date.fromisoformat(s.replace("/", "-"))


def is_trading_day(day: dt.date, calendar: str = DESK_CALENDAR) -> bool:
    """Whether `day` is a trading day of `calendar`; ValueError outside the calendar's range."""
    from otcdesk.pricing_engine.errors import PricingError
    from otcdesk.pricing_engine.schedule import get_calendar

    try:
        return get_calendar(calendar).is_trading_day(day)
    except PricingError as exc:
        raise ValueError(str(exc)) from None


def _number(raw: str | None, name: str, *, lo: float | None = None, hi: float | None = None,
            lo_open: bool = True, hint: str = "") -> float | None:
    if raw is None or str(raw).strip() == "":
        return None
    try:
        v = float(str(raw).strip().replace(",", ""))
    except ValueError:
        raise ValueError(f"{name} {raw!r} is not a number") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {raw!r}")
    if lo is not None and (v <= lo if lo_open else v < lo):
        raise ValueError(f"{name} must be {'above' if lo_open else 'at least'} {lo:g}, got {v:g}{hint}")
    if hi is not None and v > hi:
        raise ValueError(f"{name} must be at most {hi:g}, got {v:g}{hint}")
    return v


# ---- the CSV feed ------------------------------------------------------------------------------
class CsvFeed:
    """A CSV file of history (see the module docstring); every bad row is reported with its line number."""

    def __init__(self, path: str | Path | None = None, *, text: str | None = None, today: dt.date | None = None,
                 source: str | None = None):
        if (path is None) == (text is None):
            raise ValueError("give a path or the text")
        self.path = Path(path) if path is not None else None
        self._text = text
        self.today = today
        self.source = source or (f"csv:{self.path.name}" if self.path else "csv")
        self._parsed: tuple[list[Tick], list[Close], list[dict], int] | None = None

    @property
    def rows(self) -> int:
        return self._parse()[3]

    def ticks(self) -> list[Tick]:
        return self._checked()[0]

    def closes(self) -> list[Close]:
        return self._checked()[1]

    def _checked(self):
        ticks, closes, errors, _ = self._parse()
        if errors:
            raise FeedError(f"{len(errors)} bad row(s) in {self.path or 'the CSV'}; nothing was loaded", errors)
        return ticks, closes

    def _parse(self):
        if self._parsed is None:
            self._parsed = self._read()
        return self._parsed

    def _read(self):
        try:
            text = self._text if self._text is not None else self.path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            return [], [], [{"line": None, "error": f"cannot read the file: {exc}"}], 0
        reader = csv.DictReader(io.StringIO(text))
        header = [(h or "").strip().lower() for h in (reader.fieldnames or [])]
        problem = self._header_problem(header)
        if problem:
            return [], [], [{"line": 1, "error": problem}], 0
        reader.fieldnames = header
        time_col = "ts" if "ts" in header else "date"
        price_col = "close" if "close" in header else "spot"
        ticks: list[Tick] = []
        closes: dict[tuple[str, dt.date], Close] = {}
        errors: list[dict] = []
        rows = 0
        for row in reader:
            rows += 1
            line = reader.line_num
            if None in row:
                errors.append({"line": line, "error": f"more cells than the {len(header)} columns of the header"})
                continue
            try:
                tick, close = self._row(row, time_col, price_col, line)
            except ValueError as exc:
                errors.append({"line": line, "error": str(exc)})
                continue
            ticks.append(tick)
            if close is not None:
                seen = closes.get((close.underlying, close.date))
                if seen is not None and seen.close != close.close:
                    errors.append({"line": line, "error": f"close {close.close:g} of {close.underlying} on "
                                   f"{close.date} differs from {seen.close:g} on line {seen.line}"})
                elif seen is None:
                    closes[(close.underlying, close.date)] = close
        if rows == 0 and not errors:
            errors.append({"line": None, "error": "the file has no data rows"})
        return ticks, list(closes.values()), errors, rows

    @staticmethod
    def _header_problem(header: list[str]) -> str | None:
        if not header:
            return "the file is empty (a header row is needed: date,underlying,close[,vol,rate,div])"
        unknown = [h for h in header if h not in CSV_COLUMNS]
        if unknown:
            return f"unknown column(s) {unknown}; columns are {sorted(CSV_COLUMNS)}"
        if len(set(header)) != len(header):
            return "a column is named twice"
        if "underlying" not in header:
            return "the underlying column is missing"
        if ("date" in header) == ("ts" in header):
            return "give exactly one of the columns date and ts"
        if ("close" in header) == ("spot" in header):
            return "give exactly one of the columns close and spot"
        return None

    def _row(self, row: dict, time_col: str, price_col: str, line: int) -> tuple[Tick, Close | None]:
        code = (row.get("underlying") or "").strip().upper()
        if not CODE.match(code):
            raise ValueError(f"underlying {row.get('underlying')!r} is not a code like 000905.SH")
        raw_time = (row.get(time_col) or "").strip()
        if not raw_time:
            raise ValueError(f"{time_col} is empty")
        if time_col == "date" or re.fullmatch(r"[\d/-]{8,10}", raw_time):
            day = parse_day(raw_time)
            as_of = close_time(day)
        else:
            try:
                ts = datetime.fromisoformat(raw_time)
            except ValueError:
                raise ValueError(f"ts {raw_time!r} is not an ISO time (2027-02-22T10:30:00+08:00)") from None
            as_of = (ts.replace(tzinfo=CN_TZ) if ts.tzinfo is None else ts).astimezone(timezone.utc)
            day = as_of.astimezone(CN_TZ).date()
        if self.today is not None and day > self.today:
            raise ValueError(f"{day} is after today ({self.today})")
        price = _number(row.get(price_col), price_col, lo=0.0)
        if price is None:
            raise ValueError(f"{price_col} is empty")
        pct = " (annualised as a fraction: 0.22 for 22%)"
        vol = _number(row.get("vol"), "vol", lo=0.0, hi=MAX_VOL, hint=pct)
        rate = _number(row.get("rate"), "rate", lo=RATE_RANGE[0], hi=RATE_RANGE[1], hint=" (0.018 for 1.8%)")
        div = _number(row.get("div"), "div", lo=RATE_RANGE[0], hi=RATE_RANGE[1], hint=" (0.015 for 1.5%)")
        source = (row.get("source") or "").strip() or self.source
        close = None
        if price_col == "close":
            if not is_trading_day(day):
                raise ValueError(f"{day} is not a trading day of {DESK_CALENDAR}: no official close")
            close = Close(code, day, price, source, line)
        return Tick(code, as_of, price, vol, rate, div, source, line), close


# ---- the service ---------------------------------------------------------------------------------
class MarketDataService:
    """The market data model: history (`record`, `history`), the newest snapshot (`latest`), feeds (`ingest`),
    the demo random walk (`tick`)."""

    def __init__(self, engine: Engine, clock: Clock | None = None, *, snapshot_path: str | None = None,
                 seed: int | None = None, surfaces=None):
        from otcdesk.app.trading.vol_surfaces import VolSurfaceStore

        self.engine = engine
        self.surfaces = surfaces if surfaces is not None else VolSurfaceStore()
        self.clock = clock or Clock()
        self._snapshot_args = (snapshot_path,) if snapshot_path else ()
        self._seeded = False
        self._rng = np.random.default_rng(seed)
        self._tick_lock = threading.Lock()

    # ---- reading ----------------------------------------------------------------------------------
    @property
    def checked_in(self) -> dict:
        """The checked-in snapshot (names of underlyings; the seed of an empty history)."""
        return load_snapshot(*self._snapshot_args)

    def latest(self) -> dict:
        """The newest tick of every underlying, in the snapshot's shape (see the module docstring)."""
        with transaction(self.engine) as tx:
            self._ensure_seeded(tx)
            rows = tx.market.latest_ticks()
        return self._snapshot(rows)

    def underlyings(self) -> dict[str, str]:
        """{code: name} of every underlying with market data."""
        return {code: u["name"] for code, u in self.latest()["underlyings"].items()}

    def history(self, underlying: str, since: datetime | None = None, limit: int = 500) -> list[dict]:
        """The newest `limit` ticks of `underlying` (at or after `since`), oldest first."""
        with transaction(self.engine) as tx:
            self._ensure_seeded(tx)
            rows = tx.market.history(underlying, since, limit)
        return [{"as_of": cn_iso(r.as_of), "spot": r.spot, "vol": r.vol, "rate": r.rate, "div": r.div,
                 "source": r.source} for r in rows]

    def closes(self, underlying: str, since: dt.date | None = None, through: dt.date | None = None) -> list[dict]:
        """Official closes of `underlying` by date."""
        with transaction(self.engine) as tx:
            rows = tx.market.fixings(underlying, since and since.isoformat(), through and through.isoformat())
        return [{"date": r.date, "close": r.close, "source": r.source} for r in rows]

    # ---- writing ----------------------------------------------------------------------------------
    def record(self, ticks: Iterable[Tick], *, actor: str | None = None) -> int:
        """Store ticks (vol/rate/div carried forward where None); FeedError, nothing stored, if one is bad.
        Audited (one row) when `actor` is given; the demo ticker's own ticks are not (data, not decisions)."""
        ticks = list(ticks)
        with transaction(self.engine) as tx:
            self._ensure_seeded(tx)
            filled, errors = self.fill(tx, ticks)
            if errors:
                raise FeedError(f"{len(errors)} bad tick(s); nothing was recorded", errors)
            rows = [row for _, row in filled]
            n = tx.market.add_ticks(rows)
            if actor:
                tx.audit.record(actor, "market.record", "market", {"ticks": n,
                                                                  "underlyings": sorted({t.underlying for t in rows})})
        return n

    def ingest(self, feed: MarketFeed, *, actor: str) -> dict:
        """Write everything `feed` read, ticks and closes, in one transaction (FeedError: nothing written).

        Returns `{"source", "ticks", "closes": {"stored", "unchanged"}, "underlyings": {code: {"ticks", "from",
        "to", "closes"}}, "dates": [the days with new or unchanged closes], "ticks_unchanged"}`; a tick already
        stored with the same values (the same file loaded again) is not stored twice."""
        ticks, closes = list(feed.ticks()), list(feed.closes())
        with transaction(self.engine) as tx:
            self._ensure_seeded(tx)
            filled, errors = self.fill(tx, ticks)
            stored, unchanged = [], []
            for c in closes:
                existing = tx.market.fixing(c.underlying, c.date.isoformat())
                if existing is None:
                    stored.append(c)
                elif existing.close == c.close:
                    unchanged.append(c)
                else:
                    errors.append({"line": c.line, "error": f"close {c.close:g} of {c.underlying} on {c.date} differs "
                                   f"from the stored close {existing.close:g} ({existing.source})"})
            rows, repeated = [], 0
            for t, row in filled:
                if t.line is not None and any(e["line"] == t.line for e in errors):
                    continue  # one reason per line
                same = tx.market.tick_at(row.underlying, row.as_of)
                if same is None:
                    rows.append(row)
                elif same.spot == row.spot and all(getattr(t, k) is None or getattr(t, k) == getattr(same, k)
                                                   for k in ("vol", "rate", "div")):
                    repeated += 1  # loaded before: the same file again changes nothing
                else:
                    errors.append({"line": t.line, "error": f"a different tick of {row.underlying} is stored for "
                                   f"{cn_iso(row.as_of)} (spot {same.spot:g}, {same.source})"})
            if errors:
                errors.sort(key=lambda e: (e["line"] is None, e["line"] or 0))
                raise FeedError(f"{len(errors)} bad row(s) from {feed.source}; nothing was loaded", errors)
            tx.market.add_ticks(rows)
            for c in stored:
                tx.market.add_fixing(c.underlying, c.date.isoformat(), c.close, c.source or feed.source)
            summary = _summary(feed.source, rows, stored, unchanged)
            summary["ticks_unchanged"] = repeated
            tx.audit.record(actor, "market.load", "market", {k: summary[k] for k in ("source", "ticks", "closes")})
        return summary

    def fill(self, tx, ticks: list[Tick]) -> tuple[list[tuple[Tick, MarketTick]], list[dict]]:
        """(tick, row) for `ticks`, by underlying and time, with vol/rate/div carried forward (the underlying's
        tick before in `ticks`, else its latest stored one); errors for ticks incomplete or out of range."""
        latest = {r.underlying: r for r in tx.market.latest_ticks()}
        default_rate = self.checked_in.get("rate", 0.0)
        last: dict[str, MarketTick] = {}
        rows, errors = [], []
        for t in sorted(ticks, key=lambda t: (t.underlying, as_utc(t.as_of), t.line or 0)):
            prev = last.get(t.underlying) or latest.get(t.underlying)
            vol = t.vol if t.vol is not None else (prev.vol if prev else None)
            rate = t.rate if t.rate is not None else (prev.rate if prev else default_rate)
            div = t.div if t.div is not None else (prev.div if prev else 0.0)
            problem = _tick_problem(t, vol, rate, div)
            if problem:
                errors.append({"line": t.line, "error": problem})
                continue
            row = MarketTick(as_of=as_utc(t.as_of), underlying=t.underlying, spot=float(t.spot), vol=float(vol),
                             rate=float(rate), div=float(div), source=t.source or "feed")
            rows.append((t, row))
            last[t.underlying] = row
        return rows, errors

    def tick(self) -> dict:
        """Demo mode: one random-walk step of every underlying (see the module docstring); the new `latest()`."""
        with self._tick_lock:
            snap = self.latest()
            base = self.checked_in["underlyings"]
            now = self.clock.now()
            ticks = []
            for code, u in sorted(snap["underlyings"].items()):
                z_spot, z_vol = self._rng.standard_normal(2)
                vol = u["vol"]
                spot = u["spot"] * math.exp(-0.5 * vol * vol * DEMO_STEP_YEARS + vol * math.sqrt(DEMO_STEP_YEARS) * z_spot)
                anchor = base.get(code, {}).get("vol", vol)
                new_vol = vol * math.exp(0.03 * z_vol) + 0.1 * (anchor - vol)
                new_vol = min(max(new_vol, 0.3 * anchor), 3.0 * anchor)
                ticks.append(Tick(code, now, round(spot, 4), round(new_vol, 6), u.get("rate", snap["rate"]),
                                  u.get("div", 0.0), DEMO_SOURCE))
            self.record(ticks)
        return self.latest()

    # ---- internals --------------------------------------------------------------------------------
    def _ensure_seeded(self, tx) -> None:
        """Seed an empty history from the checked-in snapshot (its ticks dated at its day's close)."""
        if self._seeded:
            return
        if not tx.market.has_ticks():
            snap = self.checked_in
            as_of = close_time(parse_day(snap["as_of"][:10]))
            tx.market.add_ticks(MarketTick(as_of=as_of, underlying=code, spot=u["spot"], vol=u["vol"],
                                           rate=u.get("rate", snap["rate"]), div=u.get("div", 0.0),
                                           source=snap["source"])
                                for code, u in snap["underlyings"].items())
        self._seeded = True

    def _snapshot(self, rows: list[MarketTick]) -> dict:
        names = {code: u.get("name", code) for code, u in self.checked_in["underlyings"].items()}
        if not rows:
            return {"as_of": None, "source": None, "rate": self.checked_in.get("rate", 0.0), "underlyings": {}}
        newest = max(rows, key=lambda r: (as_utc(r.as_of), r.id or 0))
        sources = sorted({r.source for r in rows})
        return {
            "as_of": cn_iso(newest.as_of),
            "source": sources[0] if len(sources) == 1 else "mixed: " + "; ".join(sources),
            "rate": newest.rate,
            "underlyings": {r.underlying: self._with_surface(r.underlying, {
                "name": names.get(r.underlying, r.underlying), "spot": r.spot, "vol": r.vol, "div": r.div,
                "rate": r.rate, "as_of": cn_iso(r.as_of), "source": r.source})
                for r in sorted(rows, key=lambda r: r.underlying)},
        }

    def _with_surface(self, code: str, row: dict) -> dict:
        doc = self.surfaces.stored(code)
        if doc is not None:
            row["vol_surface"] = doc
        return row


def _tick_problem(t: Tick, vol, rate, div) -> str | None:
    if not CODE.match(t.underlying or ""):
        return f"underlying {t.underlying!r} is not a code like 000905.SH"
    checks = ((t.spot, "spot", 0.0, None), (vol, "vol", 0.0, MAX_VOL), (rate, "rate", *RATE_RANGE),
              (div, "div", *RATE_RANGE))
    if vol is None:
        return f"no vol for {t.underlying}: give a vol (there is no earlier value to carry forward)"
    for value, name, lo, hi in checks:
        try:
            _number(str(value), name, lo=lo, hi=hi)
        except ValueError as exc:
            return str(exc)
    return None


def _summary(source: str, rows: list[MarketTick], stored: list[Close], unchanged: list[Close]) -> dict:
    by: dict[str, dict] = {}
    for r in rows:
        d = by.setdefault(r.underlying, {"ticks": 0, "from": cn_iso(r.as_of), "to": cn_iso(r.as_of), "closes": 0})
        d["ticks"] += 1
        d["from"], d["to"] = min(d["from"], cn_iso(r.as_of)), max(d["to"], cn_iso(r.as_of))
    for c in stored:
        by.setdefault(c.underlying, {"ticks": 0, "from": None, "to": None, "closes": 0})["closes"] += 1
    return {"source": source, "ticks": len(rows), "closes": {"stored": len(stored), "unchanged": len(unchanged)},
            "underlyings": dict(sorted(by.items())),
            "dates": sorted({c.date.isoformat() for c in (*stored, *unchanged)})}


__all__ = ["CsvFeed", "Close", "DEMO_SOURCE", "FeedError", "MarketDataService", "MarketFeed", "Tick", "close_time",
           "is_trading_day", "parse_day"]
