"""Products as data: frozen, validated specs with a `structure` discriminator.

Every spec serialises to / from the `product` object of `otcdesk price` in CONTRACTS.md (QuoteRequest
fields plus schedule fields) with `product_from_dict(d)` / `spec.to_dict()`, and resolves into engine
building blocks with `spec.resolve(valuation_date, model) -> ResolvedSchedule` (see `blocks.py`).
Each built-in spec class is registered at import in the one registry of structures (`registry`), where
`templates` declares the others; `product_from_dict` resolves every `structure` there. The schedule
helpers below (`autocall_dates`, `observed_knock_out`, `monthly_coupons`, `barrier_times`, ...) serve
built-in specs and templates alike.

Conventions (all structures)
----------------------------
- Option form: no principal is exchanged and no margin interest is modelled.
- `price` is the value to the holder (the client when `side` is `client_buys`; `client_sells` flips
  the sign) per unit of notional, where one unit of notional is one unit of the underlying at
  `initial_price` (default: spot). All `*_pct` fields are % of `initial_price` (levels) or % of notional
  (coupons, rebates, payouts); x = S / initial_price.
- Dates: `start_date` defaults to the valuation date; `maturity_date` is given, or `tenor` is counted
  from `start_date` and rolled to the next trading day of `calendar` (XSHG default). Observation dates
  roll to the next trading day. Time is ACT/365 from the dates; coupons accrue ACT/365 from
  `start_date`. Observations before the valuation date are in the past and assumed not to have
  knocked out (the trade is alive); a knock-out or coupon observation *on* the valuation date is
  applied to the given spot (taken as that day's close); `knocked_in: true` says a knock-in
  already happened.

Snowball (雪球), option form
---------------------------
- Knock-out (敲出) observation dates: monthly, start + k months for k = lockup_months .. tenor months
  (each rolled to the next XSHG trading day; the last is the maturity date); `ko_observation: daily`
  observes every trading day after the lock-up. Knock-out level KO_i = ko_pct − i × ko_stepdown_pct
  (i = 0 at the first observation; not below `ko_floor_pct`), `final_ko_pct` replaces the last level
  (parachute / 降落伞).
- If S(t_i) >= KO_i × S0 at an observation date, the product ends and the holder receives
  coupon_pct × ACT/365(start_date, t_i), paid at t_i (`early_coupon_pct` replaces coupon_pct for
  the first `early_observations` observations: 早利).
- No knock-out and no knock-in: the holder receives maturity_coupon_pct (default coupon_pct; dual
  coupon / 红利票息) × ACT/365(start_date, maturity_date) at maturity.
- Knock-in (敲入): daily close <= ki_pct × S0 on any trading day after the start (`ki_observation:
  daily`, default) or at maturity only (`ki_observation: maturity`, European KI). Knocked in and
  never knocked out: the holder receives min(S_T/S0 − K, 0) at maturity with K = strike_pct/100
  (default 1, i.e. min(S_T/S0 − 1, 0)); `loss_cap_pct` floors that loss at −loss_cap_pct/100.
- `knocked_in: true` starts in the knocked-in state. Fair coupon = the coupon that makes price 0.

Phoenix (凤凰): as the snowball's knock-out and knock-in, plus at every monthly observation
(no lock-up for coupons) with S >= coupon_barrier_pct × S0 a coupon coupon_pct × ACT/365(previous
observation or start, this observation) paid then (with `memory`, also all unpaid earlier ones;
`unpaid_coupons` carries those missed before the valuation date); no coupon at maturity otherwise;
knock-out pays no extra amount beyond that date's coupon. Knocked in and not knocked out:
min(S_T/S0 − K, 0) at maturity.

Airbag (安全气囊): not knocked in: participation × max(x_T − K, 0); knocked in (daily close <= ki, or
at maturity): participation × max(x_T − K, 0) − max(K − x_T, 0) (the holder is long the
underlying on the downside).

Sharkfin (鲨鱼鳍): call: participation × max(x_T − K, 0) unless x >= barrier (at maturity:
`barrier_monitoring: maturity`, default; or any trading day: `daily`; or `continuous`), in which case
rebate_pct is paid at maturity. Put: mirror image with a barrier below. Double sharkfin: call at
`upper_strike_pct` (default strike_pct) + put at `strike_pct`, knocked out above `barrier_pct` or
below `lower_barrier_pct`.

Barrier: vanilla × participation with `barrier_type` up/down in/out; rebate_pct paid at the hit for
out options and at expiry for in options that never knocked in (QuantLib's convention).
Digital: cash-or-nothing paying payout_pct (default 100) if x_T > K (call) / x_T < K (put).
Spread: call spread long K1 = min, short K2 = max; put spread long the higher put, short the lower.
Asian: arithmetic (default) or geometric average of the fixings (daily trading days by default, or
monthly, or `fixing_dates`) against the strike.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Mapping

from otcdesk.pricing_engine.blocks import SAME_DAY, CouponStrip, KnockIn, KnockOut, Leg, ResolvedSchedule
from otcdesk.pricing_engine.errors import PricingError
from otcdesk.pricing_engine.registry import get_structure, register_structure
from otcdesk.pricing_engine.schedule import (act365, add_months, add_tenor, get_calendar, monthly_observation_dates,
                                             parse_tenor, to_date)

SIDES = ("client_buys", "client_sells")
OPTION_TYPES = ("call", "put")
MONITORING = ("continuous", "daily", "maturity")
BARRIER_TYPES = ("up_out", "up_in", "down_out", "down_in")


def _err(msg: str, field: str | None = None, value: Any = None) -> PricingError:
    return PricingError(msg, {"field": field, "value": value} if field else None)


def coerce_field(name: str, ftype: str, value: Any):
    """`value` of field `name` as its declared type (`float`, `int`, `bool`, `str`, `dt.date`, a tuple of
    those; `X | None` alike). Raises PricingError naming the field."""
    if value is None:
        return None
    if ftype.startswith("tuple["):
        if not isinstance(value, (list, tuple)):
            raise _err(f"{name} must be a list, got {value!r}", name, value)
        item = ftype[len("tuple["):].split(",")[0]
        return tuple(coerce_field(name, item, v) for v in value)
    if ftype.startswith("dt.date"):
        return to_date(value, name)
    try:
        if ftype in ("float", "float | None"):
            if isinstance(value, bool):
                raise TypeError
            f = float(value)
            if not math.isfinite(f):
                raise ValueError
            return f
        if ftype in ("int", "int | None"):
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise ValueError
            return int(float(value))
        if ftype in ("bool", "bool | None"):
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise ValueError
        if ftype in ("str", "str | None"):
            return str(value)
    except (TypeError, ValueError):
        raise _err(f"{name} has a bad value {value!r} (expected {ftype.split(' ')[0]})", name, value) from None
    return value


def field_types(cls) -> dict[str, str]:
    """{field name: declared type as written} of a spec class."""
    return {f.name: str(f.type) for f in fields(cls)}


@dataclass(frozen=True, kw_only=True)
class ProductSpec:
    """Fields shared by every structure (QuoteRequest identity + schedule fields of CONTRACTS.md)."""

    structure: ClassVar[str] = ""
    underlying: str | None = None
    underlying_name: str | None = None
    notional: float | None = None
    side: str = "client_buys"
    quote: str | None = None
    tenor: str | None = None
    start_date: dt.date | None = None
    maturity_date: dt.date | None = None
    initial_price: float | None = None
    calendar: str = "XSHG"

    # ---- validation -----------------------------------------------------------------
    def __post_init__(self):
        self._one_of("side", SIDES)
        if self.notional is not None and not self.notional > 0:
            raise _err(f"notional must be positive, got {self.notional}", "notional", self.notional)
        if self.initial_price is not None and not self.initial_price > 0:
            raise _err(f"initial_price must be positive, got {self.initial_price}", "initial_price", self.initial_price)
        if self.tenor is None and self.maturity_date is None:
            raise _err("the product needs a maturity_date or a tenor", "tenor")
        if self.tenor is not None:
            parse_tenor(self.tenor)
        if self.start_date and self.maturity_date and self.maturity_date <= self.start_date:
            raise _err(f"maturity_date {self.maturity_date} is not after start_date {self.start_date}",
                       "maturity_date", str(self.maturity_date))
        self.validate()

    def validate(self) -> None:
        """Structure-specific static checks (no market needed)."""

    def _positive(self, *names: str, allow_zero: bool = False):
        for n in names:
            v = getattr(self, n)
            if v is not None and (v < 0 or (v == 0 and not allow_zero)):
                raise _err(f"{n} must be {'non-negative' if allow_zero else 'positive'}, got {v}", n, v)

    def _one_of(self, name: str, allowed: tuple[str, ...]):
        v = getattr(self, name)
        if v not in allowed:
            raise _err(f"{name} must be {', '.join(allowed[:-1])} or {allowed[-1]}, got {v!r}", name, v)

    def _required(self, *names: str):
        for n in names:
            if getattr(self, n) is None:
                raise _err(f"{self.structure} needs {n}", n)

    # ---- serialisation --------------------------------------------------------------
    def to_dict(self) -> dict:
        """The CONTRACTS.md `product` object (None fields omitted, dates ISO)."""
        out: dict[str, Any] = {"structure": self.structure}
        for f in fields(self):
            v = getattr(self, f.name)
            if v is None:
                continue
            if isinstance(v, dt.date):
                v = v.isoformat()
            elif isinstance(v, tuple):
                v = [x.isoformat() if isinstance(x, dt.date) else x for x in v]
            elif isinstance(v, Mapping):
                v = dict(v)
            out[f.name] = v
        return out

    def replace(self, **changes) -> "ProductSpec":
        return dataclasses.replace(self, **changes)

    # ---- dates ----------------------------------------------------------------------
    def dates(self, valuation_date: dt.date) -> tuple[dt.date, dt.date]:
        """(start, maturity) with the conventions of the module docstring."""
        cal = get_calendar(self.calendar)
        start = self.start_date or valuation_date
        if self.maturity_date is not None:
            mat = cal.roll_forward(self.maturity_date)
        else:
            mat = cal.roll_forward(add_tenor(start, self.tenor))
        if mat <= valuation_date:
            raise _err(f"maturity {mat} is not after the valuation date {valuation_date}", "maturity_date", str(mat))
        if mat <= start:
            raise _err(f"maturity {mat} is not after start {start}", "maturity_date", str(mat))
        return start, mat

    def _base(self, valuation_date, model) -> dict:
        valuation_date = to_date(valuation_date, "valuation_date")
        start, mat = self.dates(valuation_date)
        s0 = self.initial_price or model.spot
        return dict(structure=self.structure, valuation_date=valuation_date, start_date=start, maturity_date=mat,
                    T=act365(valuation_date, mat), spot_x=model.spot / s0, initial_price=s0,
                    maturity_accrual=act365(start, mat))

    def resolve(self, valuation_date, model) -> ResolvedSchedule:
        """Building blocks at `valuation_date` for `model` (see blocks.py). Raises PricingError."""
        raise NotImplementedError

    # helpers for subclasses
    def _times(self, valuation_date: dt.date, dates) -> tuple[tuple[float, ...], tuple[dt.date, ...]]:
        fut = [d for d in dates if d > valuation_date]
        return tuple(act365(valuation_date, d) for d in fut), tuple(fut)

    def _daily(self, base: dict, after: dt.date | None = None) -> tuple[tuple[float, ...], tuple[dt.date, ...]]:
        cal = get_calendar(self.calendar)
        v = base["valuation_date"]
        days = cal.trading_days(max(v, after or v), base["maturity_date"])
        return self._times(v, days)


def obs_time(valuation_date: dt.date, d: dt.date) -> float:
    """ACT/365 time of an observation; one on the valuation date gets `SAME_DAY`."""
    return max(act365(valuation_date, d), SAME_DAY)


def _vanilla_legs(option_type: str, k: float, w: float) -> list[Leg]:
    return [Leg("call" if option_type == "call" else "put", k, w)]


def check_knock_in_spot(base, ki: KnockIn | None, knocked_in: bool, name="ki_pct"):
    """Refuse a spot already through a still-to-come knock-in (the trade should say `knocked_in: true`)."""
    if ki is None or knocked_in or ki.monitoring == "maturity":
        return
    x = base["spot_x"]
    if (ki.direction == "down" and x <= ki.level) or (ki.direction == "up" and x >= ki.level):
        raise _err(f"spot ({x:.4f} of initial) is already beyond the knock-in level {ki.level:.4f}: "
                   "set knocked_in: true to price the knocked-in state", name, ki.level)


# =====================================================================================================
@dataclass(frozen=True, kw_only=True)
class VanillaSpec(ProductSpec):
    """European call/put × participation (香草期权)."""

    structure: ClassVar[str] = "vanilla"
    option_type: str | None = None
    strike_pct: float | None = None
    strike_level: float | None = None
    participation_pct: float = 100.0

    def validate(self):
        self._required("option_type")
        self._one_of("option_type", OPTION_TYPES)
        self._positive("strike_pct", "strike_level", "participation_pct")

    def strike_x(self, s0: float) -> float:
        if self.strike_pct is not None:
            return self.strike_pct / 100.0
        if self.strike_level is not None:
            return self.strike_level / s0
        return 1.0

    def resolve(self, valuation_date, model):
        b = self._base(valuation_date, model)
        return ResolvedSchedule(**b, legs=tuple(_vanilla_legs(self.option_type, self.strike_x(b["initial_price"]),
                                                              self.participation_pct / 100.0)))


@dataclass(frozen=True, kw_only=True)
class SpreadSpec(ProductSpec):
    """Call spread (long K1, short K2 > K1) or put spread (long K2, short K1 < K2) (价差)."""

    structure: ClassVar[str] = "spread"
    option_type: str | None = None
    strike_pct: float | None = None
    upper_strike_pct: float | None = None
    participation_pct: float = 100.0

    def validate(self):
        self._required("option_type", "strike_pct", "upper_strike_pct")
        self._one_of("option_type", OPTION_TYPES)
        self._positive("strike_pct", "upper_strike_pct", "participation_pct")
        if self.upper_strike_pct == self.strike_pct:
            raise _err("a spread needs two different strikes", "upper_strike_pct", self.upper_strike_pct)

    def resolve(self, valuation_date, model):
        b = self._base(valuation_date, model)
        k1, k2 = sorted((self.strike_pct / 100.0, self.upper_strike_pct / 100.0))
        w = self.participation_pct / 100.0
        legs = ([Leg("call", k1, w), Leg("call", k2, -w)] if self.option_type == "call"
                else [Leg("put", k2, w), Leg("put", k1, -w)])
        return ResolvedSchedule(**b, legs=tuple(legs))


@dataclass(frozen=True, kw_only=True)
class DigitalSpec(ProductSpec):
    """Cash-or-nothing digital paying payout_pct of notional at maturity (二元期权)."""

    structure: ClassVar[str] = "digital"
    option_type: str | None = None
    strike_pct: float | None = None
    strike_level: float | None = None
    payout_pct: float = 100.0

    def validate(self):
        self._required("option_type")
        self._one_of("option_type", OPTION_TYPES)
        self._positive("strike_pct", "strike_level", "payout_pct")

    def resolve(self, valuation_date, model):
        b = self._base(valuation_date, model)
        k = VanillaSpec.strike_x(self, b["initial_price"])  # same strike rules
        kind = "digital_call" if self.option_type == "call" else "digital_put"
        return ResolvedSchedule(**b, legs=(Leg(kind, k, self.payout_pct / 100.0),))


def barrier_times(spec: ProductSpec, b: dict, monitoring: str):
    """(monitoring, times, dates) of a barrier watched `continuous`ly, at `maturity` or every trading day."""
    if monitoring == "continuous":
        return "continuous", (), ()
    if monitoring == "maturity":
        return "discrete", (b["T"],), (b["maturity_date"],)
    t, d = spec._daily(b)
    return "discrete", t, d


@dataclass(frozen=True, kw_only=True)
class BarrierSpec(ProductSpec):
    """Single-barrier vanilla (障碍期权): up/down × in/out with rebate."""

    structure: ClassVar[str] = "barrier"
    option_type: str | None = None
    strike_pct: float | None = None
    strike_level: float | None = None
    barrier_pct: float | None = None
    barrier_type: str | None = None
    rebate_pct: float = 0.0
    participation_pct: float = 100.0
    barrier_monitoring: str = "continuous"
    knocked_in: bool = False

    def validate(self):
        self._required("option_type", "barrier_pct", "barrier_type")
        self._one_of("option_type", OPTION_TYPES)
        self._one_of("barrier_type", BARRIER_TYPES)
        self._one_of("barrier_monitoring", MONITORING)
        self._positive("strike_pct", "strike_level", "barrier_pct", "participation_pct")
        self._positive("rebate_pct", allow_zero=True)

    @property
    def direction(self) -> str:
        return self.barrier_type.split("_")[0]

    @property
    def is_in(self) -> bool:
        return self.barrier_type.endswith("_in")

    def resolve(self, valuation_date, model):
        b = self._base(valuation_date, model)
        k = VanillaSpec.strike_x(self, b["initial_price"])
        h = self.barrier_pct / 100.0
        x = b["spot_x"]
        if self.barrier_monitoring != "maturity" and not (self.is_in and self.knocked_in):
            if (self.direction == "up" and x >= h) or (self.direction == "down" and x <= h):
                raise _err(f"{self.barrier_type} barrier {self.barrier_pct}% is on the wrong side of spot "
                           f"({100 * x:.2f}% of initial): it would already have been hit", "barrier_pct",
                           self.barrier_pct)
        legs = tuple(_vanilla_legs(self.option_type, k, self.participation_pct / 100.0))
        rebate = self.rebate_pct / 100.0
        mon, times, dates = barrier_times(self, b, self.barrier_monitoring)
        if self.is_in:
            ki = KnockIn(self.direction, "maturity" if self.barrier_monitoring == "maturity" else mon, h, times, dates)
            return ResolvedSchedule(**b, legs=(Leg("cash", 0.0, rebate),) if rebate else (), legs_ki=legs,
                                    knock_in=ki, knocked_in=self.knocked_in)
        ko = KnockOut(self.direction, mon, times, (h,) * max(len(times), 1), (rebate,) * max(len(times), 1),
                      "maturity" if self.barrier_monitoring == "maturity" else "hit", dates=dates)
        return ResolvedSchedule(**b, legs=legs, knock_outs=(ko,))


@dataclass(frozen=True, kw_only=True)
class SharkfinSpec(ProductSpec):
    """Sharkfin (鲨鱼鳍): knock-out vanilla with rebate paid at maturity and participation."""

    structure: ClassVar[str] = "sharkfin"
    option_type: str = "call"
    strike_pct: float = 100.0
    barrier_pct: float | None = None
    rebate_pct: float = 0.0
    participation_pct: float = 100.0
    barrier_monitoring: str = "maturity"

    def validate(self):
        self._required("barrier_pct")
        self._one_of("option_type", OPTION_TYPES)
        self._one_of("barrier_monitoring", MONITORING)
        self._positive("strike_pct", "barrier_pct", "participation_pct")
        self._positive("rebate_pct", allow_zero=True)
        if self.option_type == "call" and self.barrier_pct <= self.strike_pct:
            raise _err("a call sharkfin needs barrier_pct above strike_pct", "barrier_pct", self.barrier_pct)
        if self.option_type == "put" and self.barrier_pct >= self.strike_pct:
            raise _err("a put sharkfin needs barrier_pct below strike_pct", "barrier_pct", self.barrier_pct)

    def resolve(self, valuation_date, model):
        b = self._base(valuation_date, model)
        h = self.barrier_pct / 100.0
        d = "up" if self.option_type == "call" else "down"
        x = b["spot_x"]
        if self.barrier_monitoring != "maturity" and ((d == "up" and x >= h) or (d == "down" and x <= h)):
            raise _err(f"knock-out barrier {self.barrier_pct}% is on the wrong side of spot ({100 * x:.2f}%)",
                       "barrier_pct", self.barrier_pct)
        mon, times, dates = barrier_times(self, b, self.barrier_monitoring)
        n = max(len(times), 1)
        ko = KnockOut(d, mon, times, (h,) * n, (self.rebate_pct / 100.0,) * n, "maturity", dates=dates)
        legs = _vanilla_legs(self.option_type, self.strike_pct / 100.0, self.participation_pct / 100.0)
        return ResolvedSchedule(**b, legs=tuple(legs), knock_outs=(ko,))


@dataclass(frozen=True, kw_only=True)
class DoubleSharkfinSpec(ProductSpec):
    """Double sharkfin (双鲨): put at strike_pct + call at upper_strike_pct, knocked out outside the barriers."""

    structure: ClassVar[str] = "double_sharkfin"
    strike_pct: float = 100.0
    upper_strike_pct: float | None = None
    barrier_pct: float | None = None
    lower_barrier_pct: float | None = None
    rebate_pct: float = 0.0
    participation_pct: float = 100.0
    barrier_monitoring: str = "maturity"

    def validate(self):
        self._required("barrier_pct", "lower_barrier_pct")
        self._one_of("barrier_monitoring", MONITORING)
        self._positive("strike_pct", "upper_strike_pct", "barrier_pct", "lower_barrier_pct", "participation_pct")
        self._positive("rebate_pct", allow_zero=True)
        ku = self.upper_strike_pct if self.upper_strike_pct is not None else self.strike_pct
        if not (self.lower_barrier_pct < self.strike_pct <= ku < self.barrier_pct):
            raise _err("double sharkfin needs lower_barrier_pct < strike_pct <= upper_strike_pct < barrier_pct",
                       "barrier_pct", [self.lower_barrier_pct, self.strike_pct, ku, self.barrier_pct])

    def resolve(self, valuation_date, model):
        b = self._base(valuation_date, model)
        hu, hl = self.barrier_pct / 100.0, self.lower_barrier_pct / 100.0
        x = b["spot_x"]
        if self.barrier_monitoring != "maturity" and not (hl < x < hu):
            raise _err(f"spot ({100 * x:.2f}%) is outside the knock-out barriers", "barrier_pct",
                       [self.lower_barrier_pct, self.barrier_pct])
        mon, times, dates = barrier_times(self, b, self.barrier_monitoring)
        n = max(len(times), 1)
        r = self.rebate_pct / 100.0
        kos = (KnockOut("up", mon, times, (hu,) * n, (r,) * n, "maturity", dates=dates),
               KnockOut("down", mon, times, (hl,) * n, (r,) * n, "maturity", dates=dates))
        w = self.participation_pct / 100.0
        ku = (self.upper_strike_pct if self.upper_strike_pct is not None else self.strike_pct) / 100.0
        legs = (Leg("call", ku, w), Leg("put", self.strike_pct / 100.0, w))
        return ResolvedSchedule(**b, legs=legs, knock_outs=kos)


@dataclass(frozen=True, kw_only=True)
class AsianSpec(ProductSpec):
    """Average-price option (亚式期权) on the stated fixings."""

    structure: ClassVar[str] = "asian"
    option_type: str | None = None
    strike_pct: float = 100.0
    participation_pct: float = 100.0
    averaging: str = "arithmetic"
    fixings: str = "daily"  # daily | monthly
    fixing_dates: tuple[dt.date, ...] | None = None
    past_fixings: tuple[float, ...] | None = None  # prices already fixed (levels, not %)

    def validate(self):
        self._required("option_type")
        self._one_of("option_type", OPTION_TYPES)
        self._one_of("averaging", ("arithmetic", "geometric"))
        if self.fixings not in ("daily", "monthly"):
            raise _err("fixings must be daily or monthly (or give fixing_dates)", "fixings", self.fixings)
        self._positive("strike_pct", "participation_pct")

    def resolve(self, valuation_date, model):
        b = self._base(valuation_date, model)
        cal = get_calendar(self.calendar)
        start, mat = b["start_date"], b["maturity_date"]
        if self.fixing_dates:
            all_dates = sorted(cal.roll_forward(d) for d in self.fixing_dates)
        elif self.fixings == "monthly":
            all_dates = monthly_observation_dates(start, mat, 1, cal)
        else:
            all_dates = cal.trading_days(start, mat)
        times, fut = self._times(b["valuation_date"], all_dates)
        n_past = len(all_dates) - len(fut)
        past = tuple(p / b["initial_price"] for p in (self.past_fixings or ()))
        if len(past) < n_past:
            raise _err(f"{n_past} fixings are already in the past: give past_fixings (got {len(past)})",
                       "past_fixings", len(past))
        legs = _vanilla_legs(self.option_type, self.strike_pct / 100.0, self.participation_pct / 100.0)
        return ResolvedSchedule(**b, legs=tuple(legs), fixing_times=times, past_fixings=past[:n_past],
                                n_fixings=len(all_dates), averaging=self.averaging)


def autocall_dates(calendar: str, lockup_months: int, ko_observation: str, start: dt.date,
                   maturity: dt.date) -> list[dt.date]:
    """Knock-out observation dates of an autocallable: monthly after the lock-up, or every trading day."""
    cal = get_calendar(calendar)
    if ko_observation == "daily":
        first = cal.roll_forward(add_months(start, lockup_months)) if lockup_months else start
        return [d for d in cal.trading_days(start, maturity) if d >= first]
    return monthly_observation_dates(start, maturity, lockup_months, cal)


def observed_knock_out(direction: str, dates: list[dt.date], levels: list[float], rebates: list[float], base: dict,
                       *, accrue: bool = False, rebate_at: str = "hit") -> KnockOut:
    """A knock-out observed on `dates` (those before the valuation date dropped) at `levels`, paying `rebates`
    (times ACT/365 from the start date when `accrue`: an autocall coupon)."""
    v, start = base["valuation_date"], base["start_date"]
    keep = [i for i, d in enumerate(dates) if d >= v]
    acc = tuple(act365(start, dates[i]) for i in keep)
    rebs = tuple(rebates[i] * a if accrue else rebates[i] for i, a in zip(keep, acc))
    return KnockOut(direction, "discrete", tuple(obs_time(v, dates[i]) for i in keep), tuple(levels[i] for i in keep),
                    rebs, rebate_at, accruals=acc, dates=tuple(dates[i] for i in keep))


def monthly_coupons(calendar: str, base: dict, coupon_pct: float, barrier: float, memory: bool) -> CouponStrip:
    """Monthly coupons from the start date (phoenix / 凤凰): coupon_pct × ACT/365 since the previous observation,
    paid when x >= `barrier`; amounts of dates before the valuation date kept as `past_amounts` (memory)."""
    v, start = base["valuation_date"], base["start_date"]
    dates = monthly_observation_dates(start, base["maturity_date"], 1, get_calendar(calendar))
    amounts = [coupon_pct / 100.0 * act365(p, d) for p, d in zip([start] + dates[:-1], dates)]
    keep = [i for i, d in enumerate(dates) if d >= v]
    return CouponStrip(tuple(obs_time(v, dates[i]) for i in keep), (barrier,) * len(keep),
                       tuple(amounts[i] for i in keep), memory, tuple(dates[i] for i in keep),
                       past_amounts=tuple(a for a, d in zip(amounts, dates) if d < v))


@dataclass(frozen=True, kw_only=True)
class _AutocallBase(ProductSpec):
    ko_pct: float = 100.0
    ki_pct: float | None = None
    coupon_pct: float | None = None
    lockup_months: int = 3
    ko_stepdown_pct: float = 0.0
    ko_floor_pct: float | None = None
    final_ko_pct: float | None = None
    strike_pct: float = 100.0
    loss_cap_pct: float | None = None
    ko_observation: str = "monthly"
    ki_observation: str = "daily"
    knocked_in: bool = False

    def _validate_autocall(self):
        self._required("ki_pct")
        self._positive("ko_pct", "ki_pct", "strike_pct", "loss_cap_pct", "ko_floor_pct", "final_ko_pct")
        self._positive("ko_stepdown_pct", "lockup_months", allow_zero=True)
        if self.ki_pct >= self.ko_pct:
            raise _err(f"knock-in level {self.ki_pct}% must be below the knock-out level {self.ko_pct}%", "ki_pct",
                       self.ki_pct)
        if self.final_ko_pct is not None and self.ki_pct >= self.final_ko_pct:
            raise _err("knock-in level must be below final_ko_pct", "final_ko_pct", self.final_ko_pct)
        self._one_of("ko_observation", ("monthly", "daily"))
        self._one_of("ki_observation", ("daily", "maturity"))
        if self.coupon_pct is not None and self.coupon_pct < -100:
            raise _err("coupon_pct is out of range", "coupon_pct", self.coupon_pct)

    def ko_levels_all(self, n: int) -> list[float]:
        lv = []
        for i in range(n):
            level = self.ko_pct - i * self.ko_stepdown_pct
            if self.ko_floor_pct is not None:
                level = max(level, self.ko_floor_pct)
            lv.append(level / 100.0)
        if self.final_ko_pct is not None and lv:
            lv[-1] = self.final_ko_pct / 100.0
        return lv

    def _ki_block(self, b: dict) -> KnockIn:
        if self.ki_observation == "maturity":
            return KnockIn("down", "maturity", self.ki_pct / 100.0, (b["T"],), (b["maturity_date"],))
        t, d = self._daily(b)
        return KnockIn("down", "discrete", self.ki_pct / 100.0, t, d)

    def _ki_legs(self) -> tuple[Leg, ...]:
        k = self.strike_pct / 100.0
        legs = [Leg("put", k, -1.0)]
        if self.loss_cap_pct is not None:
            legs.append(Leg("put", k - self.loss_cap_pct / 100.0, 1.0))
        return tuple(legs)

    def _ko_dates(self, b: dict) -> list[dt.date]:
        """Every knock-out observation date of the term (past ones included); refuses an empty schedule."""
        dates = autocall_dates(self.calendar, self.lockup_months, self.ko_observation, b["start_date"],
                               b["maturity_date"])
        if not dates:
            raise _err("no knock-out observation date falls inside the term (lock-up too long?)", "lockup_months",
                       self.lockup_months)
        return dates


@dataclass(frozen=True, kw_only=True)
class SnowballSpec(_AutocallBase):
    """Snowball autocallable (雪球) in option form; see the module docstring for the exact conventions."""

    structure: ClassVar[str] = "snowball"
    ko_pct: float = 100.0
    maturity_coupon_pct: float | None = None
    early_coupon_pct: float | None = None
    early_observations: int = 0

    def validate(self):
        self._validate_autocall()
        self._positive("early_observations", allow_zero=True)

    def resolve(self, valuation_date, model):
        if self.coupon_pct is None:
            raise _err("snowball needs coupon_pct (or solve_for: coupon_pct)", "coupon_pct")
        b = self._base(valuation_date, model)
        ko_dates = self._ko_dates(b)
        coupons = [((self.early_coupon_pct if (self.early_coupon_pct is not None and i < self.early_observations)
                     else self.coupon_pct) / 100.0) for i in range(len(ko_dates))]
        ko = observed_knock_out("up", ko_dates, self.ko_levels_all(len(ko_dates)), coupons, b, accrue=True)
        ki = self._ki_block(b)
        check_knock_in_spot(b, ki, self.knocked_in)
        mc = (self.maturity_coupon_pct if self.maturity_coupon_pct is not None else self.coupon_pct) / 100.0
        legs = (Leg("cash", 0.0, mc * b["maturity_accrual"]),)
        return ResolvedSchedule(**b, legs=legs, legs_ki=self._ki_legs(), knock_outs=(ko,), knock_in=ki,
                                knocked_in=self.knocked_in)


@dataclass(frozen=True, kw_only=True)
class PhoenixSpec(_AutocallBase):
    """Phoenix autocallable (凤凰) with coupon barrier (派息线), memory or not."""

    structure: ClassVar[str] = "phoenix"
    coupon_barrier_pct: float | None = None
    memory: bool = False
    unpaid_coupons: int = 0

    def validate(self):
        self._validate_autocall()
        self._positive("coupon_barrier_pct")
        self._positive("unpaid_coupons", allow_zero=True)

    def resolve(self, valuation_date, model):
        if self.coupon_pct is None:
            raise _err("phoenix needs coupon_pct (or solve_for: coupon_pct)", "coupon_pct")
        b = self._base(valuation_date, model)
        ko_dates = self._ko_dates(b)
        ko = observed_knock_out("up", ko_dates, self.ko_levels_all(len(ko_dates)), [0.0] * len(ko_dates), b)
        cb = (self.coupon_barrier_pct if self.coupon_barrier_pct is not None else self.ki_pct) / 100.0
        strip = monthly_coupons(self.calendar, b, self.coupon_pct, cb, self.memory)
        ki = self._ki_block(b)
        check_knock_in_spot(b, ki, self.knocked_in)
        return ResolvedSchedule(**b, legs=(), legs_ki=self._ki_legs(), knock_outs=(ko,), knock_in=ki,
                                knocked_in=self.knocked_in, coupons=strip,
                                unpaid_coupons=self.unpaid_coupons if self.memory else 0)


@dataclass(frozen=True, kw_only=True)
class AirbagSpec(ProductSpec):
    """Airbag (安全气囊): participation call; after a knock-in the holder also bears the downside."""

    structure: ClassVar[str] = "airbag"
    option_type: str = "call"
    strike_pct: float = 100.0
    ki_pct: float | None = None
    participation_pct: float = 100.0
    ki_observation: str = "daily"
    knocked_in: bool = False

    def validate(self):
        self._required("ki_pct")
        if self.option_type != "call":
            raise _err("airbag is a call structure", "option_type", self.option_type)
        self._positive("strike_pct", "ki_pct", "participation_pct")
        if self.ki_pct >= self.strike_pct:
            raise _err("airbag knock-in level must be below the strike", "ki_pct", self.ki_pct)
        self._one_of("ki_observation", ("daily", "maturity"))

    def resolve(self, valuation_date, model):
        b = self._base(valuation_date, model)
        k, w = self.strike_pct / 100.0, self.participation_pct / 100.0
        if self.ki_observation == "maturity":
            ki = KnockIn("down", "maturity", self.ki_pct / 100.0, (b["T"],), (b["maturity_date"],))
        else:
            t, d = self._daily(b)
            ki = KnockIn("down", "discrete", self.ki_pct / 100.0, t, d)
        check_knock_in_spot(b, ki, self.knocked_in)
        return ResolvedSchedule(**b, legs=(Leg("call", k, w),), legs_ki=(Leg("call", k, w), Leg("put", k, -1.0)),
                                knock_in=ki, knocked_in=self.knocked_in)


BUILTIN_SPECS: dict[str, type[ProductSpec]] = {
    c.structure: c for c in (VanillaSpec, SpreadSpec, DigitalSpec, BarrierSpec, SharkfinSpec, DoubleSharkfinSpec,
                             AsianSpec, SnowballSpec, PhoenixSpec, AirbagSpec)
}


@dataclass(frozen=True)
class BuiltinStructure:
    """The registry entry of a built-in spec class (see `registry.Structure`)."""

    spec: type[ProductSpec]
    builtin: ClassVar[bool] = True

    @property
    def structure(self) -> str:
        return self.spec.structure

    @property
    def description(self) -> str:
        return (self.spec.__doc__ or "").strip().splitlines()[0]

    def spec_from_dict(self, d: Mapping) -> ProductSpec:
        kw = {name: coerce_field(name, ftype, d[name]) for name, ftype in field_types(self.spec).items()
              if d.get(name) is not None}
        return self.spec(**kw)


for spec_class in BUILTIN_SPECS.values():
    register_structure(BuiltinStructure(spec_class))


def product_from_dict(d: Mapping) -> ProductSpec:
    """Validated spec from a CONTRACTS.md `product` object (QuoteRequest + schedule fields).

    The `structure` is looked up in the one registry (`registry`): a built-in `*Spec` or a structure a
    template declared. Keys that are not fields of the structure (e.g. `missing`, `assumed`) are
    ignored. Raises PricingError.
    """
    if not isinstance(d, Mapping):
        raise _err("product must be an object", "product", d)
    structure = d.get("structure")
    if not structure:
        raise _err("product.structure is missing", "structure")
    entry = get_structure(structure)
    if entry is None:
        raise _err(f"unknown structure {structure!r}", "structure", structure)
    return entry.spec_from_dict(d)
