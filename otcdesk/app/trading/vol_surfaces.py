"""Volatility surfaces in the market-data store: listed option quotes → fitted surfaces, stored per underlying.

Storage (no new table): one JSON document per underlying in `<data dir>/vol_surfaces/<code>.json`, written
atomically by `VolSurfaceStore.put`; an underlying without one falls back to the checked-in demo surfaces
`app/data/vol_surfaces.json` (labelled SIMULATED; quoted by tenor, so they roll with the valuation date;
`scripts/make_demo_vol_surfaces.py` made them). `contract_for(code, valuation_date)` gives CONTRACTS.md's
`market.vol_surface` grid for a valuation date (expired rows dropped, tenors turned into dates), which
`MarketDataService.latest()` carries per underlying and `app.market.market_for(..., with_surface=True)` puts
in the market the desk quotes on. Strikes are in % of the spot at the time of the fit and are read against the
current spot (sticky moneyness).

`OptionQuotesCsv` is the first loader (`otcdesk market surface FILE`), one listed option quote per row:

    date,underlying,expiry,strike,type,price,iv,spot,rate,div,source
    2026-11-20,000300.SH,2026-12-18,3800,put,41.5,,3950,0.018,0.025,CFFEX IO
    2026-11-20,510300.SH,2027-03-25,4.2,call,,0.185,,,,SSE ETF option

- `underlying` (Wind code), `expiry` (YYYY-MM-DD, YYYY/MM/DD or YYYYMMDD), `strike` (absolute, index points or
  ETF price) and `type` (`call`/`put`, also `C`/`P`, 认购/认沽) are required.
- One of `price` (the option's premium, same units as the strike) or `iv` (implied Black vol, 0.22 for 22%)
  per row; a price is turned into an implied vol on the forward spot·e^{(rate−div)T}. Where a strike has both a
  call and a put, the out-of-the-money one is used (the put below the forward).
- `date` is the quote date (the valuation date of the fit; default: today); `spot`, `rate`, `div` default to
  the underlying's latest stored market (`MarketDataService.latest()`); `source` labels the surface.
- A row with an impossible price (outside the no-arbitrage bounds) or a bad value is refused with its line
  number; nothing is stored when any row is bad. Each expiry needs three strikes at least.

Each underlying's quotes are fitted with raw SVI per expiry (`pricing_engine.surface`), sampled on a standard
strike grid within each expiry's quoted range, and stored with the fit's errors and arbitrage report.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from otcdesk.app.trading.market_data import CODE, FeedError, parse_day

DEMO_PATH = Path(__file__).resolve().parents[1] / "data" / "vol_surfaces.json"
QUOTE_COLUMNS = {"date", "underlying", "expiry", "strike", "type", "price", "iv", "spot", "rate", "div", "source"}
TYPES = {"call": "call", "c": "call", "认购": "call", "看涨": "call", "put": "put", "p": "put", "认沽": "put",
         "看跌": "put"}
GRID_PCT = (60, 70, 80, 85, 90, 95, 100, 105, 110, 115, 120, 130, 140)


def _load_demo(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"underlyings": {}}


class VolSurfaceStore:
    """Stored surfaces: the data directory's, else the checked-in demo ones (see the module docstring)."""

    def __init__(self, data_dir: str | Path | None = None, demo_path: str | Path | None = DEMO_PATH):
        self.dir = Path(data_dir) / "vol_surfaces" if data_dir is not None else None
        self.demo = _load_demo(Path(demo_path)) if demo_path is not None else {"underlyings": {}}

    def _file(self, code: str) -> Path | None:
        if self.dir is None or not CODE.match(code or ""):
            return None
        return self.dir / f"{code}.json"

    def stored(self, code: str) -> dict | None:
        """The stored document of `code` (dated expiries, or the demo's tenors), or None."""
        f = self._file(code)
        if f is not None and f.is_file():
            return json.loads(f.read_text(encoding="utf-8"))
        row = self.demo.get("underlyings", {}).get(code)
        if row is None:
            return None
        return {**row, "name": row.get("name_surface") or f"demo:{code}", "source": self.demo.get("source", "SIMULATED")}

    def codes(self) -> list[str]:
        out = set(self.demo.get("underlyings", {}))
        if self.dir is not None and self.dir.is_dir():
            out |= {p.stem for p in self.dir.glob("*.json")}
        return sorted(out)

    def put(self, code: str, doc: dict) -> Path:
        """Store `doc` as `code`'s surface (atomic replace)."""
        f = self._file(code)
        if f is None:
            raise ValueError(f"cannot store a surface for {code!r} (no data directory, or not a code)")
        f.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=f.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, ensure_ascii=False, indent=1)
        os.replace(tmp, f)
        return f

    def contract_for(self, code: str, valuation_date) -> dict | None:
        """CONTRACTS.md `market.vol_surface` of `code` for `valuation_date`, or None (none stored, all expired)."""
        doc = self.stored(code)
        return None if doc is None else contract_grid(doc, valuation_date)


