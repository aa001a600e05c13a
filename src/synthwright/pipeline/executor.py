"""Executors run planned steps against a run directory.

The executor owns parallelism and resume; steps only transform rows. `LocalExecutor`
runs batches one after another in this process (LLM steps fan out inside a batch through
the engine's bounded concurrency). A distributed executor maps the same `RowStep.process`
over batches elsewhere, importing its engine inside `run()`.
"""

from __future__ import annotations

import itertools
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field

from synthwright.core.lineage import Row
from synthwright.core.step import BatchResult, RowStep, SourceStep, Stage, StepStats
from synthwright.errors import UserError
from synthwright.pipeline.plan import PlannedStep
from synthwright.pipeline.rundir import RunDirectory


class RunObserver:
    """Told what happens; the CLI shows it, the Python API stays quiet by default."""

    def step_skipped(self, planned: PlannedStep, stats: StepStats) -> None: ...

    def step_started(self, planned: PlannedStep, total_batches: int | None, done_batches: int) -> None: ...

    def batch_finished(self, planned: PlannedStep, result: BatchResult) -> None: ...

    def step_finished(self, planned: PlannedStep, stats: StepStats) -> None: ...

    def request_progress(self, description: str):
        """A display for the LLM requests of one long batch (judges.base.Progress), or None."""
        return None


@dataclass
class StepOutcome:
    name: str
    skipped: bool
    stats: StepStats  # the whole step's counters, batches of earlier runs included
    fresh: StepStats = field(default_factory=StepStats)  # only the batches this run processed


class Executor(ABC):
    def __init__(self, observer: RunObserver | None = None, retry_failed: bool = True):
        self.observer = observer or RunObserver()
        self.retry_failed = retry_failed
        self._fresh: dict[str, StepStats] = {}  # counters of the batches this run processed

    def run(self, plan: list[PlannedStep], rundir: RunDirectory) -> list[StepOutcome]:
        outcomes = []
        digests: dict[str, str] = {}
        incomplete: dict[str, bool] = {}  # step -> rows failed in it or anywhere upstream
        for planned in plan:
            name = planned.step.name
            if isinstance(planned.step, Stage):
                planned.step.input_incomplete = incomplete.get(planned.input, False)
            input_digest = digests.get(planned.input) if planned.input else None
            if rundir.is_current(name, planned.fingerprint, input_digest) and not self._has_failures(rundir, name):
                stats = rundir.merged_stats(name)
                self.observer.step_skipped(planned, stats)
                outcomes.append(StepOutcome(name, True, stats))
            else:
                rundir.start_step(name, planned.fingerprint, input_digest)
                self.run_step(planned, rundir)
                stats = rundir.finish_step(name)
                self.observer.step_finished(planned, stats)
                outcomes.append(StepOutcome(name, False, stats, self._fresh.pop(name, StepStats())))
            digests[name] = rundir.read_state(name)["output_digest"]
            incomplete[name] = incomplete.get(planned.input, False) or sum(outcomes[-1].stats.failed.values()) > 0
        return outcomes

    def batch_done(self, planned: PlannedStep, result: BatchResult) -> None:
        """Every executor reports a finished batch here: counted for this run, then shown."""
        name = planned.step.name
        self._fresh[name] = self._fresh.get(name, StepStats()).merge(result.stats)
        self.observer.batch_finished(planned, result)

    def _has_failures(self, rundir: RunDirectory, name: str) -> bool:
        return self.retry_failed and sum(rundir.merged_stats(name).failed.values()) > 0

    def run_step(self, planned: PlannedStep, rundir: RunDirectory) -> None:
        step = planned.step
        if isinstance(step, SourceStep):
            self.run_source(planned, rundir)
        elif isinstance(step, Stage):
            self.run_stage(planned, rundir)
        elif isinstance(step, RowStep):
            self.run_row_step(planned, rundir)
        else:
            raise TypeError(f"{type(step).__name__} is not a SourceStep, RowStep or Stage")

    @abstractmethod
    def run_source(self, planned: PlannedStep, rundir: RunDirectory) -> None: ...

    @abstractmethod
    def run_row_step(self, planned: PlannedStep, rundir: RunDirectory) -> None: ...

    @abstractmethod
    def run_stage(self, planned: PlannedStep, rundir: RunDirectory) -> None: ...


def batched(rows: Iterator[Row], size: int) -> Iterator[list[Row]]:
    iterator = iter(rows)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def check_columns(planned: PlannedStep, row: Row) -> None:
    """Fail before any work if the step's input lacks a column it needs."""
    missing = [c for c in planned.step.required_columns() if c not in row]
    if missing:
        raise UserError(
            f"Step '{planned.step.name}' needs column(s) {', '.join(missing)}, but its input "
            f"'{planned.input}' has: {', '.join(sorted(k for k in row if k != '_meta'))}.",
            "Point `input:` at a step that makes those columns, or change the step's options.",
        )


class LocalExecutor(Executor):
    """Runs everything in this process, batch by batch, resuming after the last whole batch."""

    def run_source(self, planned: PlannedStep, rundir: RunDirectory) -> None:
        size = planned.batch_size or 1024
        self.observer.step_started(planned, None, 0)
        for index, rows in enumerate(batched(planned.step.read(), size)):
            if rundir.batch_stats(planned.step.name, index) is not None:
                continue
            result = BatchResult(kept=rows, stats=StepStats(rows_in=len(rows), rows_out=len(rows)))
            rundir.write_batch(planned.step.name, index, result)
            self.batch_done(planned, result)

    def run_row_step(self, planned: PlannedStep, rundir: RunDirectory) -> None:
        step: RowStep = planned.step
        name = step.name
        size = planned.batch_size or step.default_batch_size
        total_rows = rundir.count_rows(planned.input)
        total_batches = -(-total_rows // size)
        done = [self._batch_is_done(rundir, name, i) for i in range(total_batches)]
        self.observer.step_started(planned, total_batches, sum(done))
        if any(done):
            step.warm_start(rundir.rows(name))
        for index, rows in enumerate(batched(rundir.rows(planned.input), size)):
            if index == 0:
                check_columns(planned, rows[0])
            if done[index]:
                continue
            started = time.perf_counter()
            result = step.process(rows)
            result.stats.seconds = time.perf_counter() - started
            rundir.write_batch(name, index, result)
            self.batch_done(planned, result)

    def _batch_is_done(self, rundir: RunDirectory, name: str, index: int) -> bool:
        stats = rundir.batch_stats(name, index)
        if stats is None:
            return False
        return not (self.retry_failed and sum(stats.failed.values()) > 0)

    def run_stage(self, planned: PlannedStep, rundir: RunDirectory) -> None:
        self.observer.step_started(planned, None, 0)
        rundir.clear_batches(planned.step.name)  # a stage always runs whole: no part of an interrupted run stays
        rows = rundir.rows(planned.input) if planned.input else iter(())
        started = time.perf_counter()
        for index, part in enumerate(planned.step.run_in_parts(rows)):
            part.stats.seconds = time.perf_counter() - started
            rundir.write_batch(planned.step.name, index, part)
            self.batch_done(planned, part)
            started = time.perf_counter()
