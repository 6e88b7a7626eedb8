"""The aiohttp server: JSON API of CONTRACTS.md, the trader console, the simulator, and the desk's workers.

Handlers only translate HTTP to calls on the desk (`app.wiring.Desk`), which `wiring.open_process` builds
when the app starts; the workers are the loops that drive it (inbound runs, outbox, expiry). What every request
passes first (cross-site refusal, body checks) and every response carries (security headers) is
`app.http_security`. Password checks run on the login guard's own bounded pool (`app.logins`) and session
lookups on a small pool of their own, so neither a login flood nor the desk's work makes the console wait.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor
from functools import partial, wraps
from pathlib import Path
from typing import Any

from aiohttp import web

from otcdesk.app import http_security, openapi
from otcdesk.app.api_models import AuditChain, ApproveSpec, Health, KbAnswer, KbAskSpec, KbCreated, KbCreateSpec, \
    KbUnmaskSpec, LoginResult, LoginSpec, Lockout, Me, Ok, RejectSpec, ReviewItem, ReviewQuery, SimMessage, \
    SimMessageSpec, SimPosted, UnlockSpec, Unmasked
from otcdesk.app.assistant import UnknownKnowledgeBase
from otcdesk.app.auth import AuthError, authenticate, close_session, open_session, session_user
from otcdesk.app.desk.reviews import MAX_PAGE
from otcdesk.app.events import EventBus, readable_kinds
from otcdesk.app.http_security import JSON_BODY, json_error
from otcdesk.app.leader import Leadership
from otcdesk.app.openapi import api
from otcdesk.app.logins import KINDS, LoginBusy, LoginGuard, LoginThrottle, LoginThrottled, ThrottlePolicy, \
    retry_after_header
from otcdesk.app.roles import ROLES
from otcdesk.app.routes import register_all
from otcdesk.app.settings import Settings
from otcdesk.app.wiring import Desk, open_process
from otcdesk.bots.simulator import SimulatorChannel
from otcdesk.workflows.review import ReviewError

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")
COOKIE = "otcdesk_session"
MAX_SIM_TEXT = 100_000
ERROR_STATUS = {"not_found": 404, "conflict": 409, "expired": 409, "invalid": 400}
STAFF_ROLES = ROLES

SETTINGS = web.AppKey("settings", Settings)
DESK = web.AppKey("desk", Desk)
SIM = web.AppKey("sim", SimulatorChannel)
BUS = web.AppKey("bus", EventBus)
DEMO = web.AppKey("demo", bool)
DEMO_LOGINS = web.AppKey("demo_logins", dict)
USER = web.RequestKey("user", object)
HUB = web.AppKey("hub", object)
ASSISTANT = web.AppKey("assistant", object)
WECOM = web.AppKey("wecom", object)  # bots.wecom.WeComChannel, only when configured
LOGINS = web.AppKey("logins", LoginGuard)
SESSIONS = web.AppKey("sessions", ThreadPoolExecutor)
LEADER = web.AppKey("leader", Leadership)  # whether this instance runs the single-instance jobs (app.leader)
SESSION_WORKERS = 4


@web.middleware
async def auth_middleware(request: web.Request, handler):
    desk = request.app.get(DESK)
    token = request.cookies.get(COOKIE)
    request[USER] = await _on_sessions(request.app, session_user, desk.engine, token) if (desk and token) else None
    return await handler(request)


def _on_sessions(app: web.Application, fn, *args):
    """Run a session lookup or change on the sessions' own pool (never behind logins or the desk)."""
    return asyncio.get_running_loop().run_in_executor(app[SESSIONS], partial(fn, *args))


def require(*roles: str):
    """401 without a session; 403 when the user's role is not one of `roles` (kept as `handler.roles` for the
    OpenAPI description)."""

    def deco(handler):
        @wraps(handler)
        async def wrapper(request: web.Request):
            user = request[USER]
            if user is None:
                return json_error(401, "login required")
            if roles and user.role not in roles:
                return json_error(403, f"role {user.role} may not do this", {"allowed": list(roles)})
            return await handler(request)

        wrapper.roles = roles
        return wrapper

    return deco


