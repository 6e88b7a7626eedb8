"""Synthetic order flow with injected ground truth, for measuring the detectors (seeded, deterministic).

One trading day (09:30–11:30 and 13:00–15:00 China time) over a set of instruments, each with its own price and
order-size scale and a Zipf-like share of the activity. Accounts are of three normal kinds: retail (most; a
Pareto-distributed activity, sizes around the instrument's median, cancels after a minute or so), algorithmic
(busy, small orders, cancels within one or two seconds, both sides), institutional (orders several times the
median that mostly fill) and day traders (busy on both sides, heavy-tailed sizes, cancels within seconds: innocent
accounts whose flow now and then looks like one spoofing episode). Every fill is a trade against a counterparty account whose resting order appears in
the order stream too. Counterparties are never in the same control group, so normal flow holds no wash trade.

Injected, and labelled in `truth`:
- control groups (2–4 accounts chained by one shared ID number, mobile, bank account or device id each, spelled
  differently per account: "+86 138 0013 8000" / "138-0013-8000" / full-width digits / lower-case x);
- spoofers: episodes of 1–3 large orders (4–20 × the median, so some are not large enough to see) cancelled within 0.5–4.5 s while the spoofer, or an
  account of its control group, is filled on the other side; spoofers also trade normally;
- wash groups (a control group trading with itself) and self-trading accounts;
- near-misses that must not fire: large orders that fill (with opposite trading), small fast cancels beside
  opposite fills, large slow cancels (10–60 s) beside opposite fills, large fast cancels with no opposite trading,
  accounts sharing only an address and an IP that trade with each other, and two different groups trading with
  each other.

Order and trade ids are numbered in time order after generation, so an id does not reveal what was injected.
"""
from __future__ import annotations

import bisect
import math
import random
from dataclasses import asdict, dataclass
from datetime import datetime

from otcdesk.workflows.surveillance.model import CST, Account, Order, Trade, parse_ts

SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许"
            "韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈")
GIVEN = ("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰"
         "萍红鹏辉建国志文博宇浩然子涵欣怡思远雨轩")
DISTRICTS = ["上海市浦东新区", "上海市徐汇区", "北京市朝阳区", "北京市海淀区", "深圳市南山区", "深圳市福田区",
             "杭州市西湖区", "广州市天河区", "成都市武侯区", "南京市鼓楼区"]
ROADS = ["世纪大道", "陆家嘴环路", "建国路", "中关村大街", "深南大道", "科技园路", "文三路", "天河路", "人民南路",
         "中山路", "淮海中路", "长安街"]
REGIONS = ["110101", "110105", "310101", "310104", "310115", "440305", "440304", "330106", "510107", "320106"]
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"
SESSION_MS = 4 * 3600 * 1000
STRONG = ("id_number", "mobile", "bank_account", "device_id")


