"""Make python-wechaty 0.10.7 importable on Python 3.11 with urllib3 2.x. Import before `wechaty`.

Upstream issues #385/#422: `urllib3.get_host` was removed in urllib3 2, and `PuppetOptions` is used as a
(mutable, unhashable) dataclass default. Both are patched here, once, without touching site-packages.
`forget_loaded` works around its process-wide pools of loaded rooms and contacts when a bot reconnects.
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


def split_endpoint(endpoint: str) -> tuple[str, int]:
    """(host, port) of a puppet service endpoint as python-wechaty reads it (`host:port`, scheme optional)."""
    from wechaty_puppet_service.utils import extract_host_and_port

    return extract_host_and_port(endpoint)


def forget_loaded(bot) -> int:
    """Drop the rooms, contacts and tags `bot` loaded; returns how many.

    python-wechaty keeps them in pools shared by the whole process, each bound to the puppet that loaded it, so
    after a reconnect (a new puppet) they would still call the closed one. Other bots' entries stay."""
    from wechaty.user.contact import Contact
    from wechaty.user.room import Room
    from wechaty.user.tag import Tag

    dropped = 0
    for cls in (Contact, Room, Tag):
        for key, loaded in list(cls._pool.items()):
            if getattr(loaded, "_wechaty", None) is bot:
                del cls._pool[key]
                dropped += 1
    return dropped
