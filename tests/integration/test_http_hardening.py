"""The HTTP edge on the real server: cross-site requests and non-JSON bodies refused without effect, the event
stream scoped by role, text no database stores refused at the edge, security headers and cookies, quiet
event-stream disconnects, and a fuzz of every public endpoint (no 5xx, no state change on refusal)."""
import asyncio
import itertools
import json
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator
from urllib.parse import quote

import pytest
import requests
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from sqlmodel import select

from desk_fixtures import TRADER, RunningDesk, wait_for
from otcdesk.app.auth import open_session, upsert_user
from otcdesk.app.db import init_db, make_engine, unit_of_work
from otcdesk.app.models import OutboxMessage
from otcdesk.app.repositories import transaction
from otcdesk.app.server import BUS, COOKIE
from otcdesk.app.settings import load_settings

QUOTE = "@询价机器人 沪深300 1个月 平值看跌 1000万"
EVIL = "https://evil.example"
STAFF = {"trader": TRADER, "risk": ("risk1", "risk-password-1"), "sales": ("sales1", "sales-password-1"),
         "compliance": ("comp1", "comp-password-1"), "admin": ("admin1", "admin-password-1")}


async def _pending(session) -> list[dict]:
    r = await session.get("/api/review?status=pending")
    assert r.status == 200
    return await r.json()


async def _one_pending(session) -> dict:
    [item] = await wait_for(lambda: _pending(session))
    return item


def _count_outbox(engine) -> int:
    with unit_of_work(engine) as s:
        return len(list(s.exec(select(OutboxMessage))))


def _outbox_rows(settings) -> int:
    engine = make_engine(settings.db_url)
    try:
        return _count_outbox(engine)
    finally:
        engine.dispose()


# ---- 2. cross-site requests and non-JSON bodies ----------------------------------------------
async def test_cross_site_or_non_json_decisions_are_refused_and_change_nothing(desk):
    async with await desk.login() as trader:
        await desk.say(QUOTE)
        item = await _one_pending(trader)
        url, edited = f"/api/review/{item['id']}/approve", {"reply": "改价：期权费 0.01%"}
        refused = [
            (403, dict(json=edited, headers={"Origin": EVIL})),
            (403, dict(json=edited, headers={"Origin": "null"})),
            (403, dict(json=edited, headers={"Sec-Fetch-Site": "cross-site"})),
            (403, dict(json=edited, headers={"Sec-Fetch-Site": "same-site"})),
            (415, dict(data=json.dumps(edited), headers={"Content-Type": "text/plain"})),
            (415, dict(data=b"", headers={"Content-Type": "application/x-www-form-urlencoded"})),  # an empty form
            (415, dict(data=json.dumps(edited).encode())),  # application/octet-stream
        ]
        for status, kwargs in refused:
            r = await trader.post(url, **kwargs)
            assert r.status == status, (kwargs, await r.text())
            assert (await r.json())["error"]
        await asyncio.sleep(1.0)  # time for the outbox worker to (wrongly) send
        assert [i["id"] for i in await _pending(trader)] == [item["id"]]
        assert _outbox_rows(desk.settings) == 0
        assert [m for m in await desk.transcript() if m["from_bot"]] == []

        r = await trader.post(url, json=edited, headers={"Origin": desk.url, "Sec-Fetch-Site": "same-origin"})
        assert r.status == 200, await r.text()
        assert _outbox_rows(desk.settings) == 1


async def test_same_origin_configured_origins_and_scripts_pass(desk):
    body = {"username": TRADER[0], "password": TRADER[1]}
    async with desk.session() as s:
        assert (await s.post("/api/login", json=body)).status == 200  # no Origin, no Sec-Fetch-Site: a script
        assert (await s.post("/api/login", json=body, headers={"Origin": desk.url})).status == 200
        assert (await s.post("/api/login", json=body, headers={"Sec-Fetch-Site": "same-origin"})).status == 200
        assert (await s.post("/api/login", json=body, headers={"Origin": "https://console.example"})).status == 403
        desk.settings.allowed_origins = ("https://console.example",)  # read per request
        assert (await s.post("/api/login", json=body, headers={"Origin": "https://console.example:443"})).status == 200
        assert (await s.post("/api/login", json=body, headers={"Origin": EVIL})).status == 403
        # behind a TLS proxy: its forwarded scheme and host count only when it is trusted
        proxied = {"Origin": "https://desk.example", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "desk.example"}
        assert (await s.post("/api/login", json=body, headers=proxied)).status == 403
        desk.settings.trusted_proxies = ("127.0.0.1",)
        assert (await s.post("/api/login", json=body, headers=proxied)).status == 200
        assert (await s.get("/api/health", headers={"Origin": EVIL})).status == 200  # reads are not refused


