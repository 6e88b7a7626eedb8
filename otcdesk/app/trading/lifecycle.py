"""Lifecycle events from fixings: knock-outs, knock-ins, coupons and maturities, each with a client notice.

`FixingService.apply(date, closes, by)` stores the official closes (`fixing`) and runs every live trade on
those underlyings through its own observation schedule on that date. The schedule is the pricing engine's:
the booked product (`TradeRow.product`) is resolved by its spec (`pricing_engine.products` /
`templates`) at its start date into the engine's building blocks (`blocks.ResolvedSchedule`: knock-out
dates, levels and rebates, knock-in, coupon strip, maturity legs), and `observe` applies one close to them,
in the engine's order of events at one date (coupons, then knock-out, then knock-in, then maturity):

- `coupon`: a coupon date of the strip (phoenix / 凤凰): its amount when the close is at or above the coupon
  barrier, plus, with memory, every earlier coupon not yet paid; a close below records a `coupon` event
  with no cash (the notice says so and, with memory, the coupon is carried).
- `knocked_out`: a knock-out observation at or beyond its level (step-downs as the product defines) pays
  the block's rebate (a snowball's: coupon × ACT/365 from the start date); the trade moves to
  `knocked_out`. A barrier watched only at maturity, or whose rebate is paid at maturity, hit on the
  maturity date, is the trade's maturity payoff (`matured`) instead. Continuous barriers are observed on
  the closes posted here (intraday monitoring needs a feed of intraday prices).
- `knocked_in`: a knock-in observation at or beyond its level; recorded once, the trade stays live and its
  product says `knocked_in: true` from then on (the risk book prices the knocked-in state).
- `matured`: on the maturity date the maturity legs (the knocked-in legs after a knock-in) on the close
  (an asian's on its average, from the stored closes); the trade moves to `matured`.

`cash_cny` is what the desk pays the client (negative: the client pays): per unit of notional × the live
notional, with the sign of the client's side (`client_sells` flips it). Each event is recorded once
(`trade_event` is unique by trade, type and date), audited, and drafts a client notice (a review item of
kind `notice`) in the same transaction, so a crash leaves the event with its notice or neither. Each trade
is its own transaction: a failure on one (reported in `skipped`) leaves the others applied, and posting
the fixing again completes it.

Refused (FixingError): a date after the service's today (`future`), a malformed date or close, an unknown
underlying (`invalid`), a close that differs from the one stored for that day (`conflict`: a stored
official close is not silently replaced; the events it drove stand). Ignored, and listed in `ignored`:
a day that is not a trading day (the close is not stored on a non-trading day of the desk's calendar;
a trade whose own calendar does not trade that day is not observed), a date after a trade's maturity.
A trade whose initial price waits for its start date's close (建仓 at the close or VWAP) gets that close as
its initial price, audited, as soon as the close is stored.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Mapping

import numpy as np
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from otcdesk.app.clock import Clock
from otcdesk.app.models import TradeEventRow, TradeRow, utcnow
from otcdesk.app.repositories import transaction
from otcdesk.app.trading.market_data import DESK_CALENDAR, MarketDataService, Tick, close_time, is_trading_day
from otcdesk.workflows.trade import LifecycleError, TradeContext, fire

log = logging.getLogger(__name__)
EPS = 1e-12  # a close exactly at a level counts as at the level despite float rounding
EVENT_TYPES = ("coupon", "knocked_out", "knocked_in", "matured")
TRIGGERS = {"knocked_out": "knock_out", "matured": "mature"}
MAX_CLOSES = 1000


class FixingError(Exception):
    """A fixing refused as a whole; `code` invalid | future | conflict (HTTP 422, 422, 409)."""

    STATUS = {"invalid": 422, "future": 422, "conflict": 409}

    def __init__(self, code: str, message: str, detail: Any = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail

    @property
    def status(self) -> int:
        return self.STATUS.get(self.code, 422)


class NotObserved(Exception):
    """This fixing does not apply to the trade (listed in `ignored` with the reason)."""


class CannotObserve(Exception):
    """This fixing applies to the trade but cannot be applied now (listed in `skipped` with the reason)."""


# ---- observing one close on one product (pure) -----------------------------------------------
@dataclass(frozen=True)
class Observed:
    """One event of a close on a product: `amount` per unit of notional to the product's holder."""

    type: str
    amount: float
    detail: dict


