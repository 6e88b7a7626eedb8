"""What the canary allowlist costs per inbound message: the intake (store + audit, one unit of work) with and without
`CanaryAllowlist`, canary mode off and on, on a SQLite file and on the local PostgreSQL when it answers.

    python benchmarks/bench_canary_lookup.py [--messages 300] [--groups 1000]

Prints one JSON line per database: milliseconds per message for each variant, and the lookup alone (switch + list,
half the groups asked for on the list).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid

from otcdesk.app.db import init_db, make_engine
from otcdesk.app.desk.canary import CanaryAllowlist, CanaryPolicy
from otcdesk.app.desk.inbound import AuditReceived, InboundPipeline, StoreFirst
from otcdesk.app.repositories import transaction
from otcdesk.bots.base import InboundMessage

PG_URL = os.environ.get("OTCDESK_TEST_PG_URL", "postgresql+psycopg://127.0.0.1:5432/test")


def per_message_ms(engine, intake, n: int) -> float:
    chain = InboundPipeline(engine, intake=intake, middlewares=[], handler=lambda event, data: None)
    run = uuid.uuid4().hex[:8]
    started = time.perf_counter()
    for i in range(n):
        chain(InboundMessage(channel="wechat", chat_id=f"{i % 50}@chatroom", sender_id="c", sender_name="c",
                             text="沪深300 1个月 平值看跌", platform_msg_id=f"{run}-{i}"))
    return (time.perf_counter() - started) / n * 1000


def bench(url: str, n: int, groups: int) -> dict:
    engine = make_engine(url)
    init_db(engine)
    policy = CanaryPolicy(engine)
    for g in range(groups):
        policy.set_group("wechat", f"{g}@chatroom", True, "bench")
    base = [StoreFirst(), AuditReceived()]
    per_message_ms(engine, base, 20)  # warm the connection pool and caches
    plain = per_message_ms(engine, base, n)
    off = per_message_ms(engine, [*base, CanaryAllowlist()], n)
    policy.set_mode(True, "bench")
    on = per_message_ms(engine, [*base, CanaryAllowlist()], n)
    with transaction(engine) as tx:  # the lookup alone, in an open unit of work as the intake runs it
        started = time.perf_counter()
        for i in range(n):
            tx.canary.admits("wechat", f"{i % (2 * groups)}@chatroom")
        lookup = (time.perf_counter() - started) / n * 1000
    engine.dispose()
    return {"database": engine.dialect.name, "messages": n, "allowlist_groups": groups,
            "intake_ms": round(plain, 3), "with_canary_off_ms": round(off, 3), "with_canary_on_ms": round(on, 3),
            "canary_on_extra_ms": round(on - plain, 3), "lookup_only_ms": round(lookup, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--groups", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        print(json.dumps(bench(f"sqlite:///{scratch}/bench.db", args.messages, args.groups)))
    try:
        import psycopg

        schema = f"bench_{uuid.uuid4().hex[:8]}"
        plain = PG_URL.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(plain, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        try:
            print(json.dumps(bench(f"{PG_URL}?options=-csearch_path%3D{schema}", args.messages, args.groups)))
        finally:
            with psycopg.connect(plain, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")
    except Exception as exc:  # no PostgreSQL here: SQLite alone
        print(f"PostgreSQL skipped: {type(exc).__name__}: {exc}", file=sys.stderr)


if __name__ == "__main__":
    main()