# ---- 4. the event stream, scoped by role -------------------------------------------------------
class EventStream:
    """A real server-sent-events client over `GET /api/events`."""

    def __init__(self, resp):
        self.resp = resp
        self.seen: list[tuple[str, dict]] = []

    @classmethod
    async def open(cls, session) -> "EventStream":
        resp = await session.get("/api/events")
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
        assert await asyncio.wait_for(resp.content.readline(), 10) == b": connected\n"
        return cls(resp)

    async def next(self, timeout: float = 20.0) -> tuple[str, dict]:
        """The next event as (kind, data); comment lines (keep-alives) are skipped."""
        kind, data = None, None
        while True:
            line = (await asyncio.wait_for(self.resp.content.readline(), timeout)).decode().rstrip("\n")
            if line.startswith("event: "):
                kind = line[len("event: "):]
            elif line.startswith("data: "):
                data = json.loads(line[len("data: "):])
            elif line == "" and kind is not None:
                return kind, data

    async def until(self, kind: str, count: int) -> list[tuple[str, dict]]:
        """Every event since the stream opened, up to and including the `count`-th of `kind`."""
        while sum(k == kind for k, _ in self.seen) < count:
            self.seen.append(await self.next())
        return self.seen


@pytest.fixture
def staff_settings(desk_settings):
    engine = make_engine(desk_settings.db_url)
    for role in ("sales", "compliance", "admin"):
        upsert_user(engine, *STAFF[role], role=role)
    engine.dispose()
    return desk_settings


async def test_each_role_streams_only_what_it_may_read(staff_settings):
    desk = await RunningDesk(staff_settings).start()
    sessions = {}
    try:
        for role, (user, password) in STAFF.items():
            sessions[role] = await desk.login(user, password)
            assert (await sessions[role].get("/api/review")).status == (200 if role == "trader" else 403)
        streams = {role: await EventStream.open(s) for role, s in sessions.items()}
        desk.app[BUS].publish("unlisted", {"secret": "an event kind nobody was granted"})
        await desk.say(QUOTE, sender="王总监")
        _, item = next(e for e in await streams["trader"].until("review", 1) if e[0] == "review")
        assert item["sender"] == "王总监" and item["status"] == "pending" and item["draft_reply"]
        assert (await sessions["trader"].post(f"/api/review/{item['id']}/approve", json={})).status == 200
        for role, stream in streams.items():  # the client's message, then the bot's reply
            events = await stream.until("sim", 2)
            kinds = {k for k, _ in events}
            assert kinds == ({"sim", "review"} if role == "trader" else {"sim"}), (role, events)
            assert all(data == {"group": "demo"} for k, data in events if k == "sim")
    finally:
        for s in sessions.values():
            await s.close()
        await desk.stop()


async def test_simulator_events_stay_in_demo_mode(desk_settings):
    desk = await RunningDesk(desk_settings, demo=False).start()
    try:
        async with await desk.login() as trader:
            stream = await EventStream.open(trader)
            desk.app[BUS].publish("sim", {"group": "demo"})
            desk.app[BUS].publish("review", {"id": "marker"})
            assert await stream.next() == ("review", {"id": "marker"})
    finally:
        await desk.stop()


async def test_a_client_leaving_the_event_stream_is_no_error(desk, caplog):
    caplog.set_level(logging.INFO)
    bus = desk.app[BUS]
    trader = await desk.login()
    stream = await EventStream.open(trader)
    assert bus.subscribers == 1
    stream.resp.close()  # drop the connection mid-stream
    await trader.close()

    async def unsubscribed():
        bus.publish("review", {"id": "after the client left"})
        await asyncio.sleep(0.05)
        return bus.subscribers == 0

    await wait_for(unsubscribed)
    await asyncio.sleep(0.3)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


