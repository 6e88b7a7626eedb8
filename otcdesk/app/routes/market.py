"""Market routes: official closes in (fixings → lifecycle events), the newest snapshot and tick history out.

- `POST /api/market/fixings` (risk): `{"date": "2027-02-22", "closes": {"000905.SH": 6300.0}}` → the
  `FixingService.apply` answer (`{"events": [{"trade_id", "type", "date", "cash_cny", ...}], "ignored", ...}`);
  422 for a date after today or an invalid body, 409 for a close that differs from the stored one.
- `GET /api/market/snapshot` (trader, risk) → `MarketDataService.latest()`.
- `GET /api/market/history?underlying=&limit=&since=` (trader, risk) → `{"underlying", "ticks": [...]}`, oldest
  first, the newest `limit` (default 500, at most 5000).
"""
from __future__ import annotations

import asyncio
import datetime as dt
from typing import Annotated, Any, ClassVar

from aiohttp import web
from pydantic import ConfigDict

from otcdesk.app.clock import CN_TZ
from otcdesk.app.http_security import json_error
from otcdesk.app.openapi import Field, RequestModel, ResponseModel, api
from otcdesk.app.server import DESK, USER, read_json, require
from otcdesk.app.trading.lifecycle import FixingError
from otcdesk.app.trading.market_data import CODE

MAX_HISTORY = 5000


class FixingSpec(RequestModel):
    """The shape; `FixingService.check` then refuses a future date, an unknown underlying, a non-trading day."""

    model_config = ConfigDict(strict=True, extra="forbid")
    reasons: ClassVar[dict[str, str]] = {
        "date": "date is not an ISO date (YYYY-MM-DD)",
        "closes": "closes must be a non-empty object {underlying: close}",
        "closes.*": "bad close(s): each must be a positive finite number"}
    date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$", description="ISO date, not after today")
    closes: dict[str, Annotated[float, Field(gt=0, allow_inf_nan=False)]] = Field(
        min_length=1, description="official close per underlying code")


class FixingEvent(ResponseModel):
    trade_id: str
    type: str = Field(description="knocked_out, knocked_in, matured, coupon, ...")
    date: str
    cash_cny: float | None


class FixingResult(ResponseModel):
    date: str
    events: list[FixingEvent]
    ignored: list[dict[str, Any]]
    skipped: list[dict[str, Any]]
    trades_observed: int


class HistoryQuery(RequestModel):
    underlying: str = Field(description="a code like 000905.SH")
    limit: int = Field(500, ge=1, le=MAX_HISTORY)
    since: str | None = Field(None, description="ISO date or time (China time when naive)")


class History(ResponseModel):
    underlying: str
    ticks: list[dict[str, Any]]


@api("Official closes in: lifecycle events out", body=FixingSpec, answer=FixingResult,
     errors={409: "differs from the stored close"})
@require("risk")
async def post_fixings(request: web.Request) -> web.Response:
    body = await read_json(request)
    user = request[USER]
    try:
        result = await asyncio.to_thread(request.app[DESK].fixings.apply, body.get("date"), body.get("closes"),
                                         user.username, role=user.role)
    except FixingError as exc:
        return json_error(exc.status, exc.message, {"code": exc.code, **(exc.detail or {})})
    return web.json_response(result)


@api("The newest market snapshot", answer=dict[str, Any])
@require("trader", "risk")
async def snapshot(request: web.Request) -> web.Response:
    return web.json_response(await asyncio.to_thread(request.app[DESK].market.latest))


@api("Tick history of one underlying, oldest first", query=HistoryQuery, answer=History, errors={400: "bad query"})
@require("trader", "risk")
async def history(request: web.Request) -> web.Response:
    q = request.query
    underlying = (q.get("underlying") or "").strip().upper()
    if not CODE.match(underlying):
        return json_error(400, "underlying must be a code like 000905.SH")
    try:
        limit = int(q.get("limit") or 500)
        if not 1 <= limit <= MAX_HISTORY:
            raise ValueError
    except ValueError:
        return json_error(400, f"limit must be an integer from 1 to {MAX_HISTORY}")
    since = None
    if q.get("since"):
        try:
            since = dt.datetime.fromisoformat(q["since"])
        except ValueError:
            return json_error(400, "since must be an ISO date or time")
        if since.tzinfo is None:
            since = since.replace(tzinfo=CN_TZ)
    ticks = await asyncio.to_thread(request.app[DESK].market.history, underlying, since, limit)
    return web.json_response({"underlying": underlying, "ticks": ticks})


def register(router, *, demo: bool) -> None:
    router.add_post("/api/market/fixings", post_fixings)
    router.add_get("/api/market/snapshot", snapshot)
    router.add_get("/api/market/history", history)
