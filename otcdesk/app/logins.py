"""Login protection: a throttle per username and per client address, and the bounded pool that verifies passwords.

`LoginThrottle` counts failed logins per key (a username, a client address) in a sliding window: after a
policy's free failures each further attempt must wait a growing delay (1 s, 2 s, 4 s … at most
`max_delay_s`) after the last failure, and at `lockout_failures` the key is locked for `lockout_s`.
A throttled attempt is answered at once (429 and Retry-After) and never reaches argon2. Unknown usernames
count like known ones, so the answers do not tell which users exist.

`LoginGuard` runs each admitted attempt on its own small thread pool with a bounded queue: argon2 (about
half a second of CPU) never occupies the threads that serve the console, and an attempt beyond the queue
is refused at once (`LoginBusy`) rather than waiting behind the others. Every lockout and unlock is audited
(`login.lockout`, `login.unlock`; never a password).

The state is per process and in memory: a restart forgets delays and lockouts (the audit log keeps them).
"""
from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, TypeVar

from sqlalchemy.engine import Engine

from otcdesk.app.auth import AuthError
from otcdesk.app.repositories import transaction

T = TypeVar("T")
KINDS = ("user", "address")
MAX_KEY_CHARS = 64  # usernames are at most 64 characters; longer keys are cut so they cannot fill memory


@dataclass(frozen=True)
class ThrottlePolicy:
    """How failed logins of one kind of key are throttled."""

    free_failures: int  # failures in the window that cost no delay
    lockout_failures: int  # failures in the window that lock the key
    window_s: float = 900.0  # failures older than this are forgotten
    lockout_s: float = 900.0
    max_delay_s: float = 60.0

    def delay_s(self, failures: int) -> float:
        """The wait after the last failure before the next attempt, once `failures` are in the window."""
        extra = failures - self.free_failures
        return 0.0 if extra < 0 else min(self.max_delay_s, 2.0 ** extra)


class LoginThrottled(Exception):
    """The user or the address must wait `retry_after_s` before the next attempt."""

    def __init__(self, retry_after_s: float, locked: bool):
        super().__init__("account or address locked after failed logins" if locked
                         else "too many failed logins; wait before trying again")
        self.retry_after_s = retry_after_s


class LoginBusy(Exception):
    """Every password worker and queue place is taken; try again shortly."""

    retry_after_s = 1.0


@dataclass
class _Key:
    failures: deque = field(default_factory=deque)  # times of failures in the window, oldest first
    locked_until: float = 0.0