# ---- 6. text no database stores, bodies over the limit -----------------------------------------
@pytest.mark.parametrize("bad", ["\ud800", "a\udfffb", "nul\x00"])
async def test_unstorable_text_is_refused_naming_the_field(desk, bad):
    async with await desk.login() as trader:
        await desk.say(QUOTE)
        item = await _one_pending(trader)
        before = await desk.transcript()
        cases = [
            ("/api/login", {"username": bad, "password": "x" * 10}, "username"),
            ("/api/login", {"username": TRADER[0], "password": bad}, "password"),
            ("/api/sim/groups/demo/messages", {"sender": "张经理", "text": bad}, "text"),
            ("/api/sim/groups/demo/messages", {"sender": bad, "text": QUOTE}, "sender"),
            (f"/api/review/{item['id']}/approve", {"reply": bad}, "reply"),
            (f"/api/review/{item['id']}/reject", {"reason": bad}, "reason"),
            ("/api/kb/ask", {"question": bad}, "question"),
            ("/api/kb/unmask", {"text": bad}, "text"),
            ("/api/kb/ask", {"question": "雪球", "extra": {"deep": [1, {bad: 2}]}}, "extra.deep[1]." + ascii(bad)),
        ]
        if "\x00" in bad:  # a surrogate cannot travel in a URL: percent-encoded it is invalid UTF-8, not a surrogate
            cases.append((f"/api/sim/groups/{quote(bad, safe='')}/messages", {"sender": "a", "text": "b"}, "group"))
        for path, body, field in cases:
            r = await trader.post(path, json=body)  # \ud800 travels as the JSON escape, valid UTF-8
            answer = await r.json()
            assert (r.status, answer["detail"]) == (400, {"field": field}), (path, answer)
            assert field in answer["error"]
        assert [i["id"] for i in await _pending(trader)] == [item["id"]]
        assert await desk.transcript() == before and _outbox_rows(desk.settings) == 0


async def test_unstorable_text_is_refused_on_postgresql(tmp_path, pg_schema_url):
    settings = load_settings(data_dir=tmp_path, DATABASE_URL=pg_schema_url)
    engine = make_engine(settings.db_url)
    init_db(engine)
    upsert_user(engine, *TRADER, role="trader")
    engine.dispose()
    desk = await RunningDesk(settings).start()
    try:
        async with desk.session() as s:
            for bad in ("\x00", "\ud800"):
                r = await s.post("/api/sim/groups/demo/messages", json={"sender": "张经理", "text": f"a{bad}b"})
                assert r.status == 400
                r = await s.post("/api/login", json={"username": f"trader1{bad}", "password": "x" * 10})
                assert r.status == 400
            assert await desk.transcript() == []
    finally:
        await desk.stop()


async def test_a_body_over_the_limit_answers_413(desk):
    async with desk.session() as s:
        big = json.dumps({"sender": "a", "text": "x" * (1024 * 1024)})
        r = await s.post("/api/sim/groups/demo/messages", data=big, headers={"Content-Type": "application/json"})
        assert r.status == 413 and "larger than" in (await r.json())["error"]
    assert await desk.transcript() == []


# ---- 9. headers and cookies --------------------------------------------------------------------
async def test_every_answer_carries_the_security_headers(desk):
    async with await desk.login() as trader:
        for path in ("/login", "/console", "/sim", "/assistant", "/api/health", "/api/me", "/static/console.js",
                     "/api/review/nope/approve", "/no-such-page"):
            r = await (trader.post(path, json={}) if "approve" in path else trader.get(path))
            csp = r.headers.get("Content-Security-Policy", "")
            assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp
            assert r.headers["X-Content-Type-Options"] == "nosniff" and r.headers["Referrer-Policy"], path


async def test_console_pages_hold_no_inline_code_or_style(desk):
    async with await desk.login() as trader:
        for page in ("login", "console", "sim", "assistant"):
            html = await (await trader.get(f"/{page}")).text()
            assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == [], page
            assert re.findall(r"\son[a-z]+\s*=", html) == [] and " style=" not in html, page
            for src in re.findall(r'<script src="([^"]+)"', html):
                js = await (await trader.get(src)).text()
                assert "style=" not in js and not re.search(r"\son[a-z]+=", js), src


async def _session_cookie(desk, headers=None) -> str:
    async with desk.session() as s:
        r = await s.post("/api/login", json={"username": TRADER[0], "password": TRADER[1]}, headers=headers)
        assert r.status == 200
        [cookie] = [c for c in r.headers.getall("Set-Cookie") if c.startswith(f"{COOKIE}=")]
        return cookie.lower()


async def test_session_cookie_is_secure_over_https(desk):
    https = {"X-Forwarded-Proto": "https"}
    plain = await _session_cookie(desk)
    assert "httponly" in plain and "samesite=strict" in plain and "secure" not in plain.replace("samesite", "")
    assert "; secure" not in await _session_cookie(desk, https)  # an untrusted client's claim
    desk.settings.trusted_proxies = ("127.0.0.1",)  # read per request
    assert "; secure" in await _session_cookie(desk, https)
    assert "; secure" not in await _session_cookie(desk)
    desk.settings.cookie_secure = "true"
    assert "; secure" in await _session_cookie(desk)
    desk.settings.trusted_proxies, desk.settings.cookie_secure = (), "false"
    assert "; secure" not in await _session_cookie(desk, https)


