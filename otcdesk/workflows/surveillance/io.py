"""CSV readers and writers for the surveillance inputs (CONTRACTS Part 2, "Surveillance").

Header row first; columns are found by name (order free, extra columns ignored); empty cells are allowed except
where a row would mean nothing without them: every row needs its id and `ts`; an order's `new` needs its account,
instrument and side (a `cancel` or `fill` row may leave those empty and inherits them from its `new`); an account
row needs its `account_id`. A bad file raises `InputError`, listing up to `MAX_ERRORS` bad cells, each with the
file, the line number (the header is line 1) and the column.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, TextIO

from otcdesk.workflows.surveillance.model import EVENTS, SIDES, Account, Order, Trade, format_ts, parse_ts

ORDER_COLUMNS = ("order_id", "account_id", "ts", "instrument", "side", "price", "qty", "event")
TRADE_COLUMNS = ("trade_id", "ts", "instrument", "price", "qty", "buy_account", "sell_account")
ACCOUNT_COLUMNS = ("account_id", "name", "id_number", "mobile", "address", "bank_account", "ip", "device_id")
MAX_ERRORS = 20


@dataclass(frozen=True)
class CellError:
    file: str
    line: int
    column: str
    reason: str

    def as_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "column": self.column, "reason": self.reason}

    def __str__(self) -> str:
        return f"{self.file}, line {self.line}, column {self.column}: {self.reason}"


class InputError(ValueError):
    """Bad surveillance input; `errors` says where (file, line, column) and why."""

    def __init__(self, errors: list[CellError], more: int = 0):
        self.errors = errors
        self.more = more
        extra = f" (and {more} more)" if more else ""
        super().__init__(f"{errors[0]}{extra}" if errors else "bad input")


class _Rows:
    """Column lookup and error collection over one CSV stream."""

    def __init__(self, stream: TextIO, name: str, columns: tuple[str, ...]):
        self.name = name
        self.reader = csv.reader(stream)
        try:
            header = next(self.reader)
        except StopIteration:
            raise InputError([CellError(name, 1, "-", "empty file: the header row is missing")]) from None
        header = [h.strip().lstrip("\ufeff").lower() for h in header]
        missing = [c for c in columns if c not in header]
        if missing:
            raise InputError([CellError(name, 1, c, "column missing from the header") for c in missing])
        self.index = tuple(header.index(c) for c in columns)
        self.width = max(self.index) + 1
        self.errors: list[CellError] = []
        self.more = 0

    def bad(self, line: int, column: str, reason: str) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(CellError(self.name, line, column, reason))
        else:
            self.more += 1

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        idx = self.index
        for row in self.reader:
            line = self.reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            if len(row) < self.width:
                row = row + [""] * (self.width - len(row))
            yield line, [row[i].strip() for i in idx]

    def finish(self) -> None:
        if self.errors:
            raise InputError(self.errors, self.more)


def _number(rows: _Rows, line: int, column: str, text: str, *, positive: bool) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        rows.bad(line, column, f"not a number: {text[:40]!r}")
        return None
    if value != value or value in (float("inf"), float("-inf")) or value < 0 or (positive and value == 0):
        rows.bad(line, column, f"must be a {'positive' if positive else 'non-negative'} finite number: {text[:40]!r}")
        return None
    return value


def _ts(rows: _Rows, line: int, text: str) -> int | None:
    if not text:
        rows.bad(line, "ts", "empty: every row needs its time")
        return None
    try:
        return parse_ts(text)
    except ValueError:
        rows.bad(line, "ts", f"not an ISO 8601 time: {text[:40]!r}")
        return None


def parse_orders(stream: TextIO, name: str = "orders.csv") -> list[Order]:
    rows = _Rows(stream, name, ORDER_COLUMNS)
    out: list[Order] = []
    for line, (order_id, account, ts_text, instrument, side, price, qty, event) in rows:
        ok = True
        if not order_id:
            rows.bad(line, "order_id", "empty")
            ok = False
        event = event.lower()
        if event not in EVENTS:
            rows.bad(line, "event", f"must be one of {', '.join(EVENTS)}, got {event[:20]!r}")
            ok = False
        side = side.upper()
        if side and side not in SIDES:
            rows.bad(line, "side", f"must be B or S, got {side[:20]!r}")
            ok = False
        if event == "new":
            for column, value in (("account_id", account), ("instrument", instrument), ("side", side)):
                if not value:
                    rows.bad(line, column, "empty: a new order needs it")
                    ok = False
        ts = _ts(rows, line, ts_text)
        p = _number(rows, line, "price", price, positive=False)
        q = _number(rows, line, "qty", qty, positive=True)
        if ok and ts is not None and not rows.errors:
            out.append(Order(order_id, account, ts, instrument, side, p, q, event))
    rows.finish()
    return out


def parse_trades(stream: TextIO, name: str = "trades.csv") -> list[Trade]:
    rows = _Rows(stream, name, TRADE_COLUMNS)
    out: list[Trade] = []
    for line, (trade_id, ts_text, instrument, price, qty, buyer, seller) in rows:
        ok = True
        for column, value in (("trade_id", trade_id), ("instrument", instrument)):
            if not value:
                rows.bad(line, column, "empty")
                ok = False
        ts = _ts(rows, line, ts_text)
        p = _number(rows, line, "price", price, positive=False)
        q = _number(rows, line, "qty", qty, positive=True)
        if ok and ts is not None and not rows.errors:
            out.append(Trade(trade_id, ts, instrument, p, q, buyer, seller))
    rows.finish()
    return out


def parse_accounts(stream: TextIO, name: str = "accounts.csv") -> list[Account]:
    rows = _Rows(stream, name, ACCOUNT_COLUMNS)
    out: list[Account] = []
    seen: dict[str, int] = {}
    for line, cells in rows:
        account = Account.of(*cells)
        if not account.account_id:
            rows.bad(line, "account_id", "empty")
            continue
        if account.account_id in seen:
            rows.bad(line, "account_id", f"duplicate of line {seen[account.account_id]}")
            continue
        seen[account.account_id] = line
        out.append(account)
    rows.finish()
    return out


def _read(path: str | Path, parse: Callable[[TextIO, str], list]):
    path = Path(path)
    try:
        with path.open(encoding="utf-8-sig", newline="") as stream:
            return parse(stream, str(path))
    except FileNotFoundError:
        raise InputError([CellError(str(path), 0, "-", "no such file")]) from None
    except UnicodeDecodeError as exc:
        raise InputError([CellError(str(path), 0, "-", f"not UTF-8 text ({exc.reason})")]) from None


def read_orders(path: str | Path) -> list[Order]:
    return _read(path, parse_orders)


def read_trades(path: str | Path) -> list[Trade]:
    return _read(path, parse_trades)


def read_accounts(path: str | Path) -> list[Account]:
    return _read(path, parse_accounts)


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(int(value)) if value.is_integer() else repr(value)
    return str(value)


def write_orders(path: str | Path, orders: Iterable[Order]) -> None:
    with Path(path).open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(ORDER_COLUMNS)
        w.writerows((o.order_id, o.account_id, format_ts(o.ts), o.instrument, o.side, _cell(o.price), _cell(o.qty),
                     o.event) for o in orders)


def write_trades(path: str | Path, trades: Iterable[Trade]) -> None:
    with Path(path).open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(TRADE_COLUMNS)
        w.writerows((t.trade_id, format_ts(t.ts), t.instrument, _cell(t.price), _cell(t.qty), t.buy_account,
                     t.sell_account) for t in trades)


def write_accounts(path: str | Path, rows: Iterable[dict]) -> None:
    """Account rows as given (raw spellings kept: the generator writes identifiers the way clients type them)."""
    with Path(path).open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(ACCOUNT_COLUMNS)
        w.writerows([r.get(c, "") for c in ACCOUNT_COLUMNS] for r in rows)
