"""A deliberately misbehaving OpenAI-compatible HTTP server for tests.

The stub answers ``POST /v1/chat/completions`` and ``POST /v1/completions``
with deterministic, well-formed OpenAI JSON, and can be told (through a
:class:`FaultPlan`) to answer some requests with rate limits, server errors,
hangs, malformed bodies or truncated bodies.  It counts what it received,
answered and faulted, so tests can assert on retry behaviour exactly.

Two ways to run it:

* in-process, on a background thread with its own event loop::

      with StubServer(plan=FaultPlan(rate_limit=0.2, seed=1)) as srv:
          client = make_client(srv.base_url)   # "http://127.0.0.1:PORT/v1"
          ...
          assert srv.stats()["total_answered"] == 10

* as a separate process (what a benchmark wants, so the server does not share
  the client's event loop)::

      python -m tests.support.openai_stub --port 0 --delay 0.1 --rate-limit 0.1

  which prints ``READY http://127.0.0.1:PORT/v1`` once it is listening.

Besides the OpenAI routes there are three control routes: ``GET /stats``
(the counters as JSON), ``POST /release`` (open the answer gate) and
``POST /reset_times`` (forget the first-receipt and last-answer times, so a
benchmark can time its next client from the server's side).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import re
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, fields
from typing import Any, Callable, Optional

from aiohttp import web

DEFAULT_MODEL = "stub-model"

# Names used in the ``faults`` counter.
RATE_LIMIT = "rate_limit"
SERVER_ERROR = "server_error"
HANG = "hang"
MALFORMED = "malformed"
TRUNCATED = "truncated"
OVER_CAPACITY = "over_capacity"
FAIL_FIRST_N = "fail_first_n"
ALWAYS_FAIL = "always_fail"

# The faults drawn at random, in the order their rates are laid end to end
# on [0, 1) when a request's draw is mapped to a fault.
RANDOM_FAULTS = (RATE_LIMIT, SERVER_ERROR, HANG, MALFORMED, TRUNCATED)

JSON_TYPE = "application/json"
MALFORMED_BODY = b'{"choices": ['
_TOKEN_RE = re.compile(r"\s*\S+|\s+")


@dataclass
class FaultPlan:
    """What the stub should do wrong, and how often.

    Rates are fractions of attempts in [0, 1]; their sum must not exceed 1.
    Which attempt gets which random fault depends only on ``seed``, the
    request body and how many times that body has been received, so a run is
    reproducible whatever order concurrent requests arrive in.
    """

    rate_limit: float = 0.0
    retry_after_s: float = 0.05
    server_error: float = 0.0
    hang: float = 0.0
    hang_s: float = 30.0
    malformed: float = 0.0
    truncated: float = 0.0
    fail_first_n_attempts_per_request: int = 0
    always_fail_matching: Optional[str] = None
    pause_after_n_answers: Optional[int] = None
    # A provider's concurrency limit: a request that arrives while this many are already
    # being handled is answered 429 at once (counted as ``over_capacity``).
    max_in_flight: Optional[int] = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name in RANDOM_FAULTS:
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} rate must be within [0, 1], got {rate}")
        if sum(getattr(self, name) for name in RANDOM_FAULTS) > 1.0 + 1e-9:
            raise ValueError("fault rates must add up to at most 1")
        if self.retry_after_s < 0 or self.hang_s < 0:
            raise ValueError("retry_after_s and hang_s must be >= 0")
        if self.fail_first_n_attempts_per_request < 0:
            raise ValueError("fail_first_n_attempts_per_request must be >= 0")
        if self.pause_after_n_answers is not None and self.pause_after_n_answers < 0:
            raise ValueError("pause_after_n_answers must be >= 0")
        if self.max_in_flight is not None and self.max_in_flight < 1:
            raise ValueError("max_in_flight must be >= 1")

    def draw(self, key: str, attempt: int) -> Optional[str]:
        """The random fault (or None) for the ``attempt``-th receipt of ``key``."""
        x = _unit_interval(self.seed, key, attempt)
        for name in RANDOM_FAULTS:
            rate = getattr(self, name)
            if x < rate:
                return name
            x -= rate
        return None

    def has_random_faults(self) -> bool:
        return any(getattr(self, name) > 0 for name in RANDOM_FAULTS)


def canonical_json(body: dict) -> bytes:
    """The body as sorted, compact JSON, minus ``stream`` (which does not
    change what is being asked for)."""
    trimmed = {k: v for k, v in body.items() if k != "stream"}
    return json.dumps(trimmed, sort_keys=True, separators=(",", ":")).encode()


def request_key(body: dict) -> str:
    """The key the counters use for a request body (sha256 hex)."""
    return hashlib.sha256(canonical_json(body)).hexdigest()


def _unit_interval(seed: int, key: str, attempt: int) -> float:
    """A reproducible pseudo-random float in [0, 1) for one attempt."""
    digest = hashlib.blake2b(f"{seed}:{key}:{attempt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


# --------------------------------------------------------------------------
# Counters
# --------------------------------------------------------------------------


class StubCounters:
    """Request counters, written on the server loop and read from any thread.

    A lock guards every update and snapshot: copying a Counter while another
    thread inserts into it can fail with "dictionary changed size".
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.received: Counter[str] = Counter()
        self.answered: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.rejected = 0  # requests that were not valid JSON objects
        self.waiting = 0  # requests currently held at the gate
        self.gave_up = 0  # requests whose client went away while they were held at the gate
        # Wall-clock times (time.time()) of the first receipt and the last answer, so a
        # benchmark can time a client from the server's side, whatever process it runs in.
        self.first_received_at: Optional[float] = None
        self.last_answered_at: Optional[float] = None

    def note_received(self, key: str) -> int:
        """Count a receipt; returns how many times ``key`` has now been seen."""
        with self._lock:
            if self.first_received_at is None:
                self.first_received_at = time.time()
            self.received[key] += 1
            return self.received[key]

    def note_answered(self, key: str) -> None:
        with self._lock:
            self.answered[key] += 1
            self.last_answered_at = time.time()

    def reset_times(self) -> None:
        with self._lock:
            self.first_received_at = self.last_answered_at = None

    def note_fault(self, name: str) -> None:
        with self._lock:
            self.faults[name] += 1

    def note_rejected(self) -> None:
        with self._lock:
            self.rejected += 1

    def note_waiting(self, delta: int) -> None:
        with self._lock:
            self.waiting += delta

    def note_gave_up(self) -> None:
        with self._lock:
            self.gave_up += 1

    def snapshot(self) -> dict[str, Any]:
        """A consistent, JSON-serialisable copy of all counters."""
        with self._lock:
            return {
                "received": Counter(self.received),
                "answered": Counter(self.answered),
                "faults": Counter(self.faults),
                "total_received": sum(self.received.values()),
                "total_answered": sum(self.answered.values()),
                "total_faults": sum(self.faults.values()),
                "rejected": self.rejected,
                "waiting": self.waiting,
                "gave_up": self.gave_up,
                "first_received_at": self.first_received_at,
                "last_answered_at": self.last_answered_at,
            }


