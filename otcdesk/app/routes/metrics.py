"""Routes: `GET /metrics`, the desk's Prometheus metrics (`app.metrics`) in the text exposition format.

Open by default, as Prometheus expects; the counters show business volumes (messages, quotes, approvals), so
with `OTCDESK_METRICS_TOKEN` set a scrape must send `Authorization: Bearer <token>` (Prometheus:
`authorization: {credentials: <token>}` in the scrape config) and anything else is answered 401.
"""
from __future__ import annotations

import hmac

from aiohttp import web

from otcdesk.app.openapi import api


def register(router, *, demo: bool) -> None:
    from otcdesk.app.metrics import CONTENT_TYPE
    from otcdesk.app.server import DESK, SETTINGS

    @api("Prometheus text exposition", content="text/plain", error_content="text/plain",
         auth="open, or Authorization: Bearer OTCDESK_METRICS_TOKEN when set", errors={401: "bearer token required"})
    async def metrics(request: web.Request) -> web.Response:
        token = request.app[SETTINGS].metrics_token
        if token:
            sent = request.headers.get("Authorization", "")
            if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
                return web.Response(status=401, text="bearer token required",
                                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
        return web.Response(body=request.app[DESK].metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

    router.add_get("/metrics", metrics)
