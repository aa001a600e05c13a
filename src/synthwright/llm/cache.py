"""SQLite request cache and call log.

The cache maps `LLMRequest.cache_key(model identity)` to the stored response, so a
request that completed once is never sent again, across crashes and reruns. While a request
is in flight its key is claimed, so another process sharing the cache waits for that answer
instead of sending the same request (a dead process's claims are taken over). The call log
keeps one row per call (sent or served from cache) for usage accounting and audits.

Writes are group-committed: the engine queues results and flushes once per event-loop
turn, so a burst of completions costs one transaction, not one each. WAL mode makes a
commit survive `kill -9` of the writing process.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from synthwright.errors import UserError
from synthwright.llm.records import LLMResponse

# Named, append-only migrations: never edit one that has shipped, add a new one.
MIGRATIONS: list[tuple[str, str]] = [
    (
        "001_responses_and_calls",
        """
        CREATE TABLE responses (
            key TEXT PRIMARY KEY,
            model TEXT NOT NULL,
            response TEXT NOT NULL,
            created REAL NOT NULL
        );
        CREATE TABLE calls (
            id INTEGER PRIMARY KEY,
            ts REAL NOT NULL,
            model TEXT NOT NULL,
            step TEXT NOT NULL,
            key TEXT NOT NULL,
            cache_hit INTEGER NOT NULL,
            prompt_tokens INTEGER NOT NULL,
            completion_tokens INTEGER NOT NULL,
            latency_s REAL NOT NULL,
            attempts INTEGER NOT NULL,
            error TEXT,
            cost REAL
        );
        CREATE INDEX calls_model_step ON calls (model, step);
        """,
    ),
    # Who paid for a response (a run folder's step): when a killed run's step runs again, the
    # answers it had already paid for count as its own sends, not as free cache hits.
    ("002_response_owner", "ALTER TABLE responses ADD COLUMN owner TEXT"),
    # Requests in flight, by the process sending them (see RequestCache.claim).
    ("003_claims", "CREATE TABLE claims (key TEXT PRIMARY KEY, holder TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL, ts REAL NOT NULL)"),
]

HOST = socket.gethostname()
# A claim this old is stale whoever holds it: longer than any request with all its retries
# (6 attempts of 120 s plus backoff), and a bound on waiting for a host we cannot ask.
STALE_CLAIM_S = 1800.0


@dataclass(frozen=True)
class CallRecord:
    model: str
    step: str
    key: str
    cache_hit: bool
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    attempts: int
    error: str | None
    cost: float | None


class RequestCache:
    """Responses by request key, plus the call log. One file, safe for several processes."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = self._open_shared()
        except (sqlite3.DatabaseError, OSError) as exc:
            raise UserError(
                f"The request cache at {self.path} cannot be opened ({exc}).",
                "Point SYNTHWRIGHT_CACHE (or --cache) at a writable file, or move the damaged file away.",
            ) from None
        self._pending_responses: list[tuple[str, str, str, float, str | None]] = []
        self._pending_calls: list[tuple] = []
        self._pending_releases: list[tuple[str, str]] = []
        self.holder = uuid.uuid4().hex  # this cache object: one process may open several

    def _open_shared(self, patience_s: float = 60.0) -> sqlite3.Connection:
        """Connect, switch to WAL and migrate, waiting out other processes doing the same.

        Several workers (Ray tasks, parallel runs) often open a new cache file at once. Switching
        the journal mode and the first schema writes can answer "database is locked" at once,
        without waiting for the busy timeout (SQLite refuses to wait where waiting could
        deadlock), so the whole opening is retried with a short backoff.
        """
        deadline = time.monotonic() + patience_s
        delay = 0.05
        while True:
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                self._db = db
                self._migrate()
                return db
            except sqlite3.Error as exc:
                db.close()
                busy = isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc))
                if not busy or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def _migrate(self) -> None:
        self._db.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied REAL NOT NULL)")
        done = {row[0] for row in self._db.execute("SELECT name FROM migrations")}
        for name, sql in MIGRATIONS:
            if name in done:
                continue
            self._db.execute("BEGIN IMMEDIATE")
            try:
                # Another process may have applied it while we waited for the lock.
                if self._db.execute("SELECT 1 FROM migrations WHERE name=?", (name,)).fetchone() is None:
                    for statement in filter(str.strip, sql.split(";")):
                        self._db.execute(statement)
                    self._db.execute("INSERT INTO migrations VALUES (?, ?)", (name, time.time()))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # -- responses -------------------------------------------------------------------
    def get(self, key: str) -> LLMResponse | None:
        found = self.get_with_owner(key)
        return found[0] if found else None

    def get_with_owner(self, key: str) -> tuple[LLMResponse, str | None] | None:
        """The stored response and who paid for it (see `queue_response`), or None."""
        row = self._db.execute("SELECT response, owner FROM responses WHERE key=?", (key,)).fetchone()
        return (LLMResponse.from_cache_json(row[0]), row[1]) if row else None

    def queue_response(self, key: str, model: str, response: LLMResponse, owner: str | None = None) -> None:
        """Remember a completed response; durable at the next `flush()`. `owner` names the
        work that paid for it (a run folder's step), so that work can count it as its own."""
        self._pending_responses.append((key, model, response.to_cache_json(), time.time(), owner))

    # -- requests in flight ----------------------------------------------------------------
    def claim(self, key: str) -> bool:
        """Claim `key` for sending; False while another live process has it claimed. Two
        processes sharing the cache then never send the same request at once."""
        if self._held_by_another(key):  # a plain read first: waiting takes no write lock
            return False
        self._db.execute("BEGIN IMMEDIATE")
        try:
            free = not self._held_by_another(key)
            if free:
                self._db.execute("INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?, ?)", (key, self.holder, HOST, os.getpid(), time.time()))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return free

    def _held_by_another(self, key: str) -> bool:
        row = self._db.execute("SELECT holder, host, pid, ts FROM claims WHERE key=?", (key,)).fetchone()
        return row is not None and row[0] != self.holder and _claim_alive(*row[1:])

    def queue_release(self, key: str) -> None:
        """Give up the claim on `key` at the next `flush()`, with its response (if any)."""
        self._pending_releases.append((key, self.holder))

    def count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    # -- call log ----------------------------------------------------------------------
    def queue_call(self, call: CallRecord) -> None:
        self._pending_calls.append(
            (
                time.time(), call.model, call.step, call.key, int(call.cache_hit), call.prompt_tokens,
                call.completion_tokens, call.latency_s, call.attempts, call.error, call.cost,
            )
        )

    def calls_summary(self, since: float | None = None) -> list[dict]:
        """Usage per (model, step): requests sent, cache hits, tokens, failures, cost."""
        sql = """
            SELECT model, step,
                   SUM(1 - cache_hit) AS sent, SUM(cache_hit) AS cache_hits,
                   SUM(CASE WHEN cache_hit = 0 THEN prompt_tokens ELSE 0 END) AS prompt_tokens,
                   SUM(CASE WHEN cache_hit = 0 THEN completion_tokens ELSE 0 END) AS completion_tokens,
                   SUM(error IS NOT NULL) AS failures,
                   SUM(CASE WHEN cache_hit = 0 THEN COALESCE(cost, 0) ELSE 0 END) AS cost,
                   AVG(CASE WHEN cache_hit = 0 THEN latency_s END) AS mean_latency_s
            FROM calls WHERE ts >= ? GROUP BY model, step ORDER BY model, step
        """
        cursor = self._db.execute(sql, (since or 0.0,))
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor]

    def first_latencies(self, keys: list[str]) -> dict[str, float]:
        """Seconds each request took when it was really sent (not served from the cache):
        what a cached answer cost once, for reporting a model's speed from a rerun."""
        found: dict[str, float] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start: start + 500]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT key, AVG(latency_s) FROM calls WHERE cache_hit = 0 AND error IS NULL AND key IN ({marks}) GROUP BY key"
            found.update(dict(self._db.execute(sql, chunk).fetchall()))
        return found

    # -- durability ----------------------------------------------------------------------
    def flush(self) -> None:
        """Write everything queued in one transaction."""
        if not self._pending_responses and not self._pending_calls and not self._pending_releases:
            return
        responses, calls, releases = self._pending_responses, self._pending_calls, self._pending_releases
        self._pending_responses, self._pending_calls, self._pending_releases = [], [], []
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(
                "INSERT OR REPLACE INTO responses (key, model, response, created, owner) VALUES (?, ?, ?, ?, ?)", responses
            )
            self._db.executemany(
                "INSERT INTO calls (ts, model, step, key, cache_hit, prompt_tokens, completion_tokens,"
                " latency_s, attempts, error, cost) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                calls,
            )
            self._db.executemany("DELETE FROM claims WHERE key=? AND holder=?", releases)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.flush()
        self._db.execute("DELETE FROM claims WHERE holder=?", (self.holder,))  # e.g. after Ctrl-C
        self._db.close()


def _claim_alive(host: str, pid: int, ts: float) -> bool:
    """Whether the process that claimed a request may still be sending it."""
    if time.time() - ts > STALE_CLAIM_S:
        return False
    if host != HOST:
        return True  # another machine's process cannot be asked; its claim ages out
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False  # killed (kill -9 included): its claims are free
    except PermissionError:
        pass  # alive, another user's
    return True
