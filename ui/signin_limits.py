"""Failed sign-in limits: per user name and per client address, a lockout after too many failures.

Gradio's login has no such limit, so a password could be guessed at network speed.  Here each
failure is counted against the typed user name (whether or not that account exists, so a lockout
reveals nothing about which names are real) and against the client's address.  The
``max_per_user``-th failure for one name, or the ``max_per_address``-th from one address, within
``window_s`` locks that name or address for ``lockout_s``: every attempt is refused, right or
wrong, until the lock runs out.  A successful sign-in clears its name's count.

The per-name lock means someone can keep a known name locked out by failing on purpose; the lock
is short (5 minutes by default) and the per-address limit slows that down too.  Pure bookkeeping
with an injectable clock, so it is tested without waiting.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_TRACKED = 50_000  # keys kept at most; stale ones are dropped first


@dataclass
class _Counter:
    failures: deque[float] = field(default_factory=deque)
    locked_until: float = 0.0


class SignInLimiter:
    """Counts failed sign-ins per user name and per address and says when either is locked."""

    def __init__(self, max_per_user: int, max_per_address: int, window_s: float, lockout_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_per_user, self.max_per_address = max_per_user, max_per_address
        self.window_s, self.lockout_s = window_s, lockout_s
        self.clock = clock
        self._counters: dict[tuple[str, str], _Counter] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _keys(user: str, address: str) -> tuple[tuple[str, str], tuple[str, str]]:
        return ("user", user.strip().lower()[:128]), ("address", address)

    def locked_for(self, user: str, address: str) -> float:
        """Seconds until ``user`` and ``address`` may try again (0 when neither is locked)."""
        now = self.clock()
        with self._lock:
            left = [c.locked_until - now for k in self._keys(user, address) if (c := self._counters.get(k))]
        return max([0.0, *left])

    def failed(self, user: str, address: str) -> bool:
        """Count one failure; True when it locks the name or the address."""
        now = self.clock()
        locked = False
        with self._lock:
            if len(self._counters) >= MAX_TRACKED:
                self._prune(now)
            for key, limit in zip(self._keys(user, address), (self.max_per_user, self.max_per_address), strict=True):
                counter = self._counters.setdefault(key, _Counter())
                counter.failures.append(now)
                while counter.failures and counter.failures[0] <= now - self.window_s:
                    counter.failures.popleft()
                if len(counter.failures) >= limit and counter.locked_until <= now:
                    counter.locked_until = now + self.lockout_s
                    counter.failures.clear()
                    locked = True
        return locked

    def succeeded(self, user: str) -> None:
        """A right password: forget the name's failures (the address keeps its count)."""
        with self._lock:
            self._counters.pop(self._keys(user, "")[0], None)

    def _prune(self, now: float) -> None:
        stale = [k for k, c in self._counters.items()
                 if c.locked_until <= now and (not c.failures or c.failures[-1] <= now - self.window_s)]
        for key in stale:
            del self._counters[key]
        if len(self._counters) >= MAX_TRACKED:  # still full of fresh keys: drop the oldest half
            oldest = sorted(self._counters, key=lambda k: self._counters[k].failures[-1]
                            if self._counters[k].failures else 0.0)
            for key in oldest[: len(oldest) // 2]:
                del self._counters[key]
