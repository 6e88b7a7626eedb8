"""A login flood in a process of its own, so its load is not the measuring process's (imports only aiohttp).

    python tests/login_flood.py URL CLIENTS SECONDS [USERNAME]

CLIENTS parallel clients post wrong passwords to URL/api/login for SECONDS, each as fast as it is answered,
as USERNAME or a new username each attempt. Prints `started` once the first answer came, then one JSON line:
the answers counted by status (`"bad_retry_after"` counts 429s without a Retry-After of at least 1 s).
`run_login_flood` runs it from a test or benchmark and calls back when it has started; `time_requests` times
a GET (the trader's review list) meanwhile.
"""
from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Awaitable, Callable

import aiohttp


async def flood(url: str, clients: int, seconds: float, username: str | None) -> dict[str, int]:
    counts: dict[str, int] = {}
    end = time.monotonic() + seconds

    async def client() -> None:
        async with aiohttp.ClientSession(url) as s:
            while time.monotonic() < end:
                name = username or f"guess-{uuid.uuid4().hex[:8]}"
                async with s.post("/api/login", json={"username": name, "password": "wrong-password"}) as r:
                    if not counts:
                        print("started", flush=True)
                    key = str(r.status)
                    if r.status == 429 and int(r.headers.get("Retry-After", "0")) < 1:
                        key = "bad_retry_after"
                    counts[key] = counts.get(key, 0) + 1

    await asyncio.gather(*(client() for _ in range(clients)))
    return counts


async def run_login_flood(url: str, clients: int, seconds: float, username: str | None,
                          while_flooding: Callable[[asyncio.Task], Awaitable]) -> tuple[dict[str, int], object]:
    """Start the flood in a child process; once it has started, await `while_flooding(done)` where `done` finishes
    with the flood; returns (the flood's counts, what `while_flooding` returned)."""
    proc = await asyncio.create_subprocess_exec(sys.executable, str(Path(__file__).resolve()), url, str(clients),
                                                str(seconds), *([username] if username else []),
                                                stdout=asyncio.subprocess.PIPE)
    try:
        first = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert first.strip() == b"started", first
        done = asyncio.create_task(proc.wait())
        measured = await while_flooding(done)
        counts = json.loads(await proc.stdout.readline())
        await done
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return counts, measured


async def time_requests(session: aiohttp.ClientSession, path: str, done: asyncio.Task,
                        interval: float = 0.05) -> list[float]:
    """Seconds each GET `path` took (each must answer 200), one every `interval`, until `done` finishes."""
    seen = []
    while not done.done():
        t0 = time.perf_counter()
        async with session.get(path) as r:
            assert r.status == 200, r.status
            await r.read()
        seen.append(time.perf_counter() - t0)
        await asyncio.sleep(interval)
    return seen


if __name__ == "__main__":
    args = sys.argv[1:]
    result = asyncio.run(flood(args[0], int(args[1]), float(args[2]), args[3] if len(args) > 3 else None))
    print(json.dumps(result), flush=True)