@dataclass(frozen=True)
class TradeState:
    """What earlier fixings left: a knock-in, the coupon dates already paid (ISO dates)."""

    knocked_in: bool = False
    covered_coupons: frozenset = field(default_factory=frozenset)


def schedule_of(spec):
    """The product's whole schedule: resolved by its spec at its start date with spot at the initial price
    (cached: a book's fixing run resolves each product once per process, not once per day)."""
    if spec.start_date is None:
        raise CannotObserve("the booked product has no start_date")
    if spec.initial_price is None:
        raise CannotObserve("the booked product has no initial_price yet")
    try:
        hash(spec)
    except TypeError:  # a spec holding a mapping: resolved every time
        return _resolved.__wrapped__(spec)
    return _resolved(spec)


@lru_cache(maxsize=8192)
def _resolved(spec):
    from otcdesk.pricing_engine.models import MarketSpec

    return spec.resolve(spec.start_date, MarketSpec(spot=spec.initial_price, vol=0.2).to_model())


def _beyond(direction: str, x: float, level: float) -> bool:
    return x >= level - EPS if direction == "up" else x <= level + EPS


def observe(spec, day: dt.date, close: float, state: TradeState = TradeState(),
            close_on: Callable[[dt.date], float | None] = lambda d: None) -> list[Observed]:
    """The events of `close` on `day` for the product `spec` (see the module docstring for the rules).

    `close_on(date)` gives stored closes of the underlying (an asian's averaging dates). Raises NotObserved
    when the day is outside the product's life after its start, CannotObserve when the close cannot be applied
    now; [] when the day is no observation of the product."""
    from otcdesk.pricing_engine.blocks import legs_payoff

    r = schedule_of(spec)
    start, mat, s0 = r.start_date, r.maturity_date, r.initial_price
    if day <= start:
        return []
    if day > mat:
        raise NotObserved(f"{day} is after the trade's maturity {mat}")
    x = close / s0
    base = {"close": close, "initial_price": s0, "x": x}
    out: list[Observed] = []

    strip = r.coupons
    if strip is not None and day in strip.dates:
        i = strip.dates.index(day)
        level = strip.barriers[i]
        if x >= level - EPS:
            owed = [d for d in strip.dates[:i] if strip.memory and d.isoformat() not in state.covered_coupons]
            amount = strip.amounts[i] + sum(strip.amounts[strip.dates.index(d)] for d in owed)
            covers = [d.isoformat() for d in (*owed, day)]
        else:
            amount, covers = 0.0, []
        out.append(Observed("coupon", amount, {**base, "paid": bool(covers), "covers": covers,
                                               "memory": strip.memory, "memory_periods": max(len(covers) - 1, 0),
                                               "barrier_pct": 100 * level, "barrier_level": level * s0,
                                               "period": i + 1, "periods": len(strip.dates)}))

    at_maturity = None  # (level, rebate) of a barrier hit on the maturity date whose rebate is the maturity payoff
    for ko in r.knock_outs:
        if ko.monitoring == "continuous":
            i, level, rebate = None, ko.levels[0], ko.rebate
        elif day in ko.dates:
            i = ko.dates.index(day)
            level, rebate = ko.levels[i], ko.rebates[i]
        else:
            continue
        if not _beyond(ko.direction, x, level):
            continue
        if day == mat and ko.rebate_at == "maturity":
            at_maturity = (ko.direction, level, rebate)
            break
        detail = {**base, "direction": ko.direction, "level_pct": 100 * level, "level": level * s0,
                  "accrual_days": (day - start).days,
                  "pay_date": (day if ko.rebate_at == "hit" else mat).isoformat()}
        if i is not None:
            detail.update(observation=i + 1, observations=len(ko.dates))
        out.append(Observed("knocked_out", rebate, detail))
        return out

    knocked_in = state.knocked_in or bool(getattr(spec, "knocked_in", False))
    ki = r.knock_in
    if ki is not None and not knocked_in and (ki.monitoring == "continuous" or day in ki.dates):
        if _beyond(ki.direction, x, ki.level):
            knocked_in = True
            out.append(Observed("knocked_in", 0.0, {**base, "direction": ki.direction, "level_pct": 100 * ki.level,
                                                    "level": ki.level * s0, "monitoring": ki.monitoring}))

    if day == mat:
        if at_maturity is not None:
            direction, level, rebate = at_maturity
            out.append(Observed("matured", rebate, {**base, "knocked_out": True, "direction": direction,
                                                    "level_pct": 100 * level, "level": level * s0,
                                                    "knocked_in": knocked_in}))
        else:
            x_t = x
            detail = {**base, "knocked_in": knocked_in}
            if r.n_fixings:  # an asian: the average of its fixings
                x_t = _average(r, day, close, close_on)
                detail.update(average=x_t * s0, x=x_t, averaging=r.averaging, fixings=r.n_fixings)
            legs = r.legs_ki if (knocked_in and r.legs_ki is not None) else r.legs
            amount = float(legs_payoff(legs, np.array([x_t]))[0])
            detail["legs"] = [{"kind": leg.kind, "strike": leg.strike, "weight": leg.weight} for leg in legs]
            out.append(Observed("matured", amount, detail))
    return out