def test_cookie_and_origin_settings_read_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("OTCDESK_COOKIE_SECURE", "TRUE")
    monkeypatch.setenv("OTCDESK_ALLOWED_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("OTCDESK_TRUSTED_PROXIES", "10.0.0.1")
    s = load_settings(data_dir=tmp_path)
    assert (s.cookie_secure, s.allowed_origins, s.trusted_proxies) == \
        ("true", ("https://a.example", "https://b.example"), ("10.0.0.1",))
    assert load_settings(data_dir=tmp_path, cookie_secure="auto").cookie_secure == "auto"


# ---- fuzz: every public endpoint of the real server -------------------------------------------
@dataclass
class LiveDesk:
    """A real server on its own event loop in a thread, for synchronous (hypothesis) clients."""

    desk: RunningDesk
    engine: object
    item: str | None = None  # the pending quote the review fuzz decides on
    senders: Iterator[str] = field(default_factory=lambda: (f"客户{n}" for n in itertools.count()))

    @property
    def url(self) -> str:
        return self.desk.url

    def session(self, user: str | None = None) -> requests.Session:
        """A client; logged in as `user` through a real session (no password hashing per example)."""
        s = requests.Session()
        if user:
            s.cookies.set(COOKIE, open_session(self.engine, user, 3600.0))
        return s

    def review_status(self, rid: str) -> str:
        with transaction(self.engine) as tx:
            return tx.reviews.get(rid).status

    def outbox_rows(self) -> int:
        return _count_outbox(self.engine)

    def pending_item(self) -> str:
        """The review fuzz's pending quote; a new one (a new client in the `demo` group) once it was decided."""
        if self.item is not None and self.review_status(self.item) == "pending":
            return self.item
        sender = next(self.senders)
        r = requests.post(f"{self.url}/api/sim/groups/demo/messages", json={"sender": sender, "text": QUOTE},
                          timeout=60)
        assert r.status_code == 200
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with transaction(self.engine) as tx:
                opened = [i.id for i in tx.reviews.in_status("pending") if i.sender_name == sender]
            if opened:
                self.item = opened[0]
                return self.item
            time.sleep(0.05)
        raise AssertionError(f"no review item for {sender} within 30 s")


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    settings = load_settings(data_dir=tmp_path_factory.mktemp("fuzz"), DATABASE_URL=None, review_ttl_s=3600.0,
                             inbound_rate_limit=0)
    engine = make_engine(settings.db_url)
    init_db(engine)
    upsert_user(engine, *TRADER, role="trader")
    upsert_user(engine, *STAFF["compliance"], role="compliance")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    desk = RunningDesk(settings)
    asyncio.run_coroutine_threadsafe(desk.start(), loop).result(300)
    yield LiveDesk(desk, engine)
    asyncio.run_coroutine_threadsafe(desk.stop(), loop).result(120)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(30)
    loop.close()
    engine.dispose()


FUZZ = hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# The server's worker threads (in this process) may use `random` while hypothesis draws an example.
in_process_server = pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
ODD = ["\ud800", "\udfff", "\x00", "\x1b[31m", "\u202e", "\u200f", "\u2066", "\ufeff", "\r\n", "e\u0301", "😀",
       "\U0010ffff", "'; DROP TABLE review_item;--", "<script>alert(1)</script>", "../../etc/passwd", "%00", "{}"]
odd_texts = st.lists(st.sampled_from(ODD) | st.text(max_size=4), min_size=1, max_size=6).map("".join)
texts = st.one_of(
    odd_texts, odd_texts,
    st.text(st.characters(), max_size=40),  # any code point: surrogates and control characters included
    st.builds(lambda c, n: c * n, st.sampled_from(["a", "看", "😀", "\u202e", "\ud800"]), st.integers(0, 200_000)),
)
scalars = st.none() | st.booleans() | st.integers() | st.floats() | texts


def _containers(inner):
    return st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4)


