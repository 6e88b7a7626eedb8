"""The HTTP edge: what every request passes before a handler sees it, and what every response carries.

- `origin_guard`      a state-changing request (POST, PUT, PATCH, DELETE) from another site is refused (403):
                      its `Origin` must be this server's own or one of `OTCDESK_ALLOWED_ORIGINS`; without an
                      `Origin`, `Sec-Fetch-Site` must be `same-origin` or `none`. A request with neither header
                      (curl, scripts, the tests) passes: browsers send one of them on every such request.
- `checked_input`     a body sent to /api/ must be `application/json` (415), fit the size limit (413: the app's
                      `client_max_size`, or the larger one `BODY_LIMITS` names for its path) and be UTF-8
                      JSON (400); no text in it, in the path or in the query may hold NUL or a lone UTF-16
                      surrogate, which no database stores (400, naming the field). The parsed body waits in
                      `request[JSON_BODY]` for the handler.
- `secure_cookies`    `Secure` on the cookies a response sets when served over HTTPS, or always with
                      `OTCDESK_COOKIE_SECURE=true` (`false`: never; the default `auto` keeps the demo on http working).
- `response_headers`  a Content-Security-Policy without inline code, `nosniff` and a Referrer-Policy on every
                      response.

`X-Forwarded-Proto` and `X-Forwarded-Host` are believed only from `OTCDESK_TRUSTED_PROXIES`.
"""
from __future__ import annotations

import json
from typing import Any

from aiohttp import hdrs, web
from yarl import URL

from otcdesk.app.settings import Settings

JSON_BODY = web.RequestKey("json_body", object)
BODY_LIMITS = web.AppKey("body_limits", dict)  # path → a larger body limit than the app's (e.g. a document upload)
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
JSON_ONLY_PREFIX = "/api/"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; object-src 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def json_error(status: int, error: str, detail=None) -> web.Response:
    """The API's error answer: `{"error", "detail"}`."""
    return web.json_response({"error": error, "detail": detail}, status=status)


def _forwarded(request: web.Request, settings: Settings, header: str) -> str | None:
    """The first value of an X-Forwarded-* header, when a trusted proxy sent the request."""
    if request.remote not in settings.trusted_proxies:
        return None
    value = request.headers.get(header, "").split(",")[0].strip()
    return value or None


def request_scheme(request: web.Request, settings: Settings) -> str:
    return (_forwarded(request, settings, "X-Forwarded-Proto") or request.scheme).lower()


def _origin_key(origin: str) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) of an origin, default ports made explicit; None when it is not one (e.g. "null")."""
    try:
        url = URL(origin)
    except (ValueError, TypeError):
        return None
    if not url.scheme or not url.host:
        return None
    return url.scheme.lower(), url.host.lower(), url.port


def from_allowed_origin(request: web.Request, settings: Settings) -> bool:
    """Whether a state-changing request may have come from this site (see the module docstring)."""
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is None:
        return request.headers.get("Sec-Fetch-Site", "none").lower() in ("same-origin", "none")
    key = _origin_key(origin)
    if key is None:
        return False
    host = _forwarded(request, settings, "X-Forwarded-Host") or request.host
    own = _origin_key(f"{request_scheme(request, settings)}://{host}")
    return key == own or key in {_origin_key(o) for o in settings.allowed_origins}


def unstorable_text(body: Any) -> str | None:
    """The path (`text`, `items[2].name`) of the first key or string holding NUL or a lone surrogate, or None."""
    stack: list[tuple[str, Any]] = [("", body)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if _unstorable(value):
                return path or "body"
        elif isinstance(value, dict):
            for key, item in value.items():
                if _unstorable(key):
                    return f"{path}.{ascii(key)}" if path else ascii(key)
                stack.append((f"{path}.{key}" if path else key, item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item) for i, item in enumerate(value))
    return None


def _unstorable(text: str) -> bool:
    if "\x00" in text:  # PostgreSQL text cannot hold it
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # only lone surrogates fail
        return True
    return False


def origin_guard(settings: Settings):
    @web.middleware
    async def middleware(request: web.Request, handler):
        if request.method in STATE_CHANGING and not from_allowed_origin(request, settings):
            return json_error(403, "cross-site request refused",
                              {"origin": request.headers.get(hdrs.ORIGIN),
                               "sec_fetch_site": request.headers.get("Sec-Fetch-Site")})
        return await handler(request)

    return middleware


@web.middleware
async def checked_input(request: web.Request, handler):
    field = unstorable_text({**request.match_info, **{f"query.{k}": v for k, v in request.query.items()}})
    if field is not None:
        return _unstorable_answer(field)
    if request.method not in STATE_CHANGING:
        return await handler(request)
    typed = hdrs.CONTENT_TYPE in request.headers
    if (typed or request.body_exists) and request.path.startswith(JSON_ONLY_PREFIX) \
            and request.content_type != "application/json":
        return json_error(415, "body must be application/json",
                          {"content_type": request.headers.get(hdrs.CONTENT_TYPE)})
    if request.body_exists and request.content_type == "application/json":
        larger = request.app.get(BODY_LIMITS, {}).get(request.path)
        if larger:
            request = request.clone(client_max_size=larger)
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return json_error(413, f"body larger than {request.client_max_size} bytes")
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return json_error(400, "body must be JSON")
        field = unstorable_text(body)
        if field is not None:
            return _unstorable_answer(field)
        request[JSON_BODY] = body
    return await handler(request)


def _unstorable_answer(field: str) -> web.Response:
    return json_error(400, f"{field} holds NUL or a lone UTF-16 surrogate, which cannot be stored", {"field": field})


def secure_cookies(settings: Settings):
    @web.middleware
    async def middleware(request: web.Request, handler):
        response = await handler(request)
        if settings.cookie_secure == "true" or (
                settings.cookie_secure == "auto" and request_scheme(request, settings) == "https"):
            for morsel in response.cookies.values():
                morsel["secure"] = True
        return response

    return middleware


def middlewares(settings: Settings) -> list:
    """The edge middlewares, outermost first: refuse cross-site requests before reading their bodies."""
    return [secure_cookies(settings), origin_guard(settings), checked_input]


async def response_headers(request: web.Request, response: web.StreamResponse) -> None:
    """An `on_response_prepare` hook: the security headers on every response (errors and files included)."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
