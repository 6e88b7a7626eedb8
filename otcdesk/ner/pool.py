"""The desk's underlying pool (checked-in CSVs under otcdesk/ner/data) and code resolution.

Code rules (documented convention, see CONTRACTS.md):

* bare six-digit codes take their exchange by prefix: 60xxxx/688xxx/689xxx/900xxx and funds 50/51/52/56/58xxxx
  → .SH; 000-003xxx/300-301xxx/200xxx and funds 15/16xxxx → .SZ; 4xxxxx/8xxxxx/92xxxx → .BJ (the BSE/NEEQ
  ranges: 43/83/87/88/92 today, the whole 4/8 blocks by the desk's rule);
* the index codes 000300/000905/000852/000016/000688/000510/000001 written bare (no suffix) are read as the
  SH indices (a desk almost never means 深康佳A by 000016); 399xxx → .SZ index; 93xxxx → .CSI index;
* an explicit suffix is honoured when it matches the exchange's prefix rules; ``sh600519``/``SZ000001`` prefixes too;
* anything else (7xxxxx, 1[0-4]xxxx, 9[01]xxxx ...; 600519.SZ) cannot exist: it is reported, never guessed.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"

BARE_INDEX_CODES = {"000300", "000905", "000852", "000016", "000688", "000510", "000001", "000903", "000906"}
SHORTHAND_INDEX = {"50": "000016.SH", "300": "000300.SH", "500": "000905.SH", "1000": "000852.SH", "2000": "932000.CSI"}
INDEX_FUTURES = {"IH": "000016.SH", "IF": "000300.SH", "IC": "000905.SH", "IM": "000852.SH"}


@dataclass(frozen=True)
class Underlying:
    code: str
    name: str
    kind: str  # index | etf | stock | commodity


def exchange_for_code(digits: str) -> str | None:
    """Exchange suffix of a six-digit code by prefix rules, or None when no exchange uses that prefix."""
    if len(digits) != 6 or not digits.isdigit():
        return None
    p2, p3 = digits[:2], digits[:3]
    if p3 in ("600", "601", "603", "605", "688", "689", "900") or p2 in ("50", "51", "52", "56", "58"):
        return "SH"
    if p3 in ("000", "001", "002", "003", "300", "301", "200") or p2 in ("15", "16"):
        return "SZ"
    if p3 == "399":
        return "SZ"
    if digits[0] in "48" or p2 == "92":
        return "BJ"
    if p2 == "93":
        return "CSI"
    return None


class UnderlyingPool:
    """Names, short names and codes of everything the desk quotes, plus resolution of codes outside it."""

    def __init__(self, data_dir: Path = DATA_DIR):
        self.by_code: dict[str, Underlying] = {}
        self.aliases: dict[str, str] = {}  # alias (as written; latin upper-cased) -> code
        with open(data_dir / "pool_indices_futures.csv", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                u = Underlying(row["code"], row["name"], row["kind"])
                self.by_code[u.code] = u
                self._add_alias(u.name, u.code)
                for a in filter(None, (row.get("aliases") or "").split("|")):
                    self._add_alias(a, u.code)
        with open(data_dir / "pool_stocks.csv", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                digits = row["code"].strip()
                code = f"{digits}.{exchange_for_code(digits)}"
                u = Underlying(code, row["name"], "stock")
                self.by_code[code] = u
                self._add_alias(u.name, code)
                for a in filter(None, (row.get("aliases") or "").split("|")):
                    self._add_alias(a, code)
        self.commodity_products = {c.split(".")[0]: c for c, u in self.by_code.items() if u.kind == "commodity"}

    def _add_alias(self, alias: str, code: str) -> None:
        alias = alias.strip()
        if not alias:
            return
        key = alias.upper() if re.fullmatch(r"[A-Za-z0-9]+", alias) else alias
        self.aliases.setdefault(key, code)

    def name_of(self, code: str) -> str | None:
        u = self.by_code.get(code)
        return u.name if u else None

    def chinese_aliases(self) -> dict[str, str]:
        """Aliases containing CJK characters (matched by dictionary scan)."""
        return {a: c for a, c in self.aliases.items() if re.search(r"[\u4e00-\u9fff]", a)}

    def latin_aliases(self) -> dict[str, str]:
        """Pure latin/digit aliases (matched on word boundaries), bare index shorthands excluded."""
        return {a: c for a, c in self.aliases.items()
                if re.fullmatch(r"[A-Z0-9]+", a) and not a.isdigit()}

    def resolve_code(self, digits: str, suffix: str | None = None) -> tuple[str | None, str]:
        """Resolve a six-digit code (optional suffix SH/SZ/BJ/CSI/SS). Returns (code or None, reason)."""
        suffix = (suffix or "").upper().replace("SS", "SH") or None
        if suffix is None and digits in BARE_INDEX_CODES:
            return f"{digits}.SH", "index"
        if suffix in ("SH", "CSI") and digits in BARE_INDEX_CODES:  # 000852.CSI is how CSI writes its own index
            return f"{digits}.SH", "index"
        exch = exchange_for_code(digits)
        if exch is None:
            return None, "impossible"
        if suffix and suffix != exch:
            return None, "impossible"
        return f"{digits}.{exch}", "prefix"


@lru_cache(maxsize=1)
def default_pool() -> UnderlyingPool:
    return UnderlyingPool()
