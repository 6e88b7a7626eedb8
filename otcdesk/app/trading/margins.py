"""MarginPolicy: fair value → the desk's quote (报价点差), from the margin table `quote_margin`.

The table: rows (structure or "*" for any, max_tenor_days, margin_pct, unwind_margin_pct), both margins in % of
notional, seeded from `app/data/margins.csv` when empty and edited by admin (every change audited with its
before and after). A product takes the row of its structure with the smallest `max_tenor_days` ≥ its tenor in
calendar days; when its structure has none that long, the "*" row chosen the same way; when neither covers it
there is no quote (the line carries an error: the desk does not quote at fair).

Applying the margin to a priced line (`apply`) keeps the engine's numbers as `fair_*` and turns the line into
the desk's quote, always worse for the client by `margin_pct` of notional in value:
- a premium line (nothing solved): `price_pct = fair_price_pct + margin_pct` — the client pays more when buying
  and receives less when selling (the price is signed from the client's side);
- a line whose coupon or participation was solved (snowball/phoenix coupon, a participation solved to a budget):
  the field is solved again, exactly, for the target `fair target − margin_pct` on the same engine, market and
  date (`quoting.solve_again`); the coupon or participation goes down, `fair_solved` keeps the fair one and
  `solved` holds the quoted one; `price_pct` stays the premium the client pays (the target, 0 for a snowball in
  option form) and `quoted_value_pct` is the client's value of the quoted terms (≈ fair − margin). Greeks and
  `product` become those of the quoted terms.
A line with an error, or one already quoted, passes through unchanged.
"""
from __future__ import annotations

import csv
import datetime as dt
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from otcdesk.app.repositories import transaction

log = logging.getLogger(__name__)
SEED_CSV = Path(__file__).resolve().parent.parent / "data" / "margins.csv"
ANY = "*"
MAX_MARGIN_PCT = 10.0  # a margin of 10% of notional or more is a typo, not a policy
MAX_TENOR_DAYS = 36_600
SOLVED_DOWN = ("coupon_pct", "participation_pct")  # solved fields the client receives: the margin lowers them
SUBJECT = "quote_margin"


class MarginError(ValueError):
    """A margin table change refused; `detail` says which row and field."""

    def __init__(self, message: str, detail: Any = None):
        super().__init__(message)
        self.message, self.detail = message, detail


class NoMarginError(LookupError):
    """No row of the table covers this structure and tenor."""


@dataclass(frozen=True)
class MarginRow:
    structure: str
    max_tenor_days: int
    margin_pct: float
    unwind_margin_pct: float = 0.0

    @property
    def key(self) -> tuple[str, int]:
        return self.structure, self.max_tenor_days


def known_structures() -> set[str]:
    """Every structure the pricing registry knows (built-in and template-declared)."""
    import otcdesk.pricing_engine.products  # noqa: F401  (registers the built-ins)
    import otcdesk.pricing_engine.templates  # noqa: F401  (registers the shipped templates)
    from otcdesk.pricing_engine.registry import structures

    return set(structures())


def find_margin(rows: Iterable[MarginRow], structure: str, tenor_days: int) -> MarginRow | None:
    """The row of `structure`, else of "*", with the smallest `max_tenor_days` ≥ `tenor_days`."""
    rows = list(rows)
    for key in (structure, ANY):
        covering = [r for r in rows if r.structure == key and r.max_tenor_days >= tenor_days]
        if covering:
            return min(covering, key=lambda r: r.max_tenor_days)
    return None


def tenor_days(product: dict, valuation_date: str | dt.date | None = None) -> int:
    """Calendar days from the product's start (else the valuation date) to its maturity (else start + tenor)."""
    from otcdesk.pricing_engine.schedule import add_tenor, to_date

    start = product.get("start_date") or valuation_date
    if start is None:
        raise ValueError("the product has no start_date and no valuation date was given")
    start = to_date(start, "start_date")
    if product.get("maturity_date"):
        end = to_date(product["maturity_date"], "maturity_date")
    else:
        end = add_tenor(start, product.get("tenor"))
    return (end - start).days


