"""The HTTP API's OpenAPI 3.1 description, generated from the routes and the models their handlers validate with.

A handler declares what it accepts and answers with `@api(...)`, one line beside its `require`:

    @api("One trade", answer=Trade)
    @require(*READERS)
    async def get_trade(request): ...

- `body`    a pydantic model: `read_json` validates the request body with it (refused: `invalid_status`, default
            422, `{"error", "detail": {"code": "invalid", "fields": {field: reason}}, "fields"}`), so the spec
            and the validation cannot drift;
- `answer`  the success body: a model or any type pydantic can describe (`list[Trade]`, `dict[str, Any]`);
            `status` its status (200), `also` other success statuses with the same body;
- `query`   a model whose fields are the query parameters; path parameters come from the route itself;
- `content` the answer's media type(s) when it is not JSON (a PDF, HTML, Prometheus text); `error_content`
            that of refusals when they are not the API's JSON `{"error", "detail"}`;
- `auth`    how a route without `require` is authorised (an invitation token, a bearer token), or None: open.

Roles come from `require` (`x-roles`; the session cookie as security; 401 and 403 answers). `build_spec(app)`
walks `app.router`; `documented_routes` is the rule for what must be described: every route but the static files
and the HEAD twins aiohttp adds to each GET. `missing_operations` names the routes that have no `@api`.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

JSON = "application/json"
COOKIE_SCHEME = "session"
OPENAPI_VERSION = "3.1.0"
SPEC = web.AppKey("openapi_spec", dict)  # filled on the first request for it
_REF = "#/components/schemas/{model}"


class ApiError(BaseModel):
    """Every refusal: `{"error", "detail"}` (http_security.json_error); a form's 422 also has `fields`."""

    model_config = ConfigDict(extra="allow")
    error: str
    detail: Any = None


class RequestModel(BaseModel):
    """Base of request bodies: types are checked as sent (no "12" for 12); fields not named are allowed.
    `reasons` may give the refusal's text per field (`"closes"`, or `"closes.*"` for any key or item in it)."""

    model_config = ConfigDict(strict=True, extra="allow")
    reasons: ClassVar[dict[str, str]] = {}


class ResponseModel(BaseModel):
    """Base of answers: the named fields keep their names and types; extra fields are allowed (CONTRACTS)."""

    model_config = ConfigDict(extra="allow")


@dataclass(frozen=True)
class Operation:
    summary: str
    body: type[BaseModel] | None = None
    answer: Any = None
    status: int = 200
    also: tuple[int, ...] = ()  # other success statuses with the same answer (201 created / 200 unchanged)
    query: type[BaseModel] | None = None
    content: str | tuple[str, ...] = JSON
    auth: str | None = None
    invalid_status: int = 422
    errors: dict[int, str] = field(default_factory=dict)
    body_content: str = JSON
    error_content: str = JSON
    description: str | None = None


def api(summary: str, **kw) -> Any:
    """Declare a handler's operation (see the module docstring); returns the handler unchanged but annotated."""
    op = Operation(summary, **kw)

    def deco(handler):
        handler.openapi = op
        return handler

    return deco


def operation_of(handler) -> Operation | None:
    return getattr(handler, "openapi", None)


# ---- request validation -------------------------------------------------------------------------------------
def _loc(error: dict) -> str:
    return ".".join(str(p) for p in error["loc"]) or "body"


def _reason(model: type[BaseModel], error: dict) -> str:
    """The refusal's text for the first error: the model's own reason for that field, or pydantic's."""
    loc = _loc(error)
    if error["type"] == "extra_forbidden":
        return f"unknown field {loc!r}"
    reasons = getattr(model, "reasons", {})
    head = str(error["loc"][0]) if error["loc"] else ""
    reason = reasons.get(loc) or (reasons.get(f"{head}.*") if len(error["loc"]) > 1 else None) or reasons.get(head)
    return reason or f"{loc}: {error['msg']}"


def invalid_body(op: Operation, body: Any) -> web.HTTPException | None:
    """None when `body` fits `op.body`; else the refusal to raise, naming each field and its reason."""
    if op.body is None:
        return None
    try:
        op.body.model_validate(body)
        return None
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
    fields = {_loc(e): e["msg"] for e in errors}
    refusal = {"error": _reason(op.body, errors[0]), "detail": {"code": "invalid", "fields": fields},
               "fields": fields}
    return _REFUSALS[op.invalid_status](text=json.dumps(refusal, ensure_ascii=False), content_type=JSON)


