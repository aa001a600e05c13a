"""A progress bar for model calls: rows done, rate, tokens/s, failures, ETA."""

from __future__ import annotations

import time

from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeRemainingColumn

from synthwright.cli.console import err
from synthwright.llm.records import LLMResponse

REFRESH_S = 0.1  # redraw at most this often: a bar must not slow 4,000 requests/s


class RichProgress:
    def __init__(self, description: str):
        self.description = description
        self._progress = Progress(
            SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} rows/s"), TextColumn("{task.fields[tps]} tok/s"),
            TextColumn("[cyan]{task.fields[hits]} cached"), TextColumn("[red]{task.fields[failed]} failed"),
            TimeRemainingColumn(), console=err, transient=False,
        )
        self._task = None
        self._done = self._hits = self._failed = self._tokens = self._pending = 0
        self._started = self._last_draw = 0.0

    def start(self, total: int) -> None:
        self._started = time.perf_counter()
        self._progress.start()
        self._task = self._progress.add_task(self.description, total=total, rate="-", tps="-", hits=0, failed=0)

    def advance(self, response: LLMResponse) -> None:
        self._done += 1
        self._pending += 1
        self._hits += response.cached
        self._failed += not response.ok
        if not response.cached:
            self._tokens += response.usage.completion_tokens
        now = time.perf_counter()
        if now - self._last_draw >= REFRESH_S:
            self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = max(now - self._started, 1e-9)
        self._progress.update(
            self._task, advance=self._pending, rate=f"{self._done / elapsed:,.1f}", tps=f"{self._tokens / elapsed:,.0f}",
            hits=self._hits, failed=self._failed,
        )
        self._pending = 0
        self._last_draw = now

    def finish(self) -> None:
        if self._task is not None:
            self._draw(time.perf_counter())
        self._progress.stop()
