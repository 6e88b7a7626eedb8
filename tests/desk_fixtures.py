"""Pytest plugin: real databases (SQLite in a temp dir, the local PostgreSQL server), the desk core without HTTP
(`make_desk_core`, `desk_core`), a real desk server in the test's process (`desk`) and `otcdesk serve` as an
operator runs it, in a process of its own (`ServeProcess`).

Every answer of a `RunningDesk` is checked against the app's own OpenAPI description (`answers_checked`): an
answer whose status, media type or JSON body the description does not allow fails the test when the server stops.

PostgreSQL: `OTCDESK_TEST_PG_URL` (default `postgresql+psycopg://127.0.0.1:5432/test`, trust auth). Each test gets
its own schema, dropped afterwards. Under CI=true an unreachable server fails the test instead of skipping it.
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web

from otcdesk.app import openapi
from otcdesk.app.auth import upsert_user
from otcdesk.app.db import init_db, make_engine
from otcdesk.app.demo import seed_demo
from otcdesk.app.repositories.sim import SqlSimTranscript
from otcdesk.app.settings import load_settings
from otcdesk.app.wiring import build_desk
from otcdesk.bots.simulator import SimulatorChannel

OTCDESK = str(Path(sys.executable).with_name("otcdesk"))
PG_URL = os.environ.get("OTCDESK_TEST_PG_URL", "postgresql+psycopg://127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TRADER = ("trader1", "trader-password-1")


def _pg_available() -> str | None:
    import psycopg

    try:
        psycopg.connect(PG_URL.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=3).close()
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


def require_postgres() -> None:
    reason = _pg_available()
    if reason:
        if IN_CI:
            pytest.fail(f"PostgreSQL at {PG_URL} is required under CI: {reason}")
        pytest.skip(f"PostgreSQL at {PG_URL} not reachable ({reason}); start it to run these tests")


@pytest.fixture
def pg_schema_url():
    """A DATABASE_URL pointing at a fresh schema of the local PostgreSQL `test` database."""
    require_postgres()
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    plain = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options={quote(f'-csearch_path={schema}')}"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgres"])
def db_settings(request, tmp_path):
    """Settings on a fresh database: a SQLite file in a temp dir, then a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return load_settings(data_dir=tmp_path, DATABASE_URL=None)
    url = request.getfixturevalue("pg_schema_url")
    return load_settings(data_dir=tmp_path, DATABASE_URL=url)


@pytest.fixture
def db_engine(db_settings):
    engine = make_engine(db_settings.db_url)
    init_db(engine)
    yield engine
    engine.dispose()


def desk_on(settings, built: list, **build_kw):
    """The desk core (`wiring.build_desk`) on `settings`' database, migrated, with the demo clients and the
    simulator connected; appended to `built` for the fixture to close."""
    engine = make_engine(settings.db_url)
    init_db(engine)
    seed_demo(engine)
    desk = build_desk(settings, engine, **build_kw)
    desk.connect(SimulatorChannel(SqlSimTranscript(engine), desk.inbound))
    built.append(desk)
    return desk


def close_desks(built: list) -> None:
    for desk in built:
        desk.close()
        desk.engine.dispose()


@pytest.fixture
def make_desk_core(tmp_path):
    """Build the desk core on a temp SQLite file (`desk_on`); settings overrides as keywords. Closed after the
    test."""
    built: list = []
    yield lambda **overrides: desk_on(load_settings(data_dir=tmp_path, DATABASE_URL=None, **overrides), built)
    close_desks(built)


@pytest.fixture
def desk_core(make_desk_core):
    return make_desk_core()


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-quic", "--no-first-run"]


@pytest.fixture
async def browser():
    if not os.path.exists(CHROMIUM):
        if IN_CI:
            pytest.fail("chromium is required under CI (scripts/setup_test_env.sh installs it)")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        await b.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers_checked(problems: list[str]):
    """A middleware (innermost) that appends to `problems` what is wrong with each answer of a described route
    against the app's OpenAPI description: a status it does not list, another media type, a JSON body that does
    not validate. Files and event streams are checked by the coverage test only (their bodies are streamed)."""

    def check(request: web.Request, resp) -> None:
        route = request.match_info.route
        if route.resource is None or isinstance(route.resource, web.StaticResource) or route.method == "HEAD":
            return
        path = openapi.path_of(route.resource)
        if openapi.operation_of(route.handler) is None:
            problems.append(f"{route.method} {path}: route has no @api description")
            return
        if not isinstance(resp, web.Response) or not isinstance(resp.body, (bytes, type(None))):
            return
        problems.extend(openapi.answer_problems(openapi.spec_of(request.app), route.method, path, resp.status,
                                                resp.content_type, resp.body or b""))

    @web.middleware
    async def middleware(request: web.Request, handler):
        try:
            resp = await handler(request)
        except web.HTTPException as exc:
            check(request, exc)
            raise
        check(request, resp)
        return resp

    return middleware


