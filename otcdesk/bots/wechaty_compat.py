"""Make python-wechaty 0.10.7 importable on Python 3.11 with urllib3 2.x. Import before `wechaty`.

Upstream issues #385/#422: `urllib3.get_host` was removed in urllib3 2, and `PuppetOptions` is used as a
(mutable, unhashable) dataclass default. Both are patched here, once, without touching site-packages.
"""
from __future__ import annotations

import urllib3


def _get_host(url: str):
    parsed = urllib3.util.parse_url(url)
    return parsed.scheme or "http", parsed.host, parsed.port


if not hasattr(urllib3, "get_host"):
    urllib3.get_host = _get_host

from wechaty_puppet.schemas.puppet import PuppetOptions  # noqa: E402

if PuppetOptions.__hash__ is None:
    PuppetOptions.__hash__ = lambda self: id(self)