def _average(r, day: dt.date, close: float, close_on) -> float:
    dates = [r.start_date + dt.timedelta(days=round(t * 365)) for t in r.fixing_times]
    values, missing = list(r.past_fixings), []
    for d in dates:
        c = close if d == day else close_on(d)
        if c is None:
            missing.append(d.isoformat())
        else:
            values.append(c / r.initial_price)
    if missing:
        raise CannotObserve(f"{len(missing)} averaging close(s) missing, first {missing[0]}: load them first")
    if r.averaging == "geometric":
        return float(math.exp(sum(math.log(v) for v in values) / len(values)))
    return float(sum(values) / len(values))


# ---- the client notice ----------------------------------------------------------------------
STRUCTURE_CN = {"vanilla": "香草期权", "spread": "价差期权", "digital": "二元期权", "barrier": "障碍期权",
                "sharkfin": "鲨鱼鳍", "double_sharkfin": "双鲨", "snowball": "雪球", "phoenix": "凤凰",
                "asian": "亚式期权", "airbag": "安全气囊"}
NOTICE_TITLE = {"knocked_out": "敲出通知", "knocked_in": "敲入提示", "coupon": "派息通知", "matured": "到期通知"}


def _money(cash: float) -> str:
    if abs(cash) < 0.005:
        return "本期无收付"
    who = "我司应付贵方" if cash > 0 else "贵方应付我司"
    return f"{who} {abs(cash):,.2f} 元"


def _size(notional: float) -> str:
    return f"{notional / 1e8:g}亿元" if notional >= 1e8 else f"{notional / 1e4:g}万元"


