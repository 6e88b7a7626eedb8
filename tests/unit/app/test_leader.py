"""Leader election (`app.leader`) on the local PostgreSQL: one holder of the advisory lock per schema, a standby
takes over when the holder closes or its session is killed, and on SQLite the one instance leads at once."""
import psycopg
import pytest

from desk_fixtures import PG_URL
from otcdesk.app.leader import Leadership, lock_key
from otcdesk.app.metrics import Metrics


def holder_pid(key: int) -> int | None:
    """The backend holding advisory lock `key`, as an operator finds it in pg_locks."""
    with psycopg.connect(PG_URL.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        row = conn.execute("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = "
                           "(SELECT oid FROM pg_database WHERE datname = current_database()) "
                           "AND classid = %s AND objid = %s AND objsubid = 1",
                           ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF)).fetchone()
        return row[0] if row else None


def kill_backend(pid: int) -> None:
    """Terminate the backend and wait until it is gone: pg_terminate_backend only signals it, and its locks are
    released when it exits (a standby checking a moment earlier still finds the lock held, and would on its next
    retry take it)."""
    import time

    with psycopg.connect(PG_URL.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        deadline = time.monotonic() + 10
        while conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
            assert time.monotonic() < deadline, f"backend {pid} did not exit"
            time.sleep(0.02)


@pytest.fixture
def elect(pg_schema_url):
    made = []

    def make(url=pg_schema_url):
        changes, metrics = [], Metrics()
        leader = Leadership(url, changes.append, retry_s=0.1, gauge=metrics.leader)
        leader.changes, leader.metrics = changes, metrics
        made.append(leader)
        return leader

    yield make
    for leader in made:
        leader.close()


def gauge(leader) -> float:
    return leader.metrics.registry.get_sample_value("otcdesk_leader")


def test_one_leader_per_schema_and_the_standby_takes_over_when_it_closes(elect):
    first, second = elect(), elect()
    assert first.check() and not second.check() and not second.check()
    assert (first.changes, second.changes) == ([True], [])
    assert (gauge(first), gauge(second)) == (1.0, 0.0)
    assert holder_pid(first.key) is not None
    first.close()  # a graceful stop hands the lock on at once
    assert first.changes == [True, False] and gauge(first) == 0.0
    assert second.check() and second.changes == [True] and gauge(second) == 1.0


def test_a_killed_session_loses_the_lead_and_the_standby_takes_it(elect):
    first, second = elect(), elect()
    assert first.check() and not second.check()
    kill_backend(holder_pid(first.key))  # the leader's connection dies (as when its process does)
    assert second.check()
    assert not first.check() and first.changes == [True, False]  # the old leader notices and steps down
    assert not first.check()  # ... and stands by while the other holds the lock


def test_schemas_elect_separately(elect, pg_schema_url):
    import uuid

    other = f"t_{uuid.uuid4().hex[:12]}"
    plain = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {other}")
    try:
        here = elect()
        there = elect(pg_schema_url.rsplit("search_path%3D", 1)[0] + f"search_path%3D{other}")
        assert here.check() and there.check() and here.key != there.key == lock_key(other)
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {other} CASCADE")


def test_on_sqlite_the_one_instance_leads_without_a_lock():
    changes, metrics = [], Metrics()
    leader = Leadership(None, changes.append, gauge=metrics.leader)
    assert leader.check() and leader.check() and changes == [True]
    assert metrics.registry.get_sample_value("otcdesk_leader") == 1.0
    leader.close()
    assert changes == [True, False]
