"""Synthetic identifiers with valid check characters (GB 32100 USCC, GB 11643 ID) for demo data, tests, benchmarks.

Seeded and reproducible; they pass `validation.uscc_problem` / `id_problem` but belong to nobody we know of.
"""
from __future__ import annotations

import datetime as dt
import random

from otcdesk.app.kyc.validation import ID_PROVINCES, USCC_CHARS, id_check_char, uscc_check_char

_REGIONS = ("110000", "110105", "120000", "310000", "310115", "320500", "330100", "370200", "420100", "440300",
            "440100", "500000", "510100", "610100")


def synthetic_uscc(rng: random.Random) -> str:
    """`9` (market regulator) `1` (company), a region code, a random 9-character body, the check character."""
    first17 = "91" + rng.choice(_REGIONS) + "".join(rng.choice(USCC_CHARS) for _ in range(9))
    return first17 + uscc_check_char(first17)


def synthetic_id(rng: random.Random, today: dt.date | None = None) -> str:
    """An adult's 18-digit ID number: province, area digits, a birth date 25-70 years ago, sequence, check digit."""
    today = today or dt.date(2026, 1, 1)
    born = today - dt.timedelta(days=rng.randint(25 * 366, 70 * 365))
    first17 = (rng.choice(sorted(ID_PROVINCES - {"71", "81", "82", "83"})) + f"{rng.randint(100, 9999):04d}"
               + born.strftime("%Y%m%d") + f"{rng.randint(0, 999):03d}")
    return first17 + id_check_char(first17)


def synthetic_identifiers(n: int, seed: int = 0, id_share: float = 0.5) -> list[str]:
    """`n` distinct identifiers, about `id_share` of them ID numbers and the rest USCC codes."""
    rng = random.Random(seed)
    out: dict[str, None] = {}
    while len(out) < n:
        out.setdefault(synthetic_id(rng) if rng.random() < id_share else synthetic_uscc(rng), None)
    return list(out)