_REFUSALS = {400: web.HTTPBadRequest, 422: web.HTTPUnprocessableEntity}


# ---- which routes -------------------------------------------------------------------------------------------
def documented_routes(router: web.UrlDispatcher) -> Iterator[tuple[str, str, Any]]:
    """(method, OpenAPI path, handler) of every route that must be described: all but static files and the
    HEAD route aiohttp adds beside each GET."""
    for route in router.routes():
        if isinstance(route.resource, web.StaticResource) or route.method == "HEAD":
            continue
        yield route.method.lower(), path_of(route.resource), route.handler


def path_of(resource) -> str:
    """`/api/trades/{id}`; a regex-constrained variable `{page:a|b}` becomes `{page}`."""
    return re.sub(r"\{(\w+):[^}]*\}", r"{\1}", resource.canonical)


def missing_operations(router: web.UrlDispatcher) -> list[str]:
    """`METHOD /path (module.handler)` of every documented route without `@api`."""
    return [f"{m.upper()} {p} ({h.__module__}.{h.__qualname__})" for m, p, h in documented_routes(router)
            if operation_of(h) is None]


# ---- generation ---------------------------------------------------------------------------------------------
class _Schemas:
    """components/schemas, filled as types are described; a name used twice must mean the same schema."""

    def __init__(self) -> None:
        self.components: dict[str, dict] = {}

    def add(self, name: str, schema: dict) -> None:
        known = self.components.setdefault(name, schema)
        if known != schema:
            raise ValueError(f"two different schemas are both named {name!r}: rename one of the models")

    def of(self, tp: Any, mode: str) -> dict:
        schema = TypeAdapter(tp).json_schema(ref_template=_REF, mode=mode)
        for name, sub in schema.pop("$defs", {}).items():
            self.add(name, sub)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            self.add(tp.__name__, schema)
            return {"$ref": _REF.format(model=tp.__name__)}
        return schema


def _parameters(path: str, op: Operation, schemas: _Schemas, enums: dict[str, list[str]]) -> list[dict]:
    params = []
    for name in re.findall(r"\{(\w+)\}", path):
        schema: dict = {"type": "string"}
        if name in enums:
            schema["enum"] = enums[name]
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    if op.query is not None:
        described = op.query.model_json_schema(ref_template=_REF)
        required = set(described.get("required", ()))
        for name, schema in described.get("properties", {}).items():
            doc = schema.pop("description", None)
            schema.pop("title", None)
            params.append({"name": name, "in": "query", "required": name in required, "schema": schema,
                           **({"description": doc} if doc else {})})
    return params


def _operation(method: str, path: str, handler, schemas: _Schemas, enums: dict) -> dict:
    op: Operation = operation_of(handler)
    roles = getattr(handler, "roles", None)  # set by server.require
    out: dict = {"summary": op.summary, "operationId": f"{method}_{re.sub(r'[^a-zA-Z0-9]+', '_', path).strip('_')}"}
    if op.description:
        out["description"] = op.description
    params = _parameters(path, op, schemas, enums)
    if params:
        out["parameters"] = params
    if op.body is not None:
        out["requestBody"] = {"required": True,
                              "content": {op.body_content: {"schema": schemas.of(op.body, "validation")}}}
    elif op.body_content != JSON:
        out["requestBody"] = {"required": True, "content": {op.body_content: {"schema": {"type": "string"}}}}
    error = {"content": {JSON: {"schema": schemas.of(ApiError, "serialization")}}} if op.error_content == JSON \
        else {"content": {op.error_content: {"schema": {"type": "string"}}}}
    answer: dict = {"description": "success"}
    if op.content == JSON:
        answer["content"] = {JSON: {"schema": schemas.of(op.answer if op.answer is not None else Any,
                                                         "serialization")}}
    elif op.content:
        medias = (op.content,) if isinstance(op.content, str) else op.content
        answer["content"] = {m: {"schema": {"type": "string", "contentMediaType": m}} for m in medias}
    responses: dict = {str(op.status): answer}
    for status in op.also:
        responses[str(status)] = answer
    if op.body is not None:
        responses[str(op.invalid_status)] = {"description": "the body does not fit the schema", **error}
    if roles is not None:
        out["security"] = [{COOKIE_SCHEME: []}]
        out["x-roles"] = list(roles) or ["any logged-in user"]
        responses["401"] = {"description": "login required", **error}
        if roles:
            responses["403"] = {"description": f"only {', '.join(roles)}", **error}
    elif op.auth:
        out["x-auth"] = op.auth
    for status, why in op.errors.items():
        responses.setdefault(str(status), {"description": why, **(error if status != 302 else {})})
    responses["default"] = {"description": "a refusal", **error}
    out["responses"] = responses
    return out


