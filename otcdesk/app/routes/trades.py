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

from typing import Any, Literal

from otcdesk.app.http_security import json_error
from otcdesk.app.openapi import Field, RequestModel, ResponseModel, api
from otcdesk.app.trading.confirmation import ConfirmationError
from otcdesk.workflows.trade import STATES, LifecycleError

READERS = ("trader", "risk", "compliance")
ERROR_STATUS = {"not_found": 404, "forbidden": 403, "conflict": 409, "invalid": 422}
MAX_LIMIT = 500
TradeStatus = Literal[STATES]  # type: ignore[valid-type]


class Approval(ResponseModel):
    user: str
    role: str | None
    at: str


class TradeEvent(ResponseModel):
    type: str
    date: str
    detail: dict[str, Any] | None


class Trade(ResponseModel):
    """CONTRACTS `Trade`: the product with dates, initial price and coupon fixed at booking."""

    id: str
    status: TradeStatus
    institution: str | None
    group: str | None
    client: str | None
    quote_id: str | None
    product: dict[str, Any]
    notional: float
    price_pct: float
    premium_cny: float
    booked_by: str
    booked_at: str
    approvals: list[Approval]
    events: list[TradeEvent]


class TradesQuery(RequestModel):
    status: TradeStatus | None = None
    limit: int = Field(MAX_LIMIT, ge=1, le=MAX_LIMIT)


def _error(exc: LifecycleError, trade_id: str | None = None) -> web.Response:
    extra = {"code": exc.code}
    if trade_id:
        extra["id"] = trade_id
    return json_error(ERROR_STATUS.get(exc.code, 400), exc.message, extra)


def register(router, *, demo: bool) -> None:
    from otcdesk.app.server import DESK, USER, require

    @api("Booked trades, newest first", query=TradesQuery, answer=list[Trade], errors={400: "bad status or limit"})
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

    @api("One trade", answer=Trade, errors={404: "no such trade"})
    @require(*READERS)
    async def get_trade(request: web.Request) -> web.Response:
        tid = request.match_info["id"]
        try:
            return web.json_response(await asyncio.to_thread(request.app[DESK].trades.get, tid))
        except LifecycleError as exc:
            return _error(exc, tid)

    @api("The second (four-eyes) approval", answer=Trade, errors={403: "the booker may not approve",
         404: "no such trade", 409: "not pending"})
    @require("risk")
    async def approve_trade(request: web.Request) -> web.Response:
        tid, user = request.match_info["id"], request[USER]
        try:
            trade = await asyncio.to_thread(request.app[DESK].trades.approve_second, tid, user.username, user.role)
        except LifecycleError as exc:
            return _error(exc, tid)
        return web.json_response(trade)

    @api("The trade confirmation (交易确认书) PDF", content="application/pdf", errors={404: "no such trade",
         503: "cannot be generated"})
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