async def read_json(request: web.Request) -> dict:
    """The request's JSON object, parsed and checked at the edge (`http_security.checked_input`), then validated
    with the `body` model its handler declares (`@api`), the same model the OpenAPI description shows."""
    if JSON_BODY not in request:
        raise web.HTTPBadRequest(text='{"error": "body must be JSON", "detail": null}', content_type="application/json")
    body = request[JSON_BODY]
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text='{"error": "body must be a JSON object", "detail": null}',
                                 content_type="application/json")
    op = openapi.operation_of(request.match_info.handler)
    refusal = openapi.invalid_body(op, body) if op is not None else None
    if refusal is not None:
        raise refusal
    return body


def too_many(exc: LoginThrottled | LoginBusy, error: str) -> web.Response:
    resp = json_error(429, error, {"retry_after_s": round(exc.retry_after_s, 1)})
    resp.headers["Retry-After"] = retry_after_header(exc.retry_after_s)
    return resp


# ---- auth ---------------------------------------------------------------------------------
@api("Log in: a session cookie", body=LoginSpec, answer=LoginResult, invalid_status=400,
     errors={401: "wrong username or password", 429: "throttled (Retry-After)"})
async def login(request: web.Request) -> web.Response:
    """Throttled per username and client address; 429 with Retry-After while either must wait or the
    password pool is full."""
    body = await read_json(request)
    desk = request.app[DESK]
    username, password = str(body.get("username", "")), str(body.get("password", ""))
    try:
        user = await request.app[LOGINS].attempt(username, request.remote or "?",
                                                 partial(authenticate, desk.engine, username, password))
    except AuthError as exc:
        return json_error(401, str(exc))
    except LoginThrottled as exc:
        return too_many(exc, str(exc))
    except LoginBusy as exc:
        return too_many(exc, "too many logins at once; try again shortly")
    token = await _on_sessions(request.app, open_session, desk.engine, user.username,
                               request.app[SETTINGS].session_ttl_s)
    resp = web.json_response({"user": user.username, "role": user.role})
    resp.set_cookie(COOKIE, token, httponly=True, samesite="Strict", max_age=int(request.app[SETTINGS].session_ttl_s))
    return resp


@api("Log out: the session ends", answer=Ok)
async def logout(request: web.Request) -> web.Response:
    await _on_sessions(request.app, close_session, request.app[DESK].engine, request.cookies.get(COOKIE))
    resp = web.json_response({"ok": True})
    resp.del_cookie(COOKIE)
    return resp


@api("Who is logged in", answer=Me)
@require()
async def me(request: web.Request) -> web.Response:
    user = request[USER]
    return web.json_response({"user": user.username, "role": user.role, "demo": request.app[DEMO]})


# ---- admin --------------------------------------------------------------------------------
@api("Locked usernames and addresses", answer=list[Lockout])
@require("admin")
async def list_lockouts(request: web.Request) -> web.Response:
    """Usernames and client addresses locked after failed logins, soonest unlocked first."""
    return web.json_response(request.app[LOGINS].throttle.lockouts())


@api("Lift a lockout (audited)", body=UnlockSpec, answer=Lockout, invalid_status=400, errors={404: "not locked"})
@require("admin")
async def unlock(request: web.Request) -> web.Response:
    """`{"kind": "user" | "address", "key"}` → the lockout lifted (audited); 404 when that key is not locked."""
    body = await read_json(request)
    kind, key = body.get("kind"), body.get("key")
    if kind not in KINDS or not isinstance(key, str):
        return json_error(400, f"kind must be one of {', '.join(KINDS)} and key a string")
    lifted = await asyncio.to_thread(request.app[LOGINS].unlock, kind, key, request[USER].username)
    return web.json_response(lifted) if lifted else json_error(404, f"{kind} {key!r} is not locked")


# ---- review queue -------------------------------------------------------------------------
@api("A page of the review queue, newest first (X-Total-Count, Link rel=next)", query=ReviewQuery,
     answer=list[ReviewItem], errors={400: "bad limit or before"})
