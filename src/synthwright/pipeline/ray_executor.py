"""Run a pipeline on Ray: `synthwright run PIPELINE --executor ray [--ray-address ADDR]`.

The same steps and the same run directory as the local executor; only where batches run
changes. The driver stays the only writer of the run directory: it reads input batches,
hands them to Ray, and writes each batch that comes back as one shard. So:

- a worker killed mid-batch loses nothing: Ray runs the task again, and the requests it
  had completed are answered from the request cache (SQLite in WAL mode with a busy
  timeout, so the worker processes of one machine share it safely);
- a killed driver resumes like a local run: written batches are skipped.

How each kind of step runs:

- row steps: one Ray task per batch, at most `max_in_flight` submitted at a time. The
  concurrency budget of a model endpoint (`--concurrency`, else 64) is split among the
  tasks that can run at once, so N workers do not send N times as many requests;
- row steps with state across batches (a novelty gate): one actor sees the batches in
  order; if it dies, a new one is warm-started from the batches already written;
- stages (dedup, score recovery, training): one Ray task fed the input from the object
  store; stages that write a file the user reads (exports, reports) run in the driver.
"""

from __future__ import annotations

import atexit
import logging
import time
from collections import deque
from collections.abc import Iterable, Iterator
from functools import cache
from typing import Any

from synthwright.core.lineage import Row
from synthwright.core.step import BatchResult, RowStep, Stage
from synthwright.errors import SynthwrightError, require_module
from synthwright.pipeline.executor import LocalExecutor, RunObserver, batched, check_columns
from synthwright.pipeline.plan import PlannedStep
from synthwright.pipeline.rundir import RunDirectory

DEFAULT_ENDPOINT_CONCURRENCY = 64  # requests in flight per model endpoint, all workers together
STAGE_CHUNK_ROWS = 4096  # a stage's input goes to the object store in chunks of this many rows
ACTOR_RESTARTS = 3  # how often a stateful step's actor may die before the run gives up


def import_ray():
    return require_module("ray", "The Ray executor (--executor ray)", "'synthwright[ray]'")


# -- what runs on the workers -------------------------------------------------------------------
_WORKER_CONTEXTS: dict[str, Any] = {}  # this worker process's first context of each run, by its settings


def use_worker_handles(context, max_concurrency: int) -> None:
    """Give a task's context the engines this worker keeps for its run. A step arrives pickled
    without open handles (see `StepContext.__getstate__`), once per task; sharing one set of
    handles per run's settings keeps one engine per model per worker, so what its limiter learnt
    about a provider holds from one batch to the next, as in a local run."""
    context.max_concurrency = max_concurrency
    settings = sorted((name, value) for name, value in vars(context).items() if not name.startswith("_") and name != "progress_factory")
    if not _WORKER_CONTEXTS:
        atexit.register(_close_worker_contexts)  # the engines' connections, when the worker ends
    kept = _WORKER_CONTEXTS.setdefault(repr(settings), context)
    if kept is not context:
        context.use_handles_of(kept)


def _close_worker_contexts() -> None:
    for context in _WORKER_CONTEXTS.values():
        context.close()
    _WORKER_CONTEXTS.clear()


def process_batch(step: RowStep, rows: list[Row], max_concurrency: int) -> BatchResult:
    """One batch of a row step, in a worker, on the worker's engines for the run (they flush the
    request cache before they return, so the batch's answers are stored when it counts as done)."""
    use_worker_handles(step.context, max_concurrency)
    started = time.perf_counter()
    result = step.process(rows)
    result.stats.seconds = time.perf_counter() - started
    return result


def run_stage(step: Stage, chunks: list) -> BatchResult:
    """A whole stage in one worker; its input is fetched chunk by chunk as it reads."""
    ray = import_ray()
    started = time.perf_counter()
    try:
        result = step.run(row for ref in chunks for row in ray.get(ref))
    finally:
        step.context.close()
    result.stats.seconds = time.perf_counter() - started
    return result