def build_spec(app: web.Application) -> dict:
    """The OpenAPI 3.1 document of `app`'s routes. A route without `@api` is left out and named under
    `x-undescribed` (the service keeps serving the rest; the tests fail on it)."""
    schemas, paths = _Schemas(), {}
    enums = _path_enums(app.router)
    for method, path, handler in documented_routes(app.router):
        if operation_of(handler) is not None:
            paths.setdefault(path, {})[method] = _operation(method, path, handler, schemas, enums)
    missing = missing_operations(app.router)
    return {**({"x-undescribed": missing} if missing else {}),
        "openapi": OPENAPI_VERSION,
        "info": {"title": "otcdesk", "version": "1", "description": "The desk's HTTP API (CONTRACTS.md). Generated "
                 "from the models the handlers validate with; roles per operation in x-roles."},
        "paths": paths,
        "components": {"schemas": dict(sorted(schemas.components.items())),
                       "securitySchemes": {COOKIE_SCHEME: {"type": "apiKey", "in": "cookie",
                                                           "name": "otcdesk_session",
                                                           "description": "from POST /api/login"}}},
    }


def _path_enums(router: web.UrlDispatcher) -> dict[str, list[str]]:
    """`{page:login|console}` → {"page": ["login", "console"]}: the alternatives of a path variable's regex."""
    out = {}
    for route in router.routes():
        pattern = route.resource.get_info().get("pattern") if route.resource is not None else None
        if pattern is not None:
            for name, alternatives in re.findall(r"\(\?P<(\w+)>([\w|]+)\)", pattern.pattern):
                out[name] = alternatives.split("|")
    return out


def spec_of(app: web.Application) -> dict:
    """The app's spec, generated once (routes do not change after start)."""
    holder = app[SPEC]
    if not holder:
        holder.update(build_spec(app))
    return holder


@api("This API's OpenAPI 3.1 description", answer=dict[str, Any],
     description="Open to anyone: it describes the routes and their schemas, no data.")
async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(text=json.dumps(spec_of(request.app), ensure_ascii=False), content_type=JSON)


# ---- answers against the spec (used by the tests on every response) -------------------------------------------
def response_content(spec: dict, method: str, path: str, status: int) -> dict | None:
    """{media type: {"schema"}} described for that answer ({} for none), or None when the status is not described."""
    op = spec["paths"].get(path, {}).get(method.lower())
    if op is None:
        return None
    described = op["responses"].get(str(status)) or (op["responses"]["default"] if status >= 400 else None)
    if described is None:
        return None
    return described.get("content") or {}


def answer_problems(spec: dict, method: str, path: str, status: int, content_type: str, body: bytes) -> list[str]:
    """What is wrong with an answer of `method path` against the spec: [] when it fits."""
    import jsonschema

    described = response_content(spec, method, path, status)
    where = f"{method.upper()} {path} {status}"
    if described is None:
        return [f"{where}: status not described"]
    if not described:
        return []
    if content_type not in described:
        return [f"{where}: content type {content_type!r}, described {sorted(described)}"]
    schema = described[content_type].get("schema")
    if content_type != JSON or schema is None:
        return []
    try:
        doc = json.loads(body)
    except ValueError:
        return [f"{where}: body is not JSON"]
    validator = jsonschema.Draft202012Validator({**spec, **_as_root(schema)})
    return [f"{where}: {'/'.join(map(str, e.absolute_path)) or 'body'}: {e.message}"
            for e in validator.iter_errors(doc)][:5]


def _as_root(schema: dict) -> dict:
    """A schema whose `#/components/...` references resolve against the spec (the spec is its root)."""
    return {"allOf": [schema]}

