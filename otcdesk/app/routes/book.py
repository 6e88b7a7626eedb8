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
from typing import Any

from aiohttp import web

from otcdesk.app.http_security import json_error
from otcdesk.app.openapi import Field, RequestModel, ResponseModel, api

BOOK_READERS = ("trader", "risk")


class Exposure(ResponseModel):
    """From the desk's side: delta per +1% of the underlying, gamma the change of delta for a further +1%, vega per
    +1 vol point, theta per calendar day (CNY)."""

    pv_cny: float
    delta_cny: float
    gamma_cny: float
    vega_cny: float
    theta_cny: float


class UnderlyingExposure(Exposure):
    underlying: str
    trades: int


class Scenario(ResponseModel):
    spot_shifts_pct: list[float]
    vol_shifts: list[float]
    pnl_cny: list[list[float]]


class LimitCheck(ResponseModel):
    underlying: str
    measure: str
    value: float
    limit: float
    breached: bool


class Book(ResponseModel):
    snapshot_id: int | str
    as_of: str
    live_trades: int
    totals: Exposure
    by_underlying: list[UnderlyingExposure]
    scenario: Scenario
    limits: list[LimitCheck]


class SnapshotSummary(ResponseModel):
    snapshot_id: int | str | None
    as_of: str | None
    live_trades: int
    elapsed_s: float | None
    scenario_points: int


class SnapshotsQuery(RequestModel):
    limit: int = Field(100, ge=1, le=1000)


class Limit(ResponseModel):
    underlying: str = Field(description='"*": the default')
    measure: str
    limit: float
    updated_by: str | None
    updated_at: str


def register(router, *, demo: bool) -> None:
    from otcdesk.app.server import DESK, USER, require

    @api("The book of the latest risk snapshot", answer=Book, errors={404: "no snapshot yet"})
    @require(*BOOK_READERS)
    async def get_book(request: web.Request) -> web.Response:
        risk = request.app[DESK].risk
        book = await asyncio.to_thread(risk.latest)
        if book is None:
            live = await asyncio.to_thread(_live_count, request.app[DESK].engine)
            return json_error(404, "no risk snapshot yet: POST /api/risk/refresh or wait for the scheduled refresh",
                              {"live_trades": live})
        return web.json_response(book)

    @api("Revalue the live book now (audited)", answer=SnapshotSummary)
    @require("risk")
    async def refresh(request: web.Request) -> web.Response:
        summary = await asyncio.to_thread(request.app[DESK].risk.refresh, request[USER].username)
        return web.json_response(summary)

    @api("The snapshot history, newest first", query=SnapshotsQuery, answer=list[dict[str, Any]],
         errors={400: "bad limit"})
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

    @api("The configured limits per underlying", answer=list[Limit])
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