@require("trader")
async def list_reviews(request: web.Request) -> web.Response:
    """A page of the queue, newest first: `?status=&limit=&before=<id of the previous page's last item>`.
    `X-Total-Count` is the number of items in that status; `Link: <…>; rel="next"` is there while more follow."""
    q = request.query
    status = q.get("status") or None
    try:
        limit = int(q.get("limit") or 200)
    except ValueError:
        return json_error(400, f"limit must be an integer from 1 to {MAX_PAGE}")
    try:
        page = await asyncio.to_thread(request.app[DESK].reviews.page, status, limit, q.get("before") or None)
    except ReviewError as exc:
        return json_error(ERROR_STATUS.get(exc.code, 400), exc.message, {"code": exc.code})
    resp = web.json_response(page.items)
    resp.headers["X-Total-Count"] = str(page.total)
    if page.next_before:
        nxt = request.rel_url.update_query(limit=limit, before=page.next_before)
        resp.headers["Link"] = f'<{nxt}>; rel="next"'
    return resp


async def _decision(request: web.Request, action: str) -> web.Response:
    reviews, user = request.app[DESK].reviews, request[USER].username
    rid = request.match_info["id"]
    body = await read_json(request) if request.body_exists else {}
    try:
        if action == "approve":
            reply = body.get("reply")
            if reply is not None and not isinstance(reply, str):
                return json_error(400, "reply must be a string")
            item = await asyncio.to_thread(reviews.approve, rid, user, reply)
        elif action == "reject":
            item = await asyncio.to_thread(reviews.reject, rid, user, str(body.get("reason") or ""))
        else:
            item = await asyncio.to_thread(reviews.reprice, rid, user)
    except ReviewError as exc:
        return json_error(ERROR_STATUS.get(exc.code, 400), exc.message, {"code": exc.code, "id": rid})
    return web.json_response(item)


@api("Approve a review item (optionally with an edited reply)", body=ApproveSpec, answer=ReviewItem,
     invalid_status=400, errors={404: "no such item", 409: "decided or expired"})
@require("trader")
async def approve(request):
    return await _decision(request, "approve")


@api("Reject a review item", body=RejectSpec, answer=ReviewItem, invalid_status=400, errors={404: "no such item",
     409: "decided or expired"})
@require("trader")
async def reject(request):
    return await _decision(request, "reject")


@api("Reprice a review item on the current market", answer=ReviewItem, errors={404: "no such item",
     409: "decided or expired"})
@require("trader")
async def reprice(request):
    return await _decision(request, "reprice")


@api("Server-sent events of the kinds the role may read", content="text/event-stream")
@require(*STAFF_ROLES)
async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events of the kinds the user's role may read (`events.EVENT_READERS`)."""
    kinds = readable_kinds(request[USER].role, demo=request.app[DEMO])
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await resp.prepare(request)
    try:
        await resp.write(b": connected\n\n")
        async with contextlib.aclosing(request.app[BUS].subscribe(kinds)) as stream:
            async for chunk in stream:
                await resp.write(chunk.encode())
    except ConnectionResetError:  # the client went away: the normal end of a stream
        log.debug("event stream of %s closed by the client", request[USER].username)
    return resp


# ---- simulator ----------------------------------------------------------------------------
@api("Demo mode: a client speaks in a simulated group", body=SimMessageSpec, answer=SimPosted, invalid_status=400,
     errors={413: "text too long"})
async def sim_post(request: web.Request) -> web.Response:
    body = await read_json(request)
    sender, text = body.get("sender"), body.get("text")
    if not isinstance(sender, str) or not sender.strip() or len(sender) > 64:
        return json_error(400, "sender must be a non-empty string of at most 64 characters")
    if not isinstance(text, str):
        return json_error(400, "text must be a string")
    if len(text) > MAX_SIM_TEXT:
        return json_error(413, f"text longer than {MAX_SIM_TEXT} characters")
    group = request.match_info["group"]
    message_id = await asyncio.to_thread(request.app[SIM].post, group, sender.strip(), text)
    return web.json_response({"message_id": message_id})


