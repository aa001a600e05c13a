"""Progress of one long phase of work inside a step (encoding a corpus, searching it, scoring
queries) on the display the run's observer hands out (StepContext.request_progress): a live
bar on a terminal, elsewhere a plain line with rate and ETA at most every 30 s.

Work is counted in units ("documents", "queries"); call `advance` after each small block, so
a line can come out during a long phase, not only at its end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: description -> a display with start(total), advance(done), finish(); or None (quiet).
ProgressFactory = Callable[[str], Any]


@dataclass(frozen=True)
class Done:
    """Units of work done, told to a display made for LLM responses: never cached, never failed.
    A block counts as one step of the display's pace, so its rate and ETA are per unit of work,
    not per call."""

    unit: str
    count: int = 1
    cached: bool = False
    ok: bool = True


class Phase:
    """One phase's counter. Without a factory (a library call, a test) it stays quiet."""

    def __init__(self, factory: ProgressFactory | None, description: str, total: int, unit: str):
        self.display = factory(description) if factory is not None else None
        self._unit = unit
        if self.display is not None:
            self.display.start(total)

    def advance(self, count: int = 1) -> None:
        if self.display is not None and count > 0:
            self.display.advance(Done(self._unit, count))

    def finish(self) -> None:
        if self.display is not None:
            self.display.finish()

    def __enter__(self) -> Phase:
        return self

    def __exit__(self, *_: Any) -> None:
        self.finish()
