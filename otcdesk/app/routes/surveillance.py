"""Surveillance (CONTRACTS Part 2 "Surveillance"): the persisted alerts and their triage, compliance only.

| GET  /api/surveillance/alerts?type=&status=&account=&limit= | → {"alerts", "total", "counts", "last_run"} |
| GET  /api/surveillance/alerts/{id}                          | → alert with evidence, timeline, steps, allowed |
| POST /api/surveillance/run                                  | → {"found", "new", "seen_again", "by_type", …} |
| POST /api/surveillance/alerts/{id}/triage                   | {"action", "note", "version"} → the alert |
| GET  /api/surveillance/control-groups                       | → {"groups": [{accounts, score, links, …}]} |

`SurveillanceService` (`desk.surveillance`) does the work and the auditing; `TriageError` codes map to 404 / 409 /
422, an unreadable source to 503. Evidence carries masked identifiers only (the library masks them).
"""
from __future__ import annotations

import asyncio

from aiohttp import web

from typing import Any, Literal

from otcdesk.app.http_security import json_error
from otcdesk.app.openapi import Field, RequestModel, ResponseModel, api
from otcdesk.app.surveillance import TYPES, SurveillanceError
from otcdesk.workflows.surveillance.triage import STATES, TriageError

ROLES = ("compliance",)
AlertType = Literal[TYPES]  # type: ignore[valid-type]
AlertStatus = Literal[STATES]  # type: ignore[valid-type]


class AlertsQuery(RequestModel):
    type: AlertType | None = None
    status: AlertStatus | None = None
    account: str | None = None
    limit: int = Field(200, ge=1, le=1000)


class Alert(ResponseModel):
    """An alert in a list: its evidence left out."""

    id: str
    type: AlertType
    accounts: list[str]
    score: float
    status: AlertStatus
    instrument: str | None
    orders: int
    trades: int
    first_seen_at: str
    last_seen_at: str
    version: int


class AlertPage(ResponseModel):
    alerts: list[Alert]
    total: int = Field(description="alerts matching the filters")
    counts: dict[str, dict[str, int]] = Field(description="type → status → n, all alerts")
    last_run: str | None


class AlertDetail(Alert):
    order_ids: list[str]
    trade_ids: list[str]
    evidence: dict[str, Any] = Field(description="masked identifiers only")
    note: str | None
    allowed: list[str] = Field(description="the triage actions the alert's state allows")
    steps: list[dict[str, Any]]
    timeline: list[dict[str, Any]]


class RunResult(ResponseModel):
    found: int
    new: int
    seen_again: int
    by_type: dict[str, int]
    total: int
    as_of: str


class TriageSpec(RequestModel):
    action: str
    note: str | None = None
    version: int = Field(description="the alert's version as last read")


class ControlGroups(ResponseModel):
    groups: list[dict[str, Any]]

ERROR_STATUS = {"not_found": 404, "conflict": 409, "invalid": 422}
MAX_LIMIT = 1000


def _error(exc: TriageError, alert_id: str | None = None) -> web.Response:
    extra = {"code": exc.code}
    if alert_id:
        extra["id"] = alert_id
    return json_error(ERROR_STATUS.get(exc.code, 400), exc.message, extra)


def register(router, *, demo: bool) -> None:
    from otcdesk.app.server import DESK, USER, read_json, require

    def service(request: web.Request):
        return request.app[DESK].surveillance

    @api("Surveillance alerts (no evidence), with counts", query=AlertsQuery, answer=AlertPage,
         errors={400: "bad filter or limit"})
    @require(*ROLES)
    async def list_alerts(request: web.Request) -> web.Response:
        q = request.query
        type_, status, account = q.get("type") or None, q.get("status") or None, q.get("account") or None
        if type_ is not None and type_ not in TYPES:
            return json_error(400, f"type must be one of {', '.join(TYPES)}")
        if status is not None and status not in STATES:
            return json_error(400, f"status must be one of {', '.join(STATES)}")
        try:
            limit = int(q.get("limit") or 200)
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_LIMIT:
            return json_error(400, f"limit must be an integer from 1 to {MAX_LIMIT}")
        found = await asyncio.to_thread(service(request).list, type=type_, status=status, account=account,
                                        limit=limit)
        return web.json_response(found)

    @api("One alert with its evidence, timeline and triage steps", answer=AlertDetail, errors={404: "no such alert"})
    @require(*ROLES)
    async def get_alert(request: web.Request) -> web.Response:
        aid = request.match_info["id"]
        try:
            return web.json_response(await asyncio.to_thread(service(request).detail, aid))
        except TriageError as exc:
            return _error(exc, aid)

    @api("Run the detectors now (audited)", answer=RunResult, errors={503: "source unreadable"})
    @require(*ROLES)
    async def run(request: web.Request) -> web.Response:
        try:
            return web.json_response(await asyncio.to_thread(service(request).run, request[USER].username))
        except SurveillanceError as exc:
            return json_error(503, str(exc))

    @api("Triage an alert (audited)", body=TriageSpec, answer=AlertDetail, errors={404: "no such alert",
         409: "state or version moved"})
    @require(*ROLES)
    async def triage(request: web.Request) -> web.Response:
        aid = request.match_info["id"]
        body = await read_json(request)
        action = body.get("action")
        if not isinstance(action, str):
            return json_error(422, "action must be a string", {"code": "invalid", "id": aid})
        try:
            alert = await asyncio.to_thread(service(request).triage, aid, action, body.get("note"),
                                            body.get("version"), request[USER].username)
        except TriageError as exc:
            return _error(exc, aid)
        return web.json_response(alert)

    @api("Actual-control groups, strongest first", answer=ControlGroups)
    @require(*ROLES)
    async def control_groups(request: web.Request) -> web.Response:
        return web.json_response(await asyncio.to_thread(service(request).control_groups))

    router.add_get("/api/surveillance/alerts", list_alerts)
    router.add_get("/api/surveillance/alerts/{id}", get_alert)
    router.add_post("/api/surveillance/run", run)
    router.add_post("/api/surveillance/alerts/{id}/triage", triage)
    router.add_get("/api/surveillance/control-groups", control_groups)
