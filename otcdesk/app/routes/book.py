"""Routes of the risk book (CONTRACTS Part 2 "Book and risk"); the work is `trading.risk.RiskService`'s.

- `GET /api/book` (trader, risk): the `Book` of the latest risk snapshot; 404 `{"error", "detail":
  {"live_trades"}}` before the first snapshot (nothing has been revalued yet: an empty book would claim a flat
  desk that may not be flat). `POST /api/risk/refresh` or the scheduler makes the first one.
- `POST /api/risk/refresh` (risk): revalues the live book now (waiting for a scheduled refresh in progress) and
  answers the snapshot summary; audited as `risk.refreshed` by the user.
- `GET /api/risk/snapshots?limit=` (trader, risk): the snapshot history, newest first.
- `GET /api/risk/limits` (trader, risk): the configured limits per underlying ("*": the default).
"""
from __future__ import annotations

import asyncio

from aiohttp import web

from otcdesk.app.http_security import json_error

BOOK_READERS = ("trader", "risk")


def register(router, *, demo: bool) -> None:
    from otcdesk.app.server import DESK, USER, require

    @require(*BOOK_READERS)
    async def get_book(request: web.Request) -> web.Response:
        risk = request.app[DESK].risk
        book = await asyncio.to_thread(risk.latest)
        if book is None:
            live = await asyncio.to_thread(_live_count, request.app[DESK].engine)
            return json_error(404, "no risk snapshot yet: POST /api/risk/refresh or wait for the scheduled refresh",
                              {"live_trades": live})
        return web.json_response(book)

    @require("risk")
    async def refresh(request: web.Request) -> web.Response:
        summary = await asyncio.to_thread(request.app[DESK].risk.refresh, request[USER].username)
        return web.json_response(summary)

    @require(*BOOK_READERS)
    async def snapshots(request: web.Request) -> web.Response:
        try:
            limit = int(request.query.get("limit") or 100)
        except ValueError:
            limit = 0
        if not 1 <= limit <= 1000:
            return json_error(400, "limit must be an integer from 1 to 1000")
        history = await asyncio.to_thread(request.app[DESK].risk.history, limit)
        return web.json_response([{**h, "as_of": h["as_of"].isoformat()} for h in history])

    @require(*BOOK_READERS)
    async def limits(request: web.Request) -> web.Response:
        return web.json_response(await asyncio.to_thread(request.app[DESK].risk.limits))

    router.add_get("/api/book", get_book)
    router.add_post("/api/risk/refresh", refresh)
    router.add_get("/api/risk/snapshots", snapshots)
    router.add_get("/api/risk/limits", limits)


def _live_count(engine) -> int:
    from otcdesk.app.repositories import transaction

    with transaction(engine) as tx:
        return tx.trades.count("live")
