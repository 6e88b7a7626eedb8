"""Median time from a client message to its review item, on a real server over HTTP (SQLite, no LLM).

Reference in the same run: the time for the same HTTP round trip that does no desk work (GET /api/health),
so the desk's own share is visible. Usage: .venv/bin/python benchmarks/bench_desk_latency.py [N]
"""
from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from otcdesk.app.auth import upsert_user  # noqa: E402
from otcdesk.app.db import init_db, make_engine  # noqa: E402
from otcdesk.app.server import create_app  # noqa: E402
from otcdesk.app.settings import load_settings  # noqa: E402

MESSAGES = ["@询价机器人 沪深300 1个月 平值看跌 1000万", "中证500 2周 平值看涨", "300、创业板 各来一个 2周和1个月的平值看跌",
            "@询价机器人 茅台 3个月 95%看跌 2000万", "科创50 雪球 两年 ko103 ki75 年化给多少"]


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(data_dir=Path(tmp), DATABASE_URL=None, review_ttl_s=3600)
        engine = make_engine(settings.db_url)
        init_db(engine)
        upsert_user(engine, "bench", "bench-password", "trader")
        engine.dispose()
        runner = web.AppRunner(create_app(settings, demo=True))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 18765).start()
        base = "http://127.0.0.1:18765"
        async with aiohttp.ClientSession(base_url=base, cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
            await s.post("/api/login", json={"username": "bench", "password": "bench-password"})
            health, desk = [], []
            for i in range(n):
                t0 = time.perf_counter()
                await (await s.get("/api/health")).json()
                health.append(time.perf_counter() - t0)
                before = len(await (await s.get("/api/review")).json())
                t0 = time.perf_counter()
                await s.post("/api/sim/groups/demo/messages", json={"sender": f"c{i}", "text": MESSAGES[i % len(MESSAGES)]})
                while len(await (await s.get("/api/review")).json()) == before:
                    await asyncio.sleep(0.002)
                desk.append(time.perf_counter() - t0)
        await runner.cleanup()
    ms = lambda xs: f"median {statistics.median(xs) * 1e3:7.1f} ms  p90 {sorted(xs)[int(0.9 * len(xs))] * 1e3:7.1f} ms"
    print(f"messages: {n} (mix of {len(MESSAGES)} shapes incl. multi-request and snowball coupon solve)")
    print(f"client message -> review item : {ms(desk)}")
    print(f"reference HTTP round trip     : {ms(health)}  (GET /api/health, same server)")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 40))
