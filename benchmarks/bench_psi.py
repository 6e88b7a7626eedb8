"""Private blacklist screening: PSI over real HTTP to a holder subprocess, beside a naive non-private exchange.

    .venv/bin/python benchmarks/bench_psi.py [--held 100000] [--queried 1000] [--overlap 25] [--repeat 3]

The holder is `otcdesk screen serve` in its own process with `held` synthetic identifiers (valid check
characters); the querier runs `psi.psi_query` here with `queried` identifiers of its own, `overlap` of them on the
holder's list. Reported: the holder's start-up (its one-off setup: one EC multiplication per held item), then per
query the wall time, the bytes sent and received, and whether the matches were exactly the overlap.

The reference is a naive exchange over HTTP in this process: the querier sends the SHA-256 hashes of its items,
the holder intersects them with the hashes of its list and returns the hashed matches. It is NOT private: the
holder learns which items were queried (hashes of 18-character identifiers with a check character are easily
enumerated) and every match. It shows what the privacy costs in time and bytes.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from desk_fixtures import free_port  # noqa: E402

from otcdesk.app.kyc.psi import psi_query  # noqa: E402
from otcdesk.app.kyc.synthetic import synthetic_identifiers  # noqa: E402


def sha(x: str) -> bytes:
    return hashlib.sha256(x.encode()).digest()


def start_holder(list_file: Path) -> tuple[subprocess.Popen, str, float]:
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "otcdesk.app.cli", "screen", "serve", "--list", str(list_file),
                             "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    line = proc.stdout.readline()
    if not line:
        raise SystemExit("the holder did not start")
    return proc, json.loads(line)["serving"], time.perf_counter() - started


def start_naive_holder(held: list[str]) -> tuple[str, callable]:
    """The non-private reference holder: an aiohttp app on its own thread and loop, in this process."""
    from aiohttp import web

    hashes = {sha(x) for x in held}

    async def intersect(request: web.Request) -> web.Response:
        body = await request.read()
        mine = [body[i:i + 32] for i in range(0, len(body), 32)]
        return web.Response(body=b"".join(h for h in mine if h in hashes), content_type="application/octet-stream")

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/naive/intersect", intersect)
    port = free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    ready = threading.Event()

    def serve():
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        ready.set()
        loop.run_forever()

    threading.Thread(target=serve, daemon=True).start()
    ready.wait(10)

    def stop():
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)

    return f"http://127.0.0.1:{port}/naive/intersect", stop


def naive_query(url: str, items: list[str]) -> dict:
    started = time.perf_counter()
    by_hash = {sha(x): x for x in items}
    body = b"".join(by_hash)
    with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST",
                                                       headers={"Content-Type": "application/octet-stream"})) as r:
        answer = r.read()
    matches = [by_hash[answer[i:i + 32]] for i in range(0, len(answer), 32)]
    return {"matches": matches, "bytes_sent": len(body), "bytes_received": len(answer),
            "elapsed_s": time.perf_counter() - started}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--held", type=int, default=100_000)
    ap.add_argument("--queried", type=int, default=1_000)
    ap.add_argument("--overlap", type=int, default=25)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    pool = synthetic_identifiers(args.held + args.queried, seed=7)
    held, others = pool[:args.held], pool[args.held:]
    overlap = held[:: max(1, args.held // args.overlap)][:args.overlap]
    mine = others[: args.queried - len(overlap)] + overlap
    expected = sorted(overlap)
    print(f"PSI screening benchmark: {args.queried:,} queried x {args.held:,} held, {len(overlap)} on the list; "
          f"{os.cpu_count()} CPUs, median of {args.repeat}")

    with tempfile.TemporaryDirectory() as tmp:
        list_file = Path(tmp) / "held.txt"
        list_file.write_text("\n".join(held) + "\n", encoding="utf-8")
        proc, url, startup = start_holder(list_file)
        try:
            print(f"holder subprocess ready (list read, setup built, listening) in {startup:.2f}s")
            runs = [psi_query(url, mine) for _ in range(args.repeat)]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    naive_url, stop = start_naive_holder(held)
    try:
        refs = [naive_query(naive_url, mine) for _ in range(args.repeat)]
    finally:
        stop()

    def row(name: str, rs: list[dict], note: str) -> None:
        exact = all(sorted(r["matches"]) == expected for r in rs)
        print(f"{name:28s} {statistics.median(r['elapsed_s'] for r in rs):9.3f}s  "
              f"sent {rs[0]['bytes_sent']:>11,} B  received {rs[0]['bytes_received']:>11,} B  "
              f"exact={exact}  {note}")

    row("ecdh-psi-raw (openmined-psi)", runs, "private: holder learns neither items nor matches")
    row("naive sha256 exchange", refs, "NOT private: holder learns every queried hash and the matches")
    print(f"PSI cost over naive: x{statistics.median(r['elapsed_s'] for r in runs) / statistics.median(r['elapsed_s'] for r in refs):.0f} "
          f"time, x{(runs[0]['bytes_sent'] + runs[0]['bytes_received']) / (refs[0]['bytes_sent'] + refs[0]['bytes_received']):.0f} bytes "
          f"(most of it the {args.held:,}-point setup, about 35 B a held item)")


if __name__ == "__main__":
    main()