def contract_grid(doc: dict, valuation_date) -> dict | None:
    """The contract grid of a stored document at `valuation_date`: tenors become dates from it, rows expiring on
    or before it are dropped; None when no row is left."""
    from otcdesk.pricing_engine.schedule import add_tenor, to_date

    vd = to_date(str(valuation_date)[:10], "valuation_date")
    if "tenors" in doc:
        expiries = [add_tenor(vd, t) for t in doc["tenors"]]
    else:
        expiries = [dt.date.fromisoformat(e) for e in doc["expiries"]]
    keep = [i for i, e in enumerate(expiries) if e > vd]
    if not keep:
        return None
    out = {"expiries": [expiries[i].isoformat() for i in keep], "strikes_pct": list(doc["strikes_pct"]),
           "vols": [list(doc["vols"][i]) for i in keep], "name": doc.get("name") or "stored"}
    if doc.get("source"):
        out["source"] = doc["source"]
    return out


# ---- the option-quote loader ---------------------------------------------------------------------
@dataclass(frozen=True)
class OptionQuote:
    underlying: str
    date: dt.date
    expiry: dt.date
    strike: float
    type: str
    price: float | None
    iv: float | None
    spot: float | None
    rate: float | None
    div: float | None
    source: str
    line: int


def _num(raw, name, line, lo=None, hi=None):
    if raw is None or str(raw).strip() == "":
        return None
    try:
        v = float(str(raw).strip().replace(",", ""))
    except ValueError:
        raise ValueError(f"{name} {raw!r} is not a number") from None
    if not math.isfinite(v) or (lo is not None and v <= lo) or (hi is not None and v > hi):
        raise ValueError(f"{name} {raw!r} is out of range")
    return v


class OptionQuotesCsv:
    """Listed option quotes from a CSV (columns in the module docstring); every bad row reported by line."""

    def __init__(self, path: str | Path | None = None, *, text: str | None = None, today: dt.date | None = None):
        if (path is None) == (text is None):
            raise ValueError("give a path or the text")
        self.path = Path(path) if path is not None else None
        self.text = text
        self.today = today or dt.date.today()
        self.source = f"csv:{self.path.name}" if self.path else "csv"

    def quotes(self) -> list[OptionQuote]:
        text = self.text if self.text is not None else self.path.read_text(encoding="utf-8-sig")
        reader = csv.DictReader(io.StringIO(text))
        header = [(h or "").strip().lower() for h in (reader.fieldnames or [])]
        unknown = [h for h in header if h not in QUOTE_COLUMNS]
        missing = [h for h in ("underlying", "expiry", "strike", "type") if h not in header]
        if not header or unknown or missing or ("price" not in header and "iv" not in header):
            raise FeedError("bad header", [{"line": 1, "error": (
                f"unknown column(s) {unknown}; " if unknown else "") + (f"missing {missing}; " if missing else "")
                + f"columns are {sorted(QUOTE_COLUMNS)} with price or iv"}])
        reader.fieldnames = header
        out, errors = [], []
        for row in reader:
            line = reader.line_num
            try:
                out.append(self._row(row, line))
            except ValueError as exc:
                errors.append({"line": line, "error": str(exc)})
        if not out and not errors:
            errors.append({"line": None, "error": "the file has no data rows"})
        if errors:
            raise FeedError(f"{len(errors)} bad row(s) in {self.path or 'the CSV'}; nothing was loaded", errors)
        return out

    def _row(self, row: dict, line: int) -> OptionQuote:
        code = (row.get("underlying") or "").strip().upper()
        if not CODE.match(code):
            raise ValueError(f"underlying {row.get('underlying')!r} is not a code like 000300.SH")
        day = parse_day(row["date"]) if (row.get("date") or "").strip() else self.today
        expiry = parse_day(row.get("expiry") or "")
        if expiry <= day:
            raise ValueError(f"expiry {expiry} is not after the quote date {day}")
        kind = TYPES.get((row.get("type") or "").strip().lower())
        if kind is None:
            raise ValueError(f"type {row.get('type')!r} must be call or put")
        strike = _num(row.get("strike"), "strike", line, lo=0.0)
        if strike is None:
            raise ValueError("strike is empty")
        price = _num(row.get("price"), "price", line, lo=-1e-12)
        iv = _num(row.get("iv"), "iv", line, lo=0.0, hi=5.0)
        if (price is None) == (iv is None):
            raise ValueError("give exactly one of price and iv")
        return OptionQuote(code, day, expiry, strike, kind, price, iv, _num(row.get("spot"), "spot", line, lo=0.0),
                           _num(row.get("rate"), "rate", line, lo=-0.2, hi=0.5),
                           _num(row.get("div"), "div", line, lo=-0.2, hi=0.5),
                           (row.get("source") or "").strip() or self.source, line)