class LoginThrottle:
    """Failed-login counts per (kind, key), kind `user` or `address`; thread-safe; at most `max_keys` remembered
    (the least recently failed are forgotten first)."""

    def __init__(self, user: ThrottlePolicy, address: ThrottlePolicy, clock: Callable[[], float] = time.time,
                 max_keys: int = 100_000):
        self.policies = {"user": user, "address": address}
        self.clock = clock
        self.max_keys = max_keys
        self._keys: OrderedDict[tuple[str, str], _Key] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, username: str, address: str) -> None:
        """Raise `LoginThrottled` when either key must still wait."""
        with self._lock:
            now = self.clock()
            waits = [self._wait(kind, key, now) for kind, key in _keys(username, address)]
        retry, locked = max(waits)
        if retry > 0:
            raise LoginThrottled(retry, locked)

    def failed(self, username: str, address: str) -> list[dict]:
        """Count a failed login against both keys; returns the lockouts it started."""
        started = []
        with self._lock:
            now = self.clock()
            for kind, key in _keys(username, address):
                policy = self.policies[kind]
                rec = self._keys.pop((kind, key), None) or _Key()
                self._keys[(kind, key)] = rec  # most recent last
                _forget_old(rec, policy, now)
                rec.failures.append(now)
                if len(rec.failures) >= policy.lockout_failures and rec.locked_until <= now:
                    rec.locked_until = now + policy.lockout_s
                    started.append(self._lockout(kind, key, rec, now))
            while len(self._keys) > self.max_keys:
                self._keys.popitem(last=False)
        return started

    def succeeded(self, username: str) -> None:
        """A correct password clears the user's failures (not the address's: one good account must not
        reset the count of an address that guesses others)."""
        with self._lock:
            self._keys.pop(("user", username[:MAX_KEY_CHARS]), None)

    def lockouts(self) -> list[dict]:
        """Keys locked now, soonest unlocked first."""
        with self._lock:
            now = self.clock()
            found = [self._lockout(kind, key, rec, now) for (kind, key), rec in self._keys.items()
                     if rec.locked_until > now]
        return sorted(found, key=lambda x: x["retry_after_s"])

    def unlock(self, kind: str, key: str) -> dict | None:
        """Lift a lockout and forget the key's failures; the lockout lifted, or None when the key was not locked."""
        with self._lock:
            now = self.clock()
            rec = self._keys.get((kind, key))
            if rec is None or rec.locked_until <= now:
                return None
            del self._keys[(kind, key)]
            return self._lockout(kind, key, rec, now)

    def _wait(self, kind: str, key: str, now: float) -> tuple[float, bool]:
        """(seconds to wait, locked) for one key."""
        rec = self._keys.get((kind, key))
        if rec is None:
            return 0.0, False
        if rec.locked_until > now:
            return rec.locked_until - now, True
        policy = self.policies[kind]
        _forget_old(rec, policy, now)
        if not rec.failures:
            return 0.0, False
        return max(0.0, rec.failures[-1] + policy.delay_s(len(rec.failures)) - now), False

    def _lockout(self, kind: str, key: str, rec: _Key, now: float) -> dict:
        return {"kind": kind, "key": key, "failures": len(rec.failures),
                "locked_until": datetime.fromtimestamp(rec.locked_until, timezone.utc).isoformat(),
                "retry_after_s": round(rec.locked_until - now, 1)}


def _keys(username: str, address: str) -> tuple[tuple[str, str], tuple[str, str]]:
    return ("user", username[:MAX_KEY_CHARS]), ("address", address[:MAX_KEY_CHARS])


def _forget_old(rec: _Key, policy: ThrottlePolicy, now: float) -> None:
    while rec.failures and rec.failures[0] <= now - policy.window_s:
        rec.failures.popleft()


class LoginGuard:
    """Admits a login attempt past the throttle, verifies it on `workers` threads with at most `queue` waiting,
    counts the outcome, and audits the lockouts it starts."""

    def __init__(self, engine: Engine, throttle: LoginThrottle, workers: int = 2, queue: int = 8):
        self.engine = engine
        self.throttle = throttle
        self.capacity = workers + queue
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="login")
        self._admitted = 0  # attempts running or queued; touched only on the event loop

    async def attempt(self, username: str, address: str, verify: Callable[[], T]) -> T:
        """`verify()` (which raises `AuthError` for bad credentials) on the login pool.

        Raises `LoginThrottled` before any work when the user or address must wait, `LoginBusy` when the pool
        and its queue are full, `AuthError` (counted) for bad credentials.
        """
        self.throttle.check(username, address)
        if self._admitted >= self.capacity:
            raise LoginBusy()
        self._admitted += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, self._verify, username, address,
                                                                    verify)
        finally:
            self._admitted -= 1

    def _verify(self, username: str, address: str, verify: Callable[[], T]) -> T:
        self.throttle.check(username, address)  # again: attempts queued with this one may have failed meanwhile
        try:
            result = verify()
        except AuthError:
            for lockout in self.throttle.failed(username, address):
                self._audit("system", "login.lockout", lockout)
            raise
        self.throttle.succeeded(username)
        return result

    def unlock(self, kind: str, key: str, by: str) -> dict | None:
        """Lift a lockout (audited with the admin who lifted it); None when the key is not locked."""
        lifted = self.throttle.unlock(kind, key)
        if lifted is not None:
            self._audit(by, "login.unlock", lifted)
        return lifted

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _audit(self, actor: str, action: str, lockout: dict) -> None:
        with transaction(self.engine) as tx:
            tx.audit.record(actor, action, f"{lockout['kind']}:{lockout['key']}",
                            {k: lockout[k] for k in ("failures", "locked_until")})


def retry_after_header(seconds: float) -> str:
    """Retry-After in whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