def draft_notice(trade: TradeRow, spec, ev: Observed, day: dt.date, cash_cny: float, name: str) -> str:
    """The Chinese client notice of one event (the trader edits it in review before it is sent)."""
    d = ev.detail
    what = f"{trade.underlying} {name} {STRUCTURE_CN.get(trade.structure, trade.structure)}".replace("  ", " ")
    head = (f"【{NOTICE_TITLE[ev.type]}】{trade.client}您好，贵方交易 {trade.id}（{what}，"
            f"名义本金 {_size(trade.notional)}，期初价 {d['initial_price']:,.2f}）")
    close = f"{day.isoformat()} 收盘价 {d['close']:,.2f}"
    if ev.type == "knocked_out":
        side = "不低于" if d["direction"] == "up" else "不高于"
        coupon = getattr(spec, "coupon_pct", None)
        accrual = (f"（年化票息 {coupon:g}%，计息 {d['accrual_days']} 天）"
                   if coupon is not None and abs(ev.amount) > 0 else "")
        return (f"{head}：{close}，{side}敲出价 {d['level']:,.2f}（期初价的 {d['level_pct']:.2f}%），产品已敲出并提前终止。"
                f"{_money(cash_cny)}{accrual}，结算日 {d['pay_date']}。具体以正式结算通知为准。")
    if ev.type == "knocked_in":
        side = "不高于" if d["direction"] == "down" else "不低于"
        return (f"{head}：{close}，{side}敲入价 {d['level']:,.2f}（期初价的 {d['level_pct']:.2f}%），已发生敲入。"
                "产品继续存续；此后若未敲出，到期按期末价格相对期初价格结算。")
    if ev.type == "coupon":
        if d["paid"]:
            memory = f"（含记忆补派 {d['memory_periods']} 期）" if d["memory_periods"] else ""
            return (f"{head}：第 {d['period']}/{d['periods']} 期派息观察，{close}，不低于派息线 {d['barrier_level']:,.2f}"
                    f"（期初价的 {d['barrier_pct']:.2f}%），本期派息{memory}：{_money(cash_cny)}。")
        carry = "，未派票息记忆至后续派息日" if d["memory"] else ""
        return (f"{head}：第 {d['period']}/{d['periods']} 期派息观察，{close}，低于派息线 {d['barrier_level']:,.2f}"
                f"（期初价的 {d['barrier_pct']:.2f}%），本期不派息{carry}。")
    state = "敲出" if d.get("knocked_out") else ("已敲入" if d.get("knocked_in") else "未敲入")
    basis = f"期末均价 {d['average']:,.2f}" if "average" in d else "期末价格"
    return (f"{head}：于 {day.isoformat()} 到期，期末{close[11:]}（{state}）。按{basis}结算：{_money(cash_cny)}。"
            "具体以正式结算通知为准。")


def notice_id(trade_id: str, event_type: str, day: str) -> str:
    """The notice's review id, the same for the same event (a repeated fixing opens nothing new)."""
    return "N" + hashlib.sha256(f"{trade_id}|{event_type}|{day}".encode()).hexdigest()[:10].upper()