def validate_row(raw: Any, structures: set[str], where: str = "row") -> MarginRow:
    """A checked row: known structure or "*", positive whole tenor, finite margins in [0, MAX_MARGIN_PCT)."""
    if not isinstance(raw, dict):
        raise MarginError(f"{where} must be an object", {"row": where})
    errors: dict[str, str] = {}
    structure = raw.get("structure")
    if not isinstance(structure, str) or (structure != ANY and structure not in structures):
        errors["structure"] = f"must be a known structure or '*', got {structure!r}"
    days = raw.get("max_tenor_days")
    if isinstance(days, float) and days.is_integer():
        days = int(days)
    if isinstance(days, bool) or not isinstance(days, int) or not 0 < days <= MAX_TENOR_DAYS:
        errors["max_tenor_days"] = f"must be a whole number of days from 1 to {MAX_TENOR_DAYS}, got {days!r}"
    values = {}
    for name, required in (("margin_pct", True), ("unwind_margin_pct", False)):
        v = raw.get(name)
        if v is None and not required:
            v = 0.0
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                or not 0 <= v < MAX_MARGIN_PCT:
            errors[name] = f"must be a number from 0 to below {MAX_MARGIN_PCT:g} (% of notional), got {v!r}"
        values[name] = v
    unknown = set(raw) - {"structure", "max_tenor_days", "margin_pct", "unwind_margin_pct", "delete",
                          "updated_by", "updated_at", "note"}
    if unknown:
        errors.update({k: "is not a field of a margin row" for k in sorted(unknown)})
    if errors:
        raise MarginError(f"{where} is invalid: " + "; ".join(f"{k} {v}" for k, v in errors.items()),
                          {"row": where, "fields": errors})
    return MarginRow(structure, days, float(values["margin_pct"]), float(values["unwind_margin_pct"]))


def read_seed(path: Path = SEED_CSV) -> list[MarginRow]:
    """The checked-in table (extra columns such as `note` are for people)."""
    structures = known_structures()
    with open(path, encoding="utf-8", newline="") as f:
        return [validate_row({"structure": r["structure"], "max_tenor_days": int(r["max_tenor_days"]),
                              "margin_pct": float(r["margin_pct"]),
                              "unwind_margin_pct": float(r.get("unwind_margin_pct") or 0.0)},
                             structures, f"{path.name} line {i}")
                for i, r in enumerate(csv.DictReader(f), start=2)]


