"""`mask_pii`: ID numbers, mobiles and bank accounts in strings replaced by a mark. The audit copies of tool calls
and triage notes use it, and so does every log line (`app.logs`); it imports nothing heavy for that reason.
(The knowledge base's own masker, `knowledge.masking.PiiMasker`, also finds names and keeps a vault of tokens.)"""
from __future__ import annotations

import re
from typing import Any

# ID numbers (18 or 15 digits), mobiles, and bank accounts (12 to 25 digits, grouped by spaces or dashes or not;
# not the whole part of a decimal such as a notional)
_PII = re.compile(r"(?<![0-9A-Za-z])(\d{6} ?\d{8} ?\d{3}[\dXx]|\d{15}|(?:\+?86[ -]?)?1[3-9]\d[ -]?\d{4}[ -]?\d{4}"
                  r"|\d(?:[ -]?\d){11,24}(?!\.\d))(?![0-9A-Za-z])")
MASK = "[已脱敏]"


def mask_pii(value: Any) -> Any:
    """The value with ID numbers, mobiles and bank accounts in its strings replaced (recursively through lists and
    dicts)."""
    if isinstance(value, str):
        return _PII.sub(MASK, value)
    if isinstance(value, dict):
        return {k: mask_pii(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_pii(v) for v in value]
    return value
