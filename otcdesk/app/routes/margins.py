"""Routes: the quoting margin table (报价点差表), `trading.margins.MarginPolicy`.

- `GET  /api/admin/margins`  admin, trader, risk → `[{"structure", "max_tenor_days", "margin_pct",
                                                     "unwind_margin_pct", "updated_by", "updated_at"}]`
- `POST /api/admin/margins`  admin: `{"rows": [row, ...]}` (or one row) upserts those rows; a row with
                             `"delete": true` removes its bucket → the new table
- `PUT  /api/admin/margins`  admin: `{"rows": [...]}` becomes the whole table → the new table
A refused change answers 422 `{"error", "detail": {"row", "fields"}}` and changes nothing; every change is
audited row by row with its before and after.
"""
from __future__ import annotations

import asyncio

from typing import Any

from aiohttp import web

from otcdesk.app.openapi import Field, RequestModel, ResponseModel, api


class MarginRow(ResponseModel):
    structure: str = Field(description='a structure or "*"')
    max_tenor_days: int
    margin_pct: float
    unwind_margin_pct: float
    updated_by: str | None
    updated_at: str | None


class MarginChangeSpec(RequestModel):
    """`{"rows": [row, ...]}`, or one row's fields at the top level; the service checks each row (422 naming the
    row and its fields)."""

    rows: list[dict[str, Any]] | None = None


def register(router, *, demo: bool) -> None:
    from otcdesk.app.http_security import json_error
    from otcdesk.app.server import DESK, USER, read_json, require
    from otcdesk.app.trading.margins import MarginError

    @api("The quoting margin table", answer=list[MarginRow])
    @require("admin", "trader", "risk")
    async def list_margins(request: web.Request) -> web.Response:
        return web.json_response(await asyncio.to_thread(request.app[DESK].margins.table))

    async def _change(request: web.Request, replace: bool) -> web.Response:
        body = await read_json(request)
        rows = body["rows"] if "rows" in body else [body]
        try:
            table = await asyncio.to_thread(request.app[DESK].margins.change, rows, request[USER].username,
                                            replace=replace)
        except MarginError as exc:
            return json_error(422, exc.message, exc.detail)
        return web.json_response(table)

    @api("Upsert or delete margin rows (audited)", body=MarginChangeSpec, answer=list[MarginRow])
    @require("admin")
    async def edit_margins(request: web.Request) -> web.Response:
        return await _change(request, replace=False)

    @api("Replace the whole margin table (audited)", body=MarginChangeSpec, answer=list[MarginRow])
    @require("admin")
    async def replace_margins(request: web.Request) -> web.Response:
        return await _change(request, replace=True)

    router.add_get("/api/admin/margins", list_margins)
    router.add_post("/api/admin/margins", edit_margins)
    router.add_put("/api/admin/margins", replace_margins)
