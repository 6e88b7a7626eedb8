"""The trader's review-list latency while the login endpoint is flooded, beside the same latency idle.

`otcdesk serve` runs in its own process (SQLite, no LLM, 50 pending review items); a trader polls
`GET /api/review?status=pending` every 50 ms while N clients post wrong passwords as fast as they are
answered: (a) nobody, (b) ever-new usernames with the address throttle off, so only the bounded password
pool holds them back, (c) one account from one address, the throttle's case. Printed per scenario: review
p50 / p95 / max, and the login attempts answered, verified (argon2 ran: 401) and refused at once (429) per second.
Usage: .venv/bin/python benchmarks/bench_login_flood.py [CLIENTS] [SECONDS]
"""
from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from desk_fixtures import ServeProcess  # noqa: E402
from login_flood import run_login_flood, time_requests  # noqa: E402
from otcdesk.app.auth import upsert_user  # noqa: E402
from otcdesk.app.db import init_db, make_engine  # noqa: E402
from otcdesk.app.models import ReviewItem, utcnow  # noqa: E402
from otcdesk.app.repositories import transaction  # noqa: E402
from otcdesk.bots.base import InboundMessage  # noqa: E402

TRADER = ("bench", "bench-password")
REVIEW_LIST = "/api/review?status=pending"


def seed(data_dir: Path, pending: int = 50) -> None:
    engine = make_engine(f"sqlite:///{(data_dir / 'otcdesk.db').resolve()}")
    init_db(engine)
    upsert_user(engine, *TRADER, "trader")
    now = utcnow()
    with transaction(engine) as tx:
        for n in range(pending):
            iid = tx.inbound.add(InboundMessage(channel="sim", chat_id="demo", sender_id="c", sender_name="c",
                                                text="沪深300 1个月 平值看跌", platform_msg_id=f"bench-{n}"))
            tx.inbound.finish(iid, "processed", "quote", None)  # nothing for the desk to run at start
            tx.reviews.add_once(ReviewItem(id=f"QB{n:04d}", thread_id=f"bench-{n}", inbound_id=iid, channel="sim",
                                           chat_id="demo", sender_id="c", sender_name="c", text="沪深300 1个月 平值看跌",
                                           draft_reply="期权费 2.00%", created_at=now,
                                           expires_at=now + timedelta(hours=1)))
    engine.dispose()


async def scenario(url: str, clients: int, seconds: float, username: str | None) -> tuple[list[float], dict]:
    async with aiohttp.ClientSession(url, cookie_jar=aiohttp.CookieJar(unsafe=True)) as trader:
        assert (await trader.post("/api/login", json={"username": TRADER[0], "password": TRADER[1]})).status == 200
        if not clients:
            return await time_requests(trader, REVIEW_LIST, asyncio.create_task(asyncio.sleep(seconds))), {}
        counts, latencies = await run_login_flood(url, clients, seconds, username,
                                                  lambda done: time_requests(trader, REVIEW_LIST, done))
    return latencies, counts


def row(name: str, latencies: list[float], counts: dict, seconds: float) -> str:
    q = statistics.quantiles(latencies, n=20, method="inclusive")
    total = sum(counts.values())
    return (f"{name:<38} {statistics.median(latencies) * 1e3:8.1f} {q[-1] * 1e3:8.1f} {max(latencies) * 1e3:8.1f}"
            f" {total / seconds:10.1f} {counts.get('401', 0) / seconds:9.1f} {counts.get('429', 0) / seconds:9.1f}")


async def main(clients: int, seconds: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        seed(data)
        rows = []
        for name, env, n, username in [
            ("idle (no logins)", {}, 0, None),
            (f"{clients} clients, new username each", {"OTCDESK_LOGIN_ADDRESS_LOCKOUT_FAILURES": "1000000"},
             clients, None),
            (f"{clients} clients, the trader's account", {}, clients, TRADER[0]),
        ]:
            server = ServeProcess(data, env=env)
            try:
                await asyncio.to_thread(server.wait_for_log, "otcdesk serving on")
                latencies, counts = await scenario(server.url, n, seconds, username)
            finally:
                server.stop()
            rows.append(row(name, latencies, counts, seconds))
    print(f"review list: GET /api/review?status=pending (50 items) every 50 ms for {seconds:.0f} s per scenario; "
          "login pool: 2 workers + 8 queued")
    print(f"{'scenario':<38} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'logins/s':>10} {'401/s':>9} {'429/s':>9}")
    print("\n".join(rows))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 30, float(sys.argv[2]) if len(sys.argv) > 2 else 5.0))