json_values = st.recursive(scalars, _containers, max_leaves=8)
CONTENT_TYPES = ["application/json", "application/json; charset=utf-8", "text/plain",
                 "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None]


def _encoded(value, ascii_only: bool = True) -> bytes:
    """JSON bytes; without `ascii_only` a lone surrogate is written raw, which is not UTF-8."""
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


def bodies(fields: dict):
    """(content type, bytes or None), mostly endpoint-shaped objects as valid JSON; also any JSON value, invalid
    UTF-8, raw bytes under any content type, and no body."""
    shaped = st.fixed_dictionaries({}, optional={k: v | json_values for k, v in fields.items()}).map(_encoded)
    anything = st.builds(_encoded, json_values, st.booleans())
    return st.one_of(
        st.tuples(st.just("application/json"), shaped), st.tuples(st.just("application/json"), shaped),
        st.tuples(st.just("application/json"), anything),
        st.tuples(st.sampled_from(CONTENT_TYPES), shaped | anything | st.binary(max_size=200)),
        st.just((None, None)),
    )


def post(session: requests.Session, url: str, body) -> requests.Response:
    content_type, data = body
    headers = {"Content-Type": content_type} if content_type else {}
    r = session.post(url, data=data, headers=headers, timeout=60)
    assert r.status_code < 500, (url, body, r.text[:300])
    if r.ok:  # only a JSON body, or none, is ever taken
        assert data is None or (content_type or "").startswith("application/json"), (url, body)
    return r


def path_part(value: str) -> str:
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


@in_process_server
@hsettings(FUZZ, max_examples=60)  # each object body costs an argon2 verification
@given(body=bodies({"username": st.sampled_from([TRADER[0], "admin", ""]) | texts,
                    "password": st.sampled_from([TRADER[1], ""]) | texts}))
def test_fuzz_login(live, body):
    with live.session() as s:
        r = post(s, f"{live.url}/api/login", body)
        if r.status_code == 200:
            sent = json.loads(body[1])
            assert (sent["username"], sent["password"]) == TRADER
        else:
            assert COOKIE not in r.cookies


@in_process_server
@FUZZ
@given(group=st.builds("fuzz{}".format, st.uuids()) | st.just("prospect") | texts.filter(lambda g: g != "demo"),
       body=bodies({"sender": st.sampled_from(["张经理", " "]) | texts, "text": st.sampled_from([QUOTE]) | texts}))
def test_fuzz_simulator_post(live, group, body):
    with live.session() as s:
        url = f"{live.url}/api/sim/groups/{path_part(group)}/messages"
        seen = s.get(url, timeout=60)
        assert seen.status_code < 500
        r = post(s, url, body)
        if seen.status_code == 200:
            grew = len(s.get(url, timeout=60).json()) - len(seen.json())
            assert grew == (1 if r.status_code == 200 else 0), (r.status_code, r.text[:200])


@in_process_server
@FUZZ
@given(action=st.sampled_from(["approve", "reject", "reprice"]), other_id=st.none() | texts,
       body=bodies({"reply": st.sampled_from(["改价：期权费 2%", ""]) | texts,
                    "reason": st.sampled_from(["波动率要调整", " "]) | texts}))
def test_fuzz_review_decisions(live, action, other_id, body):
    item = live.pending_item()
    rid = item if other_id is None else other_id
    outbox = live.outbox_rows()
    with live.session(TRADER[0]) as s:
        r = post(s, f"{live.url}/api/review/{path_part(rid)}/{action}", body)
    if r.status_code == 200:
        assert action != "reprice" and rid == item  # a pending item cannot be repriced
        assert live.review_status(item) in ("approved", "sent", "rejected")
    else:
        assert live.review_status(item) == "pending"
        assert live.outbox_rows() == outbox


@in_process_server
@FUZZ
@given(endpoint=st.sampled_from(["ask", "unmask", "passage", "logout"]),
       kb=st.sampled_from(["default", "../default", "a/b", ""]) | texts, chunk=texts,
       body=bodies({"question": st.sampled_from(["雪球的敲入是怎么观察的？"]) | texts,
                    "text": st.sampled_from(["[PHONE_0000]"]) | texts, "kb": st.sampled_from(["default"]) | texts}))
def test_fuzz_knowledge_and_logout(live, endpoint, kb, chunk, body):
    user = TRADER[0] if endpoint in ("ask", "passage") else STAFF["compliance"][0]
    with live.session(user) as s:
        if endpoint == "passage":
            r = s.get(f"{live.url}/api/kb/{path_part(kb)}/passages/{path_part(chunk)}", timeout=60)
            assert r.status_code < 500, (kb, chunk, r.text[:300])
            return
        r = post(s, f"{live.url}/api/{'logout' if endpoint == 'logout' else 'kb/' + endpoint}", body)
        if endpoint == "logout":  # refused: the session stays open; accepted: it is closed
            assert s.get(f"{live.url}/api/me", timeout=60).status_code == (401 if r.status_code == 200 else 200)