# ---- the service -----------------------------------------------------------------------------
class FixingService:
    """Official closes in, lifecycle events and client notices out (see the module docstring)."""

    def __init__(self, engine: Engine, opener, clock: Clock, market: MarketDataService,
                 on_change: Callable[[str], Any] | None = None):
        """`on_change(trade_id)` is told of every trade an applied fixing changed (the console hears of it)."""
        self.engine = engine
        self.opener = opener
        self.clock = clock
        self.market = market
        self.on_change = on_change or (lambda trade_id: None)

    def check(self, date: Any, closes: Any) -> tuple[dt.date, dict[str, float]]:
        """The validated date and closes; FixingError (invalid | future) saying what is wrong."""
        if isinstance(date, dt.date) and not isinstance(date, dt.datetime):
            day = date
        else:
            try:
                if not isinstance(date, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date.strip()):
                    raise ValueError
                day = dt.date.fromisoformat(date.strip())
            except ValueError:
                raise FixingError("invalid", f"date {date!r} is not an ISO date (YYYY-MM-DD)",
                                  {"date": str(date)}) from None
        today = self.clock.today()
        if day > today:
            raise FixingError("future", f"{day} is after today ({today}): a fixing is the close of a day that has "
                              "happened", {"date": day.isoformat(), "today": today.isoformat()})
        if not isinstance(closes, Mapping) or not closes:
            raise FixingError("invalid", "closes must be a non-empty object {underlying: close}", {"closes": closes})
        if len(closes) > MAX_CLOSES:
            raise FixingError("invalid", f"at most {MAX_CLOSES} closes at once", {"count": len(closes)})
        bad = {}
        for code, value in closes.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value <= 0:
                bad[str(code)] = f"close must be a positive finite number, got {value!r}"
        if bad:
            raise FixingError("invalid", "bad close(s)", {"closes": bad})
        known = self.market.underlyings()
        unknown = sorted(str(c) for c in closes if c not in known)
        if unknown:
            raise FixingError("invalid", f"unknown underlying(s) {', '.join(unknown)}", {"unknown": unknown})
        try:
            is_trading_day(day)
        except ValueError as exc:
            raise FixingError("invalid", str(exc), {"date": day.isoformat()}) from None
        return day, {str(c): float(v) for c, v in closes.items()}

    def apply(self, date: Any, closes: Any, by: str, *, role: str | None = None, source: str | None = None) -> dict:
        """Store the closes of `date` and apply them to every live trade on those underlyings.

        Returns `{"date", "events": [{"trade_id", "type", "date", "cash_cny", "notice_id", "detail"}], "fixings":
        {"stored", "unchanged"}, "initial_prices": [...], "ignored": [{"underlying", "trade_id"?, "reason"}],
        "skipped": [{"trade_id", "reason"}], "trades_observed"}`; `events` are those recorded now (none when the
        same fixing is posted again). Raises FixingError (nothing stored) for a refused fixing."""
        day, closes = self.check(date, closes)
        iso = day.isoformat()
        result: dict = {"date": iso, "events": [], "fixings": {"stored": {}, "unchanged": {}}, "initial_prices": [],
                        "ignored": [], "skipped": [], "trades_observed": 0}
        if is_trading_day(day):
            self._store(day, closes, by, source or f"fixing:{by}", result)
        else:
            result["ignored"] += [{"underlying": u, "reason": f"{iso} is not a trading day of {DESK_CALENDAR}: the "
                                   "close is not stored"} for u in closes]
        self._initial_prices(day, closes, by, result)
        names = self.market.underlyings()
        for trade_id in self._candidates(day, closes, result):
            self._apply_trade(trade_id, day, closes, by, role, names, result)
        return result

    # ---- steps ------------------------------------------------------------------------------
    def _store(self, day: dt.date, closes: dict[str, float], by: str, source: str, result: dict) -> None:
        try:
            self._store_once(day, closes, by, source, result)
        except IntegrityError:  # a concurrent post stored one of these closes first: compare with it
            result["fixings"] = {"stored": {}, "unchanged": {}}
            self._store_once(day, closes, by, source, result)

    def _store_once(self, day: dt.date, closes: dict[str, float], by: str, source: str, result: dict) -> None:
        iso = day.isoformat()
        with transaction(self.engine) as tx:
            conflicts = {}
            for u, c in closes.items():
                existing = tx.market.fixing(u, iso)
                if existing is not None and existing.close != c:
                    conflicts[u] = {"stored": existing.close, "posted": c, "source": existing.source}
            if conflicts:
                raise FixingError("conflict", f"a different close is already stored for {iso}: "
                                  + ", ".join(f"{u} {v['stored']:g} (posted {v['posted']:g})"
                                              for u, v in conflicts.items()),
                                  {"date": iso, "conflicts": conflicts})
            new = {}
            for u, c in closes.items():
                if tx.market.fixing(u, iso) is None:
                    tx.market.add_fixing(u, iso, c, source)
                    new[u] = c
                else:
                    result["fixings"]["unchanged"][u] = c
            if new:
                filled, _ = self.market.fill(tx, [Tick(u, close_time(day), c, source=source) for u, c in new.items()])
                tx.market.add_ticks(row for _, row in filled)
                tx.audit.record(by, "market.fixing", f"fixing:{iso}", {"date": iso, "closes": new, "source": source})
            result["fixings"]["stored"] = new

    def _initial_prices(self, day: dt.date, closes: dict[str, float], by: str, result: dict) -> None:
        with transaction(self.engine) as tx:
            pending = [(t.id, t.underlying, (t.product or {}).get("start_date"))
                       for t in tx.trades.initial_price_pending(list(closes))]
        for trade_id, underlying, start in pending:
            if not start or start > day.isoformat():
                continue
            with transaction(self.engine) as tx:
                trade = tx.trades.get(trade_id)
                fixing = tx.market.fixing(underlying, start)
                if trade is None or not trade.initial_price_pending:
                    continue
                if fixing is None:  # reported by `_candidates` (the trade cannot be observed yet)
                    continue
                product = {**trade.product, "initial_price": fixing.close}
                if not tx.trades.amend(trade, product=product, initial_price_pending=False):
                    result["skipped"].append({"trade_id": trade_id, "reason": "changed concurrently; post again"})
                    continue
                tx.audit.record(by, "trade.initial_price", f"trade:{trade_id}",
                                {"initial_price": fixing.close, "date": start, "underlying": underlying,
                                 "execution": (trade.execution or {}).get("type")})
                result["initial_prices"].append({"trade_id": trade_id, "date": start, "initial_price": fixing.close})

    def _candidates(self, day: dt.date, closes: dict[str, float], result: dict) -> list[str]:
        """Live trades on these underlyings with an event still to record on `day` (read only)."""
        out = []
        with transaction(self.engine) as tx:
            for trade in tx.trades.live():
                if trade.underlying not in closes:
                    continue
                result["trades_observed"] += 1
                try:
                    _, observed, recorded = self._evaluate(tx, trade, day, closes[trade.underlying], quick=True)
                except NotObserved as exc:
                    result["ignored"].append({"trade_id": trade.id, "underlying": trade.underlying,
                                              "reason": str(exc)})
                    continue
                except CannotObserve as exc:
                    result["skipped"].append({"trade_id": trade.id, "reason": str(exc)})
                    continue
                except Exception as exc:  # a product the engine cannot read must not stop the other trades
                    log.exception("fixing %s: trade %s", day, trade.id)
                    result["skipped"].append({"trade_id": trade.id, "reason": f"{type(exc).__name__}: {exc}"})
                    continue
                if any((o.type, day.isoformat()) not in recorded for o in observed):
                    out.append(trade.id)
        return out

    def _evaluate(self, tx, trade: TradeRow, day: dt.date, close: float, *, quick: bool = False):
        """(spec, observed events, {(type, date)} recorded before) of one trade on one close. `quick`: read the
        trade's events only when the close is an event at all (most closes of a book are not)."""
        from otcdesk.pricing_engine.errors import PricingError
        from otcdesk.pricing_engine.products import product_from_dict

        try:
            spec = product_from_dict(trade.product)
        except PricingError as exc:
            raise CannotObserve(f"the booked product cannot be read: {exc}") from None
        if trade.initial_price_pending:
            if spec.start_date is not None and day <= spec.start_date:
                return spec, [], set()
            raise CannotObserve(f"the initial price is still pending: no close of {trade.underlying} is stored for "
                                f"its start date {spec.start_date}; post that close, then this one again")
        try:
            trading = is_trading_day(day, spec.calendar)
        except ValueError as exc:
            raise NotObserved(str(exc)) from None
        if not trading:
            raise NotObserved(f"{day} is not a trading day of the trade's calendar {spec.calendar}")
        def close_on(d: dt.date):
            f = tx.market.fixing(trade.underlying, d.isoformat())
            return f.close if f else None

        def run(state: TradeState) -> list[Observed]:
            try:
                return observe(spec, day, close, state, close_on)
            except PricingError as exc:
                raise CannotObserve(f"the schedule cannot be resolved: {exc}") from None

        if quick and not run(TradeState(knocked_in=bool(getattr(spec, "knocked_in", False)))):
            return spec, [], set()  # (a knock-in is also in the product's terms: `_after` puts it there)
        events = tx.trades.events(trade.id)
        state = TradeState(knocked_in=any(e.type == "knocked_in" for e in events),
                           covered_coupons=frozenset(d for e in events if e.type == "coupon"
                                                     for d in (e.detail or {}).get("covers", ())))
        return spec, run(state), {(e.type, e.date) for e in events}

    def _apply_trade(self, trade_id: str, day: dt.date, closes: dict[str, float], by: str, role: str | None,
                     names: dict[str, str], result: dict) -> None:
        iso = day.isoformat()
        try:
            with transaction(self.engine) as tx:
                trade = tx.trades.get(trade_id)
                if trade is None or trade.status != "live":
                    result["skipped"].append({"trade_id": trade_id, "reason": "no longer live"})
                    return
                spec, observed, recorded = self._evaluate(tx, trade, day, closes[trade.underlying])
                todo = [ev for ev in observed if (ev.type, iso) not in recorded]
                if not todo:
                    return
                # claim the trade (version + 1) before writing anything else: a concurrent run on this trade fails
                # here, and on SQLite this write opens the transaction, so the event's savepoint is nested in it
                if not tx.trades.amend(trade):
                    raise _Concurrent()
                sign = -1.0 if spec.side == "client_sells" else 1.0
                name = spec.underlying_name or names.get(trade.underlying, "")
                done = []
                for ev in todo:
                    cash = round(sign * ev.amount * trade.notional, 2) + 0.0
                    nid = notice_id(trade.id, ev.type, iso)
                    row = TradeEventRow(trade_id=trade.id, type=ev.type, date=iso, cash_cny=cash,
                                        detail={**ev.detail, "amount_per_unit": ev.amount, "side": spec.side},
                                        notice_review_id=nid)
                    if not tx.trades.add_event_once(row):
                        continue
                    draft = draft_notice(trade, spec, ev, day, cash, name)
                    self.opener.open_direct(
                        nid, kind="notice", channel=trade.channel, chat_id=trade.chat_id, sender_id=trade.sender_id,
                        sender_name=trade.client, text=f"[{ev.type}] {trade.id} {trade.underlying} {iso} "
                        f"close {ev.detail['close']:g}", draft=draft, ref_id=trade.id,
                        detail={"event": ev.type, "date": iso, "cash_cny": cash, "trade_id": trade.id}, actor=by,
                        tx=tx)
                    tx.audit.record(by, "trade.event", f"trade:{trade.id}",
                                    {"type": ev.type, "date": iso, "cash_cny": cash, "close": ev.detail["close"],
                                     "notice": nid})
                    self._after(tx, trade, spec, ev, iso, by, role)
                    done.append({"trade_id": trade.id, "type": ev.type, "date": iso, "cash_cny": cash,
                                 "notice_id": nid, "detail": row.detail})
        except _Concurrent:
            result["skipped"].append({"trade_id": trade_id, "reason": "changed concurrently; post the fixing again"})
            return
        except (NotObserved, CannotObserve) as exc:
            result["skipped"].append({"trade_id": trade_id, "reason": str(exc)})
            return
        except Exception as exc:  # this trade's transaction rolled back whole; the others go on
            log.exception("fixing %s: trade %s", iso, trade_id)
            result["skipped"].append({"trade_id": trade_id, "reason": f"{type(exc).__name__}: {exc}"})
            return
        result["events"] += done
        if done:
            try:
                self.on_change(trade_id)
            except Exception:  # the events are committed; a console that misses this refetches
                log.exception("announcing trade %s failed", trade_id)

    def _after(self, tx, trade: TradeRow, spec, ev: Observed, iso: str, by: str, role: str | None) -> None:
        """The event's consequence on the trade: its status (knocked_out, matured) or terms (knocked_in, memory)."""
        if ev.type in TRIGGERS:
            trigger = TRIGGERS[ev.type]
            try:
                dest, _after = fire(trade.status, trigger, TradeContext(actor=by, actor_role=role))
            except LifecycleError as exc:
                raise CannotObserve(exc.message) from None
            source = trade.status
            if not tx.trades.move(trade, trigger, dest, by, role=role, detail={"event": ev.type, "date": iso},
                                  closed_at=utcnow()):
                raise _Concurrent()
            tx.audit.record(by, f"trade.{trigger}", f"trade:{trade.id}", {"from": source, "to": dest, "date": iso})
            return
        changes = {}
        if ev.type == "knocked_in" and not (trade.product or {}).get("knocked_in"):
            changes["knocked_in"] = True
        if ev.type == "coupon" and ev.detail.get("memory") and "unpaid_coupons" in _fields(spec):
            events = tx.trades.events(trade.id)
            covered = {d for e in events if e.type == "coupon" for d in (e.detail or {}).get("covers", ())}
            changes["unpaid_coupons"] = sum(1 for e in events if e.type == "coupon" and e.date not in covered)
        if changes and any((trade.product or {}).get(k) != v for k, v in changes.items()):
            if not tx.trades.amend(trade, product={**trade.product, **changes}):
                raise _Concurrent()
            tx.audit.record(by, "trade.terms", f"trade:{trade.id}", {"changes": changes, "event": ev.type, "date": iso})


def _fields(spec) -> set[str]:
    from dataclasses import fields

    return {f.name for f in fields(spec)}


class _Concurrent(Exception):
    """Another unit of work changed the trade first: this trade's transaction is rolled back."""