@dataclass(frozen=True)
class GenSpec:
    """What to generate. Counts left None scale with `accounts` (see `resolved`)."""

    seed: int = 1
    accounts: int = 2000
    orders: int = 100_000  # order events (rows of orders.csv), approximately
    instruments: int | None = None
    day: str = "2026-11-20"
    spoofers: int | None = None
    wash_groups: int | None = None
    self_traders: int | None = None
    control_groups: int | None = None  # groups that only trade normally (control groups, not manipulators)
    near_misses: int | None = None  # of each kind

    def resolved(self) -> "GenSpec":
        a = self.accounts
        return GenSpec(self.seed, a, self.orders,
                       self.instruments or max(4, min(60, a // 150)), self.day,
                       self.spoofers if self.spoofers is not None else max(3, a // 400),
                       self.wash_groups if self.wash_groups is not None else max(3, a // 400),
                       self.self_traders if self.self_traders is not None else max(1, a // 1500),
                       self.control_groups if self.control_groups is not None else max(3, a // 200),
                       self.near_misses if self.near_misses is not None else max(2, a // 500))


@dataclass
class GeneratedSet:
    spec: GenSpec
    orders: list[Order]
    trades: list[Trade]
    account_rows: list[dict]  # raw spellings, as written to accounts.csv
    truth: dict

    def accounts(self) -> list[Account]:
        return [Account.of(**row) for row in self.account_rows]


def _fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


class _Ids:
    """Fresh identifiers, unique within the set, and their spelling variants."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.used: set[str] = set()

    def _fresh(self, make) -> str:
        while True:
            value = make()
            if value not in self.used:
                self.used.add(value)
                return value

    def id_number(self) -> str:
        r = self.rng

        def make():
            born = f"{r.randint(1955, 2002)}{r.randint(1, 12):02d}{r.randint(1, 28):02d}"
            first = r.choice(REGIONS) + born + f"{r.randint(0, 999):03d}"
            return first + ID_CHECK[sum(int(c) * w for c, w in zip(first, ID_WEIGHTS)) % 11]
        return self._fresh(make)

    def mobile(self) -> str:
        r = self.rng
        return self._fresh(lambda: f"1{r.choice('3578')}{r.randint(0, 999999999):09d}")

    def bank_account(self) -> str:
        r = self.rng
        return self._fresh(lambda: r.choice(["6222", "6228", "6217", "6214"]) + f"{r.randint(0, 10**15 - 1):015d}")

    def device_id(self) -> str:
        r = self.rng
        return self._fresh(lambda: f"{r.getrandbits(48):012X}")

    def address(self) -> str:
        r = self.rng
        return (f"{r.choice(DISTRICTS)}{r.choice(ROADS)}{r.randint(1, 2000)}号"
                f"{r.randint(1, 40)}{r.randint(1, 30):02d}室")

    def ip(self) -> str:
        r = self.rng
        return f"{r.randint(36, 223)}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"

    def spell(self, key: str, value: str) -> str:
        """One of the ways a client types this identifier (all normalise to the same value)."""
        r = self.rng
        if key == "mobile":
            v = value
            return r.choice([v, f"{v[:3]}-{v[3:7]}-{v[7:]}", f"+86 {v}", f"+86 {v[:3]} {v[3:7]} {v[7:]}",
                             _fullwidth(v), f"0086{v}"])
        if key == "id_number":
            return r.choice([value, value.lower(), _fullwidth(value), f"{value[:6]} {value[6:14]} {value[14:]}"])
        if key == "bank_account":
            return r.choice([value, " ".join(value[i:i + 4] for i in range(0, len(value), 4)), _fullwidth(value)])
        if key == "device_id":
            pairs = [value[i:i + 2] for i in range(0, 12, 2)]
            return r.choice([value, ":".join(pairs), ":".join(pairs).lower(), "-".join(pairs)])
        return value


class _Flow:
    """Order and trade rows under construction, with temporary ids renumbered in time order at the end."""

    def __init__(self):
        self.orders: list[tuple] = []  # (ts, seq, tmp_oid, account, instrument, side, price, qty, event)
        self.trades: list[tuple] = []  # (ts, seq, tmp_tid, instrument, price, qty, buyer, seller)
        self.next_oid = 0
        self.next_tid = 0

    def order(self) -> int:
        self.next_oid += 1
        return self.next_oid

    def event(self, ts, oid, account, instrument, side, price, qty, event) -> None:
        self.orders.append((ts, len(self.orders), oid, account, instrument, side, price, qty, event))

    def trade(self, ts, instrument, price, qty, buyer, seller) -> int:
        self.next_tid += 1
        self.trades.append((ts, len(self.trades), self.next_tid, instrument, price, qty, buyer, seller))
        return self.next_tid


def generate(spec: GenSpec) -> GeneratedSet:
    spec = spec.resolved()
    rng = random.Random(spec.seed)
    ids = _Ids(rng)
    day0 = parse_ts(datetime.fromisoformat(spec.day).replace(hour=9, minute=30, tzinfo=CST).isoformat())

    def clock(u: int) -> int:  # ms into the 4-hour session → epoch ms (lunch break skipped)
        return day0 + u if u < SESSION_MS // 2 else day0 + u + 90 * 60 * 1000

    # Instruments: price, median order size (shares, lots of 100), share of activity.
    instruments = []
    codes = rng.sample(range(600000, 605000), spec.instruments // 2) + \
        rng.sample(range(1, 3000), spec.instruments - spec.instruments // 2)
    for rank, code in enumerate(codes):
        name = f"{code:06d}.SH" if code >= 600000 else f"{code:06d}.SZ"
        price = round(math.exp(rng.gauss(math.log(20), 0.8)), 2)
        median_lots = max(2, round(math.exp(rng.gauss(math.log(25), 0.6))))
        instruments.append({"code": name, "price": price, "lots": median_lots, "weight": 1 / (rank + 1) ** 0.8})
    inst_cum = _cum([i["weight"] for i in instruments])

    # Accounts and their identities.
    n = spec.accounts
    account_ids = [f"A{x:06d}" for x in rng.sample(range(100000, 1000000), n)]
    rows = [{"account_id": a, "name": rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.randint(1, 2))),
             "id_number": "", "mobile": "", "address": "", "bank_account": "", "ip": "", "device_id": ""}
            for a in account_ids]
    office_ips = [ids.ip() for _ in range(max(5, n // 100))]
    office_addresses = [ids.address() for _ in range(max(5, n // 100))]
    for row in rows:
        for key in STRONG:
            if rng.random() < 0.92:  # some reference data is missing
                row[key] = ids.spell(key, getattr(ids, key)())
        row["address"] = rng.choice(office_addresses) if rng.random() < 0.04 else ids.address()
        row["ip"] = rng.choice(office_ips) if rng.random() < 0.06 else ids.ip()

    order_of_roles = list(range(n))
    rng.shuffle(order_of_roles)
    pool = iter(order_of_roles)

    def take(k: int) -> list[int]:
        return [next(pool) for _ in range(k)]

    truth = {"control_groups": [], "wash": [], "spoofing": [], "near_misses": []}
    unit = {}  # account index -> group number (accounts in no group are their own unit)

    def make_group(size: int) -> list[int]:
        members = take(size)
        key = None
        for a, b in zip(members, members[1:]):
            key = rng.choice([k for k in STRONG if k != key])  # b keeps a's link: a new key for the next one
            value = getattr(ids, key)()
            rows[a][key] = ids.spell(key, value)
            rows[b][key] = ids.spell(key, value)
        g = len(truth["control_groups"])
        for m in members:
            unit[m] = g
        truth["control_groups"].append(sorted(account_ids[m] for m in members))
        return members

    innocent_groups = [make_group(rng.randint(2, 4)) for _ in range(spec.control_groups)]
    wash_groups = [make_group(rng.randint(2, 3)) for _ in range(spec.wash_groups)]
    spoofers = []
    for _ in range(spec.spoofers):
        if rng.random() < 0.4:
            g = make_group(2)
            spoofers.append((g[0], g[1]))
        else:
            spoofers.append((take(1)[0], None))
    self_traders = take(spec.self_traders)
    k = spec.near_misses
    near = {kind: take(k) for kind in ("large_fill", "small_fast_cancel", "large_slow_cancel",
                                       "large_fast_cancel_no_opposite")}
    weak_pairs = [take(2) for _ in range(k)]
    for a, b in weak_pairs:
        for key in STRONG:  # make sure no strong key is shared by accident: fresh values
            if rows[b][key]:
                rows[b][key] = ids.spell(key, getattr(ids, key)())
        rows[b]["address"] = rows[a]["address"] = ids.address()
        rows[b]["ip"] = rows[a]["ip"] = ids.ip()
    cross_pairs = [(make_group(2), make_group(2)) for _ in range(k)]
    dedicated = {i for accs in near.values() for i in accs}

    # Normal flow: account kinds and activity.
    kind = ["retail"] * n
    activity = [0.0] * n
    prefs: list[list[int]] = [[] for _ in range(n)]
    active_in: list[list[int]] = [[] for _ in instruments]
    for i in range(n):
        r = rng.random()
        kind[i] = "algo" if r < 0.03 else "institution" if r < 0.06 else "daytrader" if r < 0.10 else "retail"
        if i in dedicated:
            continue
        base = min(rng.paretovariate(1.3), 50.0)
        activity[i] = base * {"algo": 12, "institution": 2, "daytrader": 6}.get(kind[i], 1)
        for _ in range(rng.randint(1, 3 if kind[i] != "algo" else 6)):
            j = _pick(rng, inst_cum)
            if j not in prefs[i]:
                prefs[i].append(j)
                active_in[j].append(i)
    for j, inst in enumerate(instruments):
        if len(active_in[j]) < 4:  # every instrument has a few participants
            for i in rng.sample([i for i in range(n) if i not in dedicated], 4):
                if j not in prefs[i]:
                    prefs[i].append(j)
                    active_in[j].append(i)
    acct_cum = _cum(activity)
    flow = _Flow()

    def qty_of(j: int, mult: float) -> float:
        return float(100 * max(1, round(instruments[j]["lots"] * mult)))

    def price_of(j: int, side: str, aggressive: bool) -> float:
        p = instruments[j]["price"] * (1 + 0.004 * rng.gauss(0, 1))
        tick = 0.01 * rng.randint(0, 3)
        return round(p + (tick if (side == "B") == aggressive else -tick), 2)

    def counterparty(j: int, me: int) -> int:
        pool_j = active_in[j]
        for _ in range(50):
            c = pool_j[rng.randrange(len(pool_j))]
            if c != me and (unit.get(c) is None or unit.get(c) != unit.get(me)):
                return c
        for c in range(n):  # tiny instruments: anyone outside my unit
            if c != me and c not in dedicated and (unit.get(c) is None or unit.get(c) != unit.get(me)):
                return c
        raise RuntimeError("no counterparty")

    def fill_against(ts: int, j: int, me: int, side: str, price: float, qty: float, oid: int,
                     cp: int | None = None) -> int:
        """My order `oid` fills `qty` at `ts` against a counterparty's resting order; returns the trade id."""
        c = counterparty(j, me) if cp is None else cp
        code = instruments[j]["code"]
        flow.event(ts, oid, account_ids[me], code, side, price, qty, "fill")
        coid = flow.order()
        opp = "S" if side == "B" else "B"
        flow.event(ts - int(_lognorm(rng, 15000, 1.0)) - 1, coid, account_ids[c], code, opp, price, qty, "new")
        flow.event(ts, coid, account_ids[c], code, opp, price, qty, "fill")
        buyer, seller = (me, c) if side == "B" else (c, me)
        return flow.trade(ts, code, price, qty, account_ids[buyer], account_ids[seller])

    def place(ts, j, me, side, qty, *, lifetime_ms, outcome, aggressive=False, cp=None) -> tuple[int, list[int]]:
        """One order: new, then `fill` (1–3 fills summing to qty) or `cancel` after lifetime_ms."""
        oid = flow.order()
        code = instruments[j]["code"]
        price = price_of(j, side, aggressive)
        flow.event(ts, oid, account_ids[me], code, side, price, qty, "new")
        end = ts + max(1, int(lifetime_ms))
        tids = []
        if outcome == "fill":
            parts = 1 if rng.random() < 0.7 or qty < 300 else rng.randint(2, 3)
            lots = int(qty // 100)
            cuts = sorted(rng.sample(range(1, lots), parts - 1)) if parts > 1 and lots > parts else []
            sizes = [b - a for a, b in zip([0] + cuts, cuts + [lots])]
            for k_, lots_k in enumerate(sizes):
                t = ts + (end - ts) * (k_ + 1) // len(sizes)
                tids.append(fill_against(t, j, me, side, price, 100.0 * lots_k, oid, cp))
        else:
            if outcome == "partial_cancel" and qty >= 500:
                part = 100.0 * max(1, int(qty // 100) // 4)
                tids.append(fill_against(ts + (end - ts) // 2, j, me, side, price, part, oid, cp))
            flow.event(end, oid, account_ids[me], code, side, None, None, "cancel")
        return oid, tids

    target = spec.orders
    while len(flow.orders) < target:
        me = _pick(rng, acct_cum)
        j = prefs[me][rng.randrange(len(prefs[me]))]
        ts = clock(rng.randrange(SESSION_MS))
        side = "B" if rng.random() < 0.5 else "S"
        kd = kind[me]
        if kd == "algo":
            qty = qty_of(j, 0.3 * _lognorm(rng, 1.0, 0.5))
            if rng.random() < 0.3:
                place(ts, j, me, side, qty, lifetime_ms=_lognorm(rng, 800, 0.8), outcome="fill", aggressive=True)
            else:
                place(ts, j, me, side, qty, lifetime_ms=_lognorm(rng, 1200, 0.6), outcome="cancel")
        elif kd == "institution":
            qty = qty_of(j, 4.0 * _lognorm(rng, 1.0, 0.4))
            if rng.random() < 0.75:
                place(ts, j, me, side, qty, lifetime_ms=_lognorm(rng, 30000, 1.0), outcome="fill")
            else:
                place(ts, j, me, side, qty, lifetime_ms=_lognorm(rng, 300000, 1.0),
                      outcome="partial_cancel" if rng.random() < 0.3 else "cancel")
        elif kd == "daytrader":  # both sides, big and impatient: innocent, and the detectors' hardest crowd
            qty = qty_of(j, _lognorm(rng, 1.5, 1.0))
            if rng.random() < 0.5:
                place(ts, j, me, side, qty, lifetime_ms=_lognorm(rng, 2000, 1.0), outcome="fill", aggressive=True)
            else:
                place(ts, j, me, side, qty, lifetime_ms=_lognorm(rng, 8000, 1.2), outcome="cancel")
        else:
            qty = qty_of(j, _lognorm(rng, 1.0, 0.8))
            r = rng.random()
            if r < 0.55:
                place(ts, j, me, side, qty, lifetime_ms=_lognorm(rng, 5000, 1.2), outcome="fill",
                      aggressive=rng.random() < 0.5)
            else:
                place(ts, j, me, side, qty, lifetime_ms=_lognorm(rng, 60000, 1.2),
                      outcome="partial_cancel" if r > 0.95 else "cancel")

    def opp_side(side: str) -> str:
        return "S" if side == "B" else "B"

    def home(i: int) -> int:
        return prefs[i][0] if prefs[i] else _pick(rng, inst_cum)

    # Spoofers.
    for me, sibling in spoofers:
        j = home(me)
        case = {"account": account_ids[me], "instrument": instruments[j]["code"], "order_ids": [],
                "opposite_order_ids": [], "trade_ids": [], "control_group": sibling is not None}
        for _ in range(rng.randint(3, 7)):
            t0 = clock(rng.randrange(SESSION_MS - 60000))
            side = "B" if rng.random() < 0.5 else "S"
            for layer in range(rng.randint(1, 3)):
                oid, _ = place(t0 + layer * rng.randint(50, 400), j, me, side, qty_of(j, rng.uniform(4, 20)),
                               lifetime_ms=rng.uniform(500, 4500), outcome="cancel")
                case["order_ids"].append(oid)
            trader = sibling if sibling is not None and rng.random() < 0.5 else me
            oid, tids = place(t0 + rng.randint(200, 1500), j, trader, opp_side(side), qty_of(j, rng.uniform(0.5, 2)),
                              lifetime_ms=rng.uniform(50, 1500), outcome="fill", aggressive=True)
            case["opposite_order_ids"].append(oid)
            case["trade_ids"] += tids
        truth["spoofing"].append(case)

    # Wash trades: a group trading with itself, and single accounts trading with themselves.
    def wash(members: list[int], j: int, count: int) -> dict:
        case = {"accounts": sorted({account_ids[m] for m in members}), "instrument": instruments[j]["code"],
                "trade_ids": [], "order_ids": []}
        for _ in range(count):
            t = clock(rng.randrange(SESSION_MS - 60000))
            seller = rng.choice(members)
            buyer = rng.choice([m for m in members if m != seller] or members)
            qty = qty_of(j, rng.uniform(1, 5))
            price = price_of(j, "S", False)
            code = instruments[j]["code"]
            so, bo = flow.order(), flow.order()
            t_fill = t + rng.randint(20, 1500)
            flow.event(t, so, account_ids[seller], code, "S", price, qty, "new")
            flow.event(t_fill - rng.randint(0, 10), bo, account_ids[buyer], code, "B", price, qty, "new")
            flow.event(t_fill, so, account_ids[seller], code, "S", price, qty, "fill")
            flow.event(t_fill, bo, account_ids[buyer], code, "B", price, qty, "fill")
            case["trade_ids"].append(flow.trade(t_fill, code, price, qty, account_ids[buyer], account_ids[seller]))
            case["order_ids"] += [so, bo]
        return case

    for members in wash_groups:
        truth["wash"].append(wash(members, home(members[0]), rng.randint(3, 10)))
    for me in self_traders:
        truth["wash"].append(wash([me], home(me), rng.randint(2, 5)))

    # Near-misses: patterns that look like manipulation in all but one respect.
    def near_case(kind_: str, accounts: list[int], j: int) -> dict:
        case = {"kind": kind_, "accounts": sorted(account_ids[a] for a in accounts),
                "instrument": instruments[j]["code"], "order_ids": [], "trade_ids": []}
        truth["near_misses"].append(case)
        return case

    for me in near["large_fill"]:
        j = _pick(rng, inst_cum)
        case = near_case("large_fill", [me], j)
        for _ in range(rng.randint(3, 5)):
            t0 = clock(rng.randrange(SESSION_MS - 60000))
            side = "B" if rng.random() < 0.5 else "S"
            oid, tids = place(t0, j, me, side, qty_of(j, rng.uniform(8, 20)), lifetime_ms=rng.uniform(500, 4000),
                              outcome="fill", aggressive=True)
            oid2, tids2 = place(t0 + rng.randint(100, 1000), j, me, opp_side(side), qty_of(j, 1.0),
                                lifetime_ms=rng.uniform(50, 800), outcome="fill", aggressive=True)
            case["order_ids"] += [oid, oid2]
            case["trade_ids"] += tids + tids2
    for kind_, size, life in (("small_fast_cancel", (0.2, 1.5), (300, 3000)),
                              ("large_slow_cancel", (8, 20), (10000, 60000))):
        for me in near[kind_]:
            j = _pick(rng, inst_cum)
            case = near_case(kind_, [me], j)
            for _ in range(rng.randint(3, 6)):
                t0 = clock(rng.randrange(SESSION_MS - 120000))
                side = "B" if rng.random() < 0.5 else "S"
                lifetime = rng.uniform(*life)
                oid, _ = place(t0, j, me, side, qty_of(j, rng.uniform(*size)), lifetime_ms=lifetime, outcome="cancel")
                oid2, tids = place(t0 + int(rng.uniform(0.2, 0.8) * lifetime), j, me, opp_side(side),
                                   qty_of(j, 1.0), lifetime_ms=rng.uniform(20, 200), outcome="fill", aggressive=True)
                case["order_ids"] += [oid, oid2]
                case["trade_ids"] += tids
    for me in near["large_fast_cancel_no_opposite"]:
        j = _pick(rng, inst_cum)
        case = near_case("large_fast_cancel_no_opposite", [me], j)
        for _ in range(rng.randint(3, 6)):
            t0 = clock(rng.randrange(SESSION_MS - 60000))
            side = "B" if rng.random() < 0.5 else "S"
            oid, _ = place(t0, j, me, side, qty_of(j, rng.uniform(8, 20)), lifetime_ms=rng.uniform(500, 4500),
                           outcome="cancel")
            if rng.random() < 0.5:  # trading on the same side is not spoofing either
                oid2, tids = place(t0 + rng.randint(100, 900), j, me, side, qty_of(j, 1.0),
                                   lifetime_ms=rng.uniform(20, 200), outcome="fill", aggressive=True)
                case["order_ids"].append(oid2)
                case["trade_ids"] += tids
            case["order_ids"].append(oid)
    for a, b in weak_pairs:
        j = home(a)
        case = near_case("weak_link_only_trading", [a, b], j)
        for _ in range(rng.randint(3, 6)):
            t0 = clock(rng.randrange(SESSION_MS - 60000))
            oid, tids = place(t0, j, a, "B" if rng.random() < 0.5 else "S", qty_of(j, rng.uniform(1, 4)),
                              lifetime_ms=rng.uniform(50, 2000), outcome="fill", aggressive=True, cp=b)
            case["order_ids"].append(oid)
            case["trade_ids"] += tids
    for g1, g2 in cross_pairs:
        j = home(g1[0])
        case = near_case("cross_group_trading", g1 + g2, j)
        for _ in range(rng.randint(3, 6)):
            t0 = clock(rng.randrange(SESSION_MS - 60000))
            oid, tids = place(t0, j, rng.choice(g1), "B" if rng.random() < 0.5 else "S", qty_of(j, rng.uniform(1, 4)),
                              lifetime_ms=rng.uniform(50, 2000), outcome="fill", aggressive=True, cp=rng.choice(g2))
            case["order_ids"].append(oid)
            case["trade_ids"] += tids

    return _finish(spec, flow, rows, truth, innocent_groups)


def _finish(spec: GenSpec, flow: _Flow, rows: list[dict], truth: dict, _innocent) -> GeneratedSet:
    flow.orders.sort()
    flow.trades.sort()
    oid_map: dict[int, str] = {}
    orders = []
    for ts, _seq, tmp, account, code, side, price, qty, event in flow.orders:
        oid = oid_map.get(tmp)
        if oid is None:
            oid = oid_map[tmp] = f"O{len(oid_map) + 1:08d}"
        orders.append(Order(oid, account, ts, code, side, price, qty, event))
    tid_map: dict[int, str] = {}
    trades = []
    for ts, _seq, tmp, code, price, qty, buyer, seller in flow.trades:
        tid = tid_map[tmp] = f"T{len(tid_map) + 1:08d}"
        trades.append(Trade(tid, ts, code, price, qty, buyer, seller))
    for case in truth["spoofing"]:
        case["order_ids"] = sorted(oid_map[o] for o in case["order_ids"])
        case["opposite_order_ids"] = sorted(oid_map[o] for o in case["opposite_order_ids"])
        case["trade_ids"] = sorted(tid_map[t] for t in case["trade_ids"])
    for case in truth["wash"] + truth["near_misses"]:
        case["order_ids"] = sorted(oid_map[o] for o in case["order_ids"])
        case["trade_ids"] = sorted(tid_map[t] for t in case["trade_ids"])
    truth["control_groups"].sort()
    truth["spec"] = asdict(spec)
    truth["counts"] = {"order_events": len(orders), "orders": len(oid_map), "trades": len(trades),
                       "accounts": len(rows)}
    return GeneratedSet(spec, orders, trades, rows, truth)


def _cum(weights: list[float]) -> list[float]:
    out, total = [], 0.0
    for w in weights:
        total += w
        out.append(total)
    return out


def _pick(rng: random.Random, cum: list[float]) -> int:
    return min(len(cum) - 1, bisect.bisect_right(cum, rng.random() * cum[-1]))


def _lognorm(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(sigma * rng.gauss(0.0, 1.0))