@api("Demo mode: the group's transcript, oldest first", answer=list[SimMessage])
async def sim_get(request: web.Request) -> web.Response:
    return web.json_response(await asyncio.to_thread(request.app[SIM].transcript.messages, request.match_info["group"]))


# ---- knowledge (internal assistant) -------------------------------------------------------
@api("Create a knowledge base (audited)", body=KbCreateSpec, answer=KbCreated, status=201, invalid_status=400,
     errors={409: "exists"})
@require("admin")
async def kb_create(request: web.Request) -> web.Response:
    """`{"name"}` → 201 `{"kb", "created": true}` (audited); 409 when it exists. Staff only ask existing ones."""
    name = (await read_json(request)).get("name")
    if not isinstance(name, str):
        return json_error(400, "name must be a string")
    try:
        created = await asyncio.to_thread(request.app[HUB].create, name, request[USER].username)
    except ValueError as exc:
        return json_error(400, str(exc))
    if not created:
        return json_error(409, f"knowledge base {name!r} exists")
    return web.json_response({"kb": name, "created": True}, status=201)


@api("Ask a knowledge base", body=KbAskSpec, answer=KbAnswer, invalid_status=400,
     errors={404: "no such knowledge base"})
@require(*STAFF_ROLES)
async def kb_ask(request: web.Request) -> web.Response:
    body = await read_json(request)
    question, kb = body.get("question"), body.get("kb") or "default"
    if not isinstance(question, str) or not question.strip() or len(question) > 2000:
        return json_error(400, "question must be a non-empty string of at most 2000 characters")
    try:
        answer = await asyncio.to_thread(request.app[HUB].ask, str(kb), question.strip())
    except UnknownKnowledgeBase as exc:
        return json_error(404, str(exc))
    except ValueError as exc:
        return json_error(400, str(exc))
    return web.json_response(answer)


@api("One passage of a knowledge base", answer=dict[str, Any], errors={404: "no such passage"})
@require(*STAFF_ROLES)
async def kb_passage(request: web.Request) -> web.Response:
    try:
        passage = await asyncio.to_thread(request.app[HUB].passage, request.match_info["kb"],
                                          request.match_info["chunk_id"])
    except UnknownKnowledgeBase as exc:
        return json_error(404, str(exc))
    except ValueError as exc:
        return json_error(400, str(exc))
    return web.json_response(passage) if passage else json_error(404, "no such passage")


@api("Personal data of a passage in clear (compliance, admin; audited)", body=KbUnmaskSpec, answer=Unmasked,
     invalid_status=400)
@require(*STAFF_ROLES)
async def kb_unmask(request: web.Request) -> web.Response:
    """Compliance and admin see masked personal data of a passage; every attempt is audited."""
    from otcdesk.app.vault import UnmaskDenied

    body = await read_json(request)
    text, kb = body.get("text"), body.get("kb") or "default"
    if not isinstance(text, str) or len(text) > 20_000:
        return json_error(400, "text must be a string of at most 20000 characters")
    user = request[USER]
    try:
        original = await asyncio.to_thread(request.app[HUB].unmask, str(kb), text, user.role, user.username)
    except UnmaskDenied as exc:
        return json_error(403, str(exc))
    return web.json_response({"text": original})


# ---- audit log ----------------------------------------------------------------------------
@api("The audit chain's state", answer=AuditChain)
@require("compliance", "admin")
async def audit_verify(request: web.Request) -> web.Response:
    """The audit chain's state, the document `otcdesk audit verify` prints."""
    from otcdesk.app.repositories.audit import verify_chain

    return web.json_response(await asyncio.to_thread(verify_chain, request.app[DESK].engine))


# ---- pages --------------------------------------------------------------------------------
PUBLIC_PAGES = frozenset({"login", "apply"})  # `apply`: the invited client's form, its token in the link's fragment


@api("A console page (HTML); a page behind login redirects to /login", content="text/html",
     error_content="text/plain", errors={302: "to /login", 404: "the simulator outside demo mode"})
