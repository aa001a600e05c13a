"""The one place that sends requests: cache, concurrency, retries, accounting.

`LLMEngine.run(requests, on_result)` answers every request exactly once through
`on_result(index, response)`, in completion order. A request that finally fails comes back
with `response.error` set, never as None and never silently dropped. A request whose
answer is in the cache is not sent.

An engine is long-lived: a run keeps one per model and calls `run` once per batch. What it
learns survives between calls (the limiter's concurrency, the backend's connection pool),
because every call runs on the same event loop, this thread's (see `run_sync`); `close`
releases the backend at the end.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from synthwright.llm.backends.base import Backend, BackendError, PermanentError, RateLimited, TransientError, continuation_refusal
from synthwright.llm.cache import CallRecord, RequestCache
from synthwright.llm.concurrency import AdaptiveLimiter, RetryPolicy
from synthwright.llm.records import LLMRequest, LLMResponse
from synthwright.llm.usage import Price, UsageTotals

ResultCallback = Callable[[int, LLMRequest, LLMResponse], None]
CLAIM_POLL_S = 0.1  # how often a request another process is sending is looked for in the cache
T = TypeVar("T")

_LOOPS = threading.local()


def run_sync(awaitable: Awaitable[T]) -> T:
    """Run `awaitable` to the end on this thread's event loop, made once and kept.

    Not `asyncio.run`, which makes and closes a loop per call: connections, and the futures a
    limiter hands out, belong to one loop, so a new loop per batch would throw them away. An
    interrupt (Ctrl-C) cancels the work, lets it clean up, and is raised again."""
    loop = getattr(_LOOPS, "loop", None)
    if loop is None or loop.is_closed():
        loop = _LOOPS.loop = asyncio.new_event_loop()
    task = loop.create_task(awaitable)
    try:
        return loop.run_until_complete(task)
    except BaseException:
        task.cancel()
        try:
            loop.run_until_complete(task)
        except BaseException:  # its cancellation, or what it raised while cleaning up
            pass
        raise


@dataclass
class _Call:
    """One `run`: the step its requests are logged under and what they used."""

    step: str
    usage: UsageTotals = field(default_factory=UsageTotals)
    # Who pays (a run folder's step). A cached answer this same owner paid for earlier (in a
    # run that was killed before it could record it) counts as sent, with its tokens and cost.
    owner: str | None = None


@dataclass(frozen=True)
class EngineOptions:
    step: str = "generate"
    max_concurrency: int | None = None  # None: the backend's default
    timeout_s: float = 120.0
    retry: RetryPolicy = RetryPolicy()
    read_cache: bool = True  # False with --refresh or --no-cache
    write_cache: bool = True  # False with --no-cache
    price: Price | None = None
    seed: int = 0  # for retry jitter only


class LLMEngine:
    def __init__(self, backend: Backend, cache: RequestCache | None, options: EngineOptions = EngineOptions()):
        self.backend = backend
        self.cache = cache
        self.options = options
        self._rng = random.Random(options.seed)
        self._flush_scheduled = False
        self._sent_here: set[str] = set()  # keys this engine sent itself
        concurrency = options.max_concurrency or backend.default_concurrency
        self.limiter = AdaptiveLimiter(concurrency)

    def run(self, requests: Iterable[LLMRequest], on_result: ResultCallback, step: str | None = None,
            owner: str | None = None) -> UsageTotals:
        """Blocking wrapper around `arun` for synchronous callers; the engine stays open."""
        return run_sync(self.arun(requests, on_result, step, owner))

    def close(self) -> None:
        """Release the backend's connections (or memory); call once, when the run ends."""
        run_sync(self.backend.aclose())

    async def arun(self, requests: Iterable[LLMRequest], on_result: ResultCallback, step: str | None = None,
                   owner: str | None = None) -> UsageTotals:
        """Answer `requests`, logging them under `step` (default: the options' step) and paid by
        `owner`; returns what this call used."""
        call = _Call(step or self.options.step, owner=owner)
        identity = self.backend.identity
        to_send = self._answer_from_cache(enumerate(requests), identity, on_result, call)
        workers = [asyncio.create_task(self._worker(to_send, identity, on_result, call)) for _ in range(self.limiter.max_limit)]
        try:
            await asyncio.gather(*workers)
        finally:
            for worker in workers:
                worker.cancel()
            # Let them finish cancelling now, giving their limiter slots back before the next call.
            await asyncio.gather(*workers, return_exceptions=True)
            if self.cache is not None:
                self.cache.flush()
        return call.usage

    def _answer_from_cache(self, indexed: Iterator, identity: str, on_result: ResultCallback, call: _Call):
        """Yield (index, request, key) for what must be sent; answer the rest from the cache.

        A generator shared by all workers: lazily consumed, so memory stays bounded.
        """
        for index, request in indexed:
            key = request.cache_key(identity)
            found = self.cache.get_with_owner(key) if (self.cache is not None and self.options.read_cache) else None
            if found is None:
                yield index, request, key
                continue
            cached, owner = found
            # Paid by this owner in an earlier process, not by this engine a moment ago.
            paid_earlier = owner is not None and owner == call.owner and key not in self._sent_here
            self._account(key, cached, call, paid_by_us=paid_earlier)
            on_result(index, request, cached)

    async def _worker(self, to_send: Iterator, identity: str, on_result: ResultCallback, call: _Call) -> None:
        for index, request, key in to_send:
            answered = await self._claim(key)
            if answered is not None:  # another process sent it while we waited
                self._account(key, answered, call)
                on_result(index, request, answered)
                continue
            self._sent_here.add(key)
            response = await self._send_with_retries(request)
            if self.cache is not None:
                if response.ok and self.options.write_cache:
                    self.cache.queue_response(key, identity, response, call.owner)
                self.cache.queue_release(key)
            self._account(key, response, call)
            on_result(index, request, response)

    async def _claim(self, key: str) -> LLMResponse | None:
        """Wait while another process sharing the cache sends `key`. Returns its answer when
        it got one, or None once this process holds the claim and may send."""
        if self.cache is None:
            return None
        while not self.cache.claim(key):
            await asyncio.sleep(CLAIM_POLL_S)
        # The other process may have answered and let go between our cache lookup and the
        # claim: its answer and its release are committed together, so look once more.
        answer = self.cache.get(key) if self.options.read_cache else None
        if answer is not None:
            self.cache.queue_release(key)
        return answer

    async def _send_with_retries(self, request: LLMRequest) -> LLMResponse:
        started = time.perf_counter()
        if request.continuation is not None and not self.backend.scores_continuations:
            return self._failed(PermanentError(continuation_refusal(self.backend.name)), 1, started)
        for attempt in range(1, self.options.retry.max_attempts + 1):
            epoch = await self.limiter.acquire()
            try:
                response = await self.backend.complete(request, self.options.timeout_s)
            except PermanentError as exc:
                self.limiter.release(epoch)
                return self._failed(exc, attempt, started)
            except TransientError as exc:
                self.limiter.release(epoch, rate_limited=isinstance(exc, RateLimited))
                if attempt == self.options.retry.max_attempts:
                    return self._failed(exc, attempt, started, gave_up=True)
                await asyncio.sleep(self.options.retry.delay(attempt, exc.retry_after, self._rng))
                continue
            except Exception as exc:  # a backend bug must not lose the row: record it
                self.limiter.release(epoch)
                return self._failed(BackendError(f"{exc.__class__.__name__}: {exc}"), attempt, started)
            except asyncio.CancelledError:  # the call was stopped; the engine (and its limiter) lives on
                self.limiter.release(epoch)
                raise
            self.limiter.release(epoch)
            return response.model_copy(update={"attempts": attempt, "latency_s": time.perf_counter() - started})
        raise AssertionError("unreachable: the loop returns on its last attempt")

    @staticmethod
    def _failed(exc: BackendError, attempts: int, started: float, gave_up: bool = False) -> LLMResponse:
        reason = f"gave up after {attempts} attempts: {exc.reason}" if gave_up else exc.reason
        return LLMResponse(error=reason, attempts=attempts, latency_s=time.perf_counter() - started)

    def _account(self, key: str, response: LLMResponse, call: _Call, paid_by_us: bool = False) -> None:
        price = self.options.price
        cost = price.cost(response.usage.prompt_tokens, response.usage.completion_tokens) if price else None
        # The call log (what `usage` reads) already holds the send; only our totals count it again.
        call.usage.add(response.model_copy(update={"cached": False}) if paid_by_us else response, cost)
        if self.cache is None:
            return
        self.cache.queue_call(
            CallRecord(
                model=self.backend.identity, step=call.step, key=key, cache_hit=response.cached,
                prompt_tokens=response.usage.prompt_tokens, completion_tokens=response.usage.completion_tokens,
                latency_s=response.latency_s, attempts=response.attempts, error=response.error,
                cost=None if response.cached else cost,
            )
        )
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        """Group commit: everything that completes in this loop turn shares one transaction."""
        if self._flush_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.cache.flush()
            return
        self._flush_scheduled = True
        loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        self.cache.flush()
