"""Login protection (`app.logins`): the throttle's delays and lockouts on a controlled clock, and the guard's bounded
password pool and audited lockouts on a real SQLite database."""
import asyncio
import threading

import pytest

from otcdesk.app.auth import AuthError
from otcdesk.app.db import init_db, make_engine
from otcdesk.app.logins import LoginBusy, LoginGuard, LoginThrottle, LoginThrottled, ThrottlePolicy
from otcdesk.app.repositories import transaction


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


USER = ThrottlePolicy(free_failures=3, lockout_failures=6, window_s=600, lockout_s=900, max_delay_s=4)
ADDRESS = ThrottlePolicy(free_failures=5, lockout_failures=8, window_s=600, lockout_s=300)


def retry_after(throttle, user="alice", address="10.0.0.1"):
    try:
        throttle.check(user, address)
    except LoginThrottled as exc:
        return exc.retry_after_s
    return 0.0


def test_delays_grow_after_the_free_failures_then_the_user_is_locked():
    clock = Clock()
    throttle = LoginThrottle(USER, ADDRESS, clock)
    waits = []
    for _ in range(5):
        assert throttle.failed("alice", "10.0.0.1") == []
        waits.append(retry_after(throttle))
        clock.now += waits[-1]
    assert waits == [0, 0, 1, 2, 4]  # free, free, then 2**0, 2**1, 2**2 (capped at max_delay_s=4)
    [lockout] = throttle.failed("alice", "10.0.0.1")
    assert (lockout["kind"], lockout["key"], lockout["failures"], lockout["retry_after_s"]) == ("user", "alice", 6, 900)
    assert retry_after(throttle) == 900
    assert retry_after(throttle, address="10.0.0.2") == 900  # the user is locked from every address
    assert retry_after(throttle, user="bob") == 2  # the address is only delayed (6 failures: 2**(6-5) s)
    assert throttle.lockouts() == [lockout]
    clock.now += 900
    assert retry_after(throttle) == 0 and throttle.lockouts() == []


def test_failures_outside_the_window_are_forgotten_and_a_good_password_clears_the_user_only():
    clock = Clock()
    throttle = LoginThrottle(USER, ADDRESS, clock)
    for _ in range(3):
        throttle.failed("alice", "10.0.0.1")
    assert retry_after(throttle) == 1
    clock.now += 601
    assert retry_after(throttle) == 0
    for _ in range(3):
        throttle.failed("alice", "10.0.0.1")
    throttle.succeeded("alice")
    assert retry_after(throttle) == 0
    for user in ("bob", "carol"):  # the address still counts all 5 failures: past its free ones, the next waits
        throttle.failed(user, "10.0.0.1")
    assert retry_after(throttle, user="dave") == 1


def test_an_address_guessing_many_users_is_locked_and_unknown_users_count_like_known_ones():
    clock = Clock()
    throttle = LoginThrottle(USER, ADDRESS, clock)
    started = []
    for n in range(8):
        clock.now += 20
        started += throttle.failed(f"nobody{n}", "10.0.0.9")
    assert [(x["kind"], x["key"]) for x in started] == [("address", "10.0.0.9")]
    assert retry_after(throttle, user="alice", address="10.0.0.9") == 300
    assert retry_after(throttle, user="alice", address="10.0.0.1") == 0


def test_unlock_lifts_a_lockout_and_forgets_its_failures():
    clock = Clock()
    throttle = LoginThrottle(USER, ADDRESS, clock)
    for _ in range(6):
        throttle.failed("alice", "10.0.0.1")
        clock.now += 10
    assert throttle.unlock("user", "bob") is None
    assert throttle.unlock("user", "alice")["key"] == "alice"
    assert retry_after(throttle, address="10.0.0.2") == 0
    assert throttle.unlock("user", "alice") is None


def test_memory_is_bounded_whatever_the_keys():
    throttle = LoginThrottle(USER, ADDRESS, Clock(), max_keys=50)
    for n in range(1000):
        throttle.failed("x" * 10_000 + str(n), f"10.1.{n // 250}.{n % 250}")
    assert len(throttle._keys) <= 50


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    init_db(engine)
    yield engine
    engine.dispose()


def test_guard_refuses_beyond_its_pool_and_queue_at_once(engine):
    guard = LoginGuard(engine, LoginThrottle(USER, ADDRESS), workers=1, queue=2)
    release = threading.Event()

    def slow_ok():
        release.wait(10)
        return "ok"

    async def flood():
        admitted = [asyncio.create_task(guard.attempt(f"u{n}", "10.0.0.1", slow_ok)) for n in range(3)]
        await asyncio.sleep(0.05)
        with pytest.raises(LoginBusy):
            await asyncio.wait_for(guard.attempt("u9", "10.0.0.1", slow_ok), 0.5)  # answered, not queued
        release.set()
        return await asyncio.gather(*admitted)

    try:
        assert asyncio.run(flood()) == ["ok"] * 3
    finally:
        guard.close()


def test_guard_counts_bad_passwords_and_audits_the_lockout_without_the_password(engine):
    guard = LoginGuard(engine, LoginThrottle(ThrottlePolicy(0, 2, lockout_s=60, max_delay_s=0), ADDRESS))

    def wrong():
        raise AuthError("invalid username or password")

    async def attempts():
        for _ in range(2):
            with pytest.raises(AuthError):
                await guard.attempt("alice", "10.0.0.1", wrong)
        with pytest.raises(LoginThrottled) as exc:
            await guard.attempt("alice", "10.0.0.1", lambda: pytest.fail("a locked user is not verified"))
        return exc.value

    try:
        assert asyncio.run(attempts()).retry_after_s > 59
        assert guard.unlock("user", "alice", by="admin1")["key"] == "alice"
    finally:
        guard.close()
    with transaction(engine) as tx:
        rows = [(r.actor, r.action, r.subject, r.detail) for r in tx.audit.entries() if r.action.startswith("login.")]
    assert [r[:3] for r in rows] == [("system", "login.lockout", "user:alice"), ("admin1", "login.unlock", "user:alice")]
    assert all(set(r[3]) == {"failures", "locked_until"} for r in rows)