# --------------------------------------------------------------------------
# Response bodies
# --------------------------------------------------------------------------


def _last_user_text(body: dict) -> str:
    """The last user message of a chat body, or the prompt of a completion."""
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                return _content_text(message.get("content"))
        return ""
    prompt = body.get("prompt", "")
    if isinstance(prompt, list):
        prompt = prompt[-1] if prompt else ""
    return prompt if isinstance(prompt, str) else ""


def _content_text(content: Any) -> str:
    """Text of a message content: a string or a list of typed parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part.get("text", "") for part in content if isinstance(part, dict)
        )
    return ""


def _answer_text(canonical: bytes, user_text: str) -> str:
    digest = hashlib.sha1(canonical).hexdigest()[:10]
    return f"echo: {digest} {user_text[:40]}"


def _usage(canonical: bytes, completion_tokens: int) -> dict[str, int]:
    # ~4 bytes per token, as a rough real tokenizer would give: cheap, plausible.
    prompt_tokens = max(1, len(canonical) // 4)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _logprobs_content(tokens: list[str], top_k: int) -> list[dict[str, Any]]:
    """Chat-style logprobs: the chosen token is always the most likely one."""
    content = []
    for i, token in enumerate(tokens):
        logprob = -0.01 - 0.05 * (i % 7)
        top = [{"token": token, "logprob": logprob, "bytes": list(token.encode())}]
        for j in range(1, top_k):
            alt = f"{token.strip()}_{j}"
            top.append({"token": alt, "logprob": logprob - 1.5 * j, "bytes": list(alt.encode())})
        content.append({
            "token": token,
            "logprob": logprob,
            "bytes": list(token.encode()),
            "top_logprobs": top,
        })
    return content


def _chat_choice(body: dict, text: str, tokens: list[str]) -> dict[str, Any]:
    logprobs = None
    if body.get("logprobs"):
        top_k = int(body.get("top_logprobs") or 0)
        logprobs = {"content": _logprobs_content(tokens, top_k)}
    return {
        "index": 0,
        "message": {"role": "assistant", "content": text},
        "logprobs": logprobs,
        "finish_reason": "stop",
    }


def _text_choice(body: dict, text: str, tokens: list[str]) -> dict[str, Any]:
    return {"index": 0, "text": text, "logprobs": None, "finish_reason": "stop"}


def _error_body(message: str, err_type: str, code: Optional[str]) -> bytes:
    error = {"message": message, "type": err_type, "param": None, "code": code}
    return json.dumps({"error": error}).encode()


# (object name, id prefix, choice builder) per completion route.
_CHAT = ("chat.completion", "chatcmpl-", _chat_choice)
_TEXT = ("text_completion", "cmpl-", _text_choice)


# --------------------------------------------------------------------------
# The aiohttp application
# --------------------------------------------------------------------------


class StubApp:
    """The server proper. Every method runs on the event loop that serves it;
    :class:`StubServer` wraps it for use from other threads."""

    def __init__(
        self,
        plan: Optional[FaultPlan] = None,
        delay_s: float = 0.0,
        model: str = DEFAULT_MODEL,
    ) -> None:
        self.plan = plan or FaultPlan()
        self.delay_s = delay_s
        self.model = model
        self.counters = StubCounters()
        self._random_faults = self.plan.has_random_faults()
        self._serial = 0
        self._in_flight = 0  # completion requests being handled now (for max_in_flight)
        self._runner: Optional[web.AppRunner] = None
        # Gate state: answers admitted so far, and whether it has been opened
        # for good.  ``_wake`` is replaced every time it fires so that waiters
        # re-check the state and then wait on the fresh event.
        self._admitted = 0
        self._released = False
        self._stopping = False
        self._wake = asyncio.Event()
        self._precompute()

    def _precompute(self) -> None:
        """Build the fixed responses' bytes once instead of per request."""
        retry_after = f"{self.plan.retry_after_s:g}"
        self._rate_limit_body = _error_body(
            f"Rate limit reached (stub). Retry after {retry_after}s.",
            "requests", "rate_limit_exceeded",
        )
        self._rate_limit_headers = {"Retry-After": retry_after}
        self._server_error_body = _error_body(
            "The server had an error while processing your request (stub).",
            "server_error", None,
        )
        self._models_body = json.dumps({
            "object": "list",
            "data": [{"id": self.model, "object": "model", "created": 0, "owned_by": "stub"}],
        }).encode()

    # ---- lifecycle -------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle_chat)
        app.router.add_post("/v1/completions", self._handle_text)
        app.router.add_get("/v1/models", self._handle_models)
        app.router.add_get("/stats", self._handle_stats)
        app.router.add_post("/release", self._handle_release)
        app.router.add_post("/reset_times", self._handle_reset_times)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Start listening; returns the bound port."""
        # handler_cancellation: a client that gives up (e.g. times out on a
        # hang) cancels its handler, so it is neither answered nor counted.
        # A short shutdown_timeout keeps stop() quick when handlers linger.
        self._runner = web.AppRunner(
            self.make_app(), access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        return self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Stop serving. Requests held at the gate or hanging are dropped
        without an answer."""
        self._stopping = True
        self._wake_waiters()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def release(self) -> None:
        """Open the answer gate for good."""
        self._released = True
        self._wake_waiters()

    def _wake_waiters(self) -> None:
        self._wake.set()
        self._wake = asyncio.Event()

    # ---- control routes --------------------------------------------------

    async def _handle_models(self, request: web.Request) -> web.Response:
        return web.Response(body=self._models_body, content_type=JSON_TYPE)

    async def _handle_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.counters.snapshot())

    async def _handle_reset_times(self, request: web.Request) -> web.Response:
        self.counters.reset_times()
        return web.json_response({"reset": True})

    async def _handle_release(self, request: web.Request) -> web.Response:
        self.release()
        return web.json_response({"released": True})

    # ---- completion routes -----------------------------------------------

    async def _handle_chat(self, request: web.Request) -> web.StreamResponse:
        return await self._handle_completion(request, _CHAT)

    async def _handle_text(self, request: web.Request) -> web.StreamResponse:
        return await self._handle_completion(request, _TEXT)

    async def _handle_completion(self, request: web.Request, route: tuple) -> web.StreamResponse:
        limit = self.plan.max_in_flight
        if limit is not None and self._in_flight >= limit:
            self.counters.note_fault(OVER_CAPACITY)
            return web.Response(status=429, body=self._rate_limit_body,
                                content_type=JSON_TYPE, headers=self._rate_limit_headers)
        self._in_flight += 1
        try:
            return await self._handle_admitted(request, route)
        finally:
            self._in_flight -= 1

    async def _handle_admitted(self, request: web.Request, route: tuple) -> web.StreamResponse:
        body = await self._read_body(request)
        if isinstance(body, web.Response):
            return body
        canonical = canonical_json(body)
        key = hashlib.sha256(canonical).hexdigest()
        attempt = self.counters.note_received(key)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)

        fault = self._choose_fault(body, key, attempt)
        if fault is not None:
            self.counters.note_fault(fault)
            response = await self._apply_fault(fault, request)
            if response is not None:
                return response

        if not await self._pass_gate():
            return self._drop(request)
        return await self._answer(request, body, canonical, key, route)

    async def _read_body(self, request: web.Request) -> dict | web.Response:
        """The parsed JSON object, or a 400 response to send instead."""
        try:
            body = json.loads(await request.read())
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self.counters.note_rejected()
            return self._error(400, "Request body must be a JSON object.", "invalid_request_error")
        if body.get("stream"):
            self.counters.note_rejected()
            return self._error(400, "The stub does not support stream=true.", "invalid_request_error")
        return body

    def _choose_fault(self, body: dict, key: str, attempt: int) -> Optional[str]:
        plan = self.plan
        if plan.always_fail_matching is not None and plan.always_fail_matching in _last_user_text(body):
            return ALWAYS_FAIL
        if attempt <= plan.fail_first_n_attempts_per_request:
            return FAIL_FIRST_N
        if self._random_faults:
            return plan.draw(key, attempt)
        return None

    async def _apply_fault(self, fault: str, request: web.Request) -> Optional[web.StreamResponse]:
        """The faulty response to send, or None to go on and answer normally
        (a hang, once it has slept)."""
        if fault == RATE_LIMIT:
            return web.Response(
                status=429, body=self._rate_limit_body,
                content_type=JSON_TYPE, headers=self._rate_limit_headers,
            )
        if fault == MALFORMED:
            return web.Response(status=200, body=MALFORMED_BODY, content_type=JSON_TYPE)
        if fault == TRUNCATED:
            return await self._send_truncated(request)
        if fault == HANG:
            return None if await self._sleep_unless_stopped(self.plan.hang_s) else self._drop(request)
        # SERVER_ERROR, FAIL_FIRST_N and ALWAYS_FAIL all look alike to a client.
        return web.Response(status=500, body=self._server_error_body, content_type=JSON_TYPE)

    async def _send_truncated(self, request: web.Request) -> web.StreamResponse:
        """Promise a long body, send part of it, then hang up: the client
        sees a 200 whose payload ends early."""
        partial = b'{"id": "chatcmpl-truncated", "object": "chat.completion", "choi'
        response = web.StreamResponse(status=200)
        response.content_type = JSON_TYPE
        response.content_length = len(partial) + 512
        await response.prepare(request)
        await response.write(partial)
        # close() flushes what is buffered before closing the socket.  When
        # aiohttp then tries to finish the response it meets the closed
        # transport and treats it as a client disconnect, quietly.
        request.transport.close()
        return response

    def _drop(self, request: web.Request) -> web.Response:
        """Close the connection without answering (used while stopping)."""
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=503)  # never reaches the client

    async def _sleep_unless_stopped(self, seconds: float) -> bool:
        """Sleep, but wake early if the server stops. True if not stopped."""
        deadline = time.monotonic() + seconds
        while not self._stopping:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except asyncio.TimeoutError:
                return True
        return False

    # ---- the gate and the answer -----------------------------------------

    def _gate_closed(self) -> bool:
        limit = self.plan.pause_after_n_answers
        return limit is not None and not self._released and self._admitted >= limit

    async def _pass_gate(self) -> bool:
        """Wait while the gate is closed. False if the server stopped.

        Answers are admitted (counted) before they are sent, so that with
        many requests in flight no more than ``pause_after_n_answers`` get
        through; an answer that then fails to send gives its slot back.
        """
        if self._gate_closed() and not self._stopping:
            self.counters.note_waiting(+1)
            try:
                while self._gate_closed() and not self._stopping:
                    await self._wake.wait()
            except asyncio.CancelledError:  # the client disconnected (handler_cancellation)
                self.counters.note_gave_up()
                raise
            finally:
                self.counters.note_waiting(-1)
        if self._stopping:
            return False
        self._admitted += 1
        return True

    async def _answer(
        self, request: web.Request, body: dict, canonical: bytes, key: str, route: tuple
    ) -> web.Response:
        response = web.Response(
            body=self._completion_bytes(body, canonical, route), content_type=JSON_TYPE
        )
        try:
            # Send it here rather than returning it, so that "answered" only
            # counts responses that were actually written out.
            await response.prepare(request)
            await response.write_eof()
        except BaseException:
            self._admitted -= 1
            self._wake_waiters()
            raise
        self.counters.note_answered(key)
        return response

    def _completion_bytes(self, body: dict, canonical: bytes, route: tuple) -> bytes:
        obj_name, id_prefix, make_choice = route
        text = _answer_text(canonical, _last_user_text(body))
        tokens = _TOKEN_RE.findall(text)
        self._serial += 1
        payload = {
            "id": f"{id_prefix}stub{self._serial}",
            "object": obj_name,
            "created": int(time.time()),
            "model": body.get("model") or self.model,
            "choices": [make_choice(body, text, tokens)],
            "usage": _usage(canonical, len(tokens)),
        }
        return json.dumps(payload).encode()

    def _error(self, status: int, message: str, err_type: str) -> web.Response:
        return web.Response(
            status=status, body=_error_body(message, err_type, None), content_type=JSON_TYPE
        )