async def page(request: web.Request) -> web.StreamResponse:
    name = request.match_info.get("page") or "console"
    if name == "sim" and not request.app[DEMO]:
        raise web.HTTPNotFound()
    if name not in PUBLIC_PAGES and request[USER] is None:
        raise web.HTTPFound("/login")
    return web.FileResponse(STATIC / f"{name}.html")


@api("Redirect to the console", status=302, content="")
async def root(request: web.Request) -> web.Response:
    raise web.HTTPFound("/console")


@api("Liveness", answer=Health)
async def health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True, "demo": request.app[DEMO]})


# ---- workers ------------------------------------------------------------------------------
async def _inbound_worker(app: web.Application) -> None:
    desk, bus = app[DESK], app[BUS]
    while True:
        wait = None
        try:
            wait = await asyncio.to_thread(desk.run_inbound)
        except Exception:  # the message is queued again (and stored as received): a later pass retries it
            log.exception("inbound run failed")
        with contextlib.suppress(asyncio.TimeoutError):
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow the worker's cancellation at shutdown
            async with asyncio.timeout(2.0 if wait is None else min(2.0, wait)):
                await bus.wakeups["inbound"].wait()
        bus.wakeups["inbound"].clear()


async def _outbox_worker(app: web.Application) -> None:
    """Delivers while this instance leads (`app.leader`); a standby's worker only waits."""
    desk, bus, leader = app[DESK], app[BUS], app[LEADER]
    while True:
        try:
            if leader.leading:
                await desk.outbox.dispatch()
        except Exception:
            log.exception("outbox dispatch failed")
        with contextlib.suppress(asyncio.TimeoutError):
            async with asyncio.timeout(1.0):
                await bus.wakeups["outbox"].wait()
        bus.wakeups["outbox"].clear()


async def _expiry_worker(app: web.Application) -> None:
    desk = app[DESK]
    while True:
        try:
            await asyncio.to_thread(desk.reviews.expire_due)
        except Exception:
            log.exception("expiry sweep failed")
        await asyncio.sleep(1.0)


async def _market_worker(app: web.Application) -> None:
    """Demo mode: a simulated market tick every `market_tick_s` seconds (`MarketDataService.tick`)."""
    desk, period = app[DESK], app[SETTINGS].market_tick_s
    while True:
        await asyncio.sleep(period)
        try:
            await asyncio.to_thread(desk.market.tick)
        except Exception:
            log.exception("market tick failed")


def _single_instance_jobs(settings: Settings, desk: Desk, leading: bool) -> None:
    """`Leadership.on_change`: the leader runs the risk book's scheduled revaluation (on APScheduler's thread,
    never the event loop) and delivers the outbox (`_outbox_worker` asks `leading`); a standby neither."""
    if not leading:
        desk.risk.stop_schedule()
        return
    if settings.risk_refresh_s > 0:
        desk.risk.start(settings.risk_refresh_s)
    desk.events.wake("outbox")


def _login_guard(settings: Settings, engine) -> LoginGuard:
    def policy(lockout_failures: int) -> ThrottlePolicy:
        return ThrottlePolicy(free_failures=lockout_failures // 3, lockout_failures=lockout_failures,
                              window_s=settings.login_lockout_s, lockout_s=settings.login_lockout_s)

    throttle = LoginThrottle(user=policy(settings.login_lockout_failures),
                             address=policy(settings.login_address_lockout_failures))
    return LoginGuard(engine, throttle, workers=settings.login_workers, queue=settings.login_queue)


