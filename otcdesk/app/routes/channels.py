"""Routes: the channels' health and the canary allowlist (`desk.canary`).

- `GET  /api/channels`              staff → `[{"channel", "connected", "since", "last_message_at", "last_error",
                                     "last_error_at", "retry_in_s", "reconnects"}]`, every channel this instance runs
- `GET  /api/admin/canary`          staff → `{"enabled", "updated_by", "updated_at", "groups": [{"channel",
                                     "group_id", "added_by", "added_at"}], "channels"}`
- `POST /api/admin/canary`          admin: `{"enabled": bool}` canary mode on or off → the state
- `POST /api/admin/canary/groups`   admin: `{"channel", "group_id", "in": bool}` a group in or out → the state
Invalid input answers 422 `{"error", "detail": {"fields": {"<field>": "rule"}}}`; every change is audited.
"""
from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from otcdesk.app.openapi import Field, RequestModel, ResponseModel, api


class ChannelHealth(ResponseModel):
    channel: str
    connected: bool
    since: str | None
    last_message_at: str | None
    last_error: str | None
    last_error_at: str | None
    retry_in_s: float | None
    reconnects: int


class CanaryGroup(ResponseModel):
    channel: str
    group_id: str
    added_by: str
    added_at: str | None


class CanaryState(ResponseModel):
    enabled: bool
    updated_by: str | None
    updated_at: str | None
    groups: list[CanaryGroup]
    channels: list[str]


class CanaryModeSpec(RequestModel):
    """`{"enabled": bool}`; the service checks the value (422 naming the field)."""

    enabled: Any = None


class CanaryGroupSpec(RequestModel):
    """`{"channel", "group_id", "in": bool}`; the service checks the values (422 naming the fields)."""

    channel: Any = None
    group_id: Any = None
    in_: Any = Field(default=None, alias="in")


def register(router, *, demo: bool) -> None:
    from otcdesk.app.desk.canary import CanaryError
    from otcdesk.app.http_security import json_error
    from otcdesk.app.server import DESK, STAFF_ROLES, USER, read_json, require

    @api("Each channel's health on this instance", answer=list[ChannelHealth])
    @require(*STAFF_ROLES)
    async def channels(request: web.Request) -> web.Response:
        return web.json_response(request.app[DESK].channel_health())

    @api("Canary mode and its group allowlist", answer=CanaryState)
    @require(*STAFF_ROLES)
    async def canary(request: web.Request) -> web.Response:
        return web.json_response(await asyncio.to_thread(request.app[DESK].canary.state))

    async def _change(request: web.Request, change, *args) -> web.Response:
        try:
            return web.json_response(await asyncio.to_thread(change, *args, request[USER].username))
        except CanaryError as exc:
            return json_error(422, exc.message, {"fields": exc.fields})

    @api("Turn canary mode on or off (audited)", body=CanaryModeSpec, answer=CanaryState)
    @require("admin")
    async def set_mode(request: web.Request) -> web.Response:
        body = await read_json(request)
        return await _change(request, request.app[DESK].canary.set_mode, body.get("enabled"))

    @api("Put a group in or out of the allowlist (audited)", body=CanaryGroupSpec, answer=CanaryState)
    @require("admin")
    async def set_group(request: web.Request) -> web.Response:
        body = await read_json(request)
        return await _change(request, request.app[DESK].canary.set_group, body.get("channel"), body.get("group_id"),
                             body.get("in"))

    router.add_get("/api/channels", channels)
    router.add_get("/api/admin/canary", canary)
    router.add_post("/api/admin/canary", set_mode)
    router.add_post("/api/admin/canary/groups", set_group)
