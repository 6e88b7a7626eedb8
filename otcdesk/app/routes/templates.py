"""Routes: structure templates (`trading.templates.TemplateService`), admin only.

- `GET  /api/admin/templates`                      → `[{"structure", "version", "versions", "names", "description",
                                                      "sha256", "source", "uploaded_by", "uploaded_at",
                                                      "withdrawn_at", "withdrawn_by"}]`, the newest version of every
                                                      stored template (withdrawn: both set)
- `POST /api/admin/templates`                      the template document (at most MAX_TEMPLATE_BYTES) → 201 the
                                                      stored version + `engines` (its defaults priced on the demo
                                                      market) and `unchanged: false`; 200 with `unchanged: true` when
                                                      it is the newest version already; 422 `{"error", "fields":
                                                      {"<field>": "reason"}}` when refused; 409 on a concurrent upload
- `GET  /api/admin/templates/{structure}/versions` → every version, newest first, with its `document`; 404 when none
- `POST /api/admin/templates/{structure}/withdraw` `{"reason"}` (1–500 characters, not blank) → the template summary,
                                                      its newest version marked withdrawn (audited
                                                      `template.withdrawn`): the parser on every instance stops
                                                      understanding it, the pricer keeps every version; 400 bad
                                                      body, 404 no stored template, 409 withdrawn already. A later
                                                      upload of the structure brings it back as its next version.
"""
from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from otcdesk.app.openapi import Field, RequestModel, ResponseModel, api
from otcdesk.app.trading.templates import MAX_REASON_CHARS


class TemplateVersion(ResponseModel):
    structure: str
    version: int
    names: list[str]
    description: str
    sha256: str
    source: str = Field(description='"upload" or "file:<name>"')
    uploaded_by: str
    uploaded_at: str | None
    withdrawn_at: str | None = Field(None, description="when admin withdrew the structure at this version, or null")
    withdrawn_by: str | None = Field(None, description="who withdrew it, or null")


class TemplateSummary(TemplateVersion):
    versions: int = Field(description="how many versions are stored")


class StoredTemplate(TemplateVersion):
    engines: dict[str, Any] = Field(description="the defaults priced by every engine that supports the blocks")
    unchanged: bool = Field(description="the upload was the newest version already (200); else a new one (201)")


class TemplateWithDocument(TemplateVersion):
    document: dict[str, Any]


class TemplateSpec(RequestModel):
    """A structure template (CONTRACTS "Structure templates"); the service validates it whole and names every
    refused field (422 `{"error", "fields"}`)."""

    structure: Any = None
    description: Any = None
    names: Any = None
    params: Any = None
    constraints: Any = None
    blocks: Any = None


class WithdrawSpec(RequestModel):
    """Why the structure is withdrawn (kept in the audit log)."""

    reason: str = Field(min_length=1, max_length=MAX_REASON_CHARS, pattern=r"\S",
                        description="why it is withdrawn: not blank, at most 500 characters")


def register(router, *, demo: bool) -> None:
    from otcdesk.app.server import DESK, USER, read_json, require
    from otcdesk.app.http_security import json_error
    from otcdesk.app.trading.templates import MAX_TEMPLATE_BYTES, TemplateAlreadyWithdrawn, TemplateConflict, \
        TemplateNotFound
    from otcdesk.pricing_engine.templates.validate import TemplateError

    @api("The newest version of every stored structure template", answer=list[TemplateSummary])
    @require("admin")
    async def list_templates(request: web.Request) -> web.Response:
        return web.json_response(await asyncio.to_thread(request.app[DESK].templates.table))

    @api("Upload a structure template: validated, versioned, audited", body=TemplateSpec, answer=StoredTemplate,
         status=201, also=(200,), errors={409: "a concurrent upload of the same structure", 413: "too large"})
    @require("admin")
    async def upload_template(request: web.Request) -> web.Response:
        if (request.content_length or 0) > MAX_TEMPLATE_BYTES:
            return json_error(413, f"a template is at most {MAX_TEMPLATE_BYTES} bytes")
        doc = await read_json(request)
        try:
            row = await asyncio.to_thread(request.app[DESK].templates.upload, doc, request[USER].username)
        except TemplateError as exc:
            return web.json_response({"error": str(exc), "fields": exc.fields}, status=422)
        except TemplateConflict as exc:
            return json_error(409, str(exc))
        return web.json_response(row, status=200 if row["unchanged"] else 201)

    @api("Every version of one structure, newest first", answer=list[TemplateWithDocument],
         errors={404: "no stored template"})
    @require("admin")
    async def template_versions(request: web.Request) -> web.Response:
        structure = request.match_info["structure"]
        rows = await asyncio.to_thread(request.app[DESK].templates.versions, structure)
        return web.json_response(rows) if rows else json_error(404, f"no stored template {structure!r}")

    @api("Withdraw a structure template: the parser stops understanding it on every instance, the pricer keeps "
         "every version (booked trades still revalue); audited", body=WithdrawSpec, answer=TemplateSummary,
         invalid_status=400, errors={404: "no stored template", 409: "withdrawn already"})
    @require("admin")
    async def withdraw_template(request: web.Request) -> web.Response:
        structure = request.match_info["structure"]
        body = await read_json(request)
        try:
            row = await asyncio.to_thread(request.app[DESK].templates.withdraw, structure, request[USER].username,
                                          body["reason"])
        except ValueError as exc:
            return json_error(400, str(exc))
        except TemplateNotFound as exc:
            return json_error(404, str(exc))
        except TemplateAlreadyWithdrawn as exc:
            return json_error(409, str(exc))
        return web.json_response(row)

    router.add_get("/api/admin/templates", list_templates)
    router.add_post("/api/admin/templates", upload_template)
    router.add_get("/api/admin/templates/{structure}/versions", template_versions)
    router.add_post("/api/admin/templates/{structure}/withdraw", withdraw_template)
