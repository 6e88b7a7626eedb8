"""Routes: the WeCom (企业微信) callback URL, `bots.wecom.WeComChannel` (404 unless OTCDESK_WECOM_* are set).

- `GET  /wecom/callback?msg_signature&timestamp&nonce&echostr`  the platform checks the URL: the decrypted echostr
- `POST /wecom/callback?msg_signature&timestamp&nonce`  an encrypted XML message: stored through the inbound
  pipeline (which de-duplicates the platform's retries by MsgId), then acknowledged with an empty 200; the desk
  runs it afterwards, so the answer comes well within the platform's 5 s.

A request whose signature does not check out is refused (403) and audited as `security.wecom_refused`; nothing of
it is stored. The platform calls server to server without an `Origin` header, so the origin guard lets it through;
the route is outside /api/ (XML, not JSON) and reads at most `MAX_BODY` bytes.
"""
from __future__ import annotations

import asyncio

from aiohttp import web

from otcdesk.app.openapi import RequestModel, api

SIGNED = "the platform's msg_signature over timestamp, nonce and the payload (403 when it does not check out)"


class VerifyQuery(RequestModel):
    msg_signature: str
    timestamp: str
    nonce: str
    echostr: str


class CallbackQuery(RequestModel):
    msg_signature: str
    timestamp: str
    nonce: str

MAX_BODY = 64 * 1024  # a text message is at most a few KB encrypted


def register(router, *, demo: bool) -> None:
    from otcdesk.app.repositories import transaction
    from otcdesk.app.server import DESK, WECOM
    from otcdesk.bots.wecom import WeComBadRequest, WeComRefused

    def channel_of(request: web.Request):
        channel = request.app.get(WECOM)
        if channel is None:
            raise web.HTTPNotFound(text="WeCom channel not configured")
        return channel

    async def refused(request: web.Request, stage: str, why: Exception) -> web.Response:
        desk = request.app[DESK]
        desk.metrics.security_events.labels(kind="wecom_refused").inc()

        def audit():
            with transaction(desk.engine) as tx:
                tx.audit.record("wecom-callback", "security.wecom_refused", "channel:wecom",
                                {"stage": stage, "reason": str(why), "remote": request.remote})

        await asyncio.to_thread(audit)
        return web.Response(status=403, text="signature check failed")

    @api("WeCom URL verification: the decrypted echostr", query=VerifyQuery, content="text/plain",
         error_content="text/plain", auth=SIGNED, errors={403: "signature", 404: "WeCom not configured"})
    async def verify(request: web.Request) -> web.Response:
        channel, q = channel_of(request), request.query
        try:
            echo = channel.verify_url(q.get("msg_signature", ""), q.get("timestamp", ""), q.get("nonce", ""),
                                      q.get("echostr", ""))
        except WeComRefused as exc:
            return await refused(request, "verify", exc)
        return web.Response(text=echo)

    @api("A WeCom encrypted XML message (acknowledged empty)", query=CallbackQuery, content="text/plain",
         body_content="application/xml", error_content="text/plain", auth=SIGNED,
         errors={400: "malformed", 403: "signature", 404: "WeCom not configured", 413: "too large"})
    async def callback(request: web.Request) -> web.Response:
        channel, q = channel_of(request), request.query
        if (request.content_length or 0) > MAX_BODY:
            return web.Response(status=413, text=f"body larger than {MAX_BODY} bytes")
        try:
            body = await request.clone(client_max_size=MAX_BODY).read()
        except web.HTTPRequestEntityTooLarge:
            return web.Response(status=413, text=f"body larger than {MAX_BODY} bytes")
        try:
            inbound = channel.read_callback(body, q.get("msg_signature", ""), q.get("timestamp", ""),
                                            q.get("nonce", ""))
        except WeComRefused as exc:
            return await refused(request, "message", exc)
        except WeComBadRequest as exc:
            return web.Response(status=400, text=str(exc))
        if inbound is not None:
            await asyncio.to_thread(channel.deliver, inbound)  # the inbound pipeline stores it before we answer
        return web.Response(text="")

    router.add_get("/wecom/callback", verify)
    router.add_post("/wecom/callback", callback)
