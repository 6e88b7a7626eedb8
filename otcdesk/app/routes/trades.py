"""Trades (CONTRACTS Part 2 "Orders and trades"): the booked trades, the second approval, the confirmation PDF.

| GET  /api/trades?status=&limit=        | trader, risk, compliance | → [Trade], newest first |
| GET  /api/trades/{id}                  | trader, risk, compliance | → Trade |
| POST /api/trades/{id}/approve          | risk, not the booker     | → Trade (four eyes: pending_second_approval → live) |
| GET  /api/trades/{id}/confirmation.pdf | trader, risk, compliance | → the 交易确认书 (X-Content-SHA256: its recorded hash) |

`TradeService` raises `LifecycleError`; its code maps to the status (`ERROR_STATUS`). Decisions and downloads
are audited by the service.
"""
from __future__ import annotations

import asyncio

from aiohttp import web

from otcdesk.app.http_security import json_error
from otcdesk.app.trading.confirmation import ConfirmationError
from otcdesk.workflows.trade import STATES, LifecycleError

READERS = ("trader", "risk", "compliance")
ERROR_STATUS = {"not_found": 404, "forbidden": 403, "conflict": 409, "invalid": 422}
MAX_LIMIT = 500


def _error(exc: LifecycleError, trade_id: str | None = None) -> web.Response:
    extra = {"code": exc.code}
    if trade_id:
        extra["id"] = trade_id
    return json_error(ERROR_STATUS.get(exc.code, 400), exc.message, extra)


def register(router, *, demo: bool) -> None:
    from otcdesk.app.server import DESK, USER, require

    @require(*READERS)
    async def list_trades(request: web.Request) -> web.Response:
        status = request.query.get("status") or None
        if status is not None and status not in STATES:
            return json_error(400, f"status must be one of {', '.join(STATES)}")
        try:
            limit = int(request.query.get("limit") or MAX_LIMIT)
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_LIMIT:
            return json_error(400, f"limit must be an integer from 1 to {MAX_LIMIT}")
        try:
            trades = await asyncio.to_thread(request.app[DESK].trades.list, status, limit)
        except LifecycleError as exc:
            return _error(exc)
        return web.json_response(trades)

    @require(*READERS)
    async def get_trade(request: web.Request) -> web.Response:
        tid = request.match_info["id"]
        try:
            return web.json_response(await asyncio.to_thread(request.app[DESK].trades.get, tid))
        except LifecycleError as exc:
            return _error(exc, tid)

    @require("risk")
    async def approve_trade(request: web.Request) -> web.Response:
        tid, user = request.match_info["id"], request[USER]
        try:
            trade = await asyncio.to_thread(request.app[DESK].trades.approve_second, tid, user.username, user.role)
        except LifecycleError as exc:
            return _error(exc, tid)
        return web.json_response(trade)

    @require(*READERS)
    async def confirmation(request: web.Request) -> web.Response:
        tid, user = request.match_info["id"], request[USER]
        try:
            data, digest = await asyncio.to_thread(request.app[DESK].trades.confirmation_pdf, tid, user.username)
        except LifecycleError as exc:
            return _error(exc, tid)
        except ConfirmationError as exc:
            return json_error(503, str(exc), {"id": tid})
        return web.Response(body=data, content_type="application/pdf", headers={
            "Content-Disposition": f'attachment; filename="{tid}-confirmation.pdf"', "X-Content-SHA256": digest,
            "Cache-Control": "no-store"})

    router.add_get("/api/trades", list_trades)
    router.add_get("/api/trades/{id}", get_trade)
    router.add_post("/api/trades/{id}/approve", approve_trade)
    router.add_get("/api/trades/{id}/confirmation.pdf", confirmation)