class StatefulStep:
    """A row step whose batches depend on earlier ones, kept alive in one Ray actor."""

    def __init__(self, step: RowStep, kept_chunks: list, max_concurrency: int):
        step.context.max_concurrency = max_concurrency
        if kept_chunks:
            ray = import_ray()
            step.warm_start(row for ref in kept_chunks for row in ray.get(ref))
        self.step = step

    def process(self, rows: list[Row]) -> BatchResult:
        started = time.perf_counter()
        result = self.step.process(rows)  # the engine flushes the cache before it returns
        result.stats.seconds = time.perf_counter() - started
        return result


@cache
def remote(function):
    """`ray.remote(function)`, made once per process: Ray exports each remote function once."""
    return import_ray().remote(function)


# -- the driver ------------------------------------------------------------------------------------
class RayExecutor(LocalExecutor):
    """Batches of row steps as Ray tasks; the run directory is written by this process only."""

    def __init__(
        self,
        observer: RunObserver | None = None,
        retry_failed: bool = True,
        address: str | None = None,
        max_in_flight: int | None = None,
        task_cpus: float = 1.0,
        task_retries: int = 3,
        init_options: dict[str, Any] | None = None,
    ):
        super().__init__(observer, retry_failed)
        self.ray = import_ray()
        self.address = address
        self.max_in_flight = max_in_flight
        self.task_cpus = task_cpus
        self.task_retries = task_retries
        self.init_options = init_options or {}
        self._owns_ray = False

    # -- connecting ------------------------------------------------------------------------------
    def run(self, plan: list[PlannedStep], rundir: RunDirectory):
        self._connect()
        try:
            if plan:
                self._make_context_portable(plan[0].step.context, rundir)
            return super().run(plan, rundir)
        finally:
            if self._owns_ray:
                self.ray.shutdown()
                self._owns_ray = False

    def _connect(self) -> None:
        if self.ray.is_initialized():
            return
        options = {"include_dashboard": False, "logging_level": logging.WARNING, **self.init_options}
        self.ray.init(address=self.address, **options)
        self._owns_ray = True

    @staticmethod
    def _make_context_portable(context, rundir: RunDirectory) -> None:
        """Workers have another working folder and environment: give them absolute paths,
        and the cache file this process would use."""
        from synthwright.paths import cache_path

        context.workdir = context.workdir.resolve()
        context.run_dir = (context.run_dir or rundir.path).resolve()
        if context.cache_file is None and (context.read_cache or context.write_cache):
            context.cache_file = cache_path().resolve()

    def _slots(self) -> int:
        """Tasks that can run at once on the cluster (more may wait in the queue)."""
        cpus = self.ray.cluster_resources().get("CPU", 1.0)
        return max(1, int(cpus // self.task_cpus)) if self.task_cpus > 0 else int(cpus)

    def _window(self) -> int:
        """Batches submitted at once: enough that a worker never waits for the driver."""
        return self.max_in_flight or 2 * self._slots()

    def _task_concurrency(self, context) -> int:
        budget = context.max_concurrency or DEFAULT_ENDPOINT_CONCURRENCY
        return max(1, budget // min(self._window(), self._slots()))

    def _get(self, ref):
        """ray.get, with synthwright's own errors (bad config, a missing extra) unwrapped."""
        try:
            return self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, SynthwrightError):
                raise cause from None
            raise

    # -- row steps -------------------------------------------------------------------------------
    def run_row_step(self, planned: PlannedStep, rundir: RunDirectory) -> None:
        step: RowStep = planned.step
        size = planned.batch_size or step.default_batch_size
        total_batches = -(-rundir.count_rows(planned.input) // size)
        done = [self._batch_is_done(rundir, step.name, i) for i in range(total_batches)]
        self.observer.step_started(planned, total_batches, sum(done))
        todo = self._todo(planned, rundir, size, done)
        if step.carries_state():
            self._run_in_actor(planned, rundir, todo)
        else:
            self._run_as_tasks(planned, rundir, todo)

    def _todo(self, planned: PlannedStep, rundir: RunDirectory, size: int, done: list[bool]) -> Iterator[tuple[int, list[Row]]]:
        for index, rows in enumerate(batched(rundir.rows(planned.input), size)):
            if index == 0:
                check_columns(planned, rows[0])
            if not done[index]:
                yield index, rows

    def _run_as_tasks(self, planned: PlannedStep, rundir: RunDirectory, todo: Iterable[tuple[int, list[Row]]]) -> None:
        task = remote(process_batch).options(num_cpus=self.task_cpus, max_retries=self.task_retries)
        step_ref = self.ray.put(planned.step)  # pickled once, not once per batch
        concurrency = self._task_concurrency(planned.step.context)
        in_flight: dict[Any, int] = {}
        window = self._window()
        for index, rows in todo:
            while len(in_flight) >= window:
                self._write_first_done(planned, rundir, in_flight)
            in_flight[task.remote(step_ref, rows, concurrency)] = index
        while in_flight:
            self._write_first_done(planned, rundir, in_flight)

    def _write_first_done(self, planned: PlannedStep, rundir: RunDirectory, in_flight: dict) -> None:
        [ref], _ = self.ray.wait(list(in_flight), num_returns=1)
        index = in_flight.pop(ref)
        self._write(planned, rundir, index, self._get(ref))

    def _write(self, planned: PlannedStep, rundir: RunDirectory, index: int, result: BatchResult) -> None:
        rundir.write_batch(planned.step.name, index, result)
        self.batch_done(planned, result)

    def _run_in_actor(self, planned: PlannedStep, rundir: RunDirectory, todo: Iterable[tuple[int, list[Row]]]) -> None:
        """Batches in order through one actor. Unwritten batches stay here until written, so
        a dead actor is replaced (warm-started from what is on disk) and they are sent again."""
        pending: deque[tuple[int, list[Row], Any]] = deque()
        actor, restarts = self._new_actor(planned, rundir), 0
        window = self._window()

        def write_oldest() -> None:
            nonlocal actor, restarts
            index, rows, ref = pending[0]
            try:
                result = self._get(ref)
            except self.ray.exceptions.RayActorError:
                restarts += 1
                if restarts > ACTOR_RESTARTS:
                    raise
                actor = self._new_actor(planned, rundir)
                for position, (i, r, _) in enumerate(list(pending)):
                    pending[position] = (i, r, actor.process.remote(r))
                return
            pending.popleft()
            self._write(planned, rundir, index, result)

        for index, rows in todo:
            while len(pending) >= window:
                write_oldest()
            pending.append((index, rows, actor.process.remote(rows)))
        while pending:
            write_oldest()

    def _new_actor(self, planned: PlannedStep, rundir: RunDirectory):
        kept = [self.ray.put(rows) for rows in batched(rundir.rows(planned.step.name), STAGE_CHUNK_ROWS)]
        actor_class = remote(StatefulStep).options(num_cpus=self.task_cpus, max_restarts=0)
        return actor_class.remote(planned.step, kept, self._task_concurrency(planned.step.context))

    # -- stages ------------------------------------------------------------------------------------
    def run_stage(self, planned: PlannedStep, rundir: RunDirectory) -> None:
        if planned.step.runs_on_driver:
            return super().run_stage(planned, rundir)
        self.observer.step_started(planned, 1, 0)
        rundir.clear_batches(planned.step.name)
        rows = rundir.rows(planned.input) if planned.input else iter(())
        chunks = [self.ray.put(chunk) for chunk in batched(rows, STAGE_CHUNK_ROWS)]
        task = remote(run_stage).options(num_cpus=self.task_cpus, max_retries=self.task_retries)
        self._write(planned, rundir, 0, self._get(task.remote(planned.step, chunks)))
