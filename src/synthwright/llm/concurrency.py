"""Adaptive concurrency and retry timing for calls to a model.

`AdaptiveLimiter` is additive-increase / multiplicative-decrease (the TCP rule): a 429
halves the number of requests allowed in flight, each success adds back a fraction, so
the limit settles just under what the provider tolerates and recovers when it relaxes.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from dataclasses import dataclass


class AdaptiveLimiter:
    def __init__(self, max_limit: int, min_limit: int = 1):
        if max_limit < 1:
            raise ValueError("max_limit must be at least 1")
        self.max_limit = max_limit
        self.min_limit = min(min_limit, max_limit)
        self.limit = float(max_limit)
        self.in_flight = 0
        self._waiters: deque[asyncio.Future] = deque()
        # Requests started before a decrease are not allowed to trigger another one:
        # one burst of 429s is one signal, not sixty-four.
        self._epoch = 0
        self.decreases = 0

    async def acquire(self) -> int:
        """Wait for a slot; returns the epoch to hand back to `release`."""
        while self.in_flight >= int(self.limit):
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                raise
        self.in_flight += 1
        return self._epoch

    def release(self, epoch: int, rate_limited: bool = False) -> None:
        self.in_flight -= 1
        if rate_limited:
            if epoch == self._epoch:
                self.limit = max(float(self.min_limit), self.limit / 2)
                self._epoch += 1
                self.decreases += 1
        elif self.limit < self.max_limit:
            self.limit = min(float(self.max_limit), self.limit + 1.0 / self.limit)
        self._wake()

    def _wake(self) -> None:
        free = int(self.limit) - self.in_flight
        while free > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                free -= 1


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and full jitter; Retry-After wins.

    `max_delay_s` caps our own backoff only. A server's Retry-After is honoured in full
    (retrying sooner just earns another 429), up to `max_retry_after_s` as a safety net.
    """

    max_attempts: int = 6
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    max_retry_after_s: float = 300.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        if retry_after is not None:
            return min(self.max_retry_after_s, retry_after) * (1.0 + 0.1 * rng.random())
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return rng.uniform(0.0, ceiling)