@dataclass
class RunningDesk:
    """A real otcdesk server on 127.0.0.1:<port>, restartable on the same data; its answers are checked against
    its OpenAPI description (`answers_checked`), the problems raised when it stops."""

    settings: object
    demo: bool = True
    port: int = field(default_factory=free_port)
    runner: web.AppRunner | None = None
    app: web.Application | None = None
    answer_problems: list = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> "RunningDesk":
        from otcdesk.app.server import create_app

        self.app = create_app(self.settings, demo=self.demo)
        self.app.middlewares.append(answers_checked(self.answer_problems))
        self.runner = web.AppRunner(self.app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
        if self.answer_problems:
            found, self.answer_problems[:] = list(self.answer_problems), []
            raise AssertionError("answers that the OpenAPI description does not allow:\n" + "\n".join(found))

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    def session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(base_url=self.url, cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def login(self, username: str = TRADER[0], password: str = TRADER[1]) -> aiohttp.ClientSession:
        s = self.session()
        r = await s.post("/api/login", json={"username": username, "password": password})
        assert r.status == 200, await r.text()
        return s

    async def say(self, text: str, sender: str = "张经理", group: str = "demo") -> str:
        async with self.session() as s:
            r = await s.post(f"/api/sim/groups/{group}/messages", json={"sender": sender, "text": text})
            assert r.status == 200, await r.text()
            return (await r.json())["message_id"]

    async def transcript(self, group: str = "demo") -> list[dict]:
        async with self.session() as s:
            return await (await s.get(f"/api/sim/groups/{group}/messages")).json()


def metric(scrape: str, name: str, **labels) -> float:
    """The value of sample `name` with `labels` in a `/metrics` scrape (0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(scrape):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


async def wait_for(predicate, timeout: float = 15.0, interval: float = 0.1):
    """Poll an async predicate until it returns something truthy (server work is asynchronous)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


def settings_with_users(tmp_path, users: dict[str, tuple[str, str]], **overrides):
    """SQLite settings in `tmp_path` (no DATABASE_URL) with the database made and `users` (role → (name,
    password)) in it."""
    settings = load_settings(data_dir=tmp_path, DATABASE_URL=None, **overrides)
    engine = make_engine(settings.db_url)
    init_db(engine)
    for role, (user, password) in users.items():
        upsert_user(engine, user, password, role=role)
    engine.dispose()
    return settings


@pytest.fixture
def desk_settings(tmp_path):
    return settings_with_users(tmp_path, {"trader": TRADER, "risk": ("risk1", "risk-password-1")})


@pytest.fixture
async def desk(desk_settings):
    running = await RunningDesk(desk_settings).start()
    yield running
    await running.stop()


def log_message(line: str) -> str:
    """The message of one line of the service's log: a JSON line's `message` (`app.logs`), a text line as it is."""
    try:
        doc = json.loads(line)
    except ValueError:
        return line
    return doc.get("message", line) if isinstance(doc, dict) else line


class ServeProcess:
    """`otcdesk serve [args]` on a free port over `data_dir` (SQLite, or `database_url`), its log (stderr) in
    `data_dir/serve.log`."""

    def __init__(self, data_dir: Path, *args: str, env: dict | None = None, database_url: str | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        self.log_path = Path(data_dir) / "serve.log"
        full_env = {**os.environ, "OTCDESK_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1", **(env or {})}
        full_env.pop("DATABASE_URL", None)
        if database_url:
            full_env["DATABASE_URL"] = database_url
        self._log = open(self.log_path, "a", encoding="utf-8")
        self._start = self._log.tell()
        self.proc = subprocess.Popen([OTCDESK, "serve", "--port", str(self.port), *args], env=full_env,
                                     stdout=subprocess.DEVNULL, stderr=self._log, text=True)

    def log_lines(self) -> list[str]:
        with open(self.log_path, encoding="utf-8") as f:
            f.seek(self._start)
            return f.read().splitlines()

    def wait_for_log(self, marker: str, timeout: float = 90) -> list[str]:
        """The log lines up to the first containing `marker` (this run's only)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            lines = self.log_lines()
            for i, line in enumerate(lines):
                if marker in line:
                    return lines[:i + 1]
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"{marker!r} not logged; got:\n" + "\n".join(self.log_lines()))

    def kill(self) -> None:
        """kill -9: no shutdown, no flush, as when the machine or the OOM killer stops it."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self._log.close()


class Watched:
    """A browser page in a context of its own, with CSP violations and script errors collected."""

    def __init__(self, page):
        self.page, self.problems = page, []
        page.on("console", lambda m: self.problems.append(m.text) if "Content Security Policy" in m.text else None)
        page.on("pageerror", lambda exc: self.problems.append(str(exc)))


async def logged_in_page(browser, desk, user: tuple[str, str]) -> Watched:
    """A `Watched` page of `user` (username, password) logged in to the console of `desk`."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    w = Watched(await context.new_page())
    await w.page.goto(f"{desk.url}/login")
    await w.page.fill("#username", user[0])
    await w.page.fill("#password", user[1])
    await w.page.click("button[type=submit]")
    await w.page.wait_for_url(f"{desk.url}/console")
    return w