async def _desk_context(app: web.Application):
    bus = EventBus()
    bus.bind(asyncio.get_running_loop())
    process = await open_process(app[SETTINGS], bus, demo=app[DEMO])
    app[BUS], app[SIM], app[DESK], app[HUB] = bus, process.sim, process.desk, process.hub
    app[ASSISTANT] = process.assistant
    if process.wecom is not None:
        app[WECOM] = process.wecom
    app[LOGINS] = _login_guard(app[SETTINGS], process.desk.engine)
    app[SESSIONS] = ThreadPoolExecutor(max_workers=SESSION_WORKERS, thread_name_prefix="session")
    app[DEMO_LOGINS] = process.demo_logins
    leader = app[LEADER] = Leadership.for_settings(app[SETTINGS], partial(_single_instance_jobs, app[SETTINGS],
                                                                          process.desk),
                                                   gauge=process.desk.metrics.leader)
    if not await asyncio.to_thread(leader.check):
        log.info("leader: another instance holds the lock; this one stands by (trying every %.0f s)",
                 leader.retry_s)
    tasks = [asyncio.create_task(w(app)) for w in (_inbound_worker, _outbox_worker, _expiry_worker)]
    tasks.append(asyncio.create_task(leader.run()))
    if app[DEMO] and app[SETTINGS].market_tick_s > 0:
        tasks.append(asyncio.create_task(_market_worker(app)))
    if process.wechat is not None:  # only once the desk can take its messages
        tasks.append(asyncio.create_task(process.wechat.run()))  # reconnects with back-off
        log.info("wechaty channel starting (endpoint %s)",
                 app[SETTINGS].wechaty_puppet_service_endpoint or "looked up by token")
    yield
    for t in tasks:
        t.cancel()
    for t in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await t
    await asyncio.to_thread(leader.close)  # hands the lock on now rather than when the connection drops
    await asyncio.to_thread(process.desk.risk.stop)  # a refresh in progress finishes and is stored first
    if process.wecom is not None:
        await process.wecom.close()
    app[LOGINS].close()
    app[SESSIONS].shutdown(wait=False, cancel_futures=True)
    await asyncio.to_thread(process.close)


async def _end_event_streams(app: web.Application) -> None:
    if BUS in app:
        app[BUS].close()


def create_app(settings: Settings, *, demo: bool = False) -> web.Application:
    """Build the web application; the desk and its workers start with the app and stop with it."""
    app = web.Application(middlewares=[*http_security.middlewares(settings), auth_middleware],
                          client_max_size=1024 * 1024)
    # a KYC document travels as base64 in a JSON body: room for kyc_upload_max_bytes of it on that route only
    # (the service checks the decoded size itself)
    app[http_security.BODY_LIMITS] = {
        "/api/kyc/documents": max(1024 * 1024, (settings.kyc_upload_max_bytes * 4) // 3 + 64 * 1024)}
    app.on_response_prepare.append(http_security.response_headers)
    app[SETTINGS] = settings
    app[DEMO] = demo
    app[openapi.SPEC] = {}
    app.cleanup_ctx.append(_desk_context)
    app.on_shutdown.append(_end_event_streams)
    r = app.router
    r.add_get("/", root)
    r.add_get("/api/health", health)
    r.add_get("/api/openapi.json", openapi.openapi_json)
    r.add_post("/api/login", login)
    r.add_post("/api/logout", logout)
    r.add_get("/api/me", me)
    r.add_get("/api/admin/lockouts", list_lockouts)
    r.add_post("/api/admin/lockouts/unlock", unlock)
    r.add_get("/api/review", list_reviews)
    r.add_post("/api/review/{id}/approve", approve)
    r.add_post("/api/review/{id}/reject", reject)
    r.add_post("/api/review/{id}/reprice", reprice)
    r.add_get("/api/events", events)
    if demo:
        r.add_post("/api/sim/groups/{group}/messages", sim_post)
        r.add_get("/api/sim/groups/{group}/messages", sim_get)
    r.add_post("/api/kb", kb_create)
    r.add_post("/api/kb/ask", kb_ask)
    r.add_get("/api/kb/{kb}/passages/{chunk_id}", kb_passage)
    r.add_post("/api/kb/unmask", kb_unmask)
    r.add_get("/api/audit/verify", audit_verify)
    register_all(r, demo=demo)
    r.add_get("/{page:login|console|sim|assistant|audit|trades|book|approvals|apply|onboarding|kyc|surveillance|templates|"
              "channels}", page)
    r.add_static("/static", STATIC)
    return app
