"""HTTP routes of the desk after the quote, one module per domain; each has `register(router, *, demo)`.

`server.create_app` calls `register_all`. Route modules import `require`, `read_json` and the app keys from
`app.server` (they are imported only once the server module is loaded). Every handler also carries
`@api("summary", body=Model, answer=Model)` (`app.openapi`): its part of GET /api/openapi.json, and the model
`read_json` validates its body with; tests/integration/test_openapi.py names a route without one.

- `trades.py`   GET /api/trades, GET /api/trades/{id}, POST /api/trades/{id}/approve, the confirmation PDF
- `market.py`   POST /api/market/fixings, market history
- `book.py`     GET /api/book, POST /api/risk/refresh, limits
- `margins.py`  the quoting margin table (admin)
- `templates.py` structure templates: upload (a new version), list, versions (admin)
- `kyc.py`      KYC onboarding: invitations, the client's form and documents, reviews, report, agreement, groups
- `assistant.py` POST /api/assistant/chat: the internal assistant's agent (any staff role; tools by role)
- `surveillance.py` surveillance alerts, their triage and the control groups (compliance only)
- `wecom.py`    GET|POST /wecom/callback: the WeCom (企业微信) callback URL (the platform, not a browser)
- `channels.py` GET /api/channels (each channel's health), the canary allowlist (admin edits)
- `metrics.py`  GET /metrics: Prometheus exposition (bearer token when OTCDESK_METRICS_TOKEN is set)
"""
from __future__ import annotations

import importlib

MODULES = ("trades", "market", "book", "margins", "templates", "kyc", "assistant", "surveillance", "wecom", "channels",
           "metrics")


def register_all(router, *, demo: bool) -> None:
    for name in MODULES:
        importlib.import_module(f"{__name__}.{name}").register(router, demo=demo)
