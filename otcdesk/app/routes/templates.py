"""Routes: structure templates (`trading.templates.TemplateService`), admin only.

- `GET  /api/admin/templates`                      → `[{"structure", "version", "versions", "names", "description",
                                                      "sha256", "source", "uploaded_by", "uploaded_at"}]`, the newest
                                                      version of every stored template
- `POST /api/admin/templates`                      the template document (at most MAX_TEMPLATE_BYTES) → 201 the
                                                      stored version + `engines` (its defaults priced on the demo
                                                      market) and `unchanged: false`; 200 with `unchanged: true` when
                                                      it is the newest version already; 422 `{"error", "fields":
                                                      {"<field>": "reason"}}` when refused; 409 on a concurrent upload
- `GET  /api/admin/templates/{structure}/versions` → every version, newest first, with its `document`; 404 when none
"""
from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from otcdesk.app.openapi import Field, RequestModel, ResponseModel, api


class TemplateVersion(ResponseModel):
    structure: str
    version: int
    names: list[str]
    description: str
    sha256: str
    source: str = Field(description='"upload" or "file:<name>"')
    uploaded_by: str
    uploaded_at: str | None


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


def register(router, *, demo: bool) -> None:
    from otcdesk.app.server import DESK, USER, read_json, require
    from otcdesk.app.http_security import json_error
    from otcdesk.app.trading.templates import MAX_TEMPLATE_BYTES, TemplateConflict
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

    router.add_get("/api/admin/templates", list_templates)
    router.add_post("/api/admin/templates", upload_template)
    router.add_get("/api/admin/templates/{structure}/versions", template_versions)