# --------------------------------------------------------------------------
# In-process server on a background thread
# --------------------------------------------------------------------------


class StubServer:
    """Runs a :class:`StubApp` on its own thread and event loop.

    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        plan: Optional[FaultPlan] = None,
        delay_s: float = 0.0,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        model: str = DEFAULT_MODEL,
    ) -> None:
        self.plan = plan or FaultPlan()
        self.delay_s = delay_s
        self.host = host
        self.model = model
        self.port = port
        self._app: Optional[StubApp] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, e.g. ``http://127.0.0.1:PORT/v1``."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def root_url(self) -> str:
        """The server root, where ``/stats`` and ``/release`` live."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> "StubServer":
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._run, args=(ready, failure), name="openai-stub", daemon=True
        )
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            raise failure[0]
        return self

    def _run(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            # The app must be built on this loop: it owns asyncio primitives.
            self._app = StubApp(self.plan, self.delay_s, self.model)
            self.port = loop.run_until_complete(self._app.start(self.host, self.port))
        except BaseException as exc:  # report to start() rather than die silently
            failure.append(exc)
            ready.set()
            loop.close()
            return
        self._loop = loop
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    def stop(self) -> None:
        """Stop serving and join the thread. Safe to call twice."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._app.stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=10)

    def __enter__(self) -> "StubServer":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def stats(self) -> dict[str, Any]:
        """Counters snapshot; see :meth:`StubCounters.snapshot`."""
        if self._app is None:
            raise RuntimeError("the stub server was never started")
        return self._app.counters.snapshot()

    @property
    def received(self) -> Counter[str]:
        return self.stats()["received"]

    @property
    def answered(self) -> Counter[str]:
        return self.stats()["answered"]

    @property
    def faults(self) -> Counter[str]:
        return self.stats()["faults"]

    def release(self) -> None:
        """Open the answer gate (see ``FaultPlan.pause_after_n_answers``)."""
        self._call_on_loop(self._app.release)

    def _call_on_loop(self, fn: Callable[[], None]) -> None:
        if self._loop is None:
            raise RuntimeError("the stub server is not running")
        done = threading.Event()

        def call() -> None:
            try:
                fn()
            finally:
                done.set()

        self._loop.call_soon_threadsafe(call)
        done.wait(timeout=10)


# --------------------------------------------------------------------------
# Command line: python -m tests.support.openai_stub
# --------------------------------------------------------------------------


def build_arg_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tests.support.openai_stub",
        description="Run the misbehaving OpenAI-compatible stub server.",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--delay", type=float, default=0.0, dest="delay_s",
                   help="seconds to sleep before every response")
    p.add_argument("--model", default=DEFAULT_MODEL)
    # One flag per FaultPlan field; dest is the field name.
    p.add_argument("--rate-limit", type=float, default=0.0, dest="rate_limit")
    p.add_argument("--retry-after", type=float, default=0.05, dest="retry_after_s")
    p.add_argument("--server-error", type=float, default=0.0, dest="server_error")
    p.add_argument("--hang", type=float, default=0.0, dest="hang")
    p.add_argument("--hang-s", type=float, default=30.0, dest="hang_s")
    p.add_argument("--malformed", type=float, default=0.0, dest="malformed")
    p.add_argument("--truncated", type=float, default=0.0, dest="truncated")
    p.add_argument("--fail-first-n", type=int, default=0,
                   dest="fail_first_n_attempts_per_request")
    p.add_argument("--always-fail-matching", default=None, dest="always_fail_matching")
    p.add_argument("--pause-after-n-answers", type=int, default=None,
                   dest="pause_after_n_answers")
    p.add_argument("--max-in-flight", type=int, default=None, dest="max_in_flight",
                   help="answer 429 to a request that arrives while this many are being handled")
    p.add_argument("--seed", type=int, default=0, dest="seed")
    return p


def plan_from_args(args: argparse.Namespace) -> FaultPlan:
    return FaultPlan(**{f.name: getattr(args, f.name) for f in fields(FaultPlan)})


async def serve(args: argparse.Namespace) -> None:
    """Serve until SIGINT or SIGTERM."""
    app = StubApp(plan_from_args(args), args.delay_s, args.model)
    port = await app.start(args.host, args.port)
    print(f"READY http://{args.host}:{port}/v1", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await app.stop()


def main(argv: Optional[list[str]] = None) -> None:
    asyncio.run(serve(build_arg_parser().parse_args(argv)))


if __name__ == "__main__":
    main()
