"""The surveillance library's inputs: order events, trades, accounts, and how identifiers are normalised.

Times are integer milliseconds since the Unix epoch (UTC). An ISO 8601 time without an offset is read as China
Standard Time (UTC+8), the exchanges' clock, so naive and offset-carrying times in one file compare correctly.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

CST = timezone(timedelta(hours=8))
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

SIDES = ("B", "S")
EVENTS = ("new", "cancel", "fill")
STRONG_KEYS = ("id_number", "mobile", "bank_account", "device_id")  # enough alone to link two accounts
WEAK_KEYS = ("address", "ip")  # reported as evidence, never enough to link


@dataclass(frozen=True, slots=True)
class Order:
    """One order event (委托事件): the order's `new`, a `fill` (qty and price of that fill) or its `cancel`."""

    order_id: str
    account_id: str
    ts: int  # ms since epoch, UTC
    instrument: str
    side: str  # "B" or "S"
    price: float | None
    qty: float | None
    event: str  # "new" | "cancel" | "fill"


@dataclass(frozen=True, slots=True)
class Trade:
    """One trade (成交) between a buying and a selling account."""

    trade_id: str
    ts: int
    instrument: str
    price: float | None
    qty: float | None
    buy_account: str
    sell_account: str


@dataclass(frozen=True, slots=True)
class Account:
    """Account reference data (开户资料). Identifier fields hold normalised values (see `Account.of`); empty is ''."""

    account_id: str
    name: str = ""
    id_number: str = ""
    mobile: str = ""
    address: str = ""
    bank_account: str = ""
    ip: str = ""
    device_id: str = ""

    @classmethod
    def of(cls, account_id: str, name: str = "", id_number: str = "", mobile: str = "", address: str = "",
           bank_account: str = "", ip: str = "", device_id: str = "") -> "Account":
        """An account with every identifier normalised, so equal identifiers compare equal whatever their spelling."""
        return cls(account_id=halfwidth(account_id).strip(), name=halfwidth(name).strip(),
                   id_number=norm_id_number(id_number), mobile=norm_mobile(mobile), address=norm_address(address),
                   bank_account=norm_bank_account(bank_account), ip=norm_ip(ip), device_id=norm_device(device_id))


def halfwidth(text: str) -> str:
    """Full-width forms (全角, U+FF01..U+FF5E) and the ideographic space to their ASCII (半角) equivalents."""
    if not text:
        return ""
    if text.isascii():
        return text
    out = []
    for ch in text:
        code = ord(ch)
        if 0xFF01 <= code <= 0xFF5E:
            out.append(chr(code - 0xFEE0))
        elif code == 0x3000:
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


_NOT_DIGIT = re.compile(r"\D")
_SPACE = re.compile(r"\s+")
_ID_JUNK = re.compile(r"[\s\-]")


def norm_id_number(value: str | None) -> str:
    """居民身份证号: half-width, no spaces or dashes, the check character X upper-case."""
    return _ID_JUNK.sub("", halfwidth(value or "")).upper()


def norm_mobile(value: str | None) -> str:
    """A mainland mobile as its 11 digits: no spaces, dashes or brackets, no +86 / 0086 / 86 prefix."""
    digits = _NOT_DIGIT.sub("", halfwidth(value or ""))
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            return digits[len(prefix):]
    return digits


def norm_bank_account(value: str | None) -> str:
    """A bank card or account number as its digits only."""
    return _NOT_DIGIT.sub("", halfwidth(value or ""))


def norm_device(value: str | None) -> str:
    """A device id (MAC, IMEI, hardware serial): upper-case, separators (: - space) removed."""
    return re.sub(r"[\s:\-]", "", halfwidth(value or "")).upper()


def norm_address(value: str | None) -> str:
    """An address: half-width, whitespace removed (Chinese addresses carry none that matters), upper-case."""
    return _SPACE.sub("", halfwidth(value or "")).upper()


def norm_ip(value: str | None) -> str:
    return halfwidth(value or "").strip()


def parse_ts(value: str) -> int:
    """ISO 8601 (milliseconds optional) → ms since epoch; no offset means China Standard Time. ValueError if bad."""
    dt = datetime.fromisoformat(value.strip())
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=CST)
    return round(dt.timestamp() * 1000)  # exact for millisecond inputs; sub-millisecond digits round


def format_ts(ms: int) -> str:
    """ms since epoch → ISO 8601 with milliseconds in China Standard Time (the form the generator writes)."""
    dt = _EPOCH + timedelta(milliseconds=ms)
    return dt.astimezone(CST).isoformat(timespec="milliseconds")


def mask(key: str, value: str) -> str:
    """A shared identifier as evidence without the personal datum itself: its kind's visible ends only."""
    if not value:
        return ""
    if key in ("address",):
        return value[:6] + "…" if len(value) > 6 else value
    if key == "ip":
        parts = value.split(".")
        return ".".join(parts[:2] + ["*"] * (len(parts) - 2)) if len(parts) == 4 else value[:4] + "…"
    keep = 3 if key == "mobile" else 0  # a mobile's carrier prefix says nothing about its holder
    tail = 4
    if len(value) <= keep + tail:
        return "*" * len(value)
    return value[:keep] + "*" * (len(value) - keep - tail) + value[-tail:]