def implied_vol(price: float, kind: str, spot: float, strike: float, T: float, rate: float, div: float) -> float:
    """Black implied vol of an option price; ValueError outside the no-arbitrage bounds."""
    from scipy.optimize import brentq
    from scipy.special import ndtr

    F, df = spot * math.exp((rate - div) * T), math.exp(-rate * T)

    def bs(s):
        sd = s * math.sqrt(T)
        d1 = (math.log(F / strike) + 0.5 * sd * sd) / sd
        c = df * (F * ndtr(d1) - strike * ndtr(d1 - sd))
        return c if kind == "call" else c - df * (F - strike)

    lo, hi = bs(1e-4), bs(5.0)
    if not lo - 1e-12 <= price <= hi:
        raise ValueError(f"{kind} price {price:g} at strike {strike:g} is outside the no-arbitrage range "
                         f"{max(lo, 0):.6g}..{hi:.6g}")
    if price <= lo:
        return 1e-4
    return brentq(lambda s: bs(s) - price, 1e-4, 5.0, xtol=1e-10)


def fit_quotes(quotes: list[OptionQuote], markets: dict[str, dict]) -> dict[str, dict]:
    """{code: stored document} from quotes (see the module docstring); FeedError when a quote or a fit fails.
    `markets[code]` gives the default spot, rate and div (`app.market.market_for`)."""
    from otcdesk.pricing_engine.errors import PricingError
    from otcdesk.pricing_engine.surface import surface_from_quotes

    by: dict[str, list[OptionQuote]] = {}
    for q in quotes:
        by.setdefault(q.underlying, []).append(q)
    out, errors = {}, []
    for code, qs in sorted(by.items()):
        m = markets.get(code) or {}
        day = qs[0].date
        if any(q.date != day for q in qs):
            errors.append({"line": qs[0].line, "error": f"{code}: quotes from more than one date"})
            continue
        spot = next((q.spot for q in qs if q.spot is not None), m.get("spot"))
        rate = next((q.rate for q in qs if q.rate is not None), m.get("rate", 0.0))
        div = next((q.div for q in qs if q.div is not None), m.get("div", 0.0))
        if spot is None:
            errors.append({"line": qs[0].line, "error": f"{code}: no spot (give a spot column or store its market)"})
            continue
        chosen: dict[tuple, tuple] = {}
        for q in qs:
            T = (q.expiry - day).days / 365.0
            fwd = spot * math.exp((rate - div) * T)
            try:
                iv = q.iv if q.iv is not None else implied_vol(q.price, q.type, spot, q.strike, T, rate, div)
            except ValueError as exc:
                errors.append({"line": q.line, "error": str(exc)})
                continue
            otm = (q.type == "call") == (q.strike >= fwd)
            key = (q.expiry, q.strike)
            if key not in chosen or (otm and not chosen[key][1]):
                chosen[key] = (iv, otm)
        if errors:
            continue
        pts = [{"expiry": e.isoformat(), "strike": k, "iv": v[0]} for (e, k), v in sorted(chosen.items())]
        source = qs[0].source
        try:
            surf = surface_from_quotes(pts, day, spot, rate, div, GRID_PCT, name=f"{code} {day} ({source})")
        except PricingError as exc:
            errors.append({"line": None, "error": f"{code}: {exc}"})
            continue
        doc = surf.to_contract()
        doc.update(as_of=day.isoformat(), source=source, spot=spot, rate=rate, div=div, quotes=len(qs),
                   arbitrage=surf.arbitrage())
        out[code] = doc
    if errors:
        raise FeedError(f"{len(errors)} problem(s) in the option quotes; nothing was stored", errors)
    return out