class MarginPolicy:
    """The quoting policy over the margin table of one database (read on every use: an admin's change applies to
    the next quote in every process)."""

    def __init__(self, engine: Engine, seed: Path = SEED_CSV):
        self.engine = engine
        self.seed_path = seed

    # ---- the table ----------------------------------------------------------------------
    def rows(self) -> list[MarginRow]:
        """The table, seeded from the CSV first when it is empty."""
        rows = self._read()
        if not rows:
            self.seed()
            rows = self._read()
        return rows

    def _read(self) -> list[MarginRow]:
        with transaction(self.engine) as tx:
            return [MarginRow(r.structure, r.max_tenor_days, r.margin_pct, r.unwind_margin_pct) for r in tx.margins.all()]

    def seed(self) -> int:
        """Fill an empty table from the CSV (audited); returns the rows written (0 when it was not empty)."""
        rows = read_seed(self.seed_path)
        try:
            with transaction(self.engine) as tx:
                if tx.margins.count():
                    return 0
                for r in rows:  # plain inserts: a seeder that read an empty table too late fails on the unique key
                    tx.margins.insert(r.structure, r.max_tenor_days, r.margin_pct, r.unwind_margin_pct, "system")
                tx.audit.record("system", "margins.seeded", SUBJECT,
                                {"source": self.seed_path.name, "rows": [asdict(r) for r in rows]})
        except IntegrityError:  # another process seeded it at the same moment
            log.info("margin table seeded concurrently by another process")
            return 0
        return len(rows)

    def table(self) -> list[dict]:
        """The table as the API shows it (who changed each row and when)."""
        self.rows()
        from otcdesk.app.repositories.margins import margin_row

        with transaction(self.engine) as tx:
            return [margin_row(r) for r in tx.margins.all()]

    def change(self, rows: list, actor: str, *, replace: bool = False) -> list[dict]:
        """Upsert `rows` (a row with `"delete": true` removes that bucket), or with `replace` make the table
        exactly `rows`; validated as a whole, one audit entry per changed row with its before and after, all in
        one transaction. The result must keep a "*" row. Returns the new table."""
        if not isinstance(rows, list) or not rows:
            raise MarginError("rows must be a non-empty list of margin rows", {"field": "rows"})
        structures = known_structures()
        checked: dict[tuple[str, int], MarginRow | None] = {}
        for i, raw in enumerate(rows):
            if isinstance(raw, dict) and raw.get("delete") is True:
                if replace:
                    raise MarginError(f"rows[{i}]: delete is for an edit, not a replacement", {"row": f"rows[{i}]"})
                row = validate_row({**raw, "margin_pct": 0.0}, structures, f"rows[{i}]")
                key, value = row.key, None
            else:
                row = validate_row(raw, structures, f"rows[{i}]")
                key, value = row.key, row
            if key in checked:
                raise MarginError(f"rows[{i}] repeats {key[0]} up to {key[1]} days", {"row": f"rows[{i}]"})
            checked[key] = value
        self.rows()  # seed first, so an edit of a fresh table edits the seeded one
        with transaction(self.engine) as tx:
            current = {(r.structure, r.max_tenor_days) for r in tx.margins.all()}
            if replace:
                for key in sorted(current - set(checked)):
                    self._audit(tx, actor, key, tx.margins.delete(*key), None)
            for key, row in checked.items():
                if row is None:
                    before = tx.margins.delete(*key)
                    if before is None:
                        raise MarginError(f"there is no row {key[0]} up to {key[1]} days to delete",
                                          {"structure": key[0], "max_tenor_days": key[1]})
                    self._audit(tx, actor, key, before, None)
                    continue
                existing = tx.margins.get(*key)
                if existing is not None and (existing.margin_pct, existing.unwind_margin_pct) == \
                        (row.margin_pct, row.unwind_margin_pct):
                    continue  # unchanged: nothing to record
                before, after = tx.margins.put(*key, row.margin_pct, row.unwind_margin_pct, actor)
                self._audit(tx, actor, key, before, after)
            if not any(r.structure == ANY for r in tx.margins.all()):
                raise MarginError("the table must keep at least one '*' row (the margin of any other structure)",
                                  {"structure": ANY})
            from otcdesk.app.repositories.margins import margin_row

            return [margin_row(r) for r in tx.margins.all()]

    @staticmethod
    def _audit(tx, actor: str, key: tuple[str, int], before: dict | None, after: dict | None) -> None:
        action = "margins.created" if before is None else "margins.deleted" if after is None else "margins.updated"
        strip = lambda d: None if d is None else {k: d[k] for k in ("margin_pct", "unwind_margin_pct", "updated_by",
                                                                    "updated_at")}
        tx.audit.record(actor, action, f"{SUBJECT}:{key[0]}:{key[1]}",
                        {"structure": key[0], "max_tenor_days": key[1], "before": strip(before), "after": strip(after)})

    # ---- lookups ------------------------------------------------------------------------
    def lookup(self, structure: str, days: int) -> MarginRow:
        """The row that applies; NoMarginError when none covers it."""
        row = find_margin(self.rows(), structure, days)
        if row is None:
            raise NoMarginError(f"no quoting margin for {structure} at {days} days: the table stops short of it")
        return row

    def unwind_margin_pct(self, structure: str, tenor_days: int) -> float:
        """The unwind margin (平仓点差), in % of notional, for a trade of `structure` with `tenor_days` left to run;
        NoMarginError when no row covers it."""
        return self.lookup(structure, tenor_days).unwind_margin_pct

    # ---- fair → quote -------------------------------------------------------------------
    def apply(self, line: dict) -> dict:
        """The desk's quote for a priced line (module docstring); a new dict, the input is not changed."""
        if line.get("error") or "price_pct" not in line or "fair_price_pct" in line:
            return line
        product = line.get("product") or {}
        structure = product.get("structure") or (line.get("request") or {}).get("structure") or "vanilla"
        try:
            days = tenor_days(product, line.get("valuation_date"))
            row = self.lookup(structure, days)
        except (NoMarginError, ValueError) as exc:
            return self._refused(line, f"未配置报价点差（{exc}）")
        margin = row.margin_pct
        fair = float(line["price_pct"])
        solved = line.get("solved") or {}
        out = dict(line)
        out.update(fair_price_pct=fair, fair_pv=line.get("pv"), fair_greeks=line.get("greeks"), margin_pct=margin,
                   margin={"structure": row.structure, "max_tenor_days": row.max_tenor_days, "tenor_days": days})
        notional = product.get("notional")
        out["margin_cny"] = margin / 100.0 * notional if notional else None
        if solved:
            field = next((f for f in SOLVED_DOWN if f in solved), None)
            if field is None or len(solved) > 1:
                return self._refused(line, f"报价点差不适用于按 {', '.join(solved)} 求解的报价")
            target = float(line.get("target_price_pct", fair))
            quoted = _solve_again(line, field, target - margin)
            if quoted.get("error"):
                return self._refused(line, f"按报价点差重新求解{field}失败：{quoted['error']}")
            out.update(fair_solved=dict(solved), solved=quoted["solved"], product=quoted["product"],
                       greeks=quoted["greeks"], stderr=quoted.get("stderr"), quoted_value_pct=quoted["price_pct"],
                       price_pct=fair)
        else:
            out["price_pct"] = fair + margin
        out["price"] = out["price_pct"] / 100.0
        out["pv"] = out["price"] * notional if notional else None
        return out

    @staticmethod
    def _refused(line: dict, reason: str) -> dict:
        """An error line that keeps the fair numbers for the trader (the client sees the reason only)."""
        return {"request": line.get("request"), "error": reason, "fair_price_pct": line.get("price_pct"),
                "fair_solved": line.get("solved"), "engine": line.get("engine"), "market": line.get("market")}


def _solve_again(line: dict, field: str, target: float) -> dict:
    from otcdesk.app.quoting import solve_again

    return solve_again(line, field, target)
